"""Cityscapes fine annotations: the 19 train-id classes, ignore 255, and the official ids.

Train ids are what the converter stores and the model predicts; `label_ids` maps them back
to the official label ids (cityscapesScripts labels.py) for the evaluation server, the
ignore value 255 to 0 ("unlabeled", ignored in evaluation).
"""

from __future__ import annotations

from deeplab.data.descriptors import DatasetDescriptor

CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip

TRAIN_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
# Padded to 256 entries with black, so the ignore label 255 is black.
COLORMAP = TRAIN_COLORS + ((0, 0, 0),) * (256 - len(TRAIN_COLORS))

TRAIN_ID_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
UNLABELED_ID = 0

DESCRIPTOR = DatasetDescriptor(
    "cityscapes", 19, 255, {"train_fine": 2975, "val_fine": 500}, CLASSES, colormap=COLORMAP,
    label_ids={**dict(enumerate(TRAIN_ID_TO_LABEL_ID)), 255: UNLABELED_ID},
)

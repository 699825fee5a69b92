"""Colour maps of the segmentation benchmarks, colouring of label maps and overlays.

Palettes (uint8 [N, 3], RGB), the same values as the original DeepLab's
`get_dataset_colormap.py`:

- "pascal": the PASCAL VOC palette, 256 entries built by interleaving the bits of the index
  (entry 255, VOC's "void" boundary, is (224, 224, 192)).
- "cityscapes": the 19 train-id colours of the Cityscapes labels, padded to 256 with black
  (so the ignore label 255 is black).
- "ade20k": the 151-entry ADE20K SceneParsing palette, entry 0 ("other", the ignore label)
  black.

Dataset names of the descriptors ("pascal_voc_seg", "cityscapes", "ade20k") are accepted too.
"""

from __future__ import annotations

import numpy as np

_CITYSCAPES_TRAIN_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip

# ADE20K SceneParsing palette, four classes a row; the comment is the first index of the row.
_ADE20K_COLORS = (
    (0, 0, 0), (120, 120, 120), (180, 120, 120), (6, 230, 230),  # 0
    (80, 50, 50), (4, 200, 3), (120, 120, 80), (140, 140, 140),  # 4
    (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255),  # 8
    (235, 255, 7), (150, 5, 61), (120, 120, 70), (8, 255, 51),  # 12
    (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7),  # 16
    (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51),  # 20
    (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230),  # 24
    (220, 220, 220), (255, 9, 92), (112, 9, 255), (8, 255, 214),  # 28
    (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),  # 32
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6),  # 36
    (255, 194, 7), (255, 122, 8), (0, 255, 20), (255, 8, 41),  # 40
    (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20),  # 44
    (0, 163, 255), (140, 140, 140), (250, 10, 15), (20, 255, 0),  # 48
    (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0),  # 52
    (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255),  # 56
    (31, 0, 255), (11, 200, 200), (255, 82, 0), (0, 255, 245),  # 60
    (0, 61, 255), (0, 255, 112), (0, 255, 133), (255, 0, 0),  # 64
    (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255),  # 68
    (51, 255, 0), (0, 82, 255), (0, 255, 41), (0, 255, 173),  # 72
    (10, 0, 255), (173, 255, 0), (0, 255, 153), (255, 92, 0),  # 76
    (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0),  # 80
    (255, 0, 20), (255, 184, 184), (0, 31, 255), (0, 255, 61),  # 84
    (0, 71, 255), (255, 0, 204), (0, 255, 194), (0, 255, 82),  # 88
    (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255),  # 92
    (0, 122, 255), (0, 255, 163), (255, 153, 0), (0, 255, 10),  # 96
    (255, 112, 0), (143, 255, 0), (82, 0, 255), (163, 255, 0),  # 100
    (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92),  # 104
    (184, 0, 255), (255, 0, 31), (0, 184, 255), (0, 214, 255),  # 108
    (255, 0, 112), (92, 255, 0), (0, 224, 255), (112, 224, 255),  # 112
    (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0),  # 116
    (255, 0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235),  # 120
    (133, 255, 0), (255, 0, 235), (245, 0, 255), (255, 0, 122),  # 124
    (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255),  # 128
    (20, 0, 255), (255, 255, 0), (0, 153, 255), (0, 41, 255),  # 132
    (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255),  # 136
    (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184),  # 140
    (0, 92, 255), (184, 255, 0), (0, 133, 255), (255, 214, 0),  # 144
    (25, 194, 194), (102, 255, 0), (92, 0, 255),  # 148
)  # fmt: skip

# Cityscapes train id 0..18 -> official label id (cityscapesScripts labels.py).
CITYSCAPES_TRAIN_ID_TO_LABEL_ID = (
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
)  # fmt: skip
CITYSCAPES_UNLABELED_ID = 0  # label id of "unlabeled" (ignoreInEval)

_ALIASES = {"pascal_voc_seg": "pascal", "voc": "pascal"}
COLORMAP_NAMES = ("pascal", "cityscapes", "ade20k")


def _pascal_colormap(size: int = 256) -> np.ndarray:
    """Bit interleaving: bit k of R, G, B comes from index bits 3k, 3k+1, 3k+2, MSB first."""
    index = np.arange(size)
    colormap = np.zeros((size, 3), np.int64)
    for shift in range(7, -1, -1):
        for channel in range(3):
            colormap[:, channel] |= ((index >> channel) & 1) << shift
        index = index >> 3
    return colormap.astype(np.uint8)


def _cityscapes_colormap() -> np.ndarray:
    colormap = np.zeros((256, 3), np.uint8)
    colormap[: len(_CITYSCAPES_TRAIN_COLORS)] = _CITYSCAPES_TRAIN_COLORS
    return colormap


def canonical_name(name: str) -> str:
    """Colour-map name for a colour-map or dataset name; ValueError if unknown."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in COLORMAP_NAMES:
        raise ValueError(f"unknown colour map {name!r}; expected one of "
                         f"{', '.join(COLORMAP_NAMES)} (or {', '.join(_ALIASES)})")
    return key


def create_colormap(name: str) -> np.ndarray:
    """The palette `name` ("pascal", "cityscapes", "ade20k") as uint8 [N, 3] RGB.

    N is 256 for pascal and cityscapes, 151 for ade20k. A fresh array on every call.
    """
    key = canonical_name(name)
    if key == "pascal":
        return _pascal_colormap()
    if key == "cityscapes":
        return _cityscapes_colormap()
    return np.array(_ADE20K_COLORS, np.uint8)


def _as_label(label, what: str = "label") -> np.ndarray:
    if hasattr(label, "numpy"):
        label = label.numpy()
    label = np.asarray(label)
    if label.dtype == bool or not np.issubdtype(label.dtype, np.integer):
        raise TypeError(f"{what} must have an integer dtype, got {label.dtype}")
    return label


def colorize(label, name: str) -> np.ndarray:
    """Colours a label map with the palette `name`.

    Args:
      label: integer [H, W] (any shape works: the colour axis is appended).
      name: colour-map or dataset name.

    Returns:
      uint8 [H, W, 3].

    Raises:
      ValueError: for labels outside [0, N) of the palette, naming them.
    """
    label = _as_label(label)
    colormap = create_colormap(name)
    bad = np.unique(label[(label < 0) | (label >= len(colormap))])
    if bad.size:
        raise ValueError(f"label values {bad[:10].tolist()} outside the {len(colormap)}-entry "
                         f"{canonical_name(name)!r} palette")
    return colormap[label]


def overlay(image, label, name: str, alpha: float = 0.5,
            ignore_label: int | None = None) -> np.ndarray:
    """Blends the coloured labels over an image: `round((1 - alpha) * image + alpha * colour)`.

    Args:
      image: uint8 [H, W, 3] RGB.
      label: integer [H, W].
      name: colour-map or dataset name.
      alpha: weight of the label colours in [0, 1].
      ignore_label: pixels with this label keep the image unchanged (None: colour all).

    Returns:
      uint8 [H, W, 3].
    """
    image = np.asarray(image)
    label = _as_label(label)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if label.shape != image.shape[:2]:
        raise ValueError(f"label shape {label.shape} != image size {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    keep = None
    if ignore_label is not None:
        keep = label == ignore_label
        label = np.where(keep, 0, label)
    colors = colorize(label, name).astype(np.float64)
    blended = np.rint((1.0 - alpha) * image + alpha * colors).astype(np.uint8)
    if keep is not None:
        blended[keep] = image[keep]
    return blended


def cityscapes_train_id_to_label_id(label) -> np.ndarray:
    """Maps Cityscapes train ids to the official label ids, for the evaluation server.

    Train ids 0..18 become label ids 7, 8, 11, ..., 33. The ignore value 255 becomes 0
    ("unlabeled"): the server's script (cityscapesScripts evalPixelLevelSemanticLabeling)
    indexes its 34 x 34 matrix by label id, so a prediction of 255 would break it, while
    label id 0 is a valid id that is ignored in evaluation.

    Args:
      label: integer array of any shape with values in 0..18 or 255.

    Returns:
      uint8 array of the same shape.

    Raises:
      ValueError: for other values, naming them.
    """
    label = _as_label(label)
    table = np.zeros(256, np.uint8)
    table[: len(CITYSCAPES_TRAIN_ID_TO_LABEL_ID)] = CITYSCAPES_TRAIN_ID_TO_LABEL_ID
    table[255] = CITYSCAPES_UNLABELED_ID
    valid = ((label >= 0) & (label < len(CITYSCAPES_TRAIN_ID_TO_LABEL_ID))) | (label == 255)
    if not valid.all():
        bad = np.unique(label[~valid])[:10].tolist()
        raise ValueError(f"Cityscapes train ids must be 0..18 or 255, got {bad}")
    return table[label]

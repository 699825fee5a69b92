"""The built-in synthetic dataset (deeplab/datasets/synthetic.py): 6 textured classes, VOC
colours."""

from __future__ import annotations

from deeplab.data.builtin import pascal_voc_seg
from deeplab.data.descriptors import DatasetDescriptor

# Each object class is a colour + texture; shapes are drawn at random for every class.
CLASSES = (
    "background", "red_hstripes", "green_checker", "blue_dots", "yellow_vstripes",
    "magenta_diagonal",
)

DESCRIPTOR = DatasetDescriptor("synthetic", 6, 255, {"train": 320, "val": 80}, CLASSES,
                               colormap=pascal_voc_seg.COLORMAP)

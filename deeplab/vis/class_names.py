"""Class names of the registered datasets, by colour-map or dataset name.

The names live with the dataset descriptors (`deeplab.data.builtin`, one place for them):

- PASCAL VOC 2012: 21 names, "background" first.
- Cityscapes: the 19 train-id classes, "road" first.
- ADE20K: 151 names; index 0 "other" is the ignore label, 1..150 are the SceneParsing classes.
"""

from __future__ import annotations

from deeplab.data import descriptors

__all__ = ["ADE20K_CLASSES", "CITYSCAPES_CLASSES", "PASCAL_VOC_CLASSES", "get_class_names"]

PASCAL_VOC_CLASSES = descriptors.get_descriptor("pascal_voc_seg").class_names
CITYSCAPES_CLASSES = descriptors.get_descriptor("cityscapes").class_names
ADE20K_CLASSES = descriptors.get_descriptor("ade20k").class_names


def get_class_names(name: str) -> tuple[str, ...]:
    """Class names for a colour-map or dataset name ("pascal", "pascal_voc_seg", ...)."""
    return descriptors.palette_owner(name).class_names

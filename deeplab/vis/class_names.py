"""Class names of the benchmark datasets, indexed by label value.

The tuples live with the dataset descriptors (`deeplab.data.descriptors`, one place for the
names); this module exposes them under the colour-map names for visualisation and reports:

- PASCAL VOC 2012: 21 names, "background" first.
- Cityscapes: the 19 train-id classes, "road" first.
- ADE20K: 151 names; index 0 "other" is the ignore label, 1..150 are the SceneParsing classes.
"""

from __future__ import annotations

from deeplab.data.descriptors import ADE20K_CLASSES, CITYSCAPES_CLASSES, PASCAL_VOC_CLASSES
from deeplab.vis.colormap import canonical_name

__all__ = ["ADE20K_CLASSES", "CITYSCAPES_CLASSES", "PASCAL_VOC_CLASSES", "get_class_names"]

_BY_COLORMAP = {
    "pascal": PASCAL_VOC_CLASSES,
    "cityscapes": CITYSCAPES_CLASSES,
    "ade20k": ADE20K_CLASSES,
}


def get_class_names(name: str) -> tuple[str, ...]:
    """Class names for a colour-map or dataset name ("pascal", "pascal_voc_seg", ...)."""
    return _BY_COLORMAP[canonical_name(name)]

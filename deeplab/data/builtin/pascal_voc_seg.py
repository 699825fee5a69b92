"""PASCAL VOC 2012 segmentation: 21 classes, ignore label 255 (the boundary), the VOC palette."""

from __future__ import annotations

from deeplab.data.descriptors import DatasetDescriptor

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def bit_interleaved_palette(size: int = 256) -> tuple[tuple[int, int, int], ...]:
    """The VOC palette: bit k (MSB first) of R, G, B comes from index bits 3k, 3k+1, 3k+2.

    Entry 255, VOC's "void" boundary, is (224, 224, 192).
    """
    colors = []
    for index in range(size):
        rgb = [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((index >> channel) & 1) << shift
            index >>= 3
        colors.append(tuple(rgb))
    return tuple(colors)


COLORMAP = bit_interleaved_palette()
# Names --colormap_type and create_colormap accept for this palette; the first is shown.
PALETTE_ALIASES = ("pascal", "voc")

DESCRIPTOR = DatasetDescriptor(
    "pascal_voc_seg", 21, 255,
    {"train": 1464, "train_aug": 10582, "trainval": 2913, "val": 1449},
    CLASSES, colormap=COLORMAP,
)  # fmt: skip

"""Colour maps of the segmentation benchmarks, colouring of label maps and overlays.

The palettes belong to the registered datasets (`deeplab.data.builtin`: each descriptor
carries its `colormap`); this module draws with them. A palette is given either by name
(a registered dataset's name or a palette alias: "pascal", "cityscapes", "ade20k",
"pascal_voc_seg", ...) or as RGB colours uint8 [N, 3]. The built-in ones have the same
values as the original DeepLab's `get_dataset_colormap.py`:

- "pascal": the PASCAL VOC palette, 256 entries built by interleaving the bits of the index
  (entry 255, VOC's "void" boundary, is (224, 224, 192)).
- "cityscapes": the 19 train-id colours of the Cityscapes labels, padded to 256 with black
  (so the ignore label 255 is black).
- "ade20k": the 151-entry ADE20K SceneParsing palette, entry 0 ("other", the ignore label)
  black.
"""

from __future__ import annotations

import numpy as np

from deeplab.data import descriptors

_CITYSCAPES = descriptors.get_descriptor("cityscapes")
# Cityscapes train id 0..18 -> official label id (cityscapesScripts labels.py).
CITYSCAPES_TRAIN_ID_TO_LABEL_ID = tuple(_CITYSCAPES.label_ids[i]
                                        for i in range(_CITYSCAPES.num_classes))

# The names --colormap_type offers: one per registered palette (at import time).
COLORMAP_NAMES = descriptors.palette_names()
DEFAULT_COLORMAP = "pascal"


def canonical_name(name):
    """The palette name users see for a palette or dataset name ("pascal_voc_seg" -> "pascal").

    RGB colours (anything [N, 3]) are returned as a tuple of triples. ValueError if unknown.
    """
    if not isinstance(name, str):
        return descriptors.DatasetDescriptor("colors", 1, 0, {}, colormap=name).colormap
    return descriptors.palette_name(name)


def create_colormap(name) -> np.ndarray:
    """The palette `name` (a name, or RGB colours [N, 3]) as uint8 [N, 3] RGB.

    N is 256 for pascal and cityscapes, 151 for ade20k. A fresh array on every call.
    """
    colors = canonical_name(name)
    if isinstance(colors, str):
        colors = descriptors.palette(colors)
    return np.array(colors, np.uint8)


def dataset_palette(descriptor: descriptors.DatasetDescriptor, requested=None):
    """The palette to draw a dataset's labels with: `requested` (a name, e.g. from
    --colormap_type) if given, else the descriptor's own colour map (by name when it is a
    registered palette, else its colours), else "pascal"."""
    if requested is not None:
        return requested
    if descriptor.colormap is None:
        return DEFAULT_COLORMAP
    for name in COLORMAP_NAMES:  # a known palette by its name, for messages
        if descriptors.palette(name) == descriptor.colormap:
            return name
    return descriptor.colormap


def _palette_label(name) -> str:
    return repr(name) if isinstance(name, str) else "given"


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
                         f"{_palette_label(canonical_name(name))} palette")
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


def with_legend(image, label, colors, class_names=()) -> np.ndarray:
    """`image` with a legend below it: one swatch and name per class present in `label`.

    Args:
      image: uint8 [H, W, 3] (e.g. an `overlay`).
      label: integer [H, W].
      colors: uint8 [N, 3] RGB colour map, or a colour-map name.
      class_names: one name per class; class ids are shown when absent.

    Returns:
      uint8 [H + 14 * rows, W, 3]: a white band of 14-pixel rows below the image.
    """
    from PIL import Image, ImageDraw  # noqa: PLC0415 - only drawing needs Pillow

    colormap = create_colormap(colors)
    present = np.unique(_as_label(label))
    names = [class_names[c] if c < len(class_names) else str(c) for c in present]
    width = image.shape[1]
    entries = [12 + 6 * len(n) + 8 for n in names]  # swatch + ~6 px per character + gap
    rows, x = 1, 0
    for w in entries:
        if x and x + w > width:
            rows, x = rows + 1, 0
        x += w
    canvas = Image.new("RGB", (width, image.shape[0] + 14 * rows), "white")
    canvas.paste(Image.fromarray(np.asarray(image, np.uint8)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x, y = 0, image.shape[0]
    for c, name, w in zip(present, names, entries, strict=True):
        if x and x + w > width:
            x, y = 0, y + 14
        draw.rectangle((x + 1, y + 2, x + 10, y + 11), fill=tuple(int(v) for v in colormap[c]),
                       outline="black")
        draw.text((x + 13, y + 1), name, fill="black")
        x += w
    return np.asarray(canvas)


def cityscapes_train_id_to_label_id(label) -> np.ndarray:
    """Maps Cityscapes train ids to the official label ids, for the evaluation server.

    Train ids 0..18 become label ids 7, 8, 11, ..., 33. The ignore value 255 becomes 0
    ("unlabeled"): the server's script (cityscapesScripts evalPixelLevelSemanticLabeling)
    indexes its 34 x 34 matrix by label id, so a prediction of 255 would break it, while
    label id 0 is a valid id that is ignored in evaluation. The table is the Cityscapes
    descriptor's `label_ids` (see `DatasetDescriptor.to_label_ids`).

    Args:
      label: integer array of any shape with values in 0..18 or 255.

    Returns:
      uint8 array of the same shape.

    Raises:
      ValueError: for other values, naming them.
    """
    return _CITYSCAPES.to_label_ids(_as_label(label))

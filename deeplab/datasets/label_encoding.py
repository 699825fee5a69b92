"""Reading the label masks people have, and telling which kind a label file is.

Converters read class-index labels by default (`build_data.read_label_image`). A
`LabelReader` also reads:

- colour masks (`--label_colormap=pascal|cityscapes|<registered palette>|FILE`): each RGB
  colour becomes the index of its palette entry among the first num_classes; the ignore
  label's palette colour (VOC's boundary, Cityscapes' black) becomes the ignore label, and
  so does every unknown colour (those pixels are counted and reported). RGB(A) and palette
  PNGs are read by colour; single-channel labels are still read as class indices.
  FILE holds one colour per class index: a JSON list of [r, g, b], or text lines
  `r g b` (commas allowed, anything after the third number ignored, # comments).
- 0/255 or 0/1 binary masks (`--binary_masks`): mapped to classes {0, 1} (greyscale,
  palette-index or grey RGB images; any other value is an error naming the file).

`describe_label` says what a label file is (for the dataset doctor).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from deeplab.data import descriptors
from deeplab.datasets import build_data

COLOR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA")


def load_colormap(value: str) -> tuple[tuple[int, int, int], ...]:
    """The colours of --label_colormap: a registered palette name or a file (see module doc)."""
    if not os.path.isfile(value):
        try:
            return descriptors.palette(value)
        except ValueError:
            raise build_data.ConversionError(
                f"--label_colormap: {value!r} is neither a file nor a palette name "
                f"({', '.join(descriptors.palette_names())})") from None
    try:
        with open(value, encoding="utf-8-sig") as f:
            text = f.read()
        if text.lstrip().startswith("["):
            colors = json.loads(text)
        else:
            rows = [line.split("#")[0].replace(",", " ").split() for line in text.splitlines()]
            colors = [[int(v) for v in row[:3]] for row in rows if row]
        return descriptors.DatasetDescriptor("file", 1, 0, {}, colormap=colors).colormap
    except (OSError, ValueError, TypeError) as err:
        raise build_data.ConversionError(f"--label_colormap: {value}: not a colour list "
                                         f"({err}); expected lines 'r g b'") from None


def _keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


@dataclasses.dataclass(frozen=True)
class LabelReader:
    """Reads label files as uint8 class maps (see the module doc).

    colormap: RGB colours [N, 3] for colour masks (None: not colour masks);
    colormap_source: how the user named it (recorded in dataset.json);
    binary: 0/255 or 0/1 masks -> {0, 1}.
    """

    num_classes: int
    ignore_label: int
    colormap: tuple | None = None
    colormap_source: str | None = None
    binary: bool = False

    def __post_init__(self):
        if self.binary and self.colormap is not None:
            raise build_data.ConversionError("--binary_masks and --label_colormap exclude each "
                                             "other: give one")
        if self.binary and self.num_classes != 2:
            raise build_data.ConversionError(f"--binary_masks: masks map to 2 classes; give "
                                             f"--num_classes=2, not {self.num_classes}")
        if self.colormap is not None:
            self._color_table()

    def encoding(self) -> dict:
        """dataset.json's record of how labels were read ({} for class-index labels)."""
        if self.binary:
            return {"binary_masks": True}
        if self.colormap is not None:
            return {"label_colormap": self.colormap_source or "given"}
        return {}

    def _color_table(self) -> dict[int, int]:
        table = {}
        colors = np.array(self.colormap, np.uint8)
        for index, key in enumerate(_keys(colors[: self.num_classes]).tolist()):
            if key in table:
                raise build_data.ConversionError(
                    f"--label_colormap: classes {table[key]} and {index} have the same colour "
                    f"{tuple(colors[index])}")
            table[key] = index
        if self.ignore_label < len(colors):
            table.setdefault(int(_keys(colors[self.ignore_label])), self.ignore_label)
        return table

    def read(self, path: str) -> tuple[np.ndarray, int]:
        """(uint8 [H, W] class map, pixels of unknown colours set to the ignore label)."""
        if self.binary:
            return self._read_binary(path), 0
        if self.colormap is None:
            return build_data.read_label_image(path), 0
        image = _open_label(path)
        if image.mode not in COLOR_MODES:
            return build_data.read_label_image(path), 0
        keys = _keys(np.asarray(image.convert("RGB")))
        unique, inverse = np.unique(keys, return_inverse=True)
        table = self._color_table()
        mapped = np.array([table.get(k, -1) for k in unique.tolist()], np.int64)
        unknown = int(np.count_nonzero(mapped[inverse] < 0))
        mapped[mapped < 0] = self.ignore_label
        return mapped[inverse].reshape(keys.shape).astype(np.uint8), unknown

    def _read_binary(self, path: str) -> np.ndarray:
        image = _open_label(path)
        values = np.asarray(image)
        if values.ndim == 3:
            if not (values[..., :3] == values[..., :1]).all():
                raise build_data.InvalidPairError(path, "--binary_masks: a colour image, not a "
                                                  "black/white mask")
            values = values[..., 0]
        found = set(np.unique(values).tolist())
        if not (found <= {0, 1} or found <= {0, 255}):
            shown = ", ".join(str(v) for v in sorted(found - {0, 1, 255})[:8]) or "0, 1, 255"
            raise build_data.InvalidPairError(path, f"--binary_masks: values {shown} are not "
                                              "those of a 0/255 or 0/1 mask")
        return (values > 0).astype(np.uint8)


def _open_label(path: str):
    image = build_data._open_image(build_data._read_bytes(path), path)
    if image.format == "JPEG":
        raise build_data.InvalidPairError(path, "JPEG label: lossy compression changes class "
                                          "values at edges; save labels as PNG")
    return image


def reader_from_options(num_classes: int, ignore_label: int, label_colormap: str | None,
                        binary_masks: bool) -> LabelReader:
    """The LabelReader for the converter flags --label_colormap and --binary_masks."""
    colormap = load_colormap(label_colormap) if label_colormap else None
    source = None
    if label_colormap:
        source = label_colormap if not os.path.isfile(label_colormap) else \
            os.path.abspath(label_colormap)
    return LabelReader(num_classes, ignore_label, colormap, source, binary_masks)


@dataclasses.dataclass(frozen=True)
class LabelKind:
    """What a label file is. kind: one of "index", "palette", "color", "binary", "16bit",
    "jpeg", "unreadable"; detail: a short description; fix: the converter flag (or
    action) that makes it usable, "" when it is usable as it is."""

    kind: str
    detail: str
    fix: str = ""


def _palette_match(keys: np.ndarray, num_classes: int, ignore_label: int) -> str | None:
    """The registered palette all these colours belong to (first num_classes + ignore)."""
    for name in descriptors.palette_names():
        colors = np.array(descriptors.palette(name), np.uint8)
        allowed = set(_keys(colors[:num_classes]).tolist())
        if ignore_label < len(colors):
            allowed.add(int(_keys(colors[ignore_label])))
        if set(keys.tolist()) <= allowed:
            return name
    return None


def describe_label(path: str, num_classes: int, ignore_label: int) -> LabelKind:
    """Classifies a label file (see LabelKind) without deciding whether its values fit."""
    try:
        data = build_data._read_bytes(path)
        image = build_data._open_image(data, path)
    except build_data.InvalidPairError as err:
        return LabelKind("unreadable", err.problem, "replace or remove the file "
                         "(or convert with --skip_invalid)")
    if image.format == "JPEG":
        return LabelKind("jpeg", "JPEG-compressed label (edges hold values of no class)",
                         "save the labels as PNG from their source; no flag undoes JPEG "
                         "artefacts (or convert with --skip_invalid)")
    values = np.asarray(image)
    if image.mode.startswith("I"):
        fits = values.size == 0 or (values.min() >= 0 and values.max() <= 255)
        if not fits:
            return LabelKind("16bit", f"16-bit label with values up to {values.max()}",
                             "map the values to class indices 0..255 and save 8-bit PNGs")
        return LabelKind("index", "16-bit label whose values fit 8 bits (accepted)")
    if image.mode in ("RGB", "RGBA", "RGBX"):
        rgb = values[..., :3]
        if (rgb == rgb[..., :1]).all():
            found = set(np.unique(rgb[..., 0]).tolist())
            if found <= {0, 255} or found <= {0, 1}:
                return LabelKind("binary", "black/white mask saved as RGB",
                                 "--binary_masks --num_classes=2")
            return LabelKind("color", "grey RGB image (class indices in 3 channels?)",
                             "save single-channel class-index PNGs")
        keys = np.unique(_keys(rgb))
        name = _palette_match(keys, num_classes, ignore_label)
        fix = f"--label_colormap={name}" if name else \
            "--label_colormap=FILE (one 'r g b' line per class)"
        return LabelKind("color", f"RGB colour mask with {len(keys)} colours", fix)
    found = set(np.unique(values).tolist())
    if found == {0, 255}:
        return LabelKind("binary", "0/255 binary mask", "--binary_masks --num_classes=2")
    kind = "palette" if image.mode == "P" else "index"
    return LabelKind(kind, "palette PNG read by index" if kind == "palette" else
                     "class-index PNG")

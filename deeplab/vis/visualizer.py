"""Saving predictions as pictures (vis.py): coloured labels, overlays and raw label maps.

For each `Prediction` (see `deeplab.evaluate.evaluator.predict_split`) named by its record's
image/filename `<name>`, `Visualizer.save` writes into `<vis_logdir>/segmentation_results/`
(the original's folder):

  <name>_image.png        the input image, uint8 RGB (after the optional resize)
  <name>_prediction.png   the prediction coloured with the palette
  <name>_overlay.png      the coloured prediction blended over the image (alpha 0.5)
  <name>_label.png        the ground truth coloured the same way (ignored pixels in the
                          palette's colour for the ignore label, or VOID_COLOR beyond it)

and, with `save_raw`, `<vis_logdir>/raw_segmentation_results/<name>.png`: one uint8 class
index per pixel, mapped through `raw_id_map` when given (Cityscapes train ids -> official
label ids, the format of the Cityscapes evaluation server). Names that repeat in a split get
`_<n>` appended.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import numpy as np
from PIL import Image

from deeplab.utils.image_io import save_label_png
from deeplab.vis import colormap

SEGMENTATION_DIR = "segmentation_results"
RAW_DIR = "raw_segmentation_results"
VOID_COLOR = (224, 224, 192)  # VOC's boundary colour, for ignore labels outside the palette


def _to_uint8_image(image: np.ndarray) -> np.ndarray:
    """float [H, W, 3] 0..255 -> uint8 [H, W, 3] (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(image, np.float64)), 0, 255).astype(np.uint8)


def _safe_name(filename: str) -> str:
    """A file-name stem from image/filename: directories and odd characters removed."""
    stem = os.path.basename(filename.replace("\\", "/")) or "image"
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", stem)


def color_label(label: np.ndarray, palette: str, ignore_label: int | None = None) -> np.ndarray:
    """Ground truth int [H, W] -> uint8 [H, W, 3]; ignored pixels as described above."""
    label = np.asarray(label)
    colors = colormap.create_colormap(palette)
    if ignore_label is None or ignore_label < len(colors):
        return colormap.colorize(label, palette)
    ignored = label == ignore_label
    out = colormap.colorize(np.where(ignored, 0, label), palette)
    out[ignored] = VOID_COLOR
    return out


class Visualizer:
    """Writes pictures of predictions; see the module docstring for the files.

    Args:
      vis_logdir: output root.
      palette: colour map, "pascal", "cityscapes" or "ade20k" (or a dataset name).
      save_raw: also write raw label maps.
      raw_id_map: int array [H, W] -> uint8 [H, W] applied to raw label maps, or None.
      ignore_label: the dataset's ignore label (for the ground-truth picture).
      alpha: weight of the colours in the overlay.
    """

    def __init__(self, vis_logdir: str, palette: str = "pascal", save_raw: bool = False,
                 raw_id_map: Callable[[np.ndarray], np.ndarray] | None = None,
                 ignore_label: int | None = None, alpha: float = 0.5):
        self.palette = colormap.canonical_name(palette)
        self.save_dir = os.path.join(vis_logdir, SEGMENTATION_DIR)
        self.raw_dir = os.path.join(vis_logdir, RAW_DIR) if save_raw else None
        self.raw_id_map = raw_id_map
        self.ignore_label = ignore_label
        self.alpha = alpha
        self._used: dict[str, int] = {}
        for directory in filter(None, (self.save_dir, self.raw_dir)):
            os.makedirs(directory, exist_ok=True)

    def reset(self) -> None:
        """Forgets the names written so far (a new pass overwrites the same files)."""
        self._used.clear()

    def _unique(self, filename: str) -> str:
        name = _safe_name(filename)
        count = self._used.get(name, 0)
        self._used[name] = count + 1
        return name if count == 0 else f"{name}_{count}"

    def save(self, item) -> list[str]:
        """Writes the pictures of one Prediction; returns the paths written."""
        name = self._unique(item.filename)
        image = _to_uint8_image(item.image)
        prediction = np.asarray(item.prediction)
        pictures = {
            "image": image,
            "prediction": colormap.colorize(prediction, self.palette),
            "overlay": colormap.overlay(image, prediction, self.palette, self.alpha),
            "label": color_label(item.label, self.palette, self.ignore_label),
        }
        paths = []
        for kind, array in pictures.items():
            path = os.path.join(self.save_dir, f"{name}_{kind}.png")
            Image.fromarray(array).save(path)
            paths.append(path)
        if self.raw_dir is not None:
            raw = self.raw_id_map(prediction) if self.raw_id_map else prediction
            path = os.path.join(self.raw_dir, f"{name}.png")
            save_label_png(np.asarray(raw), path)
            paths.append(path)
        return paths

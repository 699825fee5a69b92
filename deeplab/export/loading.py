"""Loading exported models: the format detected from the path, the runtime from the registry.

    model = load_exported_model(path)
    probabilities = model(images)      # [B, H, W, 3] uint8/float -> float32 [B, H, W, C]

`path` is one artefact of export_model.py (a frozen `*.pb`, a SavedModel directory, `*.onnx`,
`*.tflite`) or an export directory; a directory holding several formats runs the best one
(`PREFERENCE`), named by `detect_format`.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from deeplab.export import formats
from deeplab.export.errors import ExportError
from deeplab.export.runtimes import ExportedModel, as_uint8_images, resize_nearest
from deeplab.inference.class_names import export_info, source_dataset


def artefacts_in(directory: str) -> list[str]:
    """Paths of the exported models directly inside `directory` (sorted)."""
    found = []
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if os.path.isfile(full) and _by_suffix(os.path.splitext(name)[1]) is not None:
            found.append(full)
        elif os.path.isfile(os.path.join(full, "saved_model.pb")):
            found.append(full)
    return found


# Full-precision formats first (the frozen graph is the original's contract and loads
# fastest), quantised TFLite last; the folder export_model.py --format=all writes.
PREFERENCE = ("frozen", "saved_model", "onnx", "tflite", "tflite_dynamic_range", "tflite_int8")


def best_artefact(paths) -> tuple[str, str] | None:
    """(format, path) of the most preferred of `paths` written under its export file name
    (see `PREFERENCE`), or None when none of them is."""
    by_name = {os.path.basename(os.path.normpath(p)): p for p in paths}
    for name in PREFERENCE:
        fmt = formats.get(name)
        if fmt.file_name in by_name:
            return name, by_name[fmt.file_name]
    return None


def detect_format(path: str) -> tuple[str, str]:
    """(format, artefact path) for `path`; ExportError when it is none of the formats.

    A directory holding several of export_model.py's artefacts gives the best one
    (`PREFERENCE`, logged); one holding several unknown ones is an ExportError listing them.
    """
    if not os.path.exists(path):
        raise ExportError(f"{path}: no such exported model")
    if os.path.basename(path) == "saved_model.pb":
        path = os.path.dirname(path) or "."
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return "saved_model", path
        found = artefacts_in(path)
        best = best_artefact(found)
        if len(found) > 1 and best is not None:
            logging.info("%s holds %d exported models; running %s (%s)", path, len(found),
                         best[1], best[0])
            return best
        if len(found) != 1:
            detail = f"holds {len(found)}: {', '.join(found)}" if found else "holds none"
            raise ExportError(f"{path}: pass one exported model (frozen .pb, SavedModel "
                              f"directory, .onnx or .tflite); this directory {detail}")
        return detect_format(found[0])
    fmt = _by_suffix(os.path.splitext(path)[1])
    if fmt is None:
        raise ExportError(f"{path}: unknown exported-model format (expected a frozen .pb, a "
                          "SavedModel directory, .onnx or .tflite)")
    return fmt.name, path


# The crop the original's export_model.py bakes in by default (its demo resizes to it).
ORIGINAL_CROP = (513, 513)


def load_exported_model(path: str, crop_size=None, resize_to_crop: bool = True,
                        **kwargs) -> ExportedModel:
    """The exported model at `path`, ready to call; see the module docstring. Its output
    stride, crop, class count and dataset come from our export_info.json when present.

    A frozen graph without our export_info.json beside it (the original's exports) pads to
    a fixed crop and fails on larger images: it runs as a `CropFitted` model at `crop_size`
    (height, width; default the graph's own crop found by `probe_crop`; ORIGINAL_CROP when
    the graph has no ArgMax to probe), resize_to_crop as there. A graph whose ArgMax follows
    the input size (ours, being verified before its export_info.json is written) runs as it
    is. Our exports fit any size themselves. kwargs go to the format's loader (TFLite:
    num_threads). Raises ExportError (a ValueError) naming the path when it is missing, of
    an unknown format or unreadable.
    """
    fmt, artefact = detect_format(path)
    model = formats.get(fmt).load(artefact, **kwargs)
    info = export_info(artefact)
    _describe_from_info(model, info)
    model.dataset, model.dataset_dir = source_dataset(artefact, info)
    if fmt == "frozen" and (crop_size is not None or not info):
        crop = crop_size or model.probe_crop()
        if crop is None and not model.has_scores:  # nothing to probe: assume the default
            crop = ORIGINAL_CROP
        if crop is not None:
            return CropFitted(model, tuple(crop), resize_to_crop)
    return model


def _describe_from_info(model: ExportedModel, info: dict) -> None:
    """Output stride, crop and class count of an export of ours, from its export_info.json."""
    network, export = info.get("model") or {}, info.get("export") or {}
    model.output_stride = network.get("output_stride", model.output_stride)
    model.num_classes = network.get("num_classes", model.num_classes)
    if export.get("crop_size"):
        model.crop_size = tuple(export["crop_size"])
    elif getattr(model, "fixed_size", None):  # a foreign TFLite model of fixed input size
        model.crop_size = model.fixed_size


class CropFitted(ExportedModel):
    """A model of fixed crop (height, width), run as the original's demo ran its graphs: an
    image larger than the crop is resized (Lanczos) so that it fits with its longer side at
    the crop, and the results are resized back to the input size (nearest neighbour).

    resize_to_crop False: a larger image is an ExportError naming both sizes instead.
    """

    def __init__(self, model: ExportedModel, crop_size: tuple[int, int],
                 resize_to_crop: bool = True):
        super().__init__(model.path)
        self.model, self.crop_size, self.resize_to_crop = model, crop_size, resize_to_crop
        self.format, self.has_probabilities = model.format, model.has_probabilities
        self.num_classes, self.output_stride = model.num_classes, model.output_stride
        self.dataset, self.dataset_dir = model.dataset, model.dataset_dir

    def __call__(self, images) -> np.ndarray:
        return self._each(images, self.model)

    def labels(self, images) -> np.ndarray:
        return self._each(images, self.model.labels)

    def _each(self, images, run) -> np.ndarray:
        """run(uint8 [1, h, w, 3]) -> [1, h, w, ...] per image, at the input size."""
        out = []
        for image in as_uint8_images(images):
            fitted = self.fit(image)
            result = run(fitted[None])[0]
            out.append(resize_nearest(result, image.shape[:2]))
        return np.stack(out)

    def fit(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> uint8 [h, w, 3] within the crop (the image itself if it fits)."""
        from PIL import Image  # noqa: PLC0415 - only large images need it

        (height, width), (crop_h, crop_w) = image.shape[:2], self.crop_size
        if height <= crop_h and width <= crop_w:
            return image
        if not self.resize_to_crop:
            raise ExportError(f"{self.path}: image {height}x{width} is larger than the graph's "
                              f"fixed crop {crop_h}x{crop_w} and resizing to the crop is off "
                              "(--no_resize_to_crop / resize_to_crop=False)")
        ratio = min(crop_h / height, crop_w / width)
        size = (max(1, int(ratio * width)), max(1, int(ratio * height)))  # PIL: (w, h)
        return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))


def _by_suffix(suffix: str):
    """The registered format whose loader reads files ending with `suffix`, or None."""
    return formats.by_suffix(suffix)

"""The protocol every model source implements (checkpoint, frozen graph, SavedModel, ONNX,
TFLite); see `SegmentationModel`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class SegmentationModel:
    """A segmentation model of any source, callable on images.

    Attributes:
      source: what was loaded (a path or a model-zoo name).
      format: "checkpoint", "frozen", "saved_model", "onnx" or "tflite".
      has_probabilities: False for label-only models (the original's frozen graphs before
        2019, TFLite models with an integer output); they give `labels` only.
      num_classes: classes of the model's output; None when unknown (a foreign model).
      output_stride: the backbone's output stride it runs at; None when unknown.
      crop_size: (height, width) the model runs at (images padded to it, larger ones fitted
        into it), or None when it runs every image whole at its own size.
      dataset, dataset_dir: what names its classes (see `class_names`).

    `__call__(images)`: images [B, H, W, 3], raw pixels 0..255 (uint8 or float) -> float32
    probabilities [B, H, W, C] at the input size. `labels(images)` -> int32 [B, H, W].
    """

    format = ""
    has_probabilities = True

    def __init__(self, source: str):
        self.source = source
        self.num_classes: int | None = None
        self.output_stride: int | None = None
        self.crop_size: tuple[int, int] | None = None
        self.dataset: str | None = None
        self.dataset_dir: str | None = None
        self.given_class_names: tuple[str, ...] | None = None

    @property
    def path(self) -> str:
        return self.source

    def __call__(self, images) -> np.ndarray:
        """float32 [B, H, W, C]; a label-only model raises ValueError (use `labels`)."""
        if not self.has_probabilities:
            raise ValueError(f"{self.source}: this model gives labels only (no probabilities "
                             "output); use its labels")
        return np.concatenate([self._run(image[None]) for image in self._batch(images)])

    def labels(self, images) -> np.ndarray:
        """int32 [B, H, W]: the argmax of the probabilities (a label-only model's own)."""
        return self(images).argmax(axis=-1).astype(np.int32)

    def bands(self, image) -> Iterator[tuple[int, np.ndarray | None, np.ndarray]]:
        """image [1, H, W, 3] -> (first row, probabilities float32 [rows, W, C] or None for a
        label-only model, labels [rows, W]) covering the image top to bottom. One band here;
        models that bound memory by windows give several."""
        if not self.has_probabilities:
            yield 0, None, self.labels(image)[0]
            return
        probabilities = self(image)[0]
        yield 0, probabilities, probabilities.argmax(-1).astype(np.int32)

    def one_hot(self, images, num_classes: int) -> np.ndarray:
        """float32 [B, H, W, num_classes]: the labels as one-hot "probabilities", for code
        that takes probabilities (evaluation) when the model gives labels only."""
        labels = self.labels(images)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{self.source}: predicts class {labels.max()}, outside the "
                             f"{num_classes} classes of the dataset")
        return np.eye(num_classes, dtype=np.float32)[labels]

    def configured(self, inference) -> SegmentationModel:
        """This model predicting with `inference` (a deeplab.model.predict.InferenceOptions:
        scales, flip, windows). An exported model has its scales and flip baked in: only the
        defaults are accepted (ValueError otherwise)."""
        if inference.scales != (1.0,) or inference.flip or inference.window is not None:
            raise ValueError(f"{self.source}: an exported model has its scales and flip baked "
                             "in at export; predict without scales, flip or windows (export "
                             "again with them: export_model.py --inference_scales, "
                             "--add_flipped_images)")
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        """One name per class (given, the run's dataset.json, or the registered dataset);
        () when unknown or not num_classes of them."""
        if self.given_class_names is not None:
            return self.given_class_names
        return self._classes()[0]

    @property
    def colormap(self) -> np.ndarray:
        """uint8 [N, 3] RGB colour per class (the dataset's palette; pascal when unknown)."""
        return self._classes()[1]

    def name_classes(self, dataset: str | None = None, class_names=None) -> None:
        """Names the classes by a registered `dataset` and/or explicit `class_names` (one
        per class; ValueError when the count differs from num_classes)."""
        if dataset:
            self.dataset, self.dataset_dir = dataset, None
        if class_names is not None:
            names = tuple(str(n) for n in class_names)
            if self.num_classes and len(names) != self.num_classes:
                raise ValueError(f"{self.source}: class_names has {len(names)} names for "
                                 f"{self.num_classes} classes")
            self.given_class_names = names

    def _classes(self):
        """(names, colour map), read once per (dataset, dataset_dir, num_classes)."""
        from deeplab.inference.class_names import class_names_and_colormap

        key = (self.dataset, self.dataset_dir, self.num_classes)
        cached = self.__dict__.get("_classes_of")
        if cached is None or cached[0] != key:
            self._classes_of = (key, class_names_and_colormap(*key))
        return self._classes_of[1]

    def describe(self) -> str:
        """One line: source, format, output stride, crop, classes."""
        parts = [self.format]
        if self.output_stride:
            parts.append(f"output stride {self.output_stride}")
        parts.append(f"crop {self.crop_size[0]}x{self.crop_size[1]}" if self.crop_size
                     else "any image size")
        if self.num_classes:
            parts.append(f"{self.num_classes} classes")
        if not self.has_probabilities:
            parts.append("labels only")
        return f"{self.source} ({', '.join(parts)})"

    def _batch(self, images) -> np.ndarray:
        """The images as an array [B, H, W, 3] (the model's input type decides rounding)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [batch, height, width, 3], got "
                             f"{list(images.shape)}")
        return images

    def _run(self, image: np.ndarray) -> np.ndarray:
        """[1, H, W, 3] -> float32 [1, H, W, C]."""
        raise NotImplementedError

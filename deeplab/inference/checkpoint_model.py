"""Our Keras network (from a checkpoint, a zoo entry or in memory) as a `SegmentationModel`."""

from __future__ import annotations

import numpy as np

from deeplab.inference.segmentation_model import SegmentationModel


class CheckpointModel(SegmentationModel):
    """The network `keras_model` built from `options` (deeplab.model.options.ModelOptions),
    predicting as the original's evaluation: `inference` (InferenceOptions) sets scales,
    flip and windows; images larger than its max_pixels run as windows, in bands.

    crop_size (height, width): instead pad each image bottom/right with the mean pixel to the
    crop (shrinking larger ones to fit), exactly as export_model.py's graphs at that crop.
    `keras_model`, `options`, `inference`, `checkpoint` (the path it was filled from).
    """

    format = "checkpoint"

    def __init__(self, keras_model, options, inference=None, crop_size=None,
                 source: str = "", checkpoint: str | None = None):
        from deeplab.model.predict import InferenceOptions

        super().__init__(source or checkpoint or options.model_variant)
        self.keras_model, self.options, self.checkpoint = keras_model, options, checkpoint
        self.inference = inference or InferenceOptions()
        self.num_classes, self.output_stride = options.num_classes, options.output_stride
        self.crop_size = tuple(crop_size) if crop_size else None
        self._predictor = None
        self._family = {self.inference: self}  # every configuration of this network

    def configured(self, inference) -> CheckpointModel:
        """This network predicting with `inference`; the same class naming and weights."""
        if inference not in self._family:
            other = CheckpointModel(self.keras_model, self.options, inference, self.crop_size,
                                    self.source, self.checkpoint)
            other.dataset, other.dataset_dir = self.dataset, self.dataset_dir
            other.given_class_names, other._family = self.given_class_names, self._family
            self._family[inference] = other
        return self._family[inference]

    def refresh(self) -> None:
        """Takes the network's current weights (after training it or restoring into it)."""
        for member in self._family.values():
            if member._predictor is not None:
                member._predictor.refresh()

    def __call__(self, images) -> np.ndarray:
        """float32 [B, H, W, C] for images [B, H, W, 3] of one size, run as one batch."""
        return np.concatenate([band for _, band in self._runner()(self._batch(images))],
                              axis=1)

    def labels(self, images) -> np.ndarray:
        """int32 [B, H, W], band by band (never the whole probabilities of a large image)."""
        return np.concatenate([band.argmax(-1).astype(np.int32) for _, band in
                               self._runner()(self._batch(images))], axis=1)

    def bands(self, image):
        for y0, band in self._runner()(image):
            yield y0, band[0].copy(), band[0].argmax(-1).astype(np.int32)

    def _runner(self):
        """images [B, H, W, 3] -> iterator of (y0, float32 numpy [B, rows, W, C]); a band
        may be a view into a reused buffer, valid until the next one."""
        if self._predictor is None:
            self._predictor = (self._padded_runner() if self.crop_size
                               else _BandRunner(self._new_predictor()))
        return self._predictor

    def _new_predictor(self):
        from deeplab.model.predict import Predictor

        return Predictor(self.keras_model, self.options, self.inference)

    def _padded_runner(self):
        import tensorflow as tf

        from deeplab.export.contract import ExportOptions, export_probabilities

        if self.inference.window is not None:
            raise ValueError("a crop size and sliding windows exclude each other")
        export = ExportOptions(crop_size=self.crop_size, scales=self.inference.scales,
                               flip=self.inference.flip)
        run = tf.function(lambda images: export_probabilities(self.keras_model, self.options,
                                                              export, images),
                          reduce_retracing=True)
        return _PaddedRunner(run)


class _BandRunner:
    """Predictor.bands as a callable; refresh() re-folds the weights."""

    def __init__(self, predictor):
        self.predictor = predictor

    def __call__(self, images):
        return self.predictor.bands(images)

    def refresh(self) -> None:
        self.predictor.refresh()


class _PaddedRunner:
    """The export contract's padded computation (on the live weights: nothing to refresh)."""

    def __init__(self, run):
        self.run = run

    def __call__(self, images):
        import tensorflow as tf

        yield 0, self.run(tf.constant(images)).numpy()

    def refresh(self) -> None:
        pass

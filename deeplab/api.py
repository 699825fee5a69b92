"""The Python API: one call from a name, a training run or an exported model to labels.

    import deeplab
    model = deeplab.load("xception65_coco_voc_trainaug")   # a model-zoo name (fetched once)
    model = deeplab.load("runs/voc")                        # a training run / checkpoint
    model = deeplab.load("exported/model.onnx")             # anything export_model.py wrote
    labels = model.predict(image)                           # [H, W, 3] -> int32 [H, W]
    probabilities = model.predict_proba(images, scales=(0.75, 1.0, 1.25), flip=True)

Images are raw pixels 0..255, uint8 or float: one [H, W, 3], a batch [B, H, W, 3], an image
file (EXIF orientation applied), a directory of images, a PIL image, or a list of any of these
(sizes may differ: the results are then a list). `colorize(labels)` and `overlay(image,
labels)` draw labels with the model's colour map (`class_names` name its classes).
`keras_model` is the plain Keras network (raw pixels in, logits at the
decoder's stride out) for `fit` and `save`; `export(...)` writes deployable formats.
Prediction runs with every BatchNorm folded into the weights once; the first predict after
`keras_model` was read folds them again, so it sees what `fit` changed (a reference to the
network kept from before the previous predict: call `refresh()` after changing it).
"""

from __future__ import annotations

import os

import numpy as np

# Attributes of the SegmentationModel a Segmenter wraps, read and set through it.
_SHARED = frozenset({"source", "format", "num_classes", "output_stride", "crop_size", "dataset",
                     "dataset_dir", "class_names", "colormap", "has_probabilities"})


class Segmenter:
    """A loaded DeepLab model; see the module docstring. It wraps a
    `deeplab.inference.SegmentationModel` (`model`), whatever its source.

    Attributes: source (what was loaded), model (the SegmentationModel), options
    (ModelOptions, None for exported models), keras_model (None for exported models), format,
    dataset (descriptor name or None), dataset_dir (the training run's shards, whose
    dataset.json names a custom dataset's classes), class_names (tuple, one per class, ()
    when unknown), colormap (uint8 [N, 3] RGB), num_classes, output_stride, crop_size.
    """

    def __init__(self, model):
        self.model = model
        self._refold = False  # keras_model was handed out: its weights may have changed

    def __repr__(self) -> str:
        return f"Segmenter({self.model.describe()})"

    def __getattr__(self, name: str):
        if name in _SHARED:  # the protocol's attributes: read from, and set on, the model
            return getattr(self.__dict__["model"], name)
        raise AttributeError(f"'Segmenter' object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name in _SHARED:
            setattr(self.model, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def options(self):
        return getattr(self.model, "options", None)

    @property
    def checkpoint(self):
        return getattr(self.model, "checkpoint", None)

    @property
    def keras_model(self):
        self._refold = True
        return getattr(self.model, "keras_model", None)

    def refresh(self) -> None:
        """Folds the network's current weights for prediction (after changing them)."""
        if hasattr(self.model, "refresh"):
            self.model.refresh()
        self._refold = False

    def _configured(self, scales, flip, window, window_stride):
        from deeplab.model.predict import InferenceOptions

        if self._refold:
            self.refresh()
        return self.model.configured(InferenceOptions(
            scales=tuple(scales), flip=flip, window=window, window_stride=window_stride))

    def predict_proba(self, images, scales=(1.0,), flip: bool = False, window=None,
                      window_stride=None):
        """float32 class probabilities [B, H, W, C] ([H, W, C] for one image; a list when
        the images differ in size): the mean softmax over `scales` and flips (window:
        sliding (h, w) windows, as eval.py). `images`: see `images_of`. A label-only model
        (the original's frozen graphs before 2019) raises ValueError: use `predict`."""
        model = self._configured(scales, flip, window, window_stride)
        if not model.has_probabilities:
            raise ValueError(f"{self.source}: this model gives labels only (no "
                             "SemanticProbabilities output); call predict() for labels")
        batch, single = images_of(images)
        return _stacked([model(image[None])[0] for image in batch], single)

    def predict(self, images, scales=(1.0,), flip: bool = False, window=None,
                window_stride=None):
        """int32 labels [B, H, W] ([H, W] for one image; a list when the images differ in
        size): the argmax of predict_proba, or a label-only model's own labels."""
        model = self._configured(scales, flip, window, window_stride)
        batch, single = images_of(images)
        return _stacked([model.labels(image[None])[0] for image in batch], single)

    def colorize(self, labels) -> np.ndarray:
        """uint8 [..., 3] RGB: each label's colour in `colormap` (labels: integer [H, W] or
        [B, H, W]). ValueError for labels outside the colour map."""
        from deeplab.vis.colormap import colorize

        return colorize(labels, self.colormap)

    def overlay(self, image, labels, alpha: float = 0.5) -> np.ndarray:
        """uint8 [H, W, 3]: `image` (anything `images_of` reads, one image) blended with the
        coloured `labels` [H, W], weight `alpha` on the colours."""
        from deeplab.vis.colormap import overlay

        batch, _ = images_of(image)
        if len(batch) != 1:
            raise ValueError(f"overlay takes one image, got {len(batch)}")
        pixels = np.clip(np.rint(batch[0]), 0, 255).astype(np.uint8)
        return overlay(pixels, labels, self.colormap, alpha)

    def export(self, path: str, formats=("frozen",), crop_size=(513, 513), scales=(1.0,),
               flip: bool = False, overwrite: bool = False, output_stride: int | None = None,
               log=print, **kwargs) -> dict:
        """Writes `formats` (frozen, saved_model, onnx, tflite or all) into the directory
        `path`, each checked against the Keras model; returns the verification figures.

        output_stride: None (default) exports at the stride the model runs at here (its
        options'; export_model.py instead defaults to 8, the original's export default);
        another value rebuilds the network at that stride with its atrous rates scaled (the
        same weights). The last line logged states what was exported.
        """
        from deeplab.export import exporter
        from deeplab.export.contract import ExportModule, ExportOptions

        if self.options is None:
            raise ValueError(f"{self.source}: already an exported model")
        model, options = self.model.keras_model, self.options
        if output_stride and output_stride != options.output_stride:
            model, options = _at_output_stride(model, options, output_stride)
        module = ExportModule(model, options,
                              ExportOptions(crop_size=crop_size, scales=scales, flip=flip))
        figures = exporter.export(module, path, formats, overwrite=overwrite, log=log,
                                  info={"checkpoint": self.checkpoint or self.source}, **kwargs)
        log(f"exported to {path}: {options.model_variant}, "
            f"{exporter.stride_summary(options.output_stride, self.options.output_stride)}, "
            f"crop {list(crop_size)}")
        return figures


def _at_output_stride(model, options, output_stride: int):
    """(network, options) at `output_stride`: atrous rates scaled by old/new stride, the
    weights of `model` copied (atrous convolutions share their variables across strides)."""
    from deeplab.model.backbones import get_backbone
    from deeplab.model.deeplab import build_model

    if not get_backbone(options.model_variant).atrous:
        raise ValueError(f"{options.model_variant}: its output stride selects another network "
                         "(NAS); export it at its trained stride")
    factor = options.output_stride / output_stride
    rates = tuple(int(round(r * factor)) for r in options.atrous_rates or ())
    new_options = options.replace(output_stride=output_stride, atrous_rates=rates)
    rebuilt = build_model(new_options)
    rebuilt.set_weights(model.get_weights())
    return rebuilt, new_options


def images_of(images) -> tuple[list[np.ndarray], bool]:
    """([H, W, 3] float32 or uint8 raw pixels per image, whether one image was given).

    `images`: an image file (PNG/JPEG, EXIF orientation applied, or .npy), a directory (its
    images, sorted by name), a PIL image, a numpy array [H, W, 3] or [B, H, W, 3], or a
    list/tuple of any of these (sizes may differ).
    """
    if isinstance(images, (list, tuple)):
        return [one for item in images for one in images_of(item)[0]], False
    if isinstance(images, (str, os.PathLike)):
        from deeplab.utils.image_io import image_files, load_image

        path = os.fspath(images)
        if os.path.isdir(path):
            return [load_image(p, keep_uint8=True) for p in image_files(path)], False
        return [load_image(path, keep_uint8=True)], True
    if hasattr(images, "convert") and hasattr(images, "size"):  # a PIL image
        from PIL import ImageOps

        return [np.asarray(ImageOps.exif_transpose(images).convert("RGB"))], True
    images = np.asarray(images)
    if images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"images must be [H, W, 3] or [B, H, W, 3], got {list(images.shape)}")
    if images.ndim == 3:
        return [images], True
    return list(images), False


def _stacked(arrays: list[np.ndarray], single: bool):
    """One array for one image, a batch when every array has one shape, else the list."""
    if single:
        return arrays[0]
    if len({a.shape for a in arrays}) <= 1 and arrays:
        return np.stack(arrays)
    return arrays


def load(source: str, *, output_stride: int | None = None, num_classes: int | None = None,
         options=None, verify: bool = True, dataset: str | None = None, class_names=None,
         crop_size=None, resize_to_crop: bool = True, **model_fields) -> Segmenter:
    """A Segmenter for `source`: a model-zoo name (downloaded, verified and cached on first
    use; see `python -m deeplab.zoo list`), a checkpoint (training logdir, directory or
    prefix, ours or the original's), or an exported model (.pb, SavedModel, .onnx, .tflite,
    or an export directory holding one).

    output_stride / model_fields: override the saved or registry model options (atrous rates
    follow the output stride for zoo names). options: a complete ModelOptions instead.
    verify: check a zoo checkpoint against its frozen graph when it is first fetched.
    dataset (a registered dataset name: its class names and colour map) and class_names
    (one name per class) name the classes when the source does not.
    crop_size (height, width) / resize_to_crop: a fixed-size frozen graph (the original's
    exports) runs at crop_size (default: the graph's own crop, else 513x513): images larger
    than the crop are resized to fit (longer side = crop) and the labels resized back to the
    image size, or with resize_to_crop=False refused. A checkpoint given crop_size pads each
    image to it as export_model.py's graphs do (same labels as its export at that crop).
    Raises ValueError subclasses naming the source and the fix.
    """
    from deeplab.inference.opening import open_model

    return Segmenter(open_model(source, output_stride=output_stride, num_classes=num_classes,
                                options=options, verify=verify, dataset=dataset,
                                class_names=class_names, crop_size=crop_size,
                                resize_to_crop=resize_to_crop, **model_fields))

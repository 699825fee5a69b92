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


class Segmenter:
    """A loaded DeepLab model; see the module docstring.

    Attributes: source (what was loaded), options (ModelOptions, None for exported models),
    keras_model (None for exported models), dataset (descriptor name or None), dataset_dir
    (the training run's shards, whose dataset.json names a custom dataset's classes),
    class_names (tuple, one per class, () when unknown), colormap (uint8 [N, 3] RGB).
    """

    def __init__(self, source: str, *, keras_model=None, options=None, exported=None,
                 dataset: str | None = None, num_classes: int | None = None):
        self.source = source
        self.checkpoint = None  # the checkpoint path a keras_model was filled from
        self._keras_model = keras_model
        self._refold = False  # keras_model was handed out: its weights may have changed
        self.options = options
        self._exported = exported
        self.dataset = dataset
        self.dataset_dir = None
        self.num_classes = num_classes or (options.num_classes if options else None)
        self._predictors = {}
        self._class_names = None  # given to load(class_names=...)

    def __repr__(self) -> str:
        kind = self._exported.format if self._exported else self.options.model_variant
        return f"Segmenter({self.source!r}, {kind}, {self.num_classes} classes)"

    @property
    def class_names(self) -> tuple[str, ...]:
        if self._class_names is not None:
            return self._class_names
        return class_names_and_colormap(self.dataset, self.dataset_dir, self.num_classes)[0]

    @property
    def colormap(self) -> np.ndarray:
        return class_names_and_colormap(self.dataset, self.dataset_dir, self.num_classes)[1]

    @property
    def keras_model(self):
        self._refold = True
        return self._keras_model

    def refresh(self) -> None:
        """Folds the network's current weights for prediction (after changing them)."""
        for predictor in self._predictors.values():
            predictor.refresh()
        self._refold = False

    def _predictor(self, scales, flip, window, window_stride):
        from deeplab.model.predict import InferenceOptions, Predictor

        if self._refold:
            self.refresh()
        inference = InferenceOptions(scales=scales, flip=flip, window=window,
                                     window_stride=window_stride)
        if inference not in self._predictors:
            self._predictors[inference] = Predictor(self._keras_model, self.options, inference)
        return self._predictors[inference]

    def predict_proba(self, images, scales=(1.0,), flip: bool = False, window=None,
                      window_stride=None):
        """float32 class probabilities [B, H, W, C] ([H, W, C] for one image; a list when
        the images differ in size): the mean softmax over `scales` and flips (window:
        sliding (h, w) windows, as eval.py). `images`: see `images_of`. A label-only model
        (the original's frozen graphs before 2019) raises ValueError: use `predict`."""
        batch, single = images_of(images)
        if self._exported is not None:
            self._check_exported(scales, flip, window)
            if not self._exported.has_probabilities:
                raise ValueError(f"{self.source}: this model gives labels only (no "
                                 "SemanticProbabilities output); call predict() for labels")
            out = [self._exported(image[None])[0] for image in batch]
        else:
            predictor = self._predictor(tuple(scales), flip, window, window_stride)
            out = [predictor.probabilities(image[None]).numpy()[0] for image in batch]
        return _stacked(out, single)

    def predict(self, images, scales=(1.0,), flip: bool = False, window=None,
                window_stride=None):
        """int32 labels [B, H, W] ([H, W] for one image; a list when the images differ in
        size): the argmax of predict_proba, or a label-only model's own labels."""
        if self._exported is not None and not self._exported.has_probabilities:
            self._check_exported(scales, flip, window)
            batch, single = images_of(images)
            return _stacked([self._exported.labels(image[None])[0] for image in batch], single)
        probabilities = self.predict_proba(images, scales, flip, window, window_stride)
        if isinstance(probabilities, list):
            return [p.argmax(-1).astype(np.int32) for p in probabilities]
        return probabilities.argmax(-1).astype(np.int32)

    def _check_exported(self, scales, flip, window) -> None:
        if tuple(scales) != (1.0,) or flip or window:
            raise ValueError(f"{self.source}: an exported model has its scales and flip "
                             "baked in at export; call predict without them")

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

        if self._keras_model is None:
            raise ValueError(f"{self.source}: already an exported model")
        model, options = self._keras_model, self.options
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


def _is_exported(path: str) -> bool:
    """True for an exported model; a folder holding a checkpoint (a training run, a zoo
    tarball's folder, which also holds a frozen graph) counts as a checkpoint."""
    from deeplab.export.loading import detect_format

    if os.path.exists(path + ".index") or (
            os.path.isdir(path) and any(f.endswith(".index") for f in os.listdir(path))):
        return False
    try:
        detect_format(path)
    except ValueError:
        return False
    return True


def _checkpoint_dataset(path: str) -> tuple[str | None, str | None]:
    """(dataset name, dataset_dir) a training run (or a zoo folder) saved beside `path`."""
    from deeplab.utils.run_options import load_run_options

    saved = load_run_options(path) or {}
    data = saved.get("data") or {}
    return data.get("dataset") or (saved.get("zoo") or {}).get("dataset"), data.get(
        "dataset_dir")


def source_dataset(path: str) -> tuple[str | None, str | None]:
    """(dataset name, dataset_dir) a model was trained on: a checkpoint's (or zoo folder's)
    saved run options, or for an exported model those of the checkpoint its
    export_info.json names; (None, None) when unknown."""
    import json

    folder = path if os.path.isdir(path) else os.path.dirname(path)
    info = os.path.join(folder, "export_info.json")
    if not os.path.isfile(info) and os.path.isfile(os.path.join(folder, "saved_model.pb")):
        info = os.path.join(os.path.dirname(os.path.normpath(folder)), "export_info.json")
    if os.path.isfile(info):
        with open(info) as f:
            checkpoint = json.load(f).get("checkpoint")
        return _checkpoint_dataset(checkpoint) if checkpoint else (None, None)
    return _checkpoint_dataset(path)


def class_names_and_colormap(dataset: str | None, dataset_dir: str | None = None,
                             num_classes: int | None = None):
    """(class names, () when unknown or not num_classes of them; colour map uint8 [N, 3]
    RGB) of a dataset: the run's dataset.json in `dataset_dir` if present, else the
    registered `dataset`; the pascal colour map when neither is known."""
    from deeplab.data.descriptors import load_descriptor
    from deeplab.vis.colormap import create_colormap, dataset_palette

    try:
        folder = dataset_dir if dataset_dir and os.path.isdir(dataset_dir) else None
        descriptor = load_descriptor(folder, dataset) if dataset or folder else None
    except ValueError:
        descriptor = None
    if descriptor is None:
        return (), create_colormap("pascal")
    names = descriptor.class_names
    if num_classes is not None and len(names) != num_classes:
        names = ()
    return tuple(names), create_colormap(dataset_palette(descriptor))


def _load_checkpoint(path: str, options, num_classes, model_fields) -> Segmenter:
    from deeplab.checkpoints.io import checkpoint_num_classes, load_model
    from deeplab.model.options import ModelOptions
    from deeplab.utils.run_options import load_model_options

    if options is None:
        saved = load_model_options(path)
        if saved is None and not model_fields:
            raise ValueError(f"{path}: no options.json beside the checkpoint; pass the model "
                             "options, e.g. deeplab.load(path, model_variant='xception_65', "
                             "atrous_rates=(6, 12, 18), decoder_output_stride=4)")
        values = saved.to_dict() if saved else {}
        values.update(model_fields)
        values["num_classes"] = num_classes or values.get("num_classes") or \
            checkpoint_num_classes(path)
        options = ModelOptions.from_dict(values)
    segmenter = Segmenter(path, keras_model=load_model(options, path), options=options)
    segmenter.dataset, segmenter.dataset_dir = _checkpoint_dataset(path)
    segmenter.checkpoint = path
    return segmenter


def _check_model_fields(fields: dict) -> None:
    """TypeError naming the accepted keywords when `fields` holds a name that is neither a
    keyword of `load` nor a ModelOptions field."""
    import dataclasses

    from deeplab.model.options import ModelOptions

    known = {f.name for f in dataclasses.fields(ModelOptions)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"deeplab.load() got unknown keyword(s) {', '.join(unknown)}; it takes "
                        "output_stride, num_classes, options, verify, dataset, class_names, "
                        "crop_size, resize_to_crop and the model options "
                        f"({', '.join(sorted(known))})")


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
    crop_size / resize_to_crop: for a fixed-size frozen graph (the original's exports; crop
    default 513x513): images larger than the crop are resized to fit (longer side = crop)
    and the labels resized back to the image size, or with resize_to_crop=False refused.
    Raises ValueError subclasses naming the source and the fix.
    """
    segmenter = _load(source, output_stride=output_stride, num_classes=num_classes,
                      options=options, verify=verify, crop_size=crop_size,
                      resize_to_crop=resize_to_crop, **model_fields)
    if dataset:
        segmenter.dataset = dataset
    if class_names is not None:
        names = tuple(str(n) for n in class_names)
        if segmenter.num_classes and len(names) != segmenter.num_classes:
            raise ValueError(f"{source}: class_names has {len(names)} names for "
                             f"{segmenter.num_classes} classes")
        segmenter._class_names = names
    return segmenter


def _load(source: str, *, output_stride: int | None = None, num_classes: int | None = None,
          options=None, verify: bool = True, crop_size=None, resize_to_crop: bool = True,
          **model_fields) -> Segmenter:
    """`load` without naming the classes."""
    from deeplab.zoo import registry

    _check_model_fields(model_fields)
    source = os.fspath(source)
    exported = not registry.is_zoo_name(source) and os.path.exists(source) and \
        _is_exported(source)
    if crop_size is not None and not exported:
        raise ValueError(f"{source}: crop_size applies to fixed-size exported graphs; a "
                         "checkpoint runs at any size")
    if registry.is_zoo_name(source):
        from deeplab.zoo.cache import ensure

        entry = registry.get_entry(source)
        if entry.kind != "segmentation":
            raise registry.ZooError(f"{source}: a {entry.backbone} backbone checkpoint (no "
                                    "segmentation head); train from it with train.py "
                                    f"--tf_initial_checkpoint={source}")
        folder = ensure(entry, verify=verify)
        if options is None:
            options = entry.model_options(output_stride, **model_fields)
            if num_classes:
                options = options.replace(num_classes=num_classes)
        segmenter = _load_checkpoint(folder, options, None, {})
        segmenter.source, segmenter.dataset = source, entry.dataset
        return segmenter
    if not os.path.exists(source) and not os.path.exists(source + ".index"):
        raise FileNotFoundError(f"{source}: no such checkpoint, exported model or model-zoo "
                                "name (python -m deeplab.zoo list)")
    if exported:
        from deeplab.export.loading import load_exported_model

        given = sorted(k for k, v in {"output_stride": output_stride, "num_classes": num_classes,
                                      "options": options, **model_fields}.items()
                       if v is not None)
        if given:
            raise ValueError(f"{source}: an exported model's network is fixed; "
                             f"{', '.join(given)} cannot change it (load the checkpoint instead)")

        segmenter = Segmenter(source, exported=load_exported_model(
            source, crop_size=crop_size, resize_to_crop=resize_to_crop))
        segmenter.dataset, segmenter.dataset_dir = source_dataset(source)
        return segmenter
    if output_stride:
        model_fields["output_stride"] = output_stride
    return _load_checkpoint(source, options, num_classes, model_fields)

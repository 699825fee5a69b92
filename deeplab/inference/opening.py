"""`open_model`: the `SegmentationModel` for a model-zoo name, a checkpoint or an exported
model, with its classes named. The one place that tells these sources apart."""

from __future__ import annotations

import os

from deeplab.inference.segmentation_model import SegmentationModel


def open_model(source, *, output_stride: int | None = None, num_classes: int | None = None,
               options=None, verify: bool = True, dataset: str | None = None,
               class_names=None, crop_size=None, resize_to_crop: bool = True, inference=None,
               **model_fields) -> SegmentationModel:
    """The model at `source`: a model-zoo name (fetched, verified and cached on first use),
    a checkpoint (training logdir, directory or prefix, ours or the original's) or an exported
    model (.pb, SavedModel, .onnx, .tflite, or an export directory: its best format).

    options (ModelOptions) / output_stride / num_classes / model_fields: the network of a
    checkpoint or zoo name (default: its saved run options or the zoo entry's).
    dataset / class_names: name the classes when the source does not.
    crop_size: checkpoints pad to it as export_model.py's graphs; fixed-size frozen graphs
    run at it (default: the graph's own, else 513x513); resize_to_crop: see
    deeplab.export.loading.CropFitted. inference: scales, flip and windows (checkpoints).
    Raises ValueError subclasses (FileNotFoundError for a missing path) naming the source.
    """
    from deeplab.zoo import registry

    _check_model_fields(model_fields)
    source = os.fspath(source)
    if registry.is_zoo_name(source):
        model = _open_zoo(source, options, output_stride, num_classes, verify, model_fields,
                          crop_size)
    elif not os.path.exists(source) and not os.path.exists(source + ".index"):
        raise FileNotFoundError(f"{source}: no such checkpoint, exported model or model-zoo "
                                "name (python -m deeplab.zoo list)")
    elif is_exported(source):
        _refuse_network_changes(source, options=options, output_stride=output_stride,
                                num_classes=num_classes, **model_fields)
        from deeplab.export.loading import load_exported_model

        model = load_exported_model(source, crop_size=crop_size, resize_to_crop=resize_to_crop)
    else:
        if output_stride:
            model_fields["output_stride"] = output_stride
        options = checkpoint_options(source, options, num_classes, model_fields)
        model = open_checkpoint(source, options, crop_size=crop_size)
    if inference is not None:
        model = model.configured(inference)
    model.name_classes(dataset, class_names)
    return model


def open_checkpoint(path: str, options, crop_size=None, source: str | None = None):
    """A CheckpointModel of `options` (ModelOptions) filled from the checkpoint `path`, its
    classes named by the run (or zoo folder) it belongs to."""
    from deeplab.checkpoints.io import load_model
    from deeplab.inference.checkpoint_model import CheckpointModel
    from deeplab.inference.class_names import checkpoint_dataset

    model = CheckpointModel(load_model(options, path), options, crop_size=crop_size,
                            source=source or path, checkpoint=path)
    model.dataset, model.dataset_dir = checkpoint_dataset(path)
    return model


def checkpoint_options(path: str, options, num_classes, model_fields: dict):
    """ModelOptions of a checkpoint: `options` if given, else its saved run options updated
    by `model_fields` (ValueError when there are none and no fields); num_classes given, else
    the saved ones, else the checkpoint's logits."""
    from deeplab.checkpoints.io import checkpoint_num_classes
    from deeplab.model.options import ModelOptions
    from deeplab.utils.run_options import load_model_options

    if options is not None:
        return options.replace(num_classes=num_classes) if num_classes else options
    saved = load_model_options(path)
    if saved is None and not model_fields:
        raise ValueError(f"{path}: no options.json beside the checkpoint; pass the model "
                         "options, e.g. deeplab.load(path, model_variant='xception_65', "
                         "atrous_rates=(6, 12, 18), decoder_output_stride=4)")
    values = saved.to_dict() if saved else {}
    values.update(model_fields)
    values["num_classes"] = num_classes or values.get("num_classes") or \
        checkpoint_num_classes(path)
    return ModelOptions.from_dict(values)


def _open_zoo(name, options, output_stride, num_classes, verify, model_fields, crop_size):
    from deeplab.zoo import registry
    from deeplab.zoo.cache import ensure

    entry = registry.get_entry(name)
    if entry.kind != "segmentation":
        raise registry.ZooError(f"{name}: a {entry.backbone} backbone checkpoint (no "
                                "segmentation head); train from it with train.py "
                                f"--tf_initial_checkpoint={name}")
    folder = ensure(entry, verify=verify)
    if options is None:
        options = entry.model_options(output_stride, **model_fields)
    if num_classes:
        options = options.replace(num_classes=num_classes)
    model = open_checkpoint(folder, options, crop_size=crop_size, source=name)
    model.dataset = entry.dataset
    return model


def is_exported(path: str) -> bool:
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


def _refuse_network_changes(source: str, **given) -> None:
    changed = sorted(k for k, v in given.items() if v is not None)
    if changed:
        raise ValueError(f"{source}: an exported model's network is fixed; "
                         f"{', '.join(changed)} cannot change it (load the checkpoint instead)")


def _check_model_fields(fields: dict) -> None:
    """TypeError naming the accepted keywords when `fields` holds a name that is neither a
    keyword of open_model nor a ModelOptions field."""
    import dataclasses
    import inspect

    from deeplab.model.options import ModelOptions

    known = {f.name for f in dataclasses.fields(ModelOptions)}
    unknown = sorted(set(fields) - known)
    if unknown:
        keywords = [p.name for p in inspect.signature(open_model).parameters.values()
                    if p.kind == p.KEYWORD_ONLY]
        raise TypeError(f"deeplab.load() got unknown keyword(s) {', '.join(unknown)}; it takes "
                        f"{', '.join(keywords)} and the model options "
                        f"({', '.join(sorted(known))})")

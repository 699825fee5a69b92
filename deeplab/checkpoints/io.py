"""Checkpoints by variable name: the original DeepLab's (TF1 model zoo) and our own.

Every model variable has one name, the original's TF1 variable name
(`xception_65/entry_flow/conv1_1/BatchNorm/gamma`, `logits/semantic/weights`, ...), derived
from the Keras layer name (see `deeplab.model.layers`) and the layer type. Our checkpoints
(`tf.train.Checkpoint`) store the model as a dict keyed by those names, so both formats are
read by one routine that matches names and shapes and reports every difference.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
import shutil

import keras
import numpy as np
import tensorflow as tf

from deeplab.model import heads
from deeplab.model.layer_walk import all_layers
from deeplab.model.layers import tf1_scope

LOGITS_WEIGHTS = "logits/semantic/weights"
LOGITS_BIASES = "logits/semantic/biases"


def last_layer_scopes(logits_only: bool) -> tuple[str, ...]:
    """The original's "last layers" (model.get_extra_layer_scopes), as the head registry
    declares them: what --initialize_last_layer=false leaves out of the restore (as scope
    prefixes) and --last_layer_gradient_multiplier scales (as substrings of the variable
    name, as the original's get_model_gradient_multipliers matches them); only the logits
    with --last_layers_contain_logits_only."""
    return heads.last_layer_scopes(logits_only)
_OURS_PREFIX = "model/"
_OURS_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Checkpoint entries that are not model weights (optimizer slots, EMA, counters).
_NOT_MODEL = re.compile(r"(^|/)(global_step|Momentum|Adam(_\d+)?|ExponentialMovingAverage"
                        r"|beta[12]_power)(/|$)")

# (Keras layer type, {Keras weight name: TF1 variable name}); subclasses (the project's
# Conv2D, BatchNormalization, ...) match their Keras base
_QUANT_RANGES = {"act_quant_min": "act_quant/min", "act_quant_max": "act_quant/max"}
_WEIGHT_NAMES = (
    # act_quant_*: quantization-aware training's activation ranges (deeplab.model.quantize)
    (keras.layers.Conv2D, {"kernel": "weights", "bias": "biases", **_QUANT_RANGES}),
    (keras.layers.DepthwiseConv2D,
     {"kernel": "depthwise_weights", "bias": "biases", **_QUANT_RANGES}),
    # NAS cells: slim.separable_conv2d keeps both kernels in one scope
    (keras.layers.SeparableConv2D, {"depthwise_kernel": "depthwise_weights",
                                    "pointwise_kernel": "pointwise_weights", "bias": "biases"}),
    (keras.layers.BatchNormalization,
     {n: n for n in ("gamma", "beta", "moving_mean", "moving_variance")}),
    (keras.layers.GroupNormalization, {"gamma": "gamma", "beta": "beta"}),
)


def _weight_names(layer) -> dict[str, str]:
    """{Keras weight name: TF1 name} for `layer`'s type; TypeError for a type without one."""
    for kind, names in _WEIGHT_NAMES:
        if isinstance(layer, kind):
            return names
    raise TypeError(f"layer {layer.name} of type {type(layer).__name__} has no TF1 naming rule")


class CheckpointError(ValueError):
    """A checkpoint that cannot be found, read, or does not fit the model."""


USE_ANOTHER = "use another checkpoint"


class DamagedCheckpointError(CheckpointError):
    """A stored tensor fails its size or checksum check (truncated or corrupted file)."""


def data_files(prefix: str) -> list[str]:
    """The checkpoint's data shards (`<prefix>.data-00000-of-00001`, ...), sorted."""
    return sorted(glob.glob(glob.escape(prefix) + ".data-*"))


def describe_failure(exc: Exception) -> str:
    """A short cause for a failed read or write of a checkpoint file ("No space left on
    device", "the data file is truncated: ...")."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Read less bytes than requested" in text:
        return "the data file is truncated: it ends before this variable's bytes"
    checksum = re.search(r"Checksum does not match.*", text)
    if checksum:
        return f"its bytes fail the stored CRC32C checksum ({checksum.group(0)})"
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text)  # TF's {{function_node ...}} prefix
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    return text.rsplit("; ", 1)[-1] if "; " in text else text


def _pretty_key(key: str) -> str:
    if key.startswith(_OURS_PREFIX) and key.endswith(_OURS_SUFFIX):
        return _unescape(key[len(_OURS_PREFIX): -len(_OURS_SUFFIX)])
    return key.replace("/.ATTRIBUTES/VARIABLE_VALUE", "")


def _open_reader(prefix: str):
    try:
        return tf.train.load_checkpoint(prefix)
    except Exception as exc:  # noqa: BLE001 - TF raises several types for a bad file
        raise CheckpointError(f"{prefix}.index: not a readable checkpoint "
                              f"({describe_failure(exc)})") from None


def read_tensor(reader, prefix: str, key: str) -> np.ndarray:
    """One stored tensor, read through TF's bundle reader, which checks its size and its
    CRC32C checksum; a failure is a CheckpointError naming the data file and the variable."""
    try:
        return reader.get_tensor(key)
    except Exception as exc:  # noqa: BLE001 - IndexError, DataLossError, OpError, ...
        files = data_files(prefix)
        where = files[0] if len(files) == 1 else f"{prefix}.data-*"
        raise DamagedCheckpointError(f"{where}: variable {_pretty_key(key)} is damaged "
                              f"({describe_failure(exc)}); {USE_ANOTHER}") from None


def verify_checkpoint(prefix: str) -> int:
    """Reads every tensor of the checkpoint (weights, optimizer slots, counters), so each is
    checked against its stored size and checksum; returns how many. CheckpointError on the
    first damaged one (naming the file and the variable) or an unreadable index."""
    reader = _open_reader(prefix)
    keys = sorted(reader.get_variable_to_shape_map())
    for key in keys:
        read_tensor(reader, prefix, key)
    return len(keys)


def partial_save_paths(prefix: str) -> list[str]:
    """Files a save of `prefix` leaves when it fails or is killed part-way: its
    `<prefix>_temp/` folder, its index and data files, the state file's temporaries."""
    folder = os.path.dirname(prefix) or "."
    found = [prefix + "_temp"] if os.path.isdir(prefix + "_temp") else []
    found += glob.glob(glob.escape(prefix) + ".index") + data_files(prefix)
    found += glob.glob(os.path.join(glob.escape(folder), "checkpoint.tmp*"))
    return sorted(found)


def remove_paths(paths) -> list[str]:
    """Removes files and folders (missing ones are fine); returns those removed."""
    removed = []
    for path in paths:
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def stale_temporaries(folder: str) -> list[str]:
    """Temporary folders and files that interrupted checkpoint saves left in `folder`:
    `*_temp/` folders of TF's sharded save and `checkpoint.tmp*` state files."""
    if not os.path.isdir(folder):
        return []
    names = os.listdir(folder)
    return sorted(os.path.join(folder, n) for n in names
                  if (n.endswith("_temp") and os.path.isdir(os.path.join(folder, n)))
                  or n.startswith("checkpoint.tmp"))


def numbered_checkpoints(folder: str, name: str) -> list[str]:
    """Prefixes `<folder>/<name>-<N>` that have an index file, oldest step first.

    The state file `checkpoint` is written after a save's index, so a run killed in between
    leaves a whole checkpoint the state file does not list; this finds it too."""
    pattern = re.compile(re.escape(name) + r"-(\d+)\.index$")
    steps = sorted(int(m.group(1)) for n in (os.listdir(folder) if os.path.isdir(folder) else [])
                   if (m := pattern.match(n)))
    return [os.path.join(folder, f"{name}-{step}") for step in steps]


def checkpoint_step(prefix: str) -> int:
    """N of a `...-N` checkpoint prefix; -1 when it has none."""
    found = re.search(r"-(\d+)$", prefix)
    return int(found.group(1)) if found else -1


def _leaf_layers(model: keras.Model):
    for layer in all_layers(model):
        if layer.weights and not getattr(layer, "layers", None):
            yield layer


def variable_map(model: keras.Model) -> dict[str, keras.Variable]:
    """{TF1 variable name: Keras variable} for every weight of `model`."""
    names = {}
    for layer in _leaf_layers(model):
        rename = _weight_names(layer)
        for weight in layer.weights:
            names[f"{tf1_scope(layer.name)}/{rename[weight.name]}"] = weight
    return names


def model_checkpoint(model: keras.Model, **extra) -> tf.train.Checkpoint:
    """A `tf.train.Checkpoint` whose `model` entry is the name -> variable dict.

    `extra` adds other trackables (optimizer, step) for training checkpoints.
    """
    named = {name: var.value for name, var in variable_map(model).items()}
    return tf.train.Checkpoint(model=named, **extra)


def resolve_checkpoint(path: str) -> str:
    """Checkpoint prefix for `path`: a prefix, or a directory holding one (newest wins)."""
    if not path:
        raise CheckpointError("no checkpoint given")
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            indexes = sorted(
                (os.path.join(path, f) for f in os.listdir(path) if f.endswith(".index")),
                key=os.path.getmtime)
            prefix = indexes[-1][: -len(".index")] if indexes else None
        if prefix is None:
            raise CheckpointError(f"{path}: directory holds no checkpoint (no *.index file)")
        return prefix
    if path.endswith(".index") or path.endswith(".data-00000-of-00001"):
        path = path.rsplit(".", 1)[0] if path.endswith(".index") else path[: -len(
            ".data-00000-of-00001")]
    if not os.path.exists(path + ".index"):
        raise CheckpointError(f"{path}: no checkpoint there ({path}.index does not exist)")
    return path


def _unescape(name: str) -> str:
    return re.sub(r"\.(S|\.)", lambda m: "/" if m.group(1) == "S" else ".", name)


def checkpoint_entries(prefix: str) -> dict[str, str]:
    """{TF1 variable name: key in the checkpoint} for every model weight stored there.

    Our format's keys `model/<escaped name>/.ATTRIBUTES/VARIABLE_VALUE` and the original's
    bare names both map to the bare name; optimizer slots and counters are left out.
    """
    shapes = _open_reader(prefix).get_variable_to_shape_map()
    entries = {}
    for key in shapes:
        if key.startswith(_OURS_PREFIX) and key.endswith(_OURS_SUFFIX):
            entries[_unescape(key[len(_OURS_PREFIX): -len(_OURS_SUFFIX)])] = key
        elif "/.ATTRIBUTES/" not in key and key != "_CHECKPOINTABLE_OBJECT_GRAPH" \
                and not _NOT_MODEL.search(key):
            entries[key] = key
    return entries


# Where a network's class count is stored: the logits layer, or (decoder_output_is_logits,
# MobileNetV3's head) the decoder's last conv.
CLASS_COUNT_BIASES = (LOGITS_BIASES, "decoder/decoder_conv0/biases")


def checkpoint_num_classes(path: str) -> int:
    """Number of classes of the checkpoint's logits layer."""
    prefix = resolve_checkpoint(path)
    entries = checkpoint_entries(prefix)
    found = [name for name in CLASS_COUNT_BIASES if name in entries]
    if not found:
        raise CheckpointError(f"{prefix}: has no {LOGITS_BIASES}, so the class count is unknown;"
                              " pass --num_classes")
    shape = _open_reader(prefix).get_variable_to_shape_map()[entries[found[0]]]
    return int(shape[0])


def _top_scopes(rows) -> set[str]:
    return {row[0].split("/", 1)[0] for row in rows}


@dataclasses.dataclass
class RestoreReport:
    """What `restore_model` did. Shapes are tuples of ints."""

    prefix: str
    loaded: list[str]
    excluded: list[str]
    missing: list[tuple[str, tuple]]  # model variables with no checkpoint entry
    unused: list[tuple[str, tuple]]  # checkpoint entries no model variable took
    mismatched: list[tuple[str, tuple, tuple]]  # name, model shape, checkpoint shape

    def summary(self, limit: int = 10) -> str:
        """Readable account; lists at most `limit` names per kind."""
        lines = [f"{self.prefix}: restored {len(self.loaded)} variables"
                 + (f", kept {len(self.excluded)} excluded ones at their initial values"
                    if self.excluded else "")]
        only_model = _top_scopes(self.missing) - _top_scopes(self.unused)
        only_checkpoint = _top_scopes(self.unused) - _top_scopes(self.missing)
        if only_model and only_checkpoint:
            lines.append(f"the model has scope(s) {', '.join(sorted(only_model))}, the "
                         f"checkpoint {', '.join(sorted(only_checkpoint))}: another backbone?")
        sections = (
            ("model variables not in the checkpoint", [f"{n} {list(s)}" for n, s in self.missing]),
            ("checkpoint variables the model does not use",
             [f"{n} {list(s)}" for n, s in self.unused]),
            ("variables whose shapes differ (model vs checkpoint)",
             [f"{n} {list(a)} vs {list(b)}" for n, a, b in self.mismatched]))
        for title, rows in sections:
            if rows:
                lines.append(f"{len(rows)} {title}:")
                lines += [f"  {row}" for row in rows[:limit]]
                if len(rows) > limit:
                    lines.append(f"  ... and {len(rows) - limit} more")
        return "\n".join(lines)


def restore_model(model: keras.Model, path: str, exclude_scopes=(), allow_missing=False,
                  allow_unused=True) -> RestoreReport:
    """Fills `model` from a checkpoint in either format, matching TF1 variable names.

    exclude_scopes: name prefixes left at their initial values (e.g. last_layer_scopes()).
    Raises CheckpointError listing every name and shape when shapes differ, when a model
    variable is missing (unless allow_missing) or a checkpoint variable is unused (unless
    allow_unused); nothing is assigned then.
    """
    prefix = resolve_checkpoint(path)
    reader = _open_reader(prefix)
    key_shapes = reader.get_variable_to_shape_map()
    entries = checkpoint_entries(prefix)
    variables = variable_map(model)

    def excluded(name):
        return any(name == s or name.startswith(s) for s in exclude_scopes)

    loaded, skipped, missing, mismatched = [], [], [], []
    for name, var in variables.items():
        if excluded(name):
            skipped.append(name)
        elif name not in entries:
            missing.append((name, tuple(var.shape)))
        elif tuple(key_shapes[entries[name]]) != tuple(var.shape):
            mismatched.append((name, tuple(var.shape), tuple(key_shapes[entries[name]])))
        else:
            loaded.append(name)
    unused = [(n, tuple(key_shapes[k])) for n, k in sorted(entries.items())
              if n not in variables and not excluded(n)]
    report = RestoreReport(prefix, loaded, skipped, missing, unused, mismatched)
    if mismatched or (missing and not allow_missing) or (unused and not allow_unused) \
            or not loaded:
        raise CheckpointError(
            f"{_class_count_note(mismatched)}checkpoint does not fit the model {model.name}"
            f" ({len(variables)} variables):\n{report.summary()}")
    # Every tensor is read (and checksummed) before any variable changes.
    values = {name: read_tensor(reader, prefix, entries[name]) for name in loaded}
    for name, value in values.items():
        variables[name].assign(np.asarray(value, dtype=variables[name].dtype))
    _warn_if_rest_damaged(reader, prefix, {entries[name] for name in loaded})
    return report


def _warn_if_rest_damaged(reader, prefix: str, read_keys: set) -> None:
    """Reads the tensors the model did not take (optimizer slots, counters) and logs a
    warning naming the first damaged one: the weights used are intact, the file is not."""
    for key in sorted(set(reader.get_variable_to_shape_map()) - read_keys):
        try:
            read_tensor(reader, prefix, key)
        except DamagedCheckpointError as exc:
            logging.warning("%s; the model's own weights are intact and were used",
                            str(exc).removesuffix(f"; {USE_ANOTHER}"))
            return


def _class_count_note(mismatched) -> str:
    """"the checkpoint's logits have 6 classes, the model 21" when the logits differ."""
    for name, model_shape, checkpoint_shape in mismatched:
        if name in (LOGITS_WEIGHTS, LOGITS_BIASES):
            return (f"the checkpoint's logits have {checkpoint_shape[-1]} classes, the model "
                    f"{model_shape[-1]} (drop --num_classes to use the checkpoint's, or leave "
                    "the logits out with --initialize_last_layer=false); ")
    return ""


def load_model(options, checkpoint: str) -> keras.Model:
    """Builds the network for `options` (ModelOptions) and fills it from `checkpoint` (ours
    or the original format); the one loader of library code and the entry points.

    Raises CheckpointError listing every mismatched name and shape.
    """
    from deeplab.model.deeplab import build_model  # noqa: PLC0415 - the model imports layers

    model = build_model(options)
    try:
        report = restore_model(model, checkpoint)
    except DamagedCheckpointError:
        raise  # names the file and the variable; the model does not matter
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}\n(the model was built for --model_variant="
                              f"{options.model_variant} with {options.num_classes} classes)") \
            from None
    logging.info(report.summary())
    return model

"""Checkpoints by variable name: the original DeepLab's (TF1 model zoo) and our own.

Every model variable has one name, the original's TF1 variable name
(`xception_65/entry_flow/conv1_1/BatchNorm/gamma`, `logits/semantic/weights`, ...), derived
from the Keras layer name (see `deeplab.model.layers`) and the layer type. Our checkpoints
(`tf.train.Checkpoint`) store the model as a dict keyed by those names, so both formats are
read by one routine that matches names and shapes and reports every difference.
"""

from __future__ import annotations

import dataclasses
import os
import re

import keras
import numpy as np
import tensorflow as tf

from deeplab.model.layers import tf1_scope

LOGITS_WEIGHTS = "logits/semantic/weights"
LOGITS_BIASES = "logits/semantic/biases"
# Scopes the original leaves out with initialize_last_layer=False.
LAST_LAYER_SCOPES = ("logits", "image_pooling", "aspp", "concat_projection", "decoder")
_OURS_PREFIX = "model/"
_OURS_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Checkpoint entries that are not model weights (optimizer slots, EMA, counters).
_NOT_MODEL = re.compile(r"(^|/)(global_step|Momentum|Adam(_\d+)?|ExponentialMovingAverage"
                        r"|beta[12]_power)(/|$)")

_WEIGHT_NAMES = {
    "Conv2D": {"kernel": "weights", "bias": "biases"},
    "DepthwiseConv2D": {"kernel": "depthwise_weights", "bias": "biases"},
    "BatchNormalization": {n: n for n in ("gamma", "beta", "moving_mean", "moving_variance")},
    "GroupNormalization": {"gamma": "gamma", "beta": "beta"},
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be found, read, or does not fit the model."""


def _leaf_layers(model: keras.Model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.weights and not getattr(layer, "layers", None):
            yield layer


def variable_map(model: keras.Model) -> dict[str, keras.Variable]:
    """{TF1 variable name: Keras variable} for every weight of `model`."""
    names = {}
    for layer in _leaf_layers(model):
        kind = type(layer).__name__
        if kind not in _WEIGHT_NAMES:
            raise TypeError(f"layer {layer.name} of type {kind} has no TF1 naming rule")
        for weight in layer.weights:
            names[f"{tf1_scope(layer.name)}/{_WEIGHT_NAMES[kind][weight.name]}"] = weight
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
    try:
        shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except Exception as exc:  # noqa: BLE001 - TF raises several types for a bad file
        raise CheckpointError(f"{prefix}: not a readable checkpoint ({exc})") from None
    entries = {}
    for key in shapes:
        if key.startswith(_OURS_PREFIX) and key.endswith(_OURS_SUFFIX):
            entries[_unescape(key[len(_OURS_PREFIX): -len(_OURS_SUFFIX)])] = key
        elif "/.ATTRIBUTES/" not in key and key != "_CHECKPOINTABLE_OBJECT_GRAPH" \
                and not _NOT_MODEL.search(key):
            entries[key] = key
    return entries


def checkpoint_num_classes(path: str) -> int:
    """Number of classes of the checkpoint's logits layer."""
    prefix = resolve_checkpoint(path)
    entries = checkpoint_entries(prefix)
    if LOGITS_BIASES not in entries:
        raise CheckpointError(f"{prefix}: has no {LOGITS_BIASES}, so the class count is unknown;"
                              " pass --num_classes")
    shape = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()[entries[LOGITS_BIASES]]
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

    exclude_scopes: name prefixes left at their initial values (e.g. LAST_LAYER_SCOPES).
    Raises CheckpointError listing every name and shape when shapes differ, when a model
    variable is missing (unless allow_missing) or a checkpoint variable is unused (unless
    allow_unused); nothing is assigned then.
    """
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
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
            f"checkpoint does not fit the model {model.name}"
            f" ({len(variables)} variables):\n{report.summary()}")
    for name in loaded:
        value = reader.get_tensor(entries[name])
        variables[name].assign(np.asarray(value, dtype=variables[name].dtype))
    return report

"""Recomputation (gradient checkpointing) of a Keras functional network in training.

    forward = recomputing(model, "blocks")   # model(x, training=...) with less memory
    logits = forward(images, training=True)

Modes (`RECOMPUTE_MODES`):
- none: `model` itself; every activation the backward pass needs is kept from the forward.
- blocks: each backbone unit (layers named `...unit_<k>...`, MobileNet's `expanded_conv_<k>`)
  runs under `tf.recompute_grad`: only its inputs are kept, and its inner activations are
  computed again, one unit at a time, in the backward pass; of Xception's middle flow
  (much work, less memory) every other unit only (see `_AT_OUTPUT_STRIDE`).
- all: every backbone unit, and every other run of layers under one top-level scope (root
  convs, ASPP, decoder, logits) too.
Layers that draw random numbers (dropout, drop path) are never recomputed: their outputs
are kept, so the backward pass sees the forward's masks.

The graph is walked in Keras' own order (`Functional._run_through_graph`); a segment is a
maximal run of consecutive layers with the same key, so a unit split by a parallel branch
becomes two segments (still correct, a little less saving).

BatchNorm: the recomputation calls the layers in training mode again, so batch statistics
are the same, but the moving statistics are updated only by the forward call
(`deeplab.model.batch_norm.moving_statistics_frozen` during the recomputation).
"""

from __future__ import annotations

import re

import keras
import tensorflow as tf

from deeplab.model.batch_norm import moving_statistics_frozen
from deeplab.train.options import RECOMPUTE_MODES

# Xception's middle flow runs at the output stride (33x33 at 513, OS16) and does most of the
# backbone's work: recomputing all of it made the bf16 step 1.28x slower (peak 2.64 GB),
# none of it 1.06x (peak 3.45 GB); `blocks` recomputes every other unit of it.
_AT_OUTPUT_STRIDE = ".middle_flow."


def _kept_at_output_stride(unit_scope: str) -> bool:
    """Whether `blocks` keeps this unit's activations: Xception's even middle-flow units."""
    return _AT_OUTPUT_STRIDE in unit_scope and int(unit_scope.rsplit("_", 1)[1]) % 2 == 0
_UNIT = re.compile(r"^(.*?(?:unit_\d+|expanded_conv(?:_\d+)?))(?:\.|$)")


def segment_key(layer_name: str, mode: str, random: bool = False) -> str | None:
    """The segment a layer (Keras name 'a.b.c') recomputes in, None to keep its outputs.

    random: the layer draws random numbers (dropout, drop path), which a recomputation
    would draw again differently; it is never recomputed.
    """
    if random:
        return None
    unit = _UNIT.match(layer_name)
    if unit and not (mode == "blocks" and _kept_at_output_stride(unit.group(1))):
        return unit.group(1)
    if mode == "all":
        return layer_name.split(".")[0]
    return None


def recomputing(model, mode: str):
    """`model` (mode none) or a function (images, training) -> model's outputs that
    recomputes the segments of `mode` in the backward pass; same values and gradients."""
    if mode not in RECOMPUTE_MODES:
        raise ValueError(f"recompute={mode!r} is not one of {RECOMPUTE_MODES}")
    if mode == "none":
        return model
    plan = _plan(model, mode)

    def forward(inputs, training=None):
        return _run(model, plan, inputs, training)

    return forward


def _nodes_in_order(model) -> list:
    """The model's layer calls in the order Keras runs them (inputs excluded)."""
    order = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        order.extend(n for n in model._nodes_by_depth[depth]
                     if n.operation is not None and not n.is_input)
    return order


def _is_random(layer) -> bool:
    from deeplab.model.nas import DropPath

    return isinstance(layer, (keras.layers.Dropout, DropPath))


def _plan(model, mode: str) -> list:
    """[(nodes, key, input ids, output ids)]: runs of consecutive nodes with one key (None:
    run as is), each with the tensors it reads from outside and those read after it."""
    runs = []
    for node in _nodes_in_order(model):
        key = segment_key(node.operation.name, mode, _is_random(node.operation))
        if runs and key is not None and runs[-1][1] == key:
            runs[-1][0].append(node)
        else:
            runs.append(([node], key))
    plan = []
    for i, (nodes, key) in enumerate(runs):
        made = {id(t) for n in nodes for t in n.outputs}
        reads = [t for n in nodes for t in n.input_tensors if id(t) not in made]
        later = {id(t) for other, _ in runs[i + 1:] for n in other for t in n.input_tensors}
        later |= {id(t) for t in model.outputs}
        inputs = list({id(t): t for t in reads})
        outputs = [id(t) for n in nodes for t in n.outputs if id(t) in later]
        plan.append((nodes, key, inputs, outputs))
    return plan


def _call(node, values: dict, training):
    """Runs one layer call with its arguments from `values` ({tensor id: value})."""
    args, kwargs = node.arguments.fill_in(values)
    layer = node.operation
    if training is not None and "training" in getattr(layer, "_call_context_args", ()):
        kwargs["training"] = training
    outputs = layer(*args, **kwargs)
    for ref, value in zip(node.outputs, tf.nest.flatten(outputs), strict=True):
        values[id(ref)] = value


def _segment(nodes, input_ids, output_ids, training):
    """A function of the segment's inputs -> its outputs under tf.recompute_grad; the second
    and later calls (the recomputation) leave BatchNorm's moving statistics alone."""
    calls = []

    def run(*inputs):
        values = dict(zip(input_ids, inputs, strict=True))
        with moving_statistics_frozen(bool(calls)):
            calls.append(None)
            for node in nodes:
                _call(node, values, training)
        return [values[i] for i in output_ids]

    return tf.recompute_grad(run)


def _run(model, plan, inputs, training):
    """The model's outputs for `inputs` [B, H, W, 3], segments recomputed in backward."""
    inputs = tf.nest.flatten(inputs)
    values = {id(ref): tf.cast(x, ref.dtype) for ref, x in zip(model.inputs, inputs,
                                                                strict=True)}
    for nodes, key, input_ids, output_ids in plan:
        if key is None or not training:
            for node in nodes:
                _call(node, values, training)
            continue
        run = _segment(nodes, input_ids, output_ids, training)
        outputs = run(*[values[i] for i in input_ids])
        values.update(zip(output_ids, outputs, strict=True))
    outputs = [values[id(ref)] for ref in model.outputs]
    return tf.nest.pack_sequence_as(model._outputs_struct, outputs)

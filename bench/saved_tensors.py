"""Where the training step's memory goes: the forward tensors its backward pass keeps.

  python bench/saved_tensors.py [--precision=fp32|bf16] [--batch_size=2] [--top=20]

Traces the real training step (`Trainer.make_step_fn`, xception65 DeepLabv3+ OS16, crop 513,
as bench/train_step.py) without running it, and lists every forward tensor that an op of the
backward pass reads (ops under `gradient_tape/` and the ops that depend on them, such as a
custom gradient's) and that depends on the batch, other than through Shape/Size (which
grappler folds for static shapes): these are the activations held from the forward pass
until the backward pass has used them, the bulk of the step's peak memory. Grouped by
"producer -> gradient consumers <- producer's input" op types, with total GB and tensor
count; tensors under 100 kB are left out.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPE_OPS = ("Shape", "ShapeN", "Size", "Rank")


def _downstream(ops, control: bool) -> set:
    """Names of `ops` and of every op that depends on one of them (data edges, and control
    edges if `control`)."""
    frontier = list(ops)
    seen = {op.name for op in frontier}
    while frontier:
        op = frontier.pop()
        successors = [c for t in op.outputs for c in t.consumers()]
        for successor in successors + (op._control_outputs if control else []):
            if successor.name not in seen:
                seen.add(successor.name)
                frontier.append(successor)
    return seen


def backward_ops(graph) -> set:
    """Names of the ops of the backward pass (and the update after it): those under
    `gradient_tape/` and every op that depends on one, such as the ops a `tf.custom_gradient`
    function builds, which are not named under the tape's scope."""
    return _downstream([op for op in graph.get_operations()
                        if op.name.startswith("gradient_tape")], control=True)


def batch_ops(graph) -> set:
    """Names of the ops whose outputs depend on the batch (`IteratorGetNext`): activations,
    as opposed to variable reads and what is computed from the weights alone."""
    return _downstream([op for op in graph.get_operations() if op.type == "IteratorGetNext"],
                       control=False)


def saved_tensors(graph, min_bytes: int = 100_000) -> tuple[dict, int]:
    """({group: [bytes, count]}, tensors of unknown shape) of the forward tensors read by
    backward ops in `graph` (see the module docstring)."""
    import numpy as np

    backward, activations = backward_ops(graph), batch_ops(graph)
    groups = collections.defaultdict(lambda: [0, 0])
    unknown = 0
    for op in graph.get_operations():
        if op.name in backward or op.name not in activations:
            continue
        for tensor in op.outputs:
            readers = {c.type for c in tensor.consumers()
                       if c.name in backward and c.type not in SHAPE_OPS}
            if not readers:
                continue
            if not tensor.shape.is_fully_defined():
                unknown += 1
                continue
            size = int(np.prod(tensor.shape.as_list())) * tensor.dtype.size
            if size < min_bytes:
                continue
            source = op.inputs[0].op.type if op.inputs else "-"
            group = groups[f"{op.type} -> {', '.join(sorted(readers))} <- {source}"]
            group[0] += size
            group[1] += 1
    return dict(groups), unknown


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    import tensorflow as tf
    from train_step import NUM_CLASSES, SIZE, _random_iterator

    from deeplab.data.pipeline import InputOptions
    from deeplab.model.options import ModelOptions
    from deeplab.train.options import TrainOptions
    from deeplab.train.trainer import DataOptions, Trainer

    options = ModelOptions(model_variant="xception_65", atrous_rates=(6, 12, 18),
                           output_stride=16, decoder_output_stride=4, num_classes=NUM_CLASSES)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with tempfile.TemporaryDirectory() as workdir:
        data = DataOptions("synthetic", workdir, "train", NUM_CLASSES, 255,
                           InputOptions(crop_size=(SIZE, SIZE)))
        train = TrainOptions(train_logdir=os.path.join(workdir, "logdir"),
                             train_batch_size=args.batch_size, precision=args.precision, seed=0)
        trainer = Trainer(options, train, data, strategy)
        graph = trainer.make_step_fn().get_concrete_function(
            _random_iterator(strategy, args.batch_size)).graph
    groups, unknown = saved_tensors(graph)
    total = sum(size for size, _ in groups.values())
    print(f"xception65 DeepLabv3+ OS16, crop {SIZE}, batch {args.batch_size}, {args.precision}: "
          f"{total / 1e9:.2f} GB of forward tensors read by the backward pass "
          f"({unknown} more of unknown shape)\n")
    print("| forward op -> gradient ops reading it <- its input | GB | tensors |")
    print("|---|---:|---:|")
    ranked = sorted(groups.items(), key=lambda item: -item[1][0])
    for name, (size, count) in ranked[:args.top]:
        print(f"| {name} | {size / 1e9:.3f} | {count} |")
    rest = ranked[args.top:]
    print(f"| ({len(rest)} other groups) | {sum(s for _, (s, _) in rest) / 1e9:.3f} | "
          f"{sum(c for _, (_, c) in rest)} |")


if __name__ == "__main__":
    main()

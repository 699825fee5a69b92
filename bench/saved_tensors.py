"""Where the training step's memory goes: the forward tensors its backward pass keeps.

  python bench/saved_tensors.py [--precision=fp32|bf16] [--batch_size=2] [--top=20]

Traces the real training step (`Trainer.make_step_fn`, xception65 DeepLabv3+ OS16, crop 513,
as bench/train_step.py) without running it, and lists every forward tensor that an op of the
gradient (names under `gradient_tape/`) reads, other than through Shape/Size (which grappler
folds for static shapes): these are the activations held from the forward pass until the
backward pass has used them, the bulk of the step's peak memory. Grouped by "producer ->
gradient consumers <- producer's input" op types, with total GB and tensor count; tensors
under 100 kB are left out. Variable reads are listed (their buffers are the variables
themselves, not extra memory).
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


def saved_tensors(graph, min_bytes: int = 100_000) -> tuple[dict, int]:
    """({group: [bytes, count]}, tensors of unknown shape) of the forward tensors read by
    gradient ops in `graph` (see the module docstring)."""
    import numpy as np

    groups = collections.defaultdict(lambda: [0, 0])
    unknown = 0
    for op in graph.get_operations():
        if op.name.startswith("gradient_tape"):
            continue
        for tensor in op.outputs:
            readers = {c.type for c in tensor.consumers()
                       if c.name.startswith("gradient_tape") and c.type not in SHAPE_OPS}
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

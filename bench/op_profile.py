"""Where the forward time goes: per-op-type time of xception65 DeepLabv3+ (OS16) at 513x513.

  python bench/op_profile.py [--graphs=keras_fp32,keras_bf16,export,export_per_call]
      [--runs=3] [--threads=2]

keras_fp32 / keras_bf16: the Keras forward that `predict` runs (`build_training_model(options,
precision)`, BatchNorm statistics calibrated on a random batch, training=False, every BatchNorm
baked into its convolution's weights once), traced to a concrete function whose variables
are then made constants, run in a TF1 Session (default grappler). keras_fp32_per_call /
keras_bf16_per_call: the same with the BatchNorm folded per call (kernel x scale computed on
every call; grappler's constant folding off so it stays per call), the forward of a model in
training. export: the frozen graph of `deeplab.export` (BatchNorm baked in at export) run as
`FrozenGraphModel` runs it (default grappler). export_per_call: the same export with the
BatchNorm folded per call (kernel x scale in the graph, as before the bake; grappler folds
only the constants under 10 MB). Each run is traced (RunOptions FULL_TRACE); per op type the
table gives the summed op time per run (ms; ops on the two inter-op threads can overlap, so
the sum can exceed the wall time), its share, and the op count. Grappler's fused ops appear
under their own names (_FusedConv2D, _FusedMatMul).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 513


def _keras_graph_def(precision: str, bake: bool):
    import tensorflow as tf
    from forward import _variants, prepared_forward
    from tensorflow.python.framework import convert_to_constants

    _, forward = prepared_forward(_variants()["xception65"], precision, bake=bake)
    function = tf.function(forward).get_concrete_function(
        tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32, name="images"))
    frozen = convert_to_constants.convert_variables_to_constants_v2(function)
    return frozen.graph.as_graph_def(), frozen.inputs[0].name, frozen.outputs[0].name, \
        "float32"


def _export_graph_def(bake: bool = True):
    from export_latency import SIZE as EXPORT_SIZE
    from export_latency import VARIANTS

    from deeplab.export.contract import ExportModule, ExportOptions
    from deeplab.export.frozen import freeze
    from deeplab.export.testing import calibrate_batch_norm
    from deeplab.model.deeplab import build_model

    options = VARIANTS["xception65"]
    model = build_model(options)
    calibrate_batch_norm(model)
    module = ExportModule(model, options, ExportOptions((EXPORT_SIZE, EXPORT_SIZE)))
    if not bake:
        module.folded = {}  # BatchNorm folded per call, as exports before the bake
    return (freeze(module).graph.as_graph_def(), "ImageTensor:0", "SemanticProbabilities:0",
            "uint8")


def profile(graph_def, input_name: str, output_name: str, dtype: str, runs: int,
            threads: int, constant_folding: bool) -> tuple[float, dict]:
    """(median wall s, {op type: [summed ms per run, count per run]}) of the graph."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import rewriter_config_pb2

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=threads)
    if not constant_folding:
        config.graph_options.rewrite_options.constant_folding = \
            rewriter_config_pb2.RewriterConfig.OFF
    image = np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(dtype)
    totals = collections.defaultdict(lambda: [0.0, 0])
    walls = []
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        session.run(output_name, {input_name: image})
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        for _ in range(runs):
            metadata = tf.compat.v1.RunMetadata()
            start = time.perf_counter()
            session.run(output_name, {input_name: image}, options=options,
                        run_metadata=metadata)
            walls.append(time.perf_counter() - start)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    label = node.timeline_label
                    op = label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else \
                        node.node_name.split(":")[0]
                    if op in ("_SOURCE", "_Arg", "_Retval", "NoOp", "Const"):
                        continue
                    totals[op][0] += node.all_end_rel_micros / 1000 / runs
                    totals[op][1] += 1 / runs
    return float(np.median(walls)), dict(totals)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", default="keras_fp32,keras_bf16,export")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=14, help="op types listed per graph")
    args = parser.parse_args(argv)
    for name in args.graphs.split(","):
        if name.startswith("export"):
            built, folding = _export_graph_def(bake=name == "export"), True
        else:
            per_call = name.endswith("_per_call")
            built, folding = _keras_graph_def(name.split("_")[1], bake=not per_call), \
                not per_call
        wall, totals = profile(*built, args.runs, args.threads, folding)
        summed = sum(ms for ms, _ in totals.values())
        print(f"\n{name}: wall {wall:.3f} s per run (median of {args.runs}), summed op time "
              f"{summed:.0f} ms, load average {os.getloadavg()[0]:.2f}\n")
        print("| op type | ms per run | share | ops |\n|---|---:|---:|---:|")
        ranked = sorted(totals.items(), key=lambda item: -item[1][0])
        for op, (ms, count) in ranked[:args.top]:
            print(f"| {op} | {ms:.1f} | {100 * ms / summed:.1f}% | {count:.0f} |")
        rest = sum(ms for _, (ms, _) in ranked[args.top:])
        print(f"| (other {len(ranked) - args.top} types) | {rest:.1f} | "
              f"{100 * rest / summed:.1f}% | |", flush=True)


if __name__ == "__main__":
    main()

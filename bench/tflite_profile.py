"""Where a TFLite model's time goes, by timing its prefixes: TFLite's Python interpreter has
no op profiler, so the model is cut after the last op of each region (the cut's last op
output made the graph output), each prefix is loaded with XNNPACK as the runtime loads the
whole model, and all prefixes are invoked round-robin for --rounds rounds. A prefix's best
time minus the previous one's is the cost of the ops in between, XNNPACK partitions included.

  python bench/tflite_profile.py MODEL.tflite [--regions=NAME,...] [--step=N] [--rounds=5]
      [--size=513] [--threads=2] [--clock=cpu|wall]

Regions (default: DeepLab's, in order: preprocess, entry_flow, middle_flow, exit_flow,
aspp|image_pooling|concat_projection, decoder, logits, then the rest = postprocessing) end
at the last op whose output tensor name contains the region's word (| separates
alternatives); --step=N cuts after every N ops instead.

--clock=cpu (default) times process CPU seconds (both threads summed), which a loaded host
disturbs less than wall time. Prints one row per region: its ops, their most frequent
kinds, milliseconds and share of the whole. bench/int8_engines.py --keep=DIR keeps the
models it measures (as_converted.tflite, model_int8.tflite) for this script.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--regions", default="preprocess,entry_flow,middle_flow,exit_flow,"
                        "aspp|image_pooling|concat_projection,decoder,logits")
    parser.add_argument("--step", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=513)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    return parser.parse_args(argv)


def _prefix(model, ops, k: int) -> bytes:
    """The flatbuffer of `model` keeping its first k ops, the k-th op's outputs as outputs."""
    from tensorflow.lite.tools import flatbuffer_utils

    subgraph = model.subgraphs[0]
    subgraph.operators, subgraph.outputs = ops[:k], list(ops[k - 1].outputs)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _cuts(tensor_names: list[str], regions: str, step: int) -> list[tuple[str, int]]:
    """[(label, k)]: prefixes of k ops, increasing, the last one the whole model."""
    count = len(tensor_names)
    if step:
        return [(f"ops {k - step}-{k - 1}", k) for k in range(step, count, step)] + \
            [("rest", count)]
    cuts, previous = [], 0
    for region in regions.split(","):
        words = region.split("|")
        last = max((i for i, name in enumerate(tensor_names) if any(w in name for w in words)),
                   default=-1)
        if last + 1 > previous:
            cuts.append((region, last + 1))
            previous = last + 1
    return [*cuts, ("rest (postprocessing)", count)] if previous < count else cuts


def _interpreter(flatbuffer: bytes, image, threads: int):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
    details = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(details["index"], image.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(details["index"], image.astype(details["dtype"]))
    interpreter.invoke()  # warm-up: XNNPACK packs weights and plans here
    return interpreter


def main(argv=None) -> None:
    args = _args(argv)
    import numpy as np
    from tensorflow.lite.tools import flatbuffer_utils

    from deeplab.export.tflite_graph import op_name

    with open(args.model, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(f.read())
    ops = list(model.subgraphs[0].operators)
    names = [op_name(model, op) for op in ops]
    tensors = model.subgraphs[0].tensors
    outputs = [tensors[op.outputs[0]].name.decode() for op in ops]
    image = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), np.uint8)
    cuts = _cuts(outputs, args.regions, args.step)
    interpreters = [_interpreter(_prefix(model, ops, k), image, args.threads) for _, k in cuts]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    best = [float("inf")] * len(cuts)
    for _ in range(args.rounds):
        for i, interpreter in enumerate(interpreters):
            start = clock()
            interpreter.invoke()
            best[i] = min(best[i], clock() - start)
    print(f"\n{args.model}: {len(ops)} ops, {args.clock} ms, best of {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| region | ops | op kinds (most frequent) | ms | share |\n|---|---|---|---|---|")
    previous, start = 0.0, 0
    for (label, k), seconds in zip(cuts, best, strict=True):
        kinds = ", ".join(f"{n} {c}" for n, c in collections.Counter(names[start:k])
                          .most_common(5))
        print(f"| {label} | {start}-{k - 1} | {kinds} | {1000 * (seconds - previous):.1f} | "
              f"{100 * (seconds - previous) / best[-1]:.0f} % |")
        previous, start = seconds, k
    print(f"| total | 0-{len(ops) - 1} | | {1000 * best[-1]:.1f} | 100 % |")


if __name__ == "__main__":
    main()

"""GFLOP/s of the matmuls a xception65 training step runs, in float32 and bfloat16.

  python bench/gemm.py [--runs=20]

A 1x1 convolution over a [B, H, W, C] batch is a [B*H*W, C] x [C, F] matmul forward, and
two more backward: dX = dY W^T and dW = X^T dY. Those are about 70 % of a training step, so
the bf16/fp32 ratio of these GEMMs bounds how much faster bf16 training can be on this CPU.
Shapes (batch 2, crop 513): the middle flow (33x33, 728 -> 728), the decoder/entry flow
(129x129, 256 -> 256) and the exit flow (33x33, 1536 -> 2048); plus the square 2048^3 matmul
that bench/forward.py prints as the compute ceiling. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (label, rows M = B*H*W, C_in, C_out)
SHAPES = [
    ("middle flow 33x33 728->728", 2 * 33 * 33, 728, 728),
    ("entry/decoder 129x129 256->256", 2 * 129 * 129, 256, 256),
    ("exit flow 33x33 1536->2048", 2 * 33 * 33, 1536, 2048),
    ("square 2048^3", 2048, 2048, 2048),
]
# name -> (left operand shape, right operand shape, transpose_a, transpose_b) from (m, c, f)
PRODUCTS = {
    "fwd X W": lambda m, c, f: ((m, c), (c, f), False, False),
    "dX = dY W^T": lambda m, c, f: ((m, f), (c, f), False, True),
    "dW = X^T dY": lambda m, c, f: ((m, c), (m, f), True, False),
}


def gemm_gflops(left_shape, right_shape, transpose_a: bool, transpose_b: bool, dtype: str,
                runs: int = 10) -> float:
    """Median GFLOP/s of tf.linalg.matmul on random operands of the given shapes."""
    import numpy as np
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_uniform(left_shape, (0, 0)), dtype)
    b = tf.cast(tf.random.stateless_uniform(right_shape, (0, 1)), dtype)
    fn = tf.function(lambda x, y: tf.linalg.matmul(x, y, transpose_a=transpose_a,
                                                   transpose_b=transpose_b))
    out = fn(a, b)
    out.numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(a, b).numpy()
        times.append(time.perf_counter() - start)
    inner = left_shape[0] if transpose_a else left_shape[1]
    return 2 * out.shape[0] * out.shape[1] * inner / float(np.median(times)) / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per cell")
    args = parser.parse_args(argv)
    print(f"GEMM GFLOP/s (median of {args.runs}), {os.cpu_count()} CPUs, TF default threads\n")
    print("| shape | product | fp32 | bf16 | bf16 / fp32 |")
    print("|---|---|---:|---:|---:|")
    for label, m, c, f in SHAPES:
        for product, operands in PRODUCTS.items():
            fp32, bf16 = (gemm_gflops(*operands(m, c, f), dtype, args.runs)
                          for dtype in ("float32", "bfloat16"))
            print(f"| {label} | {product} | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()

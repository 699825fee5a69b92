"""Forward time, batch 1, of each network at its model-zoo evaluation size, with multiply-adds.

  python bench/forward.py [--models=xception65,mobilenet_v2|all] [--precisions=fp32,bf16]
      [--compile=graph[,xla]] [--runs=10] [--warmup=3]

Each model is built with `deeplab.train.trainer.build_training_model(options, precision)`
(fp32: float32 policy; bf16: mixed_bfloat16, logits in float32) and called with
training=False, BatchNorm baked into the convolutions once as `Predictor` runs it
(`deeplab.model.predict.inference_function`), inside tf.function(jit_compile=False)
("graph") and, with --compile=graph,xla, tf.function(jit_compile=True) ("xla") as extra
rows. Weights are random, BatchNorm statistics calibrated on one random batch
(`deeplab.export.testing.calibrate_batch_norm`): a fresh network's statistics fold into
all-zero biases, which grappler deletes, and without its BiasAdd a MatMul + BiasAdd + Relu
is no longer fused, so the forward of an untrained network runs ~80 unfused ReLUs that a
trained one does not. After the warm-up calls (the first one traces and compiles) each timed run
feeds the same random float32 image and fetches the logits to numpy. GFLOP/s = 2 * MACs /
median s, with MACs counted by `count_macs` (Conv2D and DepthwiseConv2D only) at the variant's
size (513x513; the Cityscapes networks at 1025x2049, next to model_zoo.md's published
figures). Threads: TF default. Prints the versions, whether oneDNN is on, and a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 513
# The figure for the original's xception65 DeepLabv3+ at 513x513.
XCEPTION65_REFERENCE_GMACS = 54.99
COMPILES = {"graph": False, "xla": True}


@dataclasses.dataclass(frozen=True)
class Variant:
    """A benchmarked network: its options, the input (height, width) it runs at (the model
    zoo's evaluation size) and the zoo's published multiply-adds there (G), if any."""

    options: object
    size: tuple[int, int] = (SIZE, SIZE)
    published_gmacs: float | None = None


def _variants() -> dict[str, Variant]:
    """The networks; the zoo's Cityscapes ones take their options from the model-zoo
    registry (`deeplab/zoo/model_zoo.json`)."""
    from deeplab.model.options import ModelOptions
    from deeplab.zoo.registry import get_entry

    cityscapes = (1025, 2049)

    def zoo(name):
        return get_entry(name).model_options()

    return {
        "xception65": Variant(ModelOptions(model_variant="xception_65", atrous_rates=(6, 12, 18),
                                           output_stride=16, decoder_output_stride=4,
                                           num_classes=21),
                              published_gmacs=XCEPTION65_REFERENCE_GMACS),
        "mobilenet_v2": Variant(ModelOptions(model_variant="mobilenet_v2", num_classes=21)),
        "mobilenet_v3_large": Variant(zoo("mobilenetv3_large_cityscapes_trainfine"),
                                      cityscapes, 15.95),
        "mobilenet_v3_small": Variant(zoo("mobilenetv3_small_cityscapes_trainfine"),
                                      cityscapes, 4.63),
        "xception71_dpc": Variant(zoo("xception71_dpc_cityscapes_trainfine"), cityscapes, 502.07),
        "mobilenet_edgetpu": Variant(zoo("EdgeTPU-DeepLab"), (513, 513)),
        "mobilenet_edgetpu_slim": Variant(zoo("EdgeTPU-DeepLab-slim"), (513, 513)),
    }


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="xception65,mobilenet_v2",
                        help="comma-separated, or all: " + ", ".join(_variants()))
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--compile", default="graph",
                        help="comma-separated: graph (jit_compile=False), xla (jit_compile=True;"
                        " ~10x slower on this CPU, adds minutes)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (>= 1)")
    return parser.parse_args(argv)


def count_macs(model, input_hw) -> int:
    """Multiply-adds of the Conv2D and DepthwiseConv2D layers of `model` for one image.

    Per layer: output H * W * kernel_h * kernel_w * C_in * C_out / groups (a depthwise conv
    has C_out = C_in * multiplier and groups = C_in). Output sizes come from symbolic shape
    inference at input_hw = (height, width), batch 1. Dilation does not change the count.
    Biases, normalisation, activations, pooling and resizes are not counted.
    """
    import keras

    from deeplab.model.layer_walk import all_layers

    convs = [layer for layer in all_layers(model)
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    specs = probe.compute_output_spec(keras.KerasTensor((1, *input_hw, 3), dtype="float32"))
    total = 0
    for layer, spec in zip(convs, specs, strict=True):
        _, height, width, _ = spec.shape
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1]
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            per_position = kh * kw * c_in * layer.depth_multiplier
        else:
            per_position = kh * kw * c_in * layer.filters // layer.groups
        total += height * width * per_position
    return int(total)


def _time(fn, image, warmup: int, runs: int, all_times: bool = False) -> tuple:
    """(first call s, median s, min s[, every timed run s]) of fn(image).numpy()."""
    import numpy as np

    start = time.perf_counter()
    fn(image).numpy()
    first = time.perf_counter() - start
    for _ in range(max(0, warmup - 1)):
        fn(image).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(image).numpy()
        times.append(time.perf_counter() - start)
    result = first, float(np.median(times)), float(np.min(times))
    return (*result, times) if all_times else result


def matmul_gflops(dtype: str, n: int = 2048, runs: int = 10) -> float:
    """Median GFLOP/s of an n x n x n tf.linalg.matmul: a rough compute ceiling."""
    from gemm import gemm_gflops

    return gemm_gflops((n, n), (n, n), False, False, dtype, runs)


def time_forward(name: str, precision: str, runs: int, warmup: int,
                 compile_name: str = "graph") -> dict:
    """One configuration in this process: {first, median, min (s), times, macs} of
    `name`'s forward at its size, batch 1 (see the module docstring)."""
    import tensorflow as tf

    variant = _variants()[name]
    model, run = prepared_forward(variant, precision)
    fn = tf.function(run, jit_compile=COMPILES[compile_name])
    first, median, best, times = _time(fn, _image(variant.size), warmup, runs, all_times=True)
    return {"first": first, "median": median, "min": best, "times": times,
            "macs": count_macs(model, variant.size)}


def prepared_forward(variant, precision: str, bake: bool = True):
    """(model, forward function images -> logits) of `variant` with BatchNorm statistics
    calibrated (non-zero folded biases, as in a trained network). bake: BatchNorm baked into
    the convolutions once, as `Predictor` runs it; else folded per call, as the forward of a
    model in training."""
    from deeplab.export.testing import calibrate_batch_norm
    from deeplab.model.predict import inference_function
    from deeplab.train.trainer import build_training_model

    model = build_training_model(variant.options, precision)
    calibrate_batch_norm(model)
    if not bake:
        return model, lambda images: model(images, training=False)
    run, _ = inference_function(model)
    return model, run


def _image(size):
    import numpy as np
    import tensorflow as tf

    return tf.constant(np.random.default_rng(0).uniform(0, 255, (1, *size, 3)), tf.float32)


def onednn_enabled() -> bool:
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def main(argv=None) -> None:
    args = _args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    variants = _variants()
    names = list(variants) if args.models == "all" else args.models.split(",")
    print(f"TF {tf.__version__}, Keras {keras.__version__}, NumPy {np.__version__}, "
          f"Python {platform.python_version()}; oneDNN {'on' if onednn_enabled() else 'off'} "
          f"(TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}); "
          f"{os.cpu_count()} CPUs ({platform.machine()}), TF default threads "
          f"(intra {tf.config.threading.get_intra_op_parallelism_threads()}, "
          f"inter {tf.config.threading.get_inter_op_parallelism_threads()}; 0 = all cores); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print("Compute ceiling (2048^3 matmul): " + ", ".join(
        f"{p} {matmul_gflops(d):.0f} GFLOP/s" for p, d in (("fp32", "float32"),
                                                         ("bf16", "bfloat16"))), flush=True)
    rows, macs = [], {}
    for name in names:
        variant = variants[name]
        image = _image(variant.size)
        for precision in args.precisions.split(","):
            model, run = prepared_forward(variant, precision)
            if name not in macs:
                macs[name] = count_macs(model, variant.size)
                print(f"{name}: {macs[name] / 1e9:.2f} G multiply-adds at "
                      f"{variant.size[0]}x{variant.size[1]} (count_macs)", flush=True)
            for compile_name in args.compile.split(","):
                fn = tf.function(run, jit_compile=COMPILES[compile_name])
                try:
                    first, median, best = _time(fn, image, args.warmup, args.runs)
                except Exception as error:  # XLA may not compile every op on CPU
                    print(f"{name} {precision} {compile_name}: failed: "
                          f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
                    continue
                rows.append((name, precision, compile_name, first, median, best,
                             2 * macs[name] / median / 1e9))
                print(f"{name:13s} {precision:5s} {compile_name:6s} first {first:7.2f} s  "
                      f"median {median:.3f} s  min {best:.3f} s", flush=True)
            del model
            keras.backend.clear_session()
    print(f"\nForward pass, batch 1, {args.runs} timed runs after {args.warmup} warm-up; "
          f"GFLOP/s = 2 x MACs / median (FLOPs = 2 x multiply-adds); "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| model | input | G multiply-adds (published) | dtype | compile | first call s | "
          "median s | min s | GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, precision, compile_name, first, median, best, gflops in rows:
        variant = variants[name]
        published = f" ({variant.published_gmacs})" if variant.published_gmacs else ""
        print(f"| {name} | {variant.size[0]}x{variant.size[1]} | {macs[name] / 1e9:.2f}"
              f"{published} | {precision} | {compile_name} | {first:.1f} | {median:.3f} | "
              f"{best:.3f} | {gflops:.1f} |")


if __name__ == "__main__":
    main()

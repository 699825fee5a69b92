"""INT8 candidates against our fp32 Keras forward, in one process, alternating: xception65
DeepLabv3+ (OS16) at 513x513, batch 1, random weights (BatchNorm calibrated).

  python bench/int8_engines.py [--threads=2] [--runs=3] [--calibration=4]

Engines: our Keras forward fp32 (the export module's tf.function), ONNX Runtime fp32 (our
`onnx` export), ONNX Runtime INT8 (that model quantised statically by
onnxruntime.quantization: QDQ, per-channel int8 weights, uint8 activations, calibrated on
--calibration random images), TFLite INT8 (our `tflite_int8` export, XNNPACK). Prints each
engine's median seconds per image, its speed-up over Keras fp32, and its label agreement
with Keras (random weights leave small label margins: agreement is low for every INT8
engine; the quick start's trained model is the accuracy check, see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

INPUT = "ImageTensor:0"


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=4)
    return parser.parse_args(argv)


def quantize_onnx(source: str, target: str, calibration) -> str:
    """Static QDQ quantisation of an ONNX export (per-channel int8 weights, uint8
    activations) calibrated on uint8 [1, H, W, 3] images; returns `target`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{INPUT: image} for image in calibration])

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(source, target, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return target


def _onnx_runner(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda image: session.run(None, {INPUT: image})[1]  # probabilities


def main(argv=None) -> None:
    args = _args(argv)
    import numpy as np
    import tensorflow as tf
    from export_latency import SIZE, export_variant, runner

    from deeplab.export import formats

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(1)
    calibration = [rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
                   for _ in range(args.calibration)]
    with tempfile.TemporaryDirectory() as workdir:
        module = export_variant("xception65", workdir, ["onnx"])
        int8 = formats.get("tflite_int8")
        tflite_path = os.path.join(workdir, int8.file_name)
        int8.write(formats.WriteSource(module, calibration=calibration), tflite_path)
        onnx_path = os.path.join(workdir, "model.onnx")
        qdq_path = quantize_onnx(onnx_path, os.path.join(workdir, "model_qdq.onnx"),
                                 calibration)
        keras_fn = tf.function(lambda x: module.outputs(x)["probabilities"])
        engines = {"Keras fp32": lambda x: keras_fn(tf.constant(x)).numpy(),
                   "ONNX Runtime fp32": _onnx_runner(onnx_path, args.threads),
                   "ONNX Runtime INT8 (QDQ)": _onnx_runner(qdq_path, args.threads),
                   "TFLite INT8 (XNNPACK)": runner(tflite_path, args.threads)}
        image = calibration[0]
        labels = {name: np.argmax(run(image), -1).ravel() for name, run in engines.items()}
        times = {name: [] for name in engines}
        for _ in range(args.runs):  # alternating engines, one timed call each per round
            for name, run in engines.items():
                start = time.perf_counter()
                run(image)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["Keras fp32"])
    print(f"\nxception65 513x513 b1, {args.threads} threads, {args.runs} alternating rounds; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| engine | s median | speed-up over Keras fp32 | labels = Keras fp32 |")
    print("|---|---|---|---|")
    for name, values in times.items():
        agree = float(np.mean(labels[name] == labels["Keras fp32"]))
        print(f"| {name} | {statistics.median(values):.3f} | "
              f"{base / statistics.median(values):.2f} | {100 * agree:.2f} % |")


if __name__ == "__main__":
    main()

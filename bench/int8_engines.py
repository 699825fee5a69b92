"""INT8 candidates against our fp32 Keras forward, in one process, alternating: xception65
DeepLabv3+ (OS16) at 513x513, batch 1, random weights (BatchNorm calibrated), or a trained
run's model (--checkpoint, e.g. the quick start's test/output/0/train_full_1p_synthetic).

  python bench/int8_engines.py [--threads=2] [--rounds=5] [--calibration=4]
      [--checkpoint=RUN_DIR [--output_stride=8]] [--size=513] [--engines=NAME,...]
      [--keep=DIR]

Engines (--engines takes their keys):
  keras        our Keras forward fp32 (the export module's tf.function), the reference;
  ort_fp32     ONNX Runtime fp32 (our `onnx` export);
  ort_qdq      ONNX Runtime INT8: that model quantised statically by onnxruntime.quantization
               (QDQ, per-channel int8 weights, uint8 activations: U8S8, VNNI);
  ort_qdq_plain  the same from the graph traced with plain convolutions (1x1 as Conv, dilated
               depthwise as one Conv; `deeplab.export.int8.plain_frozen_function`);
  tflite_as_converted  TFLite INT8 as the converter writes it from the `onnx`/`frozen`
               graph (1x1 as reshape + FULLY_CONNECTED + reshape, SpaceToBatchND around
               dilated depthwise, standalone int8 RELUs): the `tflite_int8` export before
               the fix;
  tflite_int8  our `tflite_int8` export (plain convolutions, ReLUs fused:
               `deeplab.export.tflite_graph`), run by `TfliteModel` (XNNPACK).

Models go to a temporary folder (or --keep=DIR: bench/tflite_profile.py reads them).
Calibration images are --calibration random images (the speed does not depend on them).
Prints each TFLite model's op count, standalone RELUs and XNNPACK partitions, then per engine
the median seconds per image over --rounds alternating rounds (one timed call per engine per
round after one warm-up), its speed-up over Keras fp32 of the same run, and its label
agreement with Keras (random weights leave small label margins: INT8 agreement is low there;
the trained model is the accuracy check, see bench/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
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
ENGINES = ("keras", "ort_fp32", "ort_qdq", "ort_qdq_plain", "tflite_as_converted",
           "tflite_int8")
NAMES = {"keras": "Keras fp32", "ort_fp32": "ONNX Runtime fp32",
         "ort_qdq": "ONNX Runtime INT8 (QDQ U8S8)",
         "ort_qdq_plain": "ONNX Runtime INT8 (QDQ U8S8, plain convolutions)",
         "tflite_as_converted": "TFLite INT8 as converted (before)",
         "tflite_int8": "TFLite INT8 (`tflite_int8` export, XNNPACK)"}


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calibration", type=int, default=4)
    parser.add_argument("--checkpoint", default=None,
                        help="a training run (its options.json) instead of random xception65")
    parser.add_argument("--output_stride", type=int, default=None,
                        help="with --checkpoint: export at this stride (export_model.py's "
                        "default is 8) instead of the run's; networks without atrous rates")
    parser.add_argument("--size", type=int, default=513, help="export crop and image size")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--keep", default=None,
                        help="write the models here (kept) instead of a temporary folder")
    args = parser.parse_args(argv)
    args.engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown or "keras" not in args.engines:
        parser.error(f"--engines: unknown {unknown} or no keras; choose from {ENGINES}")
    return args


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


def tflite_summary(path: str, threads: int) -> str:
    """'N ops (RELU r), P XNNPACK partitions' of a TFLite model: partitions are the DELEGATE
    nodes the interpreter adds once XNNPACK has taken what it runs."""
    import collections

    import numpy as np
    from export_latency import runner

    from deeplab.export import tflite_graph

    with open(path, "rb") as f:
        counts = tflite_graph.op_counts(f.read())
    model = runner(path, threads)
    model(np.zeros((1, 33, 33, 3), np.uint8))  # allocates, applies the delegate
    ops = collections.Counter(op["op_name"] for op in model._interpreter._get_ops_details())
    return (f"{sum(counts.values())} ops ({counts['RELU'] + counts['RELU6']} standalone "
            f"RELU/RELU6), {ops['DELEGATE']} XNNPACK partitions")


def _module(args):
    """(ExportModule, label) of the model to measure."""
    from export_latency import VARIANTS

    from deeplab.export.contract import ExportModule, ExportOptions
    from deeplab.export.testing import calibrate_batch_norm
    from deeplab.model.deeplab import build_model

    crop = ExportOptions((args.size, args.size))
    if args.checkpoint:
        from deeplab import entry
        from deeplab.utils.run_options import load_model_options

        options = load_model_options(args.checkpoint)
        if options is None:
            raise SystemExit(f"{args.checkpoint}: no options.json of a training run")
        if args.output_stride:
            options = dataclasses.replace(options, output_stride=args.output_stride)
        model = entry.load_model(options, args.checkpoint)
        return ExportModule(model, options, crop), (f"{args.checkpoint} ({options.model_variant}"
                                                    f", output stride {options.output_stride})")
    options = VARIANTS["xception65"]
    model = build_model(options)
    calibrate_batch_norm(model)
    return ExportModule(model, options, crop), "xception65 (random weights)"


def _artefacts(module, engines, calibration, workdir: str) -> dict:
    """{engine: path} of the exported models the engines run. The ONNX export is verified
    as any export; the INT8 models are not (a random-weight network's INT8 labels agree
    with float on too few pixels: export would refuse them)."""
    from deeplab.export import exporter, formats, int8, onnx

    paths = {}
    if {"ort_fp32", "ort_qdq"} & set(engines):
        exporter.export(module, os.path.join(workdir, "onnx"), ["onnx"], log=lambda line: None)
        paths["ort_fp32"] = os.path.join(workdir, "onnx", onnx.FILE_NAME)
    if "ort_qdq" in engines:
        paths["ort_qdq"] = quantize_onnx(paths["ort_fp32"], os.path.join(workdir, "qdq.onnx"),
                                         calibration)
    if "ort_qdq_plain" in engines:
        plain = onnx.write_onnx(int8.plain_frozen_function(module),
                                os.path.join(workdir, "plain.onnx"))
        paths["ort_qdq_plain"] = quantize_onnx(plain, os.path.join(workdir, "plain_qdq.onnx"),
                                               calibration)
    if "tflite_as_converted" in engines:
        source = formats.WriteSource(module, calibration=calibration)
        paths["tflite_as_converted"] = os.path.join(workdir, "as_converted.tflite")
        with open(paths["tflite_as_converted"], "wb") as f:
            f.write(int8.convert(source.frozen_function, calibration, delegable=False))
    if "tflite_int8" in engines:  # its registered writer, unverified (random weights)
        paths["tflite_int8"] = os.path.join(workdir, int8.FILE_NAME)
        formats.get("tflite_int8").write(formats.WriteSource(module, calibration=calibration),
                                         paths["tflite_int8"])
    return {name: paths[name] for name in engines if name in paths}


def main(argv=None) -> None:
    args = _args(argv)
    import numpy as np
    import tensorflow as tf
    from export_latency import runner

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(1)
    calibration = [rng.integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
                   for _ in range(args.calibration)]
    with tempfile.TemporaryDirectory() as temporary:
        workdir = args.keep or temporary
        os.makedirs(workdir, exist_ok=True)
        module, label = _module(args)
        others = [name for name in args.engines if name != "keras"]
        print(f"exporting {label}: {', '.join(others)} ...", flush=True)
        paths = _artefacts(module, args.engines, calibration, workdir)
        for name, path in paths.items():
            if path.endswith(".tflite"):
                print(f"  {NAMES[name]}: {tflite_summary(path, args.threads)}", flush=True)
        keras_fn = tf.function(lambda x: module.outputs(x)["probabilities"])
        engines = {"keras": lambda x: keras_fn(tf.constant(x)).numpy()}
        for name, path in paths.items():
            engines[name] = (runner(path, args.threads) if path.endswith(".tflite")
                             else _onnx_runner(path, args.threads))
        image = calibration[0]
        labels = {name: np.argmax(run(image), -1).ravel() for name, run in engines.items()}
        times = {name: [] for name in engines}
        for _ in range(args.rounds):  # alternating engines, one timed call each per round
            for name, run in engines.items():
                start = time.perf_counter()
                run(image)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["keras"])
    print(f"\n{label}, {args.size}x{args.size} b1, {args.threads} threads, {args.rounds} "
          f"alternating rounds; load average {os.getloadavg()[0]:.2f}\n")
    print("| engine | s median [min, max] | speed-up over Keras fp32 | labels = Keras fp32 |")
    print("|---|---|---|---|")
    for name, values in times.items():
        agree = float(np.mean(labels[name] == labels["keras"]))
        median = statistics.median(values)
        print(f"| {NAMES[name]} | {median:.3f} [{min(values):.3f}, {max(values):.3f}] | "
              f"{base / median:.2f} | {100 * agree:.2f} % |")


if __name__ == "__main__":
    main()

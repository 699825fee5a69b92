"""Latency of exported models at 513x513, batch 1: Keras (tf.function), frozen graph, ONNX
Runtime and TFLite, for xception65 (OS16, decoder) and mobilenet_v2 (OS8, the export default).

  python bench/export_latency.py [--variants=xception65,mobilenet_v2] [--repeats=10]

Weights are random (batch norm calibrated so verification compares meaningful labels); latency
does not depend on them. Every artefact goes through export's numerical verification first.
Prints a markdown table of the median and minimum milliseconds per image.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from deeplab.export import exporter  # noqa: E402
from deeplab.export.contract import ExportModule, ExportOptions  # noqa: E402
from deeplab.export.loading import load_exported_model  # noqa: E402
from deeplab.export.testing import calibrate_batch_norm  # noqa: E402
from deeplab.model.deeplab import build_model  # noqa: E402
from deeplab.model.options import ModelOptions  # noqa: E402

SIZE = 513
VARIANTS = {
    "xception65": ModelOptions(model_variant="xception_65", output_stride=16,
                               atrous_rates=(6, 12, 18), decoder_output_stride=4),
    "mobilenet_v2": ModelOptions(model_variant="mobilenet_v2", output_stride=8),
}
RUNS = (("Keras (tf.function)", None), ("frozen graph (Session)", "frozen_inference_graph.pb"),
        ("ONNX Runtime", "model.onnx"), ("TFLite float32", "model.tflite"))

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", list(VARIANTS), "Models to benchmark.")
flags.DEFINE_integer("repeats", 10, "Timed runs per model and runtime (after 2 warm-ups).")


def _time(run, image, repeats: int) -> tuple[float, float]:
    """(median, min) milliseconds of run(image) after two warm-up calls."""
    for _ in range(2):
        run(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(image)
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times)), float(np.min(times))


def export_variant(name: str, path: str, formats, calibration=None) -> ExportModule:
    """Exports `formats` of a random-weight (BatchNorm calibrated) `name` model at
    SIZE x SIZE into the directory `path` (verified as any export); returns its module."""
    options = VARIANTS[name]
    model = build_model(options)
    calibrate_batch_norm(model)
    module = ExportModule(model, options, ExportOptions((SIZE, SIZE)))
    exporter.export(module, path, formats, calibration=calibration, log=lambda line: None)
    return module


def runner(artefact: str, threads: int | None = None):
    """uint8 [1, H, W, 3] -> probabilities, for an exported artefact path."""
    kwargs = {"num_threads": threads or os.cpu_count()} if artefact.endswith(".tflite") else {}
    return load_exported_model(artefact, **kwargs)


def bench_variant(name: str, repeats: int, workdir: str) -> list[tuple]:
    """Rows (variant, runtime, median ms, min ms) for one model."""
    path = os.path.join(workdir, name)
    # No dynamic-range TFLite: with random weights xception65's quantised labels agree with
    # Keras on only ~86% of pixels, below verification's limit (small decision margins).
    module = export_variant(name, path, ["frozen", "onnx", "tflite"])
    image = np.random.default_rng(0).integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.uint8)
    keras_fn = tf.function(lambda x: module.outputs(x)["probabilities"])
    rows = []
    for runtime, artefact in RUNS:
        if artefact is None:
            run = lambda x: keras_fn(tf.constant(x)).numpy()
        else:
            run = runner(os.path.join(path, artefact))
        rows.append((name, runtime, *_time(run, image, repeats)))
        print(f"{name:13s} {runtime:24s} {rows[-1][2]:9.1f} ms", flush=True)
    return rows


def main(argv):
    del argv
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in FLAGS.variants:
            rows += bench_variant(name, FLAGS.repeats, workdir)
    print(f"\n{SIZE}x{SIZE}, batch 1, {os.cpu_count()} CPU threads, TF {tf.__version__}\n")
    print("| model | runtime | median ms | min ms |\n|---|---|---:|---:|")
    for name, runtime, median, fastest in rows:
        print(f"| {name} | {runtime} | {median:.1f} | {fastest:.1f} |")


if __name__ == "__main__":
    app.run(main)

"""Float vs post-training (PTQ) vs quantization-aware (QAT) INT8 on a dataset split.

  python bench/qat.py --float_checkpoint=test/output/0/train_full_1p_synthetic \\
      --qat_checkpoint=QAT_LOGDIR --ptq_tflite=PTQ_DIR/model_int8.tflite \\
      --qat_tflite=QAT_DIR/model_int8.tflite [--dataset=synthetic] [--split=val]

The checkpoints load with `deeplab.load` (a QAT run's saved options carry
quantize_delay_step, so its Keras model fake-quantises); the .tflite files come from
`export_model.py --format=tflite_int8` of each checkpoint. Every model labels every image of
the split (single scale; the Keras models through the export's traced function, padded to
--crop_size as the exports); the table gives the mIoU of each, the share of pixels
on which the QAT INT8 model agrees with the fake-quantised Keras model (and PTQ INT8 with
the float one), and the median forward latency per image (batch 1, 2 threads for TFLite).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import deeplab  # noqa: E402
from deeplab import entry  # noqa: E402
from deeplab.data import pipeline  # noqa: E402
from deeplab.evaluate import evaluator  # noqa: E402
from deeplab.export.contract import ExportModule, ExportOptions  # noqa: E402
from deeplab.export.runtimes import TfliteModel  # noqa: E402


def split_examples(dataset: str, split: str, model_variant: str):
    """[(uint8 [1, h, w, 3], int labels [h, w])] of the split, whole images."""
    dataset_dir = entry.resolve_dataset_dir(dataset, None)
    descriptor = entry.dataset_descriptor(dataset, dataset_dir, False)
    options = evaluator.eval_input_options(descriptor, None, model_variant)
    examples = []
    for batch in pipeline.make_dataset(dataset_dir, split, 1, options,
                                       training=False).as_numpy_iterator():
        height, width = int(batch["height"][0]), int(batch["width"][0])
        image = np.clip(np.rint(batch["image"][:1, :height, :width]), 0, 255).astype(np.uint8)
        examples.append((image, batch["label"][0, :height, :width, 0]))
    return examples, descriptor.num_classes, descriptor.ignore_label


def miou(predictions, examples, num_classes: int, ignore: int) -> float:
    """Mean IoU (%) of label maps against the examples' labels."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for labels, (_, truth) in zip(predictions, examples, strict=True):
        keep = truth != ignore
        np.add.at(confusion, (truth[keep], labels[keep]), 1)
    inter = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - inter
    return 100.0 * float(np.mean(inter[union > 0] / union[union > 0]))


def timed(fn, examples):
    """(labels per example, median ms per image)."""
    fn(examples[0][0])  # warm-up (tracing, allocation)
    labels, times = [], []
    for image, _ in examples:
        start = time.perf_counter()
        labels.append(np.asarray(fn(image)).reshape(image.shape[1:3]))
        times.append(time.perf_counter() - start)
    return labels, 1000.0 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("float_checkpoint", "qat_checkpoint", "ptq_tflite", "qat_tflite"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--split", default="val")
    parser.add_argument("--crop_size", type=int, nargs=2, default=(97, 97),
                        help="the exports' crop (export_model.py --crop_size)")
    args = parser.parse_args()
    crop = tuple(args.crop_size)
    keras_float = _keras_labels(args.float_checkpoint, crop)
    keras_qat = _keras_labels(args.qat_checkpoint, crop)
    examples, num_classes, ignore = split_examples(args.dataset, args.split,
                                                   deeplab.load(args.float_checkpoint)
                                                   .options.model_variant)
    runs = {
        "float (Keras)": keras_float,
        "QAT fake-quant (Keras)": keras_qat,
        "PTQ INT8 (TFLite)": _tflite_labels(TfliteModel(args.ptq_tflite, num_threads=2)),
        "QAT INT8 (TFLite)": _tflite_labels(TfliteModel(args.qat_tflite, num_threads=2)),
    }
    results = {name: timed(fn, examples) for name, fn in runs.items()}
    print(f"{len(examples)} images of {args.dataset}/{args.split}\n")
    print("| model | mIoU % | median ms/image |\n|---|---|---|")
    for name, (labels, ms) in results.items():
        print(f"| {name} | {miou(labels, examples, num_classes, ignore):.2f} | {ms:.2f} |")
    for int8, reference in (("QAT INT8 (TFLite)", "QAT fake-quant (Keras)"),
                            ("PTQ INT8 (TFLite)", "float (Keras)")):
        agree = np.mean([np.mean(a == b) for a, b in zip(results[int8][0],
                                                         results[reference][0], strict=True)])
        print(f"\n{int8} labels agree with {reference} on {100 * agree:.3f}% of pixels")


def _keras_labels(checkpoint: str, crop):
    """fn(uint8 [1, h, w, 3]) -> labels through the export's own traced function (same
    padding to `crop` as the .tflite files), on the checkpoint's Keras model."""
    segmenter = deeplab.load(checkpoint)
    module = ExportModule(segmenter.keras_model, segmenter.options, ExportOptions(crop))
    function = tf.function(module.outputs)
    return lambda image: function(tf.constant(image))["labels"].numpy()


def _tflite_labels(model):
    return lambda image: np.argmax(model(image), axis=-1)


if __name__ == "__main__":
    main()

"""Exports a DeepLab checkpoint (ours or the original model zoo's) for deployment.

  python export_model.py --checkpoint_path=CKPT --export_path=DIR \\
      [--format=frozen,saved_model,onnx,tflite | --format=all] [--tflite_quantize] \\
      [--format=tflite_int8 --calibration_split=train [--quantized_eval_split=val] \\
       --dataset=NAME --dataset_dir=SHARDS] \\
      [--crop_size=513,513] [--inference_scales=0.5 --inference_scales=1.0 ...] \\
      [--add_flipped_images] [model flags] [--overwrite]

Writes the directory DIR (see deeplab/export/exporter.py for its files). Every artefact takes
uint8 images of any size: an image is padded bottom/right to the crop with the mean pixel (as
the original's export), an image larger than the crop is first shrunk to fit (aspect ratio
kept) and its result resized back; outputs are at the input size. Scales and flips are baked
in. Each artefact is checked against the Keras model right after it is written; any
disagreement fails the export and leaves DIR untouched.

Model options default to those the training run saved beside the checkpoint (options.json),
except --output_stride, which defaults to 8 as in the original's export (the saved atrous
rates are rescaled to it unless --atrous_rates is given).
"""

from __future__ import annotations

import logging

from absl import flags

from deeplab import entry
from deeplab.flags import define_model_flags, pair_flag
from deeplab.utils.names_cache import cached
from deeplab.utils.run_options import load_model_options
from deeplab.zoo import flags as zoo_flags

EXPORT_OUTPUT_STRIDE = 8


def _registry_values() -> dict:
    """What the flags below show of the export modules (which import TensorFlow)."""
    from deeplab.export import exporter, formats, onnx

    return {"formats": list(formats.REGISTRY), "all": list(exporter.FORMATS),
            "opset": onnx.DEFAULT_OPSET}


_REGISTRY = cached("export_flags", _registry_values)  # without TensorFlow: --help is quick

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_path", None,
                    "Checkpoint prefix or directory (ours or the original's TF1 format).")
flags.DEFINE_string("export_path", None,
                    "Directory to create with the exported model(s); must not exist unless "
                    "--overwrite. (The original took the .pb file name.)")
flags.DEFINE_integer("num_classes", None,
                     "Number of classes; by default the saved options' or the checkpoint's "
                     "(the original defaulted to 21).")
flags.DEFINE_multi_string("crop_size", ["513", "513"],
                          "Crop height,width (--crop_size=513,513, or repeated: "
                          "--crop_size=513 --crop_size=513): inputs are padded to it; larger "
                          "inputs are shrunk to fit.")
flags.DEFINE_multi_float("inference_scales", [1.0],
                         "Scales baked into the exported model, e.g. 0.5,0.75,...,1.75 "
                         "(repeat the flag).")
flags.DEFINE_bool("add_flipped_images", False, "Bake in left-right flipped inference.")
flags.DEFINE_bool("save_inference_graph", False,
                  "Original flag (unfrozen graph); not supported: use --format=saved_model.")
flags.DEFINE_list("format", ["frozen"],
                  f"Formats to write, comma separated: {', '.join(_REGISTRY['formats'])}, or "
                  f"all ({', '.join(_REGISTRY['all'])}).")
flags.DEFINE_bool("tflite_quantize", False,
                  "With --format=tflite also write a dynamic-range quantised model.")
flags.DEFINE_integer("onnx_opset", _REGISTRY["opset"], "ONNX opset for --format=onnx.")
flags.DEFINE_string("calibration_split", None,
                    "Split whose first --calibration_num_images images calibrate the "
                    "activation ranges of --format=tflite_int8 (e.g. train).")
flags.DEFINE_integer("calibration_num_images", 32, "Images read for calibration.")
flags.DEFINE_string("quantized_eval_split", None,
                    "Split on which quantised formats' mIoU is compared with the Keras model's "
                    "at export (e.g. val); the export fails on a drop above the format's limit.")
flags.DEFINE_string("dataset", "synthetic",
                    "Built-in dataset of --dataset_dir (when it has no dataset.json).")
flags.DEFINE_string("dataset_dir", None, "TFRecord shards for --calibration_split and "
                    "--quantized_eval_split (default: the training run's, as eval.py; else "
                    "the built-in synthetic dataset).")
flags.DEFINE_bool("overwrite", False, "Replace an existing --export_path.")
define_model_flags(FLAGS)
zoo_flags.define_model_zoo_flag(FLAGS)
FLAGS.set_default("output_stride", EXPORT_OUTPUT_STRIDE)
FLAGS["output_stride"].help = (
    "Output stride of the exported network; defaults to 8 as the original's export, whatever "
    "the training run used (its atrous rates are rescaled unless --atrous_rates is given; "
    "NAS backbones keep the run's: their output stride selects the network).")
flags.declare_key_flag("output_stride")  # listed by --help, not only --helpfull
flags.declare_key_flag("atrous_rates")
flags.declare_key_flag("model_variant")


def _stride_fields(checkpoint: str) -> dict:
    """output_stride (8 unless given) and, when it changes the saved one, rescaled rates."""
    fields = {"output_stride": FLAGS.output_stride}
    from deeplab.model.backbones import get_backbone

    saved = load_model_options(checkpoint)
    if saved is not None and not FLAGS["output_stride"].present and \
            not get_backbone(saved.model_variant).atrous:
        # NAS: the output stride selects another network, not atrous rates; keep the run's.
        return {"output_stride": saved.output_stride}
    if saved is None or saved.output_stride == FLAGS.output_stride or FLAGS.atrous_rates:
        return fields
    if saved.atrous_rates:
        factor = saved.output_stride / FLAGS.output_stride
        fields["atrous_rates"] = tuple(int(round(r * factor)) for r in saved.atrous_rates)
        logging.warning("exporting at output stride %d (trained at %d): atrous rates %s -> %s",
                        FLAGS.output_stride, saved.output_stride, list(saved.atrous_rates),
                        list(fields["atrous_rates"]))
    return fields


def _validate_flags() -> None:
    if not FLAGS.checkpoint_path or not FLAGS.export_path:
        raise flags.ValidationError("--checkpoint_path and --export_path are required")
    if FLAGS.save_inference_graph:
        raise flags.ValidationError("--save_inference_graph is not supported; the SavedModel "
                                    "(--format=saved_model) holds the unfrozen graph")
    pair_flag(FLAGS, "crop_size")  # height,width or two repeated flags


def _split_input(descriptor, model_variant: str):
    from deeplab.evaluate import evaluator  # noqa: PLC0415 - only with a split

    return evaluator.eval_input_options(descriptor, None, model_variant)


def _calibration_images(dataset_dir: str, descriptor, model_variant: str) -> list:
    """The first --calibration_num_images images of --calibration_split, uint8 [1, h, w, 3]."""
    import numpy as np  # noqa: PLC0415

    from deeplab.data import pipeline  # noqa: PLC0415

    dataset = pipeline.make_dataset(dataset_dir, FLAGS.calibration_split, 1,
                                    _split_input(descriptor, model_variant), training=False)
    images = []
    for batch in dataset.take(FLAGS.calibration_num_images).as_numpy_iterator():
        height, width = int(batch["height"][0]), int(batch["width"][0])
        pixels = batch["image"][:1, :height, :width]
        images.append(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    if not images:
        raise flags.ValidationError(f"--calibration_split={FLAGS.calibration_split}: no "
                                    f"images in {dataset_dir}")
    return images


def _split_evaluator(dataset_dir: str, descriptor, model_variant: str):
    """fn(run) -> mIoU (0..1) of `run` on --quantized_eval_split."""
    from deeplab.evaluate import evaluator  # noqa: PLC0415

    def evaluate(run):
        return evaluator.run_evaluation(
            evaluator.single_image_fn(run), dataset_dir, FLAGS.quantized_eval_split,
            descriptor, _split_input(descriptor, model_variant), progress=False).result.miou

    return evaluate


def _dataset_hooks(model_variant: str) -> dict:
    """calibration images and the split evaluator export() takes, from the split flags."""
    if not (FLAGS.calibration_split or FLAGS.quantized_eval_split):
        return {}
    dataset_dir = entry.resolve_dataset_dir(FLAGS.dataset, FLAGS.dataset_dir,
                                            FLAGS.checkpoint_path)  # the run's, as eval.py
    descriptor = entry.dataset_descriptor(FLAGS.dataset, dataset_dir, bool(FLAGS.dataset_dir))
    print(f"calibration / quantised evaluation data: {dataset_dir} ({descriptor.name})")
    hooks = {}
    if FLAGS.calibration_split:
        hooks["calibration"] = _calibration_images(dataset_dir, descriptor, model_variant)
    if FLAGS.quantized_eval_split:
        hooks["evaluate"] = _split_evaluator(dataset_dir, descriptor, model_variant)
    return hooks


def main(argv):
    import tensorflow as tf

    from deeplab.export import exporter, formats
    from deeplab.export.contract import ExportModule, ExportOptions

    zoo_flags.resolve_checkpoint_flag(FLAGS, "checkpoint_path")
    _validate_flags()
    tf.get_logger().setLevel(logging.ERROR)  # converters' deprecation chatter
    names = exporter.parse_formats(FLAGS.format)
    calibrated = [name for name in names if formats.get(name).needs_calibration]
    if calibrated and not FLAGS.calibration_split:
        raise flags.ValidationError(f"--format={calibrated[0]} needs --calibration_split "
                                    "(images that set its activation ranges, e.g. train)")
    exporter.check_destination(FLAGS.export_path, FLAGS.overwrite)  # fail before loading
    crop = pair_flag(FLAGS, "crop_size")
    export = ExportOptions(crop_size=crop, scales=FLAGS.inference_scales,
                           flip=FLAGS.add_flipped_images)
    options = entry.inference_model_options(FLAGS, FLAGS.checkpoint_path, FLAGS.num_classes,
                                            **_stride_fields(FLAGS.checkpoint_path))
    entry.check_crop_size("crop_size", crop, options.output_stride)
    model = entry.load_model(options, FLAGS.checkpoint_path)
    exporter.export(ExportModule(model, options, export), FLAGS.export_path, names,
                    overwrite=FLAGS.overwrite, tflite_quantize=FLAGS.tflite_quantize,
                    onnx_opset=FLAGS.onnx_opset, info={"checkpoint": FLAGS.checkpoint_path},
                    **_dataset_hooks(options.model_variant))
    saved = load_model_options(FLAGS.checkpoint_path)
    stride = exporter.stride_summary(options.output_stride, saved and saved.output_stride)
    print(f"exported {', '.join(names)} ({options.model_variant}, {stride}, "
          f"crop {list(crop)}, scales {list(export.scales)}"
          f"{', flipped' if export.flip else ''}) to {FLAGS.export_path}")


def run() -> None:
    """Console script deeplab-export; also `python export_model.py` from a checkout."""
    entry.run(main, __doc__)


if __name__ == "__main__":
    run()

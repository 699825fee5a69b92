"""Exports a DeepLab checkpoint (ours or the original model zoo's) for deployment.

  python export_model.py --checkpoint_path=CKPT --export_path=DIR \\
      [--format=frozen,saved_model,onnx,tflite | --format=all] [--tflite_quantize] \\
      [--crop_size=513 --crop_size=513] [--inference_scales=0.5 --inference_scales=1.0 ...] \\
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

import tensorflow as tf
from absl import flags

from deeplab import entry
from deeplab.export import exporter, onnx
from deeplab.export.graph import ExportModule, ExportOptions
from deeplab.flags import define_model_flags
from deeplab.utils.run_options import load_model_options
from deeplab.zoo import flags as zoo_flags

EXPORT_OUTPUT_STRIDE = 8

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_path", None,
                    "Checkpoint prefix or directory (ours or the original's TF1 format).")
flags.DEFINE_string("export_path", None,
                    "Directory to create with the exported model(s); must not exist unless "
                    "--overwrite. (The original took the .pb file name.)")
flags.DEFINE_integer("num_classes", None,
                     "Number of classes; by default the saved options' or the checkpoint's "
                     "(the original defaulted to 21).")
flags.DEFINE_multi_integer("crop_size", [513, 513],
                           "Crop [height, width] (repeat: --crop_size=513 --crop_size=513): "
                           "inputs are padded to it; larger inputs are shrunk to fit.")
flags.DEFINE_multi_float("inference_scales", [1.0],
                         "Scales baked into the exported model, e.g. 0.5,0.75,...,1.75 "
                         "(repeat the flag).")
flags.DEFINE_bool("add_flipped_images", False, "Bake in left-right flipped inference.")
flags.DEFINE_bool("save_inference_graph", False,
                  "Original flag (unfrozen graph); not supported: use --format=saved_model.")
flags.DEFINE_list("format", ["frozen"],
                  f"Formats to write, comma separated: {', '.join(exporter.FORMATS)} or all.")
flags.DEFINE_bool("tflite_quantize", False,
                  "With --format=tflite also write a dynamic-range quantised model.")
flags.DEFINE_integer("onnx_opset", onnx.DEFAULT_OPSET, "ONNX opset for --format=onnx.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --export_path.")
define_model_flags(FLAGS)
zoo_flags.define_model_zoo_flag(FLAGS)
FLAGS.set_default("output_stride", EXPORT_OUTPUT_STRIDE)
FLAGS["output_stride"].help = (
    "Output stride of the exported network; defaults to 8 as the original's export, whatever "
    "the training run used (its atrous rates are rescaled unless --atrous_rates is given).")
flags.declare_key_flag("output_stride")  # listed by --help, not only --helpfull
flags.declare_key_flag("atrous_rates")
flags.declare_key_flag("model_variant")


def _stride_fields(checkpoint: str) -> dict:
    """output_stride (8 unless given) and, when it changes the saved one, rescaled rates."""
    fields = {"output_stride": FLAGS.output_stride}
    saved = load_model_options(checkpoint)
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
    if len(FLAGS.crop_size) != 2:
        raise flags.ValidationError(f"--crop_size={FLAGS.crop_size}: give height and width, "
                                    "as --crop_size=513 --crop_size=513")


def main(argv):
    if len(argv) > 1:
        raise flags.ValidationError(f"unexpected arguments: {' '.join(argv[1:])}")
    zoo_flags.resolve_checkpoint_flag(FLAGS, "checkpoint_path")
    _validate_flags()
    tf.get_logger().setLevel(logging.ERROR)  # converters' deprecation chatter
    formats = exporter.parse_formats(FLAGS.format)
    exporter.check_destination(FLAGS.export_path, FLAGS.overwrite)  # fail before loading
    crop = tuple(FLAGS.crop_size)
    export = ExportOptions(crop_size=crop, scales=FLAGS.inference_scales,
                           flip=FLAGS.add_flipped_images)
    options = entry.inference_model_options(FLAGS, FLAGS.checkpoint_path, FLAGS.num_classes,
                                            crop_size=crop, **_stride_fields(FLAGS.checkpoint_path))
    entry.check_crop_size("crop_size", crop, options.output_stride)
    model = entry.load_model(options, FLAGS.checkpoint_path)
    exporter.export(ExportModule(model, options, export), FLAGS.export_path, formats,
                    overwrite=FLAGS.overwrite, tflite_quantize=FLAGS.tflite_quantize,
                    onnx_opset=FLAGS.onnx_opset, info={"checkpoint": FLAGS.checkpoint_path})
    print(f"exported {', '.join(formats)} ({options.model_variant}, output stride "
          f"{options.output_stride}, crop {list(crop)}, scales {list(export.scales)}"
          f"{', flipped' if export.flip else ''}) to {FLAGS.export_path}")


if __name__ == "__main__":
    entry.run(main)

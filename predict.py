"""Segments images with a DeepLab checkpoint (ours or the original model zoo's).

  python predict.py --checkpoint=CKPT [model flags] --output_dir=OUT a.jpg b.png c.npy
  python predict.py --model=EXPORTED --output_dir=OUT a.jpg b.png c.npy

--model runs a model written by export_model.py (frozen .pb, SavedModel directory, .onnx or
.tflite) instead of a checkpoint. Its scales, flips and crop were fixed at export, so
--eval_scales, --add_flipped_images and the model flags do not apply (the first two are
rejected); inputs are rounded to uint8, the exported input type.

Writes OUT/<stem>.png (one uint8 class index per pixel) per input and, with
--save_probabilities, OUT/<stem>_probabilities.npy (float32 [H, W, classes]): the mean of the
softmax over scales and flips after upsampling to the input size.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from absl import flags

from deeplab import entry
from deeplab.export.runners import load_exported_model
from deeplab.flags import define_inference_flags, define_model_flags, inference_options_from_flags
from deeplab.model.predict import Predictor
from deeplab.utils.image_io import InputError, load_image, save_label_png
from deeplab.zoo import flags as zoo_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or a directory holding one.")
flags.DEFINE_string("model", None, "An exported model (frozen .pb, SavedModel directory, .onnx "
                    "or .tflite) to run instead of --checkpoint.")
flags.DEFINE_string("output_dir", None, "Where to write <stem>.png per input.")
flags.DEFINE_integer("num_classes", None, "Classes; by default read from the checkpoint.")
flags.DEFINE_boolean("save_probabilities", False, "Also write <stem>_probabilities.npy.")
define_model_flags(FLAGS)
zoo_flags.define_model_zoo_flag(FLAGS)
define_inference_flags(FLAGS)


def _output_stems(paths):
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise InputError(f"inputs share the output name(s) {', '.join(duplicates)}; "
                         "predict them in separate runs or rename them")
    return stems


def _probability_function():
    """images float32 [1, H, W, 3] -> float32 numpy [1, H, W, C], from --model or --checkpoint."""
    if FLAGS.model:
        if any(FLAGS[n].present for n in ("eval_scales", "add_flipped_images",
                                          "eval_window_size", "eval_window_stride")):
            raise flags.ValidationError(
                "--eval_scales, --add_flipped_images and the window flags do not apply to "
                "--model: scales and flips are baked in at export (export_model.py "
                "--inference_scales, --add_flipped_images)")
        return load_exported_model(FLAGS.model)
    options = entry.inference_model_options(FLAGS, FLAGS.checkpoint, FLAGS.num_classes)
    model = entry.load_model(options, FLAGS.checkpoint)
    predictor = Predictor(model, options, inference_options_from_flags(FLAGS))
    return lambda images: predictor.probabilities(images).numpy()


def main(argv):
    zoo_flags.resolve_checkpoint_flag(FLAGS, "checkpoint")
    inputs = argv[1:]
    if bool(FLAGS.checkpoint) == bool(FLAGS.model) or not FLAGS.output_dir:
        raise flags.ValidationError("give --output_dir and one of --checkpoint or --model")
    if not inputs:
        raise flags.ValidationError("no input files given (list them after the flags)")
    stems = _output_stems(inputs)
    missing = [path for path in inputs if not os.path.isfile(path)]
    if missing:
        raise InputError(f"no such input file(s): {', '.join(missing)}")
    probability_function = _probability_function()
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    for path, stem in zip(inputs, stems, strict=True):
        probabilities = probability_function(load_image(path)[None])[0]
        save_label_png(probabilities.argmax(-1), os.path.join(FLAGS.output_dir, f"{stem}.png"))
        if FLAGS.save_probabilities:
            np.save(os.path.join(FLAGS.output_dir, f"{stem}_probabilities.npy"),
                    probabilities.astype(np.float32))
        logging.info("%s -> %s.png", path, stem)
    print(f"wrote {len(inputs)} label map(s) to {FLAGS.output_dir}")


if __name__ == "__main__":
    entry.run(main)

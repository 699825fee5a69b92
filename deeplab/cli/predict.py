"""Segments images with a DeepLab checkpoint (ours or the original model zoo's).

  python predict.py --checkpoint=CKPT [model flags] --output_dir=OUT a.jpg b.png c.npy
  python predict.py --model=EXPORTED --output_dir=OUT a.jpg b.png c.npy

--model runs a model written by export_model.py (frozen .pb, SavedModel directory, .onnx or
.tflite) instead of a checkpoint. Its scales, flips and crop were fixed at export, so
--eval_scales, --add_flipped_images and the model flags do not apply (the first two are
rejected); inputs are rounded to uint8, the exported input type. A frozen graph of fixed
crop (the original's exports, 513x513) gets what the original's demo did: a larger image
is resized to fit (longer side = crop) and the labels resized back to the image size
(nearest); --no_resize_to_crop refuses such images instead.

Writes per input, as --output_format says: index (default) OUT/<stem>.png, one uint8 class
index per pixel (greyscale); palette OUT/<stem>.png, a P-mode PNG holding the same class ids
shown in the dataset's colours (the VOC/Cityscapes convention); overlay
OUT/<stem>_overlay.png, the image blended with the colours and a legend naming the classes
present; all: the palette PNG and the overlay. Class names and colours come from --dataset,
else the checkpoint's (or the export's checkpoint's) run or zoo entry, else pascal. With
--save_probabilities, OUT/<stem>_probabilities.npy (float32 [H, W, classes]): the mean of the
softmax over scales and flips after upsampling to the input size. A label-only frozen graph
(the original's exports before 2019: SemanticPredictions, no SemanticProbabilities) gives
labels only.

Memory stays bounded: an image of more than --max_image_pixels pixels runs as overlapping
windows (at most 1025 x 1025, stride 2/3, probabilities averaged) whose results are written
band by band; smaller images run whole. --crop_size=H,W instead pads each image bottom/right
with the mean pixel to H x W (shrinking larger ones to fit), as the original's evaluation
and export do, so the labels equal those of export_model.py --crop_size=H --crop_size=W.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
from absl import flags

from deeplab import entry
from deeplab.flags import (
    define_inference_flags,
    define_model_flags,
    inference_options_from_flags,
    pair_flag,
)
from deeplab.model.options import DEFAULT_MAX_PIXELS
from deeplab.utils.image_io import InputError, load_image, save_label_png, save_palette_png
from deeplab.zoo import flags as zoo_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or a directory holding one.")
flags.DEFINE_string("model", None, "An exported model (frozen .pb, SavedModel directory, .onnx "
                    "or .tflite) to run instead of --checkpoint.")
flags.DEFINE_string("output_dir", None, "Where to write <stem>.png per input.")
flags.DEFINE_integer("num_classes", None, "Classes; by default read from the checkpoint.")
flags.DEFINE_enum("output_format", "index", ["index", "palette", "overlay", "all"],
                  "index: greyscale PNG of class ids; palette: P-mode PNG of class ids in the "
                  "dataset's colours; overlay: <stem>_overlay.png, image blended with the "
                  "colours and a legend; all: palette and overlay.")
flags.DEFINE_string("dataset", None, "Registered dataset naming the classes and colours "
                    "(default: the one the model was trained on, else pascal colours).")
flags.DEFINE_boolean("no_resize_to_crop", False, "--model of fixed crop (the original's frozen "
                     "graphs, 513x513): refuse images larger than the crop instead of resizing "
                     "them to fit (longer side = crop) and the labels back to the image size.")
flags.DEFINE_boolean("save_probabilities", False, "Also write <stem>_probabilities.npy.")
flags.DEFINE_integer("max_image_pixels", DEFAULT_MAX_PIXELS,
                     "Images with more pixels (height x width) run as overlapping windows of at "
                     "most 1025x1025, so memory stays bounded; 0 runs every image whole.")
flags.DEFINE_multi_string("crop_size", None,
                  "Pad every image bottom/right with the mean pixel to this height,width "
                  "(shrinking larger ones to fit), as the original's evaluation and export.")
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


def _open_model():
    """The SegmentationModel of --model or --checkpoint (with the model and inference flags),
    its classes named by --dataset when given."""
    from deeplab.inference.opening import open_model  # TensorFlow: not for --help

    if FLAGS.model:
        if any(FLAGS[n].present for n in ("eval_scales", "add_flipped_images", "crop_size",
                                          "eval_window_size", "eval_window_stride")):
            raise flags.ValidationError(
                "--eval_scales, --add_flipped_images, --crop_size and the window flags do not "
                "apply to --model: scales, flips and the crop are baked in at export "
                "(export_model.py --inference_scales, --add_flipped_images, --crop_size)")
        model = open_model(FLAGS.model, resize_to_crop=not FLAGS.no_resize_to_crop,
                           dataset=FLAGS.dataset)
    else:
        options = entry.inference_model_options(FLAGS, FLAGS.checkpoint, FLAGS.num_classes)
        inference = dataclasses.replace(inference_options_from_flags(FLAGS),
                                        max_pixels=FLAGS.max_image_pixels or None)
        crop = pair_flag(FLAGS, "crop_size")
        if crop:
            if inference.window is not None:
                raise flags.ValidationError("--crop_size and --eval_window_size exclude each "
                                            "other")
            entry.check_crop_size("crop_size", crop, options.output_stride)
        model = open_model(FLAGS.checkpoint, options=options, crop_size=crop,
                           inference=inference, dataset=FLAGS.dataset)
    if FLAGS.save_probabilities and not model.has_probabilities:
        raise flags.ValidationError(
            f"--save_probabilities: {FLAGS.model} gives labels only (no "
            "SemanticProbabilities node), so probabilities are not available")
    logging.info("running %s", model.describe())
    return model


def _write_labels(labels, image, stem: str, model) -> None:
    """Writes the --output_format files of one image (uint8 [1, H, W, 3])."""
    from deeplab.vis.colormap import overlay, with_legend

    out = os.path.join(FLAGS.output_dir, stem)
    if FLAGS.output_format == "index":
        save_label_png(labels, out + ".png")
        return
    names, colormap = model.class_names, model.colormap
    if labels.max() >= len(colormap):
        raise InputError(f"{stem}: class {labels.max()} has no colour in the "
                         f"{len(colormap)}-colour map; use --output_format=index")
    if FLAGS.output_format in ("palette", "all"):
        save_palette_png(labels, colormap, out + ".png")
    if FLAGS.output_format in ("overlay", "all"):
        from PIL import Image

        pixels = np.clip(np.rint(image[0]), 0, 255).astype(np.uint8)
        blended = with_legend(overlay(pixels, labels, colormap), labels, colormap, names)
        Image.fromarray(blended).save(out + "_overlay.png")


def _predict_one(model, path: str, stem: str) -> None:
    """Writes <stem>.png (and <stem>_probabilities.npy) band by band."""
    image = load_image(path, keep_uint8=True)[None]
    labels = None
    saved = None
    if FLAGS.save_probabilities:
        saved = os.path.join(FLAGS.output_dir, f"{stem}_probabilities.npy")
    out = None
    for y0, probabilities, band_labels in model.bands(image):
        if labels is None:  # uint8 when every class index fits (a quarter of int32's memory)
            small = probabilities is not None and probabilities.shape[-1] <= 256
            labels = np.zeros(image.shape[1:3], np.uint8 if small else np.int32)
        labels[y0:y0 + band_labels.shape[0]] = band_labels
        if saved is not None:
            if out is None:  # written to disk band by band, never whole in memory
                out = np.lib.format.open_memmap(
                    saved, mode="w+", dtype=np.float32,
                    shape=image.shape[1:3] + (probabilities.shape[-1],))
            out[y0:y0 + probabilities.shape[0]] = probabilities
    if out is not None:
        out.flush()
        del out
    _write_labels(labels, image, stem, model)


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
    if FLAGS.max_image_pixels < 0:
        raise flags.ValidationError("--max_image_pixels must be 0 (no limit) or positive")
    model = _open_model()
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    for path, stem in zip(inputs, stems, strict=True):
        _predict_one(model, path, stem)
        logging.info("%s -> %s.png", path, stem)
    print(f"wrote {len(inputs)} label map(s) to {FLAGS.output_dir}")


def run() -> None:
    """Console script deeplab-predict; also `python predict.py` from a checkout."""
    entry.run(main, __doc__, takes_arguments=True)


if __name__ == "__main__":
    run()

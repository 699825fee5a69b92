"""Eval throughput (images per second) on the built-in synthetic dataset: 1 scale vs 6 + flip.

  python bench/eval_throughput.py [--model_variant=mobilenet_v2] [--depth_multiplier=0.5]
      [--checkpoint=CKPT] [--dataset_dir=DIR] [--batch_size=1] [--passes=2]

Runs `deeplab.evaluate.evaluator.run_evaluation` (the code eval.py runs) over the synthetic
val split (80 images of 96x96, generated on first use) with the scales of the original's
multi-scale eval. Without --checkpoint the network has random weights (throughput does not
depend on them; the mIoU column is then meaningless). Each configuration runs `passes`
times: the first includes tracing, the last gives the steady rate. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MULTI_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_variant", default="mobilenet_v2")
    parser.add_argument("--depth_multiplier", type=float, default=1.0)
    parser.add_argument("--checkpoint", default=None, help="evaluate real weights (optional)")
    parser.add_argument("--dataset_dir", default=None, help="synthetic dataset (default cache)")
    parser.add_argument("--batch_size", type=int, default=1,
                        help=">1 pads images to their 96x96 size as a crop")
    parser.add_argument("--passes", type=int, default=2)
    return parser.parse_args(argv)


def _model(args, num_classes):
    from deeplab.checkpoints.io import restore_model
    from deeplab.model.deeplab import build_model
    from deeplab.model.options import ModelOptions
    from deeplab.utils.run_options import load_model_options

    options = (load_model_options(args.checkpoint) if args.checkpoint else None) or ModelOptions(
        model_variant=args.model_variant, depth_multiplier=args.depth_multiplier,
        num_classes=num_classes)
    model = build_model(options)
    if args.checkpoint:
        restore_model(model, args.checkpoint)
    return model, options


def main(argv=None) -> None:
    args = _args(argv)
    import tensorflow as tf

    from deeplab.datasets.synthetic import DEFAULT_IMAGE_SIZE, ensure_synthetic_dataset
    from deeplab.evaluate import evaluator
    from deeplab.inference.checkpoint_model import CheckpointModel
    from deeplab.model.predict import InferenceOptions

    dataset_dir, descriptor = ensure_synthetic_dataset(args.dataset_dir)
    model, options = _model(args, descriptor.num_classes)
    crop = DEFAULT_IMAGE_SIZE if args.batch_size > 1 else None
    input_options = evaluator.eval_input_options(descriptor, crop, options.model_variant)
    rows = []
    for name, scales, flip in (("single scale", (1.0,), False),
                               ("6 scales + flip", MULTI_SCALES, True)):
        predictor = CheckpointModel(model, options, InferenceOptions(scales, flip))
        runs = [evaluator.run_evaluation(predictor, dataset_dir, "val", descriptor,
                                         input_options, args.batch_size, progress=False)
                for _ in range(max(1, args.passes))]
        rows.append((name, len(scales) * (2 if flip else 1), runs[0], runs[-1]))
    print(f"\nEval throughput: {options.model_variant} (depth {options.depth_multiplier}), "
          f"synthetic val {rows[0][3].num_images} images {DEFAULT_IMAGE_SIZE[0]}x"
          f"{DEFAULT_IMAGE_SIZE[1]}, batch {args.batch_size}, TF {tf.__version__}, "
          f"{os.cpu_count()} CPUs ({platform.machine()})\n")
    print("| inference | branches | first pass s (incl. tracing) | images/s | mIoU % |")
    print("|---|---|---|---|---|")
    for name, branches, first, last in rows:
        print(f"| {name} | {branches} | {first.seconds:.1f} | {last.images_per_second:.1f} | "
              f"{100 * last.result.miou:.2f} |")
    slowdown = rows[0][3].images_per_second / rows[1][3].images_per_second
    print(f"\n6 scales + flip is {slowdown:.1f}x slower than single scale.")


if __name__ == "__main__":
    main()

"""INT8 against float32 on the reference fixtures: label agreement of the `tflite_int8` export.

  python bench/int8_accuracy.py [--variants=xception65,mobilenet_v2] [--calibration=8]
      [--fixtures=../shared/fixtures/reference]

For each fixture variant (the original DeepLab's seeded weights, see the fixtures' README) the
network is restored from the checkpoint `make_checkpoint.py` writes, exported at the fixture's
larger input size through the `tflite_int8` format of `deeplab.export.formats` (calibrated on
--calibration uniform-noise images drawn like the fixture inputs, other seeds) and run by
`TfliteModel` on the fixture's own input rounded to uint8 (the exports' input type). The
table gives, per variant, the share of pixels whose label the INT8 model and our float32
export agree on, the mean |probability difference| INT8 - float32, and the export check's
verdict (`deeplab.export.int8.TOLERANCE`, on the export's own verification images).

Random weights are a hard case for INT8: their logits' top-2 margins are small, so a few
percent of quantisation noise flips labels that a trained network's margins would not. The
mIoU drop on a dataset is what `export_model.py --format=tflite_int8
--quantized_eval_split=val` measures and checks (see the README's "Formats and INT8").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _make_checkpoint_module(fixtures: str):
    spec = importlib.util.spec_from_file_location(
        "make_checkpoint", os.path.join(fixtures, "make_checkpoint.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(variant: str, fixtures: str, calibration_count: int, workdir: str) -> dict:
    """Figures of one fixture variant (see the module docstring)."""
    import pathlib

    import numpy as np

    from deeplab.checkpoints.io import restore_model
    from deeplab.export import formats, verify
    from deeplab.export.contract import ExportModule, ExportOptions
    from deeplab.model.deeplab import build_model
    from deeplab.model.reference_fixtures import FIXTURES, SEEDS, reference_input

    fixture = FIXTURES[variant]
    folder = pathlib.Path(fixtures) / variant
    values = _make_checkpoint_module(fixtures).variable_values(str(folder))
    prefix = _make_checkpoint_module(fixtures).write_checkpoint(
        values, os.path.join(workdir, variant))
    model = build_model(fixture.options)
    restore_model(model, prefix, allow_unused=False)
    size = fixture.sizes[1]
    module = ExportModule(model, fixture.options, ExportOptions((size, size)))
    rng = np.random.RandomState(SEEDS[size] + 100)
    calibration = [rng.uniform(0, 255, (1, size, size, 3)).astype(np.uint8)
                   for _ in range(calibration_count)]
    fmt = formats.get("tflite_int8")
    path = os.path.join(workdir, f"{variant}_{fmt.file_name}")
    fmt.write(formats.WriteSource(module, calibration=calibration), path)
    int8 = fmt.load(path)
    report = verify.Reference(module).compare(int8, path, fmt.tolerance)

    image = np.clip(np.round(reference_input(folder, size)), 0, 255).astype(np.uint8)
    float_probs = module.function(1, size, size)(image)["probabilities"].numpy()[0]
    int8_probs = np.asarray(int8(image), np.float32)[0]
    return {"variant": variant, "size": size,
            "int8_vs_float": float(np.mean(int8_probs.argmax(-1) == float_probs.argmax(-1))),
            "mean_abs_diff": float(np.abs(int8_probs - float_probs).mean()),
            "export_check": "pass" if report.ok else "refused",
            "export_agreement": report.label_agreement}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="xception65,mobilenet_v2")
    parser.add_argument("--calibration", type=int, default=8, help="calibration images")
    parser.add_argument("--fixtures", default=os.environ.get(
        "DEEPLAB_REFERENCE_DIR", os.path.join(os.path.dirname(REPO), "shared", "fixtures",
                                              "reference")))
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.fixtures, "make_checkpoint.py")):
        sys.exit(f"error: no reference fixtures at {args.fixtures} (--fixtures or "
                 f"DEEPLAB_REFERENCE_DIR)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="deeplab-int8-") as workdir:
        for variant in args.variants.split(","):
            print(f"{variant}: restoring, exporting tflite_int8, running ...", flush=True)
            rows.append(measure(variant, args.fixtures, args.calibration, workdir))
    print("\n| variant | size | labels INT8 = float32 | mean abs p diff INT8 - float32 | "
          "export check (agreement) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['size']} | {100 * r['int8_vs_float']:.2f} % | "
              f"{r['mean_abs_diff']:.2e} | {r['export_check']} "
              f"({100 * r['export_agreement']:.2f} %) |")


if __name__ == "__main__":
    main()

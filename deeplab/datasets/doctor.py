"""The dataset doctor: checks a segmentation dataset before training, and describes it.

    python -m deeplab.datasets.doctor --image_dir=DIR/images --label_dir=DIR/labels --num_classes=21
    python -m deeplab.datasets.doctor --data_root=DIR --data_lst=DIR/train.txt --num_classes=21
    python -m deeplab.datasets.doctor --dataset_dir=SHARDS --split=train

For every pair it tells the label encoding (class-index PNG, palette PNG, RGB colour mask,
0/255 binary mask, 16-bit, JPEG) and checks what the converters check: readable files, label
values in [0, num_classes) or the ignore label, label size equal to the image size, every
image with its label. It reports per-class pixel and image counts, the ignored fraction,
image sizes, duplicate images and the label weights median frequency balancing suggests
(`train.py --label_weights=auto` computes the same from the converted data).

Output: a summary on stdout; `report.json`, `class_frequency.png` and `samples.png` (images
beside their labels overlaid) in --output_dir. Exit status 2 when a pair would break
training: each faulty file is named with its problem and the converter flag (or action)
that fixes it. --label_colormap and --binary_masks read the labels as the converter will
with those flags, so the doctor confirms a fix before converting.

Over shards (--dataset_dir) every record of every shard is read first: a damaged one (CRC
mismatch, a cut shard, an image or label that does not decode) is named on stderr with the
line train.py would stop with (`error: <shard>: record N at byte B is damaged (...)`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import sys
from collections.abc import Sequence

import numpy as np

from deeplab.data import class_weights, descriptors
from deeplab.datasets import build_data, build_data_from_list, label_encoding, make_list
from deeplab.datasets.doctor_checks import (
    FIX_MISSING,
    PairResult,
    Problem,
    check_pair,
    check_record,
)
from deeplab.utils.atomic import write_json_atomically

LABEL_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
REPORT_FILE = "report.json"


@dataclasses.dataclass(frozen=True)
class DoctorOptions:
    """num_classes, ignore_label: what labels may hold; label_colormap, binary_masks: how to
    read them (the converter's flags); class_names: for the report; num_samples: pairs on
    the contact sheet; num_workers: reader threads."""

    num_classes: int
    ignore_label: int = 255
    label_colormap: str | None = None
    binary_masks: bool = False
    class_names: tuple[str, ...] = ()
    num_samples: int = 8
    num_workers: int = 4


def folder_items(image_dir: str, label_dir: str) -> tuple[list, list[Problem]]:
    """(name, image, label) pairs matched by file name, and a Problem per unmatched file."""
    images = make_list._by_stem(image_dir, make_list.IMAGE_EXTENSIONS)
    labels = make_list._by_stem(label_dir, LABEL_EXTENSIONS)
    problems = [Problem(images[s], f"no label named {s}.* in {label_dir}", FIX_MISSING)
                for s in sorted(set(images) - set(labels))]
    problems += [Problem(labels[s], f"no image named {s}.* in {image_dir}", FIX_MISSING)
                 for s in sorted(set(labels) - set(images))]
    return [(s, images[s], labels[s]) for s in sorted(set(images) & set(labels))], problems


def _examine(items: Sequence, options: DoctorOptions) -> list[PairResult]:
    reader = label_encoding.reader_from_options(options.num_classes, options.ignore_label,
                                                options.label_colormap, options.binary_masks)

    def check(indexed):
        index, (name, image, label) = indexed
        return check_pair(name, image, label, reader, keep_arrays=index < options.num_samples)

    with concurrent.futures.ThreadPoolExecutor(options.num_workers) as executor:
        return list(executor.map(check, enumerate(items)))


def shard_results(dataset_dir: str, split: str,
                  options: DoctorOptions) -> tuple[list[PairResult], list[Problem]]:
    """Checks every record of `dataset_dir/<split>-*`: framing, CRC and decoding first
    (`record_scan`; a damaged record is a Problem named as train.py names it), then labels
    and sizes of the intact records. Returns (results of intact records, problems)."""
    import tensorflow as tf

    from deeplab.data import pipeline, record_scan, schema

    results, problems = [], []
    files = pipeline.list_shards(dataset_dir, split)
    for path in record_scan.each_with_progress(files, "doctor (shards)"):
        scan = record_scan.check_decoding(record_scan.scan_shard(path))
        problems += [damaged_problem(record) for record in scan.damaged]
        for index, record in record_scan.read_records(path, scan.good):
            example = tf.train.Example.FromString(record).features.feature
            name = example[schema.IMAGE_FILENAME].bytes_list.value[0].decode() or \
                f"{os.path.basename(path)}#{index}"
            results.append(check_record(
                name, example[schema.IMAGE_ENCODED].bytes_list.value[0],
                example[schema.LABEL_ENCODED].bytes_list.value[0], options.num_classes,
                options.ignore_label, keep_arrays=len(results) < options.num_samples))
    return results, problems


def damaged_problem(record) -> Problem:
    """A `record_scan.DamagedRecord` as a Problem; `file: problem; fix` is its message."""
    from deeplab.data import record_scan

    return Problem(record.shard, f"record {record.index} at byte {record.offset} is damaged "
                   f"({record.problem})", record_scan.FIX)


def _duplicates(results: Sequence[PairResult]) -> list[str]:
    by_digest = collections.defaultdict(list)
    names = collections.Counter(r.name for r in results)
    for result in results:
        if result.digest:
            by_digest[result.digest].append(result.image)
    warnings = [f"identical images: {', '.join(group)}" for group in by_digest.values()
                if len(group) > 1]
    warnings += [f"name {name!r} used by {count} pairs (the shards store names; vis.py "
                 "appends _1, _2)" for name, count in sorted(names.items()) if count > 1]
    return warnings


def _size_stats(sizes: Sequence[tuple[int, int]]) -> dict:
    if not sizes:
        return {}
    heights, widths = np.array(sizes).T
    return {"count": len(sizes), "distinct": len(set(sizes)),
            "height": {"min": int(heights.min()), "median": float(np.median(heights)),
                       "max": int(heights.max())},
            "width": {"min": int(widths.min()), "median": float(np.median(widths)),
                      "max": int(widths.max())}}


def summarize(results: Sequence[PairResult], problems: Sequence[Problem],
              options: DoctorOptions, source: str) -> dict:
    """The JSON report (see the module doc) of checked pairs and pairing problems."""
    c, ignore = options.num_classes, options.ignore_label
    histogram = {key: np.zeros(256, np.int64) for key in descriptors.STAT_KEYS}
    good = [r for r in results if r.counts is not None]
    for result in good:
        present = result.counts > 0
        histogram["pixels"] += result.counts
        histogram["images"] += present
        histogram["image_pixels"] += present * result.counts.sum()
    stats = build_data.class_statistics(histogram, c, ignore)
    labelled = sum(stats["pixels"])
    total = labelled + stats["ignore_pixels"]
    weights = class_weights.median_frequency_weights(stats["pixels"], stats["image_pixels"])
    all_problems = list(problems) + [p for r in results for p in r.problems]
    return {
        "source": source, "num_classes": c, "ignore_label": ignore,
        "label_colormap": options.label_colormap, "binary_masks": options.binary_masks,
        "pairs": len(results) + len(problems), "usable_pairs": len(good),
        "encodings": dict(collections.Counter(r.encoding for r in results if r.encoding)),
        "class_names": list(options.class_names or (str(i) for i in range(c))),
        "class_pixels": stats["pixels"], "class_images": stats["images"],
        "class_pixel_share": [p / labelled if labelled else 0.0 for p in stats["pixels"]],
        "ignore_pixels": stats["ignore_pixels"],
        "ignore_fraction": stats["ignore_pixels"] / total if total else 0.0,
        "unknown_color_pixels": sum(r.unknown for r in results),
        "image_sizes": _size_stats([r.image_size for r in results if r.image_size]),
        "suggested_label_weights": [round(float(w), 6) for w in weights],
        "problems": [dataclasses.asdict(p) for p in all_problems],
        "warnings": _duplicates(results), "notes": [n for r in results for n in r.notes],
    }


def format_summary(report: dict) -> str:
    """The text summary printed on stdout."""
    lines = [f"dataset doctor: {report['source']}",
             f"pairs: {report['pairs']} ({report['usable_pairs']} usable); label encodings: "
             + ", ".join(f"{k} {v}" for k, v in sorted(report["encodings"].items()))]
    sizes = report["image_sizes"]
    if sizes:
        lines.append(f"image sizes: {sizes['distinct']} distinct, height {sizes['height']['min']}"
                     f"..{sizes['height']['max']}, width {sizes['width']['min']}.."
                     f"{sizes['width']['max']}")
    lines.append(f"ignored pixels ({report['ignore_label']}): "
                 f"{100 * report['ignore_fraction']:.2f} %"
                 + (f"; unknown colours set to ignore: {report['unknown_color_pixels']} pixels"
                    if report["unknown_color_pixels"] else ""))
    width = max(len("class"), *(len(n) for n in report["class_names"]))
    lines.append(f"{'class':<{width}}  {'pixels':>12} {'share':>8} {'images':>7} {'weight':>8}")
    for row in zip(report["class_names"], report["class_pixels"], report["class_pixel_share"],
                   report["class_images"], report["suggested_label_weights"], strict=True):
        name, pixels, share, images, weight = row
        lines.append(f"{name:<{width}}  {pixels:>12} {100 * share:>7.2f}% {images:>7} "
                     f"{weight:>8.3f}")
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines += [f"note: {n}" for n in report["notes"][:20]]
    by_fix = collections.defaultdict(list)
    for problem in report["problems"]:
        by_fix[problem["fix"]].append(problem)
    for fix, group in by_fix.items():
        lines.append(f"{len(group)} file(s) would break training; fix: {fix}")
        lines += [f"  {p['file']}: {p['problem']}" for p in group]
    return "\n".join(lines)


def write_outputs(report: dict, output_dir: str, samples, palette) -> list[str]:
    """Writes report.json and the pictures into output_dir; returns their paths."""
    from deeplab.datasets import doctor_pictures

    os.makedirs(output_dir, exist_ok=True)
    pictures = [
        doctor_pictures.class_frequency_chart(os.path.join(output_dir, "class_frequency.png"),
                                              report["class_names"], report["class_pixels"],
                                              report["class_images"]),
        doctor_pictures.contact_sheet(os.path.join(output_dir, "samples.png"), samples, palette,
                                      report["ignore_label"]),
    ]
    report["pictures"] = pictures
    write_json_atomically(os.path.join(output_dir, REPORT_FILE), report)
    return [os.path.join(output_dir, REPORT_FILE), *pictures]


def diagnose(options: DoctorOptions, output_dir: str, image_dir: str | None = None,
             label_dir: str | None = None, data_root: str | None = None,
             data_lst: str | None = None, dataset_dir: str | None = None,
             split: str | None = None, allow_outside_data_root: bool = False) -> dict:
    """Runs the doctor over one source (folders, list file or shards); returns the report."""
    build_data.check_label_options(options.num_classes, options.ignore_label)
    palette = colormap_for(options)
    if dataset_dir:
        source = os.path.join(dataset_dir, f"{split}-*")
        results, problems = shard_results(dataset_dir, split, options)
    elif data_lst:
        source = data_lst
        items = build_data_from_list.read_list(data_root, data_lst, allow_outside_data_root)
        results, problems = _examine(items, options), []
    else:
        source = f"{image_dir} + {label_dir}"
        items, problems = folder_items(image_dir, label_dir)
        results = _examine(items, options)
    report = summarize(results, problems, options, source)
    samples = [(r.name, *r.arrays) for r in results if r.arrays is not None]
    write_outputs(report, output_dir, samples, palette)
    return report


def colormap_for(options: DoctorOptions):
    """Palette of the contact sheet: the masks' own colours, else pascal."""
    if options.label_colormap:
        return label_encoding.load_colormap(options.label_colormap)
    return "pascal"


def _source_flags(f) -> dict:
    chosen = [bool(f.image_dir or f.label_dir), bool(f.data_lst), bool(f.dataset_dir)]
    if sum(chosen) != 1:
        raise build_data.ConversionError("give one source: --image_dir and --label_dir, "
                                         "--data_root and --data_lst, or --dataset_dir")
    if chosen[0] and not (f.image_dir and f.label_dir):
        raise build_data.ConversionError("--image_dir and --label_dir go together")
    return {"image_dir": f.image_dir, "label_dir": f.label_dir, "data_root": f.data_root,
            "data_lst": f.data_lst, "dataset_dir": f.dataset_dir, "split": f.split,
            "allow_outside_data_root": f.allow_outside_data_root}


def _options_from_flags(f) -> DoctorOptions:
    num_classes, ignore, names = f.num_classes, f.ignore_label, tuple(f.class_names or ())
    if f.dataset_dir:
        path = os.path.join(f.dataset_dir, descriptors.DESCRIPTOR_FILE)
        known = descriptors.read_descriptor_file(path) if os.path.isfile(path) else None
        if known is not None:
            num_classes = num_classes or known.num_classes
            ignore = ignore if f["ignore_label"].present else known.ignore_label
            names = names or known.class_names
    if not num_classes:
        raise build_data.ConversionError("--num_classes is required (no dataset.json to read "
                                         "it from)")
    return DoctorOptions(num_classes, ignore, f.label_colormap, f.binary_masks, names,
                         f.num_samples)


def main(argv):
    del argv
    from absl import flags

    from deeplab.data import record_scan

    f = flags.FLAGS

    def body():
        report = diagnose(_options_from_flags(f), f.output_dir, **_source_flags(f))
        print(format_summary(report))
        print(f"report: {os.path.join(f.output_dir, REPORT_FILE)} (pictures beside it)")
        for problem in report["problems"]:
            if problem["fix"] == record_scan.FIX:  # damaged records: named as train.py does
                sys.stderr.write(f"error: {problem['file']}: {problem['problem']}; "
                                 f"{problem['fix']}\n")
        if report["problems"]:
            sys.stderr.write(f"error: {len(report['problems'])} file(s) would break training; "
                             "each is listed above with its fix\n")
            sys.exit(2)

    build_data.run_main(body)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("image_dir", None, "Folder of images (with --label_dir).")
    flags.DEFINE_string("label_dir", None, "Folder of labels, matched to images by name.")
    flags.DEFINE_string("data_root", ".", "Root of the list file's paths.")
    flags.DEFINE_string("data_lst", None, "List file of 'image label' lines.")
    flags.DEFINE_string("dataset_dir", None, "Folder of converted TFRecord shards.")
    flags.DEFINE_string("split", "train", "Split of --dataset_dir.")
    flags.DEFINE_integer("num_classes", None, "Number of classes (default: dataset.json's).")
    flags.DEFINE_integer("ignore_label", 255, "Label value to ignore.")
    flags.DEFINE_list("class_names", None, "Comma-separated class names (optional).")
    flags.DEFINE_string("label_colormap", None, "Read colour masks with this palette "
                        "(pascal, cityscapes, or a file), as the converter would.")
    flags.DEFINE_boolean("binary_masks", False, "Read 0/255 masks as classes 0 and 1.")
    flags.DEFINE_boolean("allow_outside_data_root", False,
                         "Read list entries whose paths leave --data_root.")
    flags.DEFINE_string("output_dir", "doctor_report", "Where report.json and the pictures go.")
    flags.DEFINE_integer("num_samples", 8, "Pairs on the contact sheet.")
    app.run(main)

"""The dataset doctor on generated datasets: every fault named with its fix; clean counts."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from deeplab.data import descriptors
from deeplab.datasets import build_data_from_list, doctor
from deeplab.datasets import testing_utils as tu

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _clean(root, count=4, num_classes=5):
    rng = np.random.default_rng(31)
    labels = {}
    for i in range(count):
        h, w = 6 + i, 9 - i
        tu.save(tu.random_image(rng, h, w), str(root / "images" / f"p{i}.png"))
        labels[f"p{i}"] = tu.random_label(rng, h, w, num_classes - (i % 2), ignore=255)
        tu.save(labels[f"p{i}"], str(root / "labels" / f"p{i}.png"))
    return labels


def _faulty(root):
    """A clean pair plus one pair per fault; returns {faulty file: expected fix words}."""
    _clean(root, count=1)
    rng = np.random.default_rng(32)
    image = lambda name, h=6, w=8: tu.save(tu.random_image(rng, h, w),  # noqa: E731
                                           str(root / "images" / f"{name}.png"))
    label = str(root / "labels" / "{}.png")
    faults = {}
    image("colour")
    colors = np.array(descriptors.palette("pascal"), np.uint8)
    faults[tu.save(colors[tu.random_label(rng, 6, 8, 5)], label.format("colour"))] = \
        "--label_colormap=pascal"
    image("binary")
    faults[tu.save(rng.integers(0, 2, (6, 8)).astype(np.uint8) * 255, label.format("binary"))] \
        = "--binary_masks --num_classes=2"
    image("deep")
    Image.fromarray(np.full((6, 8), 1000, np.uint16)).save(label.format("deep"))
    faults[label.format("deep")] = "8-bit PNGs"
    image("range")
    wide = tu.random_label(rng, 6, 8, 5)
    wide[0, 0] = 9
    faults[tu.save(wide, label.format("range"))] = "--num_classes=10"
    image("size")
    faults[tu.save(tu.random_label(rng, 5, 8, 5), label.format("size"))] = "the image's size"
    faults[image("lonely")] = "--allow_unmatched"
    faults[tu.save(tu.random_label(rng, 6, 8, 5), label.format("orphan"))] = "--allow_unmatched"
    (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    tu.save(tu.random_label(rng, 6, 8, 5), label.format("corrupt"))
    faults[str(root / "images" / "corrupt.png")] = "replace or remove"
    image("jpeg")
    faults[tu.save(tu.random_label(rng, 6, 8, 5), str(root / "labels" / "jpeg.jpg"))] = \
        "save the labels as PNG"
    return faults


def test_every_faulty_file_is_named_with_its_fix(tmp_path):
    faults = _faulty(tmp_path)
    report = doctor.diagnose(doctor.DoctorOptions(5), str(tmp_path / "out"),
                             str(tmp_path / "images"), str(tmp_path / "labels"))
    found = {p["file"]: p for p in report["problems"]}
    assert sorted(found) == sorted(faults)
    for path, fix in faults.items():
        assert fix in found[path]["fix"], (path, found[path])
    assert report["usable_pairs"] == 1
    assert report["encodings"]["color"] == 1 and report["encodings"]["binary"] == 1
    # The command line: exit status 2, every file and fix on stdout.
    run = subprocess.run([sys.executable, "-m", "deeplab.datasets.doctor", "--num_classes=5",
                          f"--image_dir={tmp_path}/images", f"--label_dir={tmp_path}/labels",
                          f"--output_dir={tmp_path}/cli"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith("error: 9 file(s) would break training; each is listed "
                                       "above with its fix")
    for path, fix in faults.items():
        assert path in run.stdout and fix in run.stdout


def test_flags_that_fix_a_fault_make_it_pass(tmp_path):
    rng = np.random.default_rng(33)
    colors = np.array(descriptors.palette("pascal"), np.uint8)
    for i in range(2):
        tu.save(tu.random_image(rng, 5, 5), str(tmp_path / "images" / f"{i}.png"))
        tu.save(colors[tu.random_label(rng, 5, 5, 3)], str(tmp_path / "labels" / f"{i}.png"))
    options = doctor.DoctorOptions(3, label_colormap="pascal")
    report = doctor.diagnose(options, str(tmp_path / "out"), str(tmp_path / "images"),
                             str(tmp_path / "labels"))
    assert report["problems"] == [] and report["usable_pairs"] == 2


def test_clean_dataset_passes_and_counts_equal_numpy(tmp_path):
    labels = _clean(tmp_path)
    out = tmp_path / "out"
    report = doctor.diagnose(doctor.DoctorOptions(5), str(out), str(tmp_path / "images"),
                             str(tmp_path / "labels"))
    assert report["problems"] == [] and report["pairs"] == 4
    stacked = np.concatenate([x.ravel() for x in labels.values()])
    assert report["class_pixels"] == [int(np.sum(stacked == c)) for c in range(5)]
    assert report["class_images"] == [sum(int((x == c).any()) for x in labels.values())
                                      for c in range(5)]
    assert report["ignore_fraction"] == np.mean(stacked == 255)
    assert report["image_sizes"]["height"] == {"min": 6, "median": 7.5, "max": 9}
    assert json.loads((out / "report.json").read_text())["class_pixels"] == \
        report["class_pixels"]
    for picture in ("class_frequency.png", "samples.png"):
        assert Image.open(out / picture).size[0] > 100
    # The same data converted to shards, checked again: the same counts.
    (tmp_path / "l.txt").write_text("".join(f"images/{n}.png labels/{n}.png\n" for n in labels))
    build_data_from_list.convert_list(str(tmp_path), str(tmp_path / "l.txt"), "train",
                                      str(tmp_path / "shards"), 5, num_shards=2)
    listed = doctor.diagnose(doctor.DoctorOptions(5), str(tmp_path / "out1"),
                             data_root=str(tmp_path), data_lst=str(tmp_path / "l.txt"))
    again = doctor.diagnose(doctor.DoctorOptions(5), str(tmp_path / "out2"),
                            dataset_dir=str(tmp_path / "shards"), split="train")
    for other in (listed, again):
        assert other["class_pixels"] == report["class_pixels"] and other["problems"] == []
        assert other["suggested_label_weights"] == report["suggested_label_weights"]


def test_duplicates_are_warned(tmp_path):
    _clean(tmp_path, count=2)
    (tmp_path / "images" / "p9.png").write_bytes((tmp_path / "images" / "p0.png").read_bytes())
    (tmp_path / "labels" / "p9.png").write_bytes((tmp_path / "labels" / "p0.png").read_bytes())
    report = doctor.diagnose(doctor.DoctorOptions(5), str(tmp_path / "out"),
                             str(tmp_path / "images"), str(tmp_path / "labels"))
    assert report["warnings"] == [f"identical images: {tmp_path}/images/p0.png, "
                                  f"{tmp_path}/images/p9.png"]
    assert report["problems"] == []


def test_damaged_records_are_each_named_in_one_line(tmp_path):
    from datasets.synthetic import write_synthetic_dataset
    from deeplab.data.record_scan_test import write_damaged_split

    write_synthetic_dataset(str(tmp_path / "d"), num_train=1, num_val=6, image_size=(24, 24))
    damaged = write_damaged_split(str(tmp_path / "d"), "val", per_shard=5, late=2)
    run = subprocess.run([sys.executable, "-m", "datasets.doctor", f"--dataset_dir={tmp_path}/d",
                          "--split=val", f"--output_dir={tmp_path}/out"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {r.message()}" for r in damaged] + [
        "error: 3 file(s) would break training; each is listed above with its fix"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["pairs"] == 10 and report["usable_pairs"] == 7
    assert [(p["file"], p["problem"]) for p in report["problems"]] == [
        (r.shard, f"record {r.index} at byte {r.offset} is damaged ({r.problem})")
        for r in damaged]

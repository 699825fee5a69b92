"""The converters' command lines: --help lists the flags, input errors are one clear line."""

import subprocess
import sys

import pytest

CONVERTERS = {
    "deeplab.datasets.build_voc2012_data": ["--voc_root", "--sbd_root"],
    "deeplab.datasets.build_cityscapes_data": ["--cityscapes_root"],
    "deeplab.datasets.build_ade20k_data": ["--ade20k_root"],
    "deeplab.datasets.build_data_from_list": ["--data_root", "--data_lst", "--split_name"],
}


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, timeout=120, cwd=__file__.rsplit("/deeplab/datasets/", 1)[0])


@pytest.mark.parametrize("module", sorted(CONVERTERS))
def test_help_lists_own_and_common_flags(module):
    text = _run(module, "--help").stdout
    for flag in CONVERTERS[module] + ["--output_dir", "--num_shards", "--[no]skip_invalid"]:
        assert flag in text, (module, flag)


def test_make_list_and_synthetic_help():
    assert "--label_dir" in _run("deeplab.datasets.make_list", "--help").stdout
    assert "--num_train" in _run("deeplab.datasets.synthetic", "--help").stdout


def test_bad_input_is_one_line_without_traceback(tmp_path):
    failed = _run("deeplab.datasets.build_data_from_list", f"--data_root={tmp_path}",
                  f"--data_lst={tmp_path}/none.txt", "--split_name=train", "--num_classes=3",
                  f"--output_dir={tmp_path}/o")
    assert failed.returncode == 2
    assert failed.stderr.strip().endswith(f"error: {tmp_path}/none.txt: split file not found")
    assert "Traceback" not in failed.stderr


@pytest.mark.parametrize("flag,message", [
    ("--num_shards=0", "error: --num_shards: must be at least 1, got 0"),
    ("--num_classes=0", "error: --num_classes: must be in 1..256 (labels are 8-bit), got 0"),
    ("--ignore_label=300", "error: --ignore_label: must be in 0..255 (labels are 8-bit), got 300"),
    ("--output_dir={tmp}/a_file", "error: --output_dir: {tmp}/a_file is a file, not a directory"),
])
def test_bad_converter_flags_are_one_line_and_status_2(tmp_path, flag, message):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "l.txt").write_text("a.png b.png\n")
    args = {"--num_classes": "3", "--output_dir": f"{tmp_path}/o", "--split_name": "train"}
    name = flag.split("=")[0]
    args[name] = flag.split("=", 1)[1].format(tmp=tmp_path)
    failed = _run("deeplab.datasets.build_data_from_list", f"--data_root={tmp_path}",
                  f"--data_lst={tmp_path}/l.txt", *(f"{k}={v}" for k, v in args.items()))
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith(message.format(tmp=tmp_path))
    assert "Traceback" not in failed.stderr


def test_the_old_paths_run_the_same_programs(tmp_path):
    """`python datasets/<name>.py` and `python -m datasets.<name>` (wrappers kept for
    existing scripts) run the converters of deeplab/datasets/, from any directory."""
    repo = __file__.rsplit("/deeplab/datasets/", 1)[0]
    by_path = subprocess.run([sys.executable, f"{repo}/datasets/make_list.py", "--help"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "--label_dir" in by_path.stdout, by_path.stderr  # (absl's --help exits 1)
    failed = _run("datasets.build_data_from_list", f"--data_root={tmp_path}",
                  f"--data_lst={tmp_path}/none.txt", "--split_name=train", "--num_classes=3",
                  f"--output_dir={tmp_path}/o")
    assert failed.returncode == 2
    assert failed.stderr.strip().endswith(f"error: {tmp_path}/none.txt: split file not found")

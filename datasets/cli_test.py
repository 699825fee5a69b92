"""The converters' command lines: --help lists the flags, input errors are one clear line."""

import subprocess
import sys

import pytest

CONVERTERS = {
    "datasets.build_voc2012_data": ["--voc_root", "--sbd_root"],
    "datasets.build_cityscapes_data": ["--cityscapes_root"],
    "datasets.build_ade20k_data": ["--ade20k_root"],
    "datasets.build_data_from_list": ["--data_root", "--data_lst", "--split_name"],
}


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, timeout=120, cwd=__file__.rsplit("/datasets/", 1)[0])


@pytest.mark.parametrize("module", sorted(CONVERTERS))
def test_help_lists_own_and_common_flags(module):
    text = _run(module, "--help").stdout
    for flag in CONVERTERS[module] + ["--output_dir", "--num_shards", "--[no]skip_invalid"]:
        assert flag in text, (module, flag)


def test_make_list_and_synthetic_help():
    assert "--label_dir" in _run("datasets.make_list", "--help").stdout
    assert "--num_train" in _run("datasets.synthetic", "--help").stdout


def test_bad_input_is_one_line_without_traceback(tmp_path):
    failed = _run("datasets.build_data_from_list", f"--data_root={tmp_path}",
                  f"--data_lst={tmp_path}/none.txt", "--split_name=train", "--num_classes=3",
                  f"--output_dir={tmp_path}/o")
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith(f"error: {tmp_path}/none.txt: split file not found")
    assert "Traceback" not in failed.stderr

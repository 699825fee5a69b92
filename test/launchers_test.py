"""The launchers' logs: each launcher writes its own, so one never overwrites another's."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import uuid

HERE = pathlib.Path(__file__).resolve().parent
FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for train.py / eval.py: records the script and prints what the launcher reads.
echo "ran $1 from $LAUNCHER_NAME"
echo "final step 3 loss 0.5000 4.00 images/s 0.250 s/step checkpoint x"
echo "mIoU 50.00%"
"""


def test_each_launcher_writes_its_own_log(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    device = f"pytest-{uuid.uuid4().hex[:8]}"
    output = HERE / "output" / device
    try:
        for launcher in ("train_full_1p", "train_performance_1p"):
            done = subprocess.run(["bash", str(HERE / f"{launcher}.sh"), f"--device_id={device}"],
                                  env={**os.environ, "PYTHON": str(fake),
                                       "LAUNCHER_NAME": launcher},
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert f"log {output / launcher}.log" in done.stdout
            assert f"ran train.py from {launcher}" in done.stdout  # shown as well as logged
        logs = sorted(p.name for p in output.glob("*.log"))
        assert logs == ["train_full_1p.log", "train_performance_1p.log"]
        assert "from train_full_1p" in (output / "train_full_1p.log").read_text()
    finally:
        shutil.rmtree(output, ignore_errors=True)


def test_a_broken_environment_is_named_in_one_line(tmp_path):
    """env.sh on a venv whose python runs but has no pip (and ensurepip fails): one line
    saying what to delete, status 2; nothing is deleted outside the checkout."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text('#!/usr/bin/env bash\n[[ $1 == -c && -z $2 ]] && exit 0\nexit 1\n')
    python.chmod(0o755)
    done = subprocess.run(["bash", "-c", f"source {HERE / 'env.sh'}"],
                          env={**os.environ, "PYTHON": str(tmp_path / "none"),
                               "DEEPLAB_VENV": str(venv)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"[Error] {venv} is a broken virtual environment (no working python or pip): delete it "
        f"(rm -rf {venv}) and run again"]
    assert python.is_file()

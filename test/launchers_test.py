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
        logs = sorted(p.name for p in output.glob("*.log"))
        assert logs == ["train_full_1p.log", "train_performance_1p.log"]
        assert "from train_full_1p" in (output / "train_full_1p.log").read_text()
    finally:
        shutil.rmtree(output, ignore_errors=True)

"""TensorFlow's C++ chatter is dropped, real errors are kept, --verbose shows everything."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from deeplab.utils import quiet

REPO = pathlib.Path(__file__).resolve().parents[2]
STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796404053.063774    7610 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results.\n"
    "I0000 00:00:1796404274.015093   10557 cpu_feature_guard.cc:227] This TensorFlow binary "
    "is optimized to use available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.\n"
    "W0000 00:00:1796404274.015093   10557 gpu_device.cc:2342] Cannot dlopen some GPU "
    "libraries.\n"
    "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: "
    "FLOAT32\n"
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
KEPT = (
    "E0000 00:00:1796404274.015093   10557 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n"
    "I1204 17:19:32.042451 140128997342080 entry.py:86] restored 272 variables\n"
    "/x/y.py:3: UserWarning: something the user should see\n"
    "error: /data/a.png: not an image\n")


def test_without_noise_keeps_errors_warnings_and_our_lines_in_order():
    kept = KEPT.splitlines(keepends=True)
    assert quiet.without_noise(STARTUP + "".join(kept[:2]) + STARTUP + "".join(kept[2:])) == KEPT


def test_cpp_stderr_drops_chatter_written_to_descriptor_2(capfd, monkeypatch):
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    with quiet.cpp_stderr():
        os.write(2, (STARTUP + KEPT).encode())
    assert capfd.readouterr().err == KEPT
    monkeypatch.setenv(quiet.VERBOSE_ENV, "1")
    with quiet.cpp_stderr():
        os.write(2, STARTUP.encode())
    assert capfd.readouterr().err == STARTUP


def test_a_cli_error_is_the_only_line_unless_verbose(tmp_path):
    """predict.py imports TensorFlow to read the checkpoint, which is missing: one line on
    stderr; with --verbose TensorFlow's start-up lines are there too."""
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (quiet.VERBOSE_ENV,
                                                             "TF_CPP_MIN_LOG_LEVEL")}
    args = [sys.executable, str(REPO / "predict.py"), f"--checkpoint={tmp_path / 'empty'}",
            f"--output_dir={tmp_path / 'out'}", str(tmp_path / "a.png")]
    quiet_run = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                               env=env)
    assert quiet_run.returncode == 2
    assert quiet_run.stderr == (f"error: {tmp_path / 'empty'}: directory holds no checkpoint "
                                "(no *.index file)\n")
    loud = subprocess.run(args + ["--verbose"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert loud.returncode == 2 and "absl::InitializeLog()" in loud.stderr
    assert loud.stderr.endswith(quiet_run.stderr)


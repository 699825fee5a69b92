"""export_model.py and predict.py --model as a user runs them (subprocesses, ~10 s each)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deeplab.checkpoints.io import model_checkpoint
from deeplab.export.testing import SMALL_OPTIONS, small_model
from deeplab.utils.run_options import save_run_options

REPO = pathlib.Path(__file__).resolve().parent


def _run(script, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    """A training directory: the small model's checkpoint and its saved options."""
    folder = tmp_path_factory.mktemp("train")
    model_checkpoint(small_model()).save(str(folder / "ckpt"))
    save_run_options(str(folder), model=SMALL_OPTIONS)
    return folder


def test_export_with_saved_options_then_predict_with_the_exported_model(train_dir, tmp_path):
    out = tmp_path / "export"
    result = _run("export_model.py", f"--checkpoint_path={train_dir}", f"--export_path={out}",
                  "--crop_size=65", "--crop_size=81")
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout and "exported frozen" in result.stdout
    info = json.loads((out / "export_info.json").read_text())
    assert info["model"]["depth_multiplier"] == 0.5 and info["model"]["num_classes"] == 5
    assert info["model"]["output_stride"] == 8  # the original export's default
    image = np.random.default_rng(0).integers(0, 256, (30, 50, 3)).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    result = _run("predict.py", f"--model={out / 'frozen_inference_graph.pb'}",
                  f"--output_dir={tmp_path / 'pred'}", tmp_path / "a.png")
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(tmp_path / "pred" / "a.png")).shape == (30, 50)


def test_mismatched_checkpoint_is_a_clear_error_and_writes_nothing(train_dir, tmp_path):
    bare = tmp_path / "bare"  # without options.json the default flags (depth 1.0) apply
    shutil.copytree(train_dir, bare, ignore=shutil.ignore_patterns("options.json"))
    result = _run("export_model.py", f"--checkpoint_path={bare}",
                  f"--export_path={tmp_path / 'out'}", "--format=frozen,onnx")
    assert result.returncode == 2
    assert result.stderr.startswith("error:") or "\nerror:" in result.stderr
    assert "shapes differ" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == ["bare"]

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
                  "--crop_size=65,81")
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout and "exported frozen" in result.stdout
    assert f"output stride 8, not the trained {SMALL_OPTIONS.output_stride}" in result.stdout
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


def _trained_on_synthetic(tmp_path, steps: int = 300):
    """(train logdir, dataset dir): a small MobileNet-v2 DeepLabv3+ trained for `steps` on a
    64x64 synthetic dataset, far enough to segment (val mIoU ~60 %). INT8 accuracy is only
    meaningful on a trained network: a random one's label margins are so small that whether
    90 % of its labels survive quantisation depends on the CPU (86 % on an AVX-512 Zen 5,
    over 90 % on an AMX Xeon)."""
    import tensorflow as tf

    from deeplab.data.descriptors import get_descriptor
    from deeplab.data.pipeline import InputOptions
    from deeplab.datasets.synthetic import write_synthetic_dataset
    from deeplab.train.options import TrainOptions
    from deeplab.train.trainer import DataOptions, train

    num_classes = get_descriptor("synthetic").num_classes
    options = SMALL_OPTIONS.replace(num_classes=num_classes, decoder_output_stride=4,
                                    head_batch_norm_decay=0.99)
    data = tmp_path / "data"
    write_synthetic_dataset(str(data), num_train=16, num_val=3, image_size=(64, 64))
    logdir = tmp_path / "train"
    train(options, TrainOptions(train_logdir=str(logdir), training_number_of_steps=steps,
                                train_batch_size=8, base_learning_rate=0.02, seed=0,
                                log_steps=steps),
          DataOptions("synthetic", str(data), "train", num_classes, 255,
                      InputOptions(crop_size=(65, 65))),
          tf.distribute.OneDeviceStrategy("/cpu:0"))
    return logdir, data


@pytest.mark.slow
def test_int8_export_is_calibrated_on_a_split_and_its_miou_checked(tmp_path):
    train, data = _trained_on_synthetic(tmp_path)
    out = tmp_path / "int8"
    result = _run("export_model.py", f"--checkpoint_path={train}", f"--export_path={out}",
                  "--crop_size=65", "--crop_size=81", "--format=tflite_int8",
                  "--calibration_split=train", "--calibration_num_images=4",
                  "--quantized_eval_split=val")  # the run's own shards, by default
    assert result.returncode == 0, result.stderr
    figures = json.loads((out / "export_info.json").read_text())["verification"]
    int8 = figures["model_int8.tflite"]
    assert int8["keras_miou"] > 45, "the network did not learn: the checks below mean little"
    assert int8["ok"] and int8["label_agreement"] >= 0.9
    assert int8["keras_miou"] <= 100 and int8["miou_drop"] <= 2.0
    assert "mIoU" in result.stdout
    assert f"calibration / quantised evaluation data: {data} " in result.stdout
    missing = _run("export_model.py", f"--checkpoint_path={train}",
                   f"--export_path={tmp_path / 'no'}", "--format=tflite_int8")
    assert missing.returncode == 2 and "needs --calibration_split" in missing.stderr


@pytest.mark.parametrize("variant,trained,given,want", [
    ("nas_pnasnet", 16, None, 16),  # NAS: the output stride selects the network; kept
    ("nas_pnasnet", 16, 32, 32),
    ("mobilenet_v2", 16, None, 8),  # atrous backbones: the original export's 8
])
def test_export_output_stride_default(tmp_path, variant, trained, given, want):
    from deeplab.cli import export_model
    from deeplab.model.options import ModelOptions

    save_run_options(str(tmp_path), model=ModelOptions(model_variant=variant,
                                                       output_stride=trained))
    flags = export_model.FLAGS
    flags.unparse_flags()
    try:
        flags(["export_model"] + ([f"--output_stride={given}"] if given else []))
        assert export_model._stride_fields(str(tmp_path))["output_stride"] == want
    finally:
        flags.unparse_flags()

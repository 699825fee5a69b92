"""eval.py end to end in subprocesses: outputs, numbers equal the library's, clean errors."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from deeplab.utils import run_options

REPO = pathlib.Path(__file__).resolve().parent
IMAGE_SIZE = (40, 56)
NUM_VAL = 3
STEP = 42


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A synthetic dataset (3 val images, 40x56) and a training dir with one checkpoint.

    Returns {"data": dir, "train": dir, "prefix": checkpoint prefix, "options": ModelOptions}.
    The checkpoint stores a `step` of 42 and options.json as a training run would.
    """
    import tensorflow as tf

    from deeplab.checkpoints.io import model_checkpoint
    from deeplab.datasets.synthetic import write_synthetic_dataset
    from deeplab.evaluate.evaluator_test import calibrated_model
    from deeplab.model.options import ModelOptions
    from deeplab.utils.run_options import save_run_options

    root = tmp_path_factory.mktemp("tiny_run")
    data, train = root / "data", root / "train"
    descriptor = write_synthetic_dataset(str(data), num_train=1, num_val=NUM_VAL,
                                         image_size=IMAGE_SIZE, num_shards=2)
    options = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5,
                           num_classes=descriptor.num_classes)
    model = calibrated_model(options)  # labels that vary, so comparisons mean something
    checkpoint = model_checkpoint(model, step=tf.Variable(STEP, dtype=tf.int64))
    manager = tf.train.CheckpointManager(checkpoint, str(train), max_to_keep=None)
    prefix = manager.save()
    save_run_options(str(train), model=options)
    return {"data": str(data), "train": str(train), "prefix": prefix, "options": options}


def start(script: str, *args: str) -> subprocess.Popen:
    """Starts `python <script> args...` in the repository (TF's C++ logging quiet)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, str(REPO / script), *args], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_continuous_eval_writes_outputs_equal_to_the_library(tiny_run, tmp_path):
    from deeplab import entry
    from deeplab.data.descriptors import load_descriptor
    from deeplab.evaluate import evaluator
    from deeplab.inference.checkpoint_model import CheckpointModel
    from deeplab.model.predict import InferenceOptions

    run_options.mark_training_done(tiny_run["train"])
    logdir = tmp_path / "eval"
    process = start("eval.py", f"--checkpoint_dir={tiny_run['train']}",
                    f"--eval_logdir={logdir}", f"--dataset_dir={tiny_run['data']}",
                    "--eval_crop_size=", "--eval_window_size=32,32",
                    "--eval_window_stride=16,24", "--eval_interval_secs=0")
    # Meanwhile the same evaluation in-process.
    descriptor = load_descriptor(tiny_run["data"])
    predictor = CheckpointModel(entry.load_model(tiny_run["options"], tiny_run["prefix"]),
                                tiny_run["options"], InferenceOptions(window=(32, 32),
                                                                      window_stride=(16, 24)))
    expected = evaluator.run_evaluation(predictor, tiny_run["data"], "val", descriptor,
                                        evaluator.eval_input_options(descriptor, None),
                                        progress=False)
    code, out, err = finish(process)
    assert code == 0, err
    assert "mIoU" in out and "red_hstripes" in out and "images/s" in out
    assert "eval val: 3/3" in err  # the progress bar
    with open(logdir / f"metrics-{STEP}.json") as f:
        saved = json.load(f)
    assert saved["checkpoint"] == tiny_run["prefix"] and saved["num_images"] == NUM_VAL
    np.testing.assert_array_equal(saved["confusion_matrix"], expected.matrix)
    assert saved["eval_window_size"] == [32, 32]
    assert (logdir / "metrics.json").is_file()
    for name in ("per_class_iou.png", "confusion_matrix.png"):
        assert (logdir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(p.name.startswith("events.out.tfevents") for p in logdir.iterdir())


def test_bad_inputs_give_one_clear_line(tiny_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    ade = tmp_path / "ade"  # the same shards, read as ADE20K (151 classes)
    ade.mkdir()
    for shard in pathlib.Path(tiny_run["data"]).glob("val-*"):
        shutil.copy(shard, ade)
    common = [f"--eval_logdir={tmp_path / 'eval'}", "--max_number_of_evaluations=1",
              "--eval_crop_size=48,64"]
    cases = {
        "holds no checkpoint": [f"--checkpoint_dir={empty}",
                                f"--dataset_dir={tiny_run['data']}"],
        "no TFRecord shards match": [f"--checkpoint_dir={tiny_run['train']}",
                                     f"--dataset_dir={tiny_run['data']}", "--eval_split=test"],
        "logits have 6 classes but dataset 'ade20k' has 151": [
            f"--checkpoint_dir={tiny_run['train']}", f"--dataset_dir={ade}", "--dataset=ade20k"],
    }
    processes = {expected: start("eval.py", *args, *common) for expected, args in cases.items()}
    for expected, process in processes.items():
        code, _, err = finish(process)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2, err
        assert len(errors) == 1 and expected in errors[0], err
        assert "Traceback" not in err

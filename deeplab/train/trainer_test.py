"""The training loop in-process: what a run writes, resuming, divergence, fine-tuning."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import CheckpointError, restore_model, variable_map
from deeplab.data.pipeline import InputOptions
from deeplab.datasets.synthetic import write_synthetic_dataset
from deeplab.model.deeplab import build_model
from deeplab.model.options import ModelOptions
from deeplab.train.options import TrainOptions
from deeplab.train.schedules import DeepLabSchedule
from deeplab.train.trainer import DataOptions, Trainer, TrainingDiverged, train
from deeplab.utils.run_options import TRAINING_DONE

MODEL = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5, num_classes=6,
                     decoder_output_stride=4, aspp_convs_filters=16, decoder_filters=16)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("synthetic"))
    descriptor = write_synthetic_dataset(folder, num_train=8, num_val=4, image_size=(33, 33))
    return DataOptions("synthetic", folder, "train", descriptor.num_classes,
                       descriptor.ignore_label, InputOptions(crop_size=(33, 33)))


def options(logdir, **kwargs):
    defaults = dict(train_logdir=str(logdir), training_number_of_steps=3, train_batch_size=2,
                    base_learning_rate=0.01, log_steps=1, seed=1, save_interval_secs=3600)
    return TrainOptions(**{**defaults, **kwargs})


def strategy():
    return tf.distribute.OneDeviceStrategy("/cpu:0")


@pytest.fixture(scope="module")
def first_run(data, tmp_path_factory):
    """A finished 3-step run: (logdir, TrainResult). Tests copy it before changing it."""
    logdir = tmp_path_factory.mktemp("first_run")
    return logdir, train(MODEL, options(logdir), data, strategy())


def test_run_writes_checkpoint_events_options_and_marker(first_run, data):
    logdir, result = first_run
    assert result.step == 3 and np.isfinite(result.loss)
    assert result.checkpoint.endswith("model.ckpt-3")
    assert os.path.isfile(logdir / TRAINING_DONE)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logdir))
    saved = json.loads((logdir / "options.json").read_text())
    assert ModelOptions.from_dict(saved["model"]) == MODEL
    assert saved["train"]["training_number_of_steps"] == 3
    assert saved["data"]["dataset_dir"] == data.dataset_dir


def _copy(first_run, tmp_path):
    logdir = tmp_path / "run"
    shutil.copytree(first_run[0], logdir)
    return logdir


def test_resume_continues_at_saved_step_with_the_same_schedule(first_run, data, tmp_path):
    logdir = _copy(first_run, tmp_path)
    trainer = Trainer(MODEL, options(logdir, training_number_of_steps=5), data, strategy())
    trainer.restore()
    assert trainer.step == 3
    expected = float(DeepLabSchedule(trainer.options)(3))
    assert float(trainer.optimizer.learning_rate) == pytest.approx(expected)
    assert trainer.run().step == 5
    assert sorted(f for f in os.listdir(logdir) if f.endswith(".index")) == [
        "model.ckpt-3.index", "model.ckpt-5.index"]


def test_a_finished_run_started_again_runs_no_step_and_stays_done(first_run, data, tmp_path):
    logdir = _copy(first_run, tmp_path)
    result = train(MODEL, options(logdir), data, strategy())
    assert result.step == 3 and result.seconds_per_step == 0.0 and np.isnan(result.loss)
    assert os.path.isfile(logdir / TRAINING_DONE)  # continuous eval would wait forever
    assert sorted(f for f in os.listdir(logdir) if f.endswith(".index")) == ["model.ckpt-3.index"]


def test_other_model_options_in_the_same_logdir_are_refused(first_run, data):
    with pytest.raises(ValueError, match="other model options.*num_classes"):
        train(MODEL.replace(num_classes=7), options(first_run[0]), data, strategy())


def test_resumes_with_another_crop_size_synchronised_batch_norm_and_older_options(
        first_run, data, tmp_path):
    """Crop size and BatchNorm synchronisation are training choices, not the network: a run
    resumes with other values, also from an options.json written before they moved out of
    the model options (which then held crop_size and sync_batch_norm)."""
    logdir = _copy(first_run, tmp_path)
    saved = json.loads((logdir / "options.json").read_text())
    saved["model"].update(crop_size=[33, 33], sync_batch_norm=False)
    (logdir / "options.json").write_text(json.dumps(saved))
    bigger = dataclasses.replace(data, input=InputOptions(crop_size=(49, 49)))
    result = train(MODEL, options(logdir, training_number_of_steps=4, sync_batch_norm=True),
                   bigger, strategy())
    assert result.step == 4


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(first_run, data, tmp_path):
    logdir = _copy(first_run, tmp_path)
    trainer = Trainer(MODEL, options(logdir, training_number_of_steps=6), data, strategy())
    trainer.restore()
    kernel = variable_map(trainer.model)["logits/semantic/weights"]
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    trainer.restore = lambda: None  # keep the poisoned weights
    with pytest.raises(TrainingDiverged, match="at step 4.*model.ckpt-3"):
        trainer.run()
    assert not os.path.exists(logdir / "model.ckpt-4.index")


def test_fine_tunes_a_reference_checkpoint_with_another_class_count(
        data, tmp_path, reference_checkpoint):
    model = ModelOptions(model_variant="mobilenet_v2", num_classes=6)
    opts = options(tmp_path, training_number_of_steps=1,
                   tf_initial_checkpoint=reference_checkpoint("mobilenet_v2"),
                   initialize_last_layer=False, last_layers_contain_logits_only=True)
    trainer = Trainer(model, opts, data, strategy())
    trainer.restore()
    names = variable_map(trainer.model)
    reader = tf.train.load_checkpoint(reference_checkpoint("mobilenet_v2"))
    np.testing.assert_array_equal(names["MobilenetV2/Conv/weights"].numpy(),
                                  reader.get_tensor("MobilenetV2/Conv/weights"))
    np.testing.assert_array_equal(names["aspp0/weights"].numpy(),
                                  reader.get_tensor("aspp0/weights"))
    assert names["logits/semantic/weights"].shape == (1, 1, 256, 6)
    assert trainer.run().step == 1


@pytest.mark.slow
def test_xla_compiles_the_replica_step(data, tmp_path):
    result = train(MODEL, options(tmp_path, training_number_of_steps=1, xla=True), data,
                   strategy())
    assert result.step == 1 and np.isfinite(result.loss)


def _indexes(logdir):
    return sorted(f for f in os.listdir(logdir) if f.endswith(".index"))


def test_sigterm_saves_the_current_step_and_the_next_run_resumes_there(data, tmp_path):
    trainer = Trainer(MODEL, options(tmp_path, training_number_of_steps=50), data, strategy())
    make_step_fn = trainer.make_step_fn

    def terminating_step_fn():
        step_fn = make_step_fn()

        def step(iterator):
            values = step_fn(iterator)
            if trainer.step == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # as a job scheduler would
            return values
        return step

    trainer.make_step_fn = terminating_step_fn
    result = trainer.run()
    assert (result.step, result.stopped, result.signum) == (2, "SIGTERM", signal.SIGTERM)
    assert result.checkpoint.endswith("model.ckpt-2") and _indexes(tmp_path) == [
        "model.ckpt-2.index"]
    assert not os.path.exists(tmp_path / TRAINING_DONE)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler given back
    again = Trainer(MODEL, options(tmp_path, training_number_of_steps=50), data, strategy())
    again.restore()
    assert again.step == 2


def test_final_step_on_save_interval_is_written_once(data, tmp_path):
    trainer = Trainer(MODEL, options(tmp_path, training_number_of_steps=2,
                                     save_interval_steps=1), data, strategy())
    saves = []
    manager_save = trainer.manager.save
    trainer.manager.save = lambda **kw: saves.append(kw) or manager_save(**kw)
    assert trainer.run().checkpoint.endswith("model.ckpt-2")
    assert [kw["checkpoint_number"] for kw in saves] == [1, 2]


def test_failed_save_is_one_line_removes_partial_files_keeps_last_good(data, tmp_path):
    trainer = Trainer(MODEL, options(tmp_path, training_number_of_steps=1), data, strategy())
    good = trainer.run().checkpoint
    trainer = Trainer(MODEL, options(tmp_path, training_number_of_steps=2), data, strategy())

    def full_disk(checkpoint_number):
        partial = tmp_path / f"model.ckpt-{checkpoint_number}_temp"
        partial.mkdir()
        (partial / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(b"x" * 99)
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{partial}/part-00000-of-00001.data; No space left on device")

    trainer.manager.save = full_disk
    with pytest.raises(CheckpointError) as error:
        trainer.run()
    assert str(error.value) == (
        f"{tmp_path}/model.ckpt-2: saving step 2 failed (No space left on device); its partial "
        f"files are removed, the last good checkpoint is {good}")
    assert not os.path.exists(tmp_path / "model.ckpt-2_temp")
    assert _indexes(tmp_path) == ["model.ckpt-1.index"]
    restore_model(build_model(MODEL), good)


def test_damaged_newest_checkpoint_resumes_from_the_newest_intact_one(data, tmp_path, caplog):
    trainer = Trainer(MODEL, options(tmp_path, training_number_of_steps=2,
                                     save_interval_steps=1), data, strategy())
    trainer.run()
    options_json = (tmp_path / "options.json").read_text()
    newest = tmp_path / "model.ckpt-2.data-00000-of-00001"
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)
    (tmp_path / "model.ckpt-3_temp").mkdir()  # a save killed part-way
    again = Trainer(MODEL, options(tmp_path, training_number_of_steps=3), data, strategy())
    with caplog.at_level(logging.WARNING):
        again.restore()
    assert again.step == 1
    assert f"{newest}: variable " in caplog.text and "is damaged" in caplog.text
    assert (tmp_path / "options.json").read_text() == options_json
    assert os.path.isfile(tmp_path / TRAINING_DONE)  # untouched until a checkpoint is chosen
    assert again.run().step == 3
    assert not os.path.exists(tmp_path / "model.ckpt-3_temp")


def test_a_whole_checkpoint_the_state_file_misses_is_resumed_from(data, tmp_path, caplog):
    """A kill between writing model.ckpt-N.index and the state file: step N is not lost."""
    Trainer(MODEL, options(tmp_path, training_number_of_steps=1), data, strategy()).run()
    state_before_step_2 = (tmp_path / "checkpoint").read_text()
    Trainer(MODEL, options(tmp_path, training_number_of_steps=2), data, strategy()).run()
    (tmp_path / "checkpoint").write_text(state_before_step_2)
    again = Trainer(MODEL, options(tmp_path, training_number_of_steps=4, save_interval_steps=1,
                                   keep_checkpoint_max=2), data, strategy())
    with caplog.at_level(logging.INFO):
        again.restore()
    assert again.step == 2
    assert "model.ckpt-2 is whole but was not in the checkpoint state file" in caplog.text
    again.run()
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-4")
    assert _indexes(tmp_path) == ["model.ckpt-3.index", "model.ckpt-4.index"]


def test_every_checkpoint_damaged_is_an_error_that_leaves_the_run_alone(first_run, data,
                                                                       tmp_path):
    logdir = _copy(first_run, tmp_path)
    (logdir / "model.ckpt-3.data-00000-of-00001").write_bytes(b"")
    before = (logdir / "options.json").read_text()
    trainer = Trainer(MODEL, options(logdir, training_number_of_steps=5), data, strategy())
    with pytest.raises(CheckpointError, match="every checkpoint is damaged"):
        trainer.run()
    assert (logdir / "options.json").read_text() == before
    assert os.path.isfile(logdir / TRAINING_DONE)

"""Waiting for checkpoints: each once, newest only, interval, TRAINING_DONE, timeout."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from deeplab.checkpoints.io import CheckpointError
from deeplab.evaluate import continuous
from deeplab.utils import run_options


class FakeTime:
    """A clock that advances only when `sleep` is called; runs `on_sleep` hooks."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps = []
        self.on_sleep = on_sleep or (lambda t: None)

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(self)


class Trainer:
    """Writes checkpoints (with a `step` variable) the way CheckpointManager does."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.step = tf.Variable(0, dtype=tf.int64)
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=self.step),
                                                  self.directory, max_to_keep=None)

    def save(self, step):
        self.step.assign(step)
        return self.manager.save(checkpoint_number=step)


def test_yields_each_new_checkpoint_once_and_stops_when_training_is_done(tmp_path):
    trainer = Trainer(tmp_path)
    first = trainer.save(100)

    def train(t):  # a checkpoint at the 3rd sleep, the final one + marker at the 6th
        if len(t.sleeps) == 3:
            trainer.save(200)
        if len(t.sleeps) == 6:
            trainer.save(300)
            run_options.mark_training_done(trainer.directory)

    fake = FakeTime(train)
    seen = list(continuous.watch_checkpoints(trainer.directory, interval_secs=1.0,
                                             poll_secs=1.0, sleep=fake.sleep, clock=fake.clock))
    assert seen == [first, first[:-3] + "200", first[:-3] + "300"]
    assert [continuous.checkpoint_step(p) for p in seen] == [100, 200, 300]
    assert run_options.training_done(trainer.directory)


def test_only_the_newest_checkpoint_and_at_most_one_per_interval(tmp_path):
    trainer = Trainer(tmp_path)
    trainer.save(1)
    fake = FakeTime()
    watcher = continuous.watch_checkpoints(trainer.directory, interval_secs=60.0,
                                           poll_secs=5.0, sleep=fake.sleep, clock=fake.clock)
    assert continuous.checkpoint_step(next(watcher)) == 1
    trainer.save(2)
    newest = trainer.save(3)  # saved during the evaluation of step 1: step 2 is skipped
    assert next(watcher) == newest
    assert fake.now >= 60.0  # waited for the interval
    run_options.mark_training_done(trainer.directory)
    assert list(watcher) == []


def test_max_evaluations_and_timeout(tmp_path):
    trainer = Trainer(tmp_path)
    trainer.save(1)
    fake = FakeTime(lambda t: trainer.save(len(t.sleeps) + 1))
    two = list(continuous.watch_checkpoints(trainer.directory, 0.0, max_evaluations=2,
                                            poll_secs=1.0, sleep=fake.sleep, clock=fake.clock))
    assert len(two) == 2
    idle = FakeTime()
    once = list(continuous.watch_checkpoints(trainer.directory, 0.0, timeout_secs=30.0,
                                             poll_secs=10.0, sleep=idle.sleep, clock=idle.clock))
    assert len(once) == 1 and idle.now == pytest.approx(30.0)


def test_missing_directory_and_finished_training_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        next(continuous.watch_checkpoints(str(tmp_path / "missing")))
    run_options.mark_training_done(str(tmp_path))
    with pytest.raises(CheckpointError, match="TRAINING_DONE is there.*no checkpoint"):
        next(continuous.watch_checkpoints(str(tmp_path), sleep=lambda s: None))
    run_options.clear_training_done(str(tmp_path))
    assert not run_options.training_done(str(tmp_path))


def test_checkpoints_to_evaluate_once(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        next(continuous.checkpoints_to_evaluate(str(tmp_path), max_evaluations=1))
    trainer = Trainer(tmp_path)
    prefix = trainer.save(5)
    assert list(continuous.checkpoints_to_evaluate(str(tmp_path), max_evaluations=1)) == [prefix]
    # A prefix instead of a directory: that checkpoint once, whatever max_evaluations says.
    assert list(continuous.checkpoints_to_evaluate(prefix, max_evaluations=0)) == [prefix]


def test_checkpoint_step_falls_back_to_the_suffix(tmp_path):
    plain = tf.train.Checkpoint(v=tf.Variable(1.0))
    assert continuous.checkpoint_step(plain.write(str(tmp_path / "model.ckpt-1234"))) == 1234
    assert continuous.checkpoint_step(plain.write(str(tmp_path / "model.ckpt"))) is None
    assert continuous.checkpoint_step(os.path.join(str(tmp_path), "absent-7")) == 7

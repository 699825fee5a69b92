"""Learning-rate schedules against the closed-form formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deeplab.train.options import TrainOptions
from deeplab.train.schedules import DeepLabSchedule


def rate(step, **kwargs):
    return float(DeepLabSchedule(TrainOptions(train_logdir="x", **kwargs))(step))


def test_poly_decays_to_end_rate():
    kw = dict(base_learning_rate=0.01, training_number_of_steps=1000, learning_power=0.9)
    assert rate(0, **kw) == pytest.approx(0.01)
    assert rate(500, **kw) == pytest.approx(0.01 * 0.5 ** 0.9, rel=1e-5)
    assert rate(1000, **kw) == pytest.approx(0.0, abs=1e-9)
    assert rate(2000, **kw) == pytest.approx(0.0, abs=1e-9)
    with_end = rate(250, **kw, end_learning_rate=0.001, decay_steps=500)
    assert with_end == pytest.approx(0.009 * 0.5 ** 0.9 + 0.001, rel=1e-5)


def test_step_policy():
    kw = dict(learning_policy="step", base_learning_rate=0.1, learning_rate_decay_step=100,
              learning_rate_decay_factor=0.5)
    assert [rate(s, **kw) for s in (0, 99, 100, 250)] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_cosine_and_slow_start():
    kw = dict(learning_policy="cosine", base_learning_rate=0.02, training_number_of_steps=400,
              end_learning_rate=0.0)
    assert rate(0, **kw) == pytest.approx(0.02)
    assert rate(100, **kw) == pytest.approx(0.01 * (1 + math.cos(math.pi / 4)), rel=1e-5)
    assert rate(400, **kw) == pytest.approx(0.0, abs=1e-9)
    slow = dict(kw, slow_start_step=50, slow_start_learning_rate=1e-4)
    assert rate(49, **slow) == pytest.approx(1e-4)
    assert rate(50, **slow) == pytest.approx(rate(50, **kw))


def test_adam_uses_its_own_rate():
    assert rate(0, optimizer="adam", adam_learning_rate=0.003) == pytest.approx(0.003)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="learning_policy"):
        TrainOptions(train_logdir="x", learning_policy="exp")
    with pytest.raises(ValueError, match="divisible by num_clones"):
        TrainOptions(train_logdir="x", train_batch_size=6, num_clones=4)
    assert np.isfinite(rate(10**6))

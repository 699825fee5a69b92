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


def test_cosine():
    kw = dict(learning_policy="cosine", base_learning_rate=0.02, training_number_of_steps=400,
              end_learning_rate=0.0)
    assert rate(0, **kw) == pytest.approx(0.02)
    assert rate(100, **kw) == pytest.approx(0.01 * (1 + math.cos(math.pi / 4)), rel=1e-5)
    assert rate(400, **kw) == pytest.approx(0.0, abs=1e-9)


def test_slow_start_offsets_the_policy_as_the_original():
    """Before slow_start_step: the slow rate; after it the policy starts from its own step 0
    and decays over the remaining steps (train_utils.get_model_learning_rate)."""
    kw = dict(base_learning_rate=0.01, training_number_of_steps=1000, learning_power=0.9,
              slow_start_step=200, slow_start_learning_rate=1e-4)
    assert rate(199, **kw) == pytest.approx(1e-4)
    assert rate(200, **kw) == pytest.approx(0.01)
    assert rate(600, **kw) == pytest.approx(0.01 * 0.5 ** 0.9, rel=1e-6)
    assert rate(1000, **kw) == pytest.approx(0.0, abs=1e-9)
    step = dict(learning_policy="step", base_learning_rate=0.1, learning_rate_decay_step=100,
                learning_rate_decay_factor=0.5, slow_start_step=50)
    assert [rate(s, **step) for s in (50, 149, 150)] == pytest.approx([0.1, 0.1, 0.05])
    cosine = dict(learning_policy="cosine", base_learning_rate=0.02,
                  training_number_of_steps=450, slow_start_step=50)
    assert rate(150, **cosine) == pytest.approx(0.01 * (1 + math.cos(math.pi / 4)), rel=1e-5)


def test_the_rate_is_float32_arithmetic_as_tf1():
    """Every value is float32 math on float32 constants (TF1's polynomial_decay)."""
    kw = dict(base_learning_rate=0.01, training_number_of_steps=8, learning_power=0.9)
    want = [np.float32(0.01) * np.power(np.float32(1) - np.float32(k) / np.float32(8),
                                        np.float32(0.9), dtype=np.float32) for k in range(8)]
    assert [rate(k, **kw) for k in range(8)] == pytest.approx(want, rel=2.5e-7)


def test_adam_runs_at_its_constant_rate():
    """The original hands --adam_learning_rate to AdamOptimizer as is: no policy and no
    slow start, whatever --learning_policy says."""
    kw = dict(optimizer="adam", adam_learning_rate=0.003, training_number_of_steps=100,
              slow_start_step=10, slow_start_learning_rate=1e-6)
    assert [rate(s, **kw) for s in (0, 5, 50, 99)] == pytest.approx([0.003] * 4)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="learning_policy"):
        TrainOptions(train_logdir="x", learning_policy="exp")
    with pytest.raises(ValueError, match="divisible by num_clones"):
        TrainOptions(train_logdir="x", train_batch_size=6, num_clones=4)
    assert np.isfinite(rate(10**6))

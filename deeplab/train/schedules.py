"""Learning-rate schedules of the original DeepLab (poly, step) plus cosine, with slow start."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from deeplab.train.options import TrainOptions


class DeepLabSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate as a function of the optimizer step (0-based); see TrainOptions."""

    def __init__(self, options: TrainOptions):
        self.options = options

    def __call__(self, step):
        o = self.options
        step = tf.cast(step, tf.float32)
        base = o.adam_learning_rate if o.optimizer == "adam" else o.base_learning_rate
        decay_steps = float(o.total_decay_steps)
        if o.learning_policy == "step":
            rate = base * tf.pow(o.learning_rate_decay_factor,
                                 tf.floor(step / float(o.learning_rate_decay_step)))
        elif o.learning_policy == "poly":
            progress = tf.minimum(step, decay_steps) / decay_steps
            rate = (base - o.end_learning_rate) * tf.pow(1.0 - progress, o.learning_power) \
                + o.end_learning_rate
        else:
            progress = tf.minimum(step, decay_steps) / decay_steps
            rate = o.end_learning_rate + 0.5 * (base - o.end_learning_rate) * (
                1.0 + tf.cos(math.pi * progress))
        if o.slow_start_step > 0:
            rate = tf.where(step < o.slow_start_step, o.slow_start_learning_rate, rate)
        return rate

    def get_config(self):
        return {"options": self.options}

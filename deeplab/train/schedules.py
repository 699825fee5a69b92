"""Learning-rate schedules of the original DeepLab (poly, step) plus cosine, with slow start.

The rules are the original train_utils' (`get_model_learning_rate`), computed in float32 as
TF1 did:
- momentum: the policy runs on the adjusted step max(step - slow_start_step, 0); poly and
  cosine decay over `decay_steps` or, when that is 0, training_number_of_steps -
  slow_start_step; before slow_start_step the rate is slow_start_learning_rate.
- adam: the constant adam_learning_rate (the original passes it to AdamOptimizer as is: no
  policy, no slow start).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from deeplab.train.options import TrainOptions


class DeepLabSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate (float32 scalar) as a function of the optimizer step (0-based)."""

    def __init__(self, options: TrainOptions):
        self.options = options

    def __call__(self, step):
        o = self.options
        if o.optimizer == "adam":
            return tf.constant(o.adam_learning_rate, tf.float32)
        step = tf.cast(step, tf.float32)
        adjusted = tf.maximum(step - float(o.slow_start_step), 0.0)
        base = tf.constant(o.base_learning_rate, tf.float32)
        end = tf.constant(o.end_learning_rate, tf.float32)
        decay_steps = tf.constant(o.total_decay_steps, tf.float32)
        if o.learning_policy == "step":
            exponent = tf.floor(adjusted / float(o.learning_rate_decay_step))
            rate = base * tf.pow(tf.constant(o.learning_rate_decay_factor, tf.float32),
                                 exponent)
        elif o.learning_policy == "poly":
            progress = tf.minimum(adjusted, decay_steps) / decay_steps
            rate = (base - end) * tf.pow(1.0 - progress, o.learning_power) + end
        else:
            progress = tf.minimum(adjusted, decay_steps) / decay_steps
            decayed = 0.5 * (1.0 + tf.cos(math.pi * progress))
            rate = (base - end) * decayed + end
        if o.slow_start_step > 0:
            rate = tf.where(step < float(o.slow_start_step),
                            tf.constant(o.slow_start_learning_rate, tf.float32), rate)
        return rate

    def get_config(self):
        return {"options": self.options}

"""The optimizers of training: TF1's momentum rule (the original's) and Adam.

    optimizer = make_optimizer(train_options)

TF1's `MomentumOptimizer` keeps an accumulator of gradients, `a = m * a + g`, and applies
`w -= lr * a`; `keras.optimizers.SGD` keeps a velocity of updates, `v = m * v - lr * g`,
`w += v`. The two agree while the rate is constant and differ whenever it changes (poly
decay, the end of slow start): an old gradient is applied at today's rate in TF1's rule and
at its own step's rate in Keras'. `--momentum_update=tf1` (default) is the original's,
`keras` the other. Adam is Keras' (the same update as TF1's AdamOptimizer).
"""

from __future__ import annotations

import keras
from keras import ops

from deeplab.train.options import TrainOptions
from deeplab.train.schedules import DeepLabSchedule


@keras.saving.register_keras_serializable(package="deeplab")
class TF1Momentum(keras.optimizers.Optimizer):
    """TF1 MomentumOptimizer (use_nesterov False): a = momentum * a + g; w -= lr * a.

    The slot `accumulator` of each variable holds TF1's `a` (starting at 0), so a TF1
    run's `<var>/Momentum` slot loads into it unchanged.
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, name="tf1_momentum",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum={momentum} must be in [0, 1]")
        self.momentum = momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.accumulators = self.add_optimizer_variables(variables, "accumulator")

    def accumulator(self, variable):
        """TF1's accumulator `a` of `variable`."""
        return self.accumulators[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        accumulator = self.accumulator(variable)
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(accumulator, ops.add(ops.multiply(accumulator, momentum), gradient))
        self.assign_sub(variable, ops.multiply(lr, accumulator))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


def make_optimizer(options: TrainOptions) -> keras.optimizers.Optimizer:
    """The optimizer `options` ask for, on `DeepLabSchedule`; fp16 adds loss scaling."""
    schedule = DeepLabSchedule(options)
    if options.optimizer == "adam":
        optimizer = keras.optimizers.Adam(schedule, epsilon=options.adam_epsilon)
    elif options.momentum_update == "tf1":
        optimizer = TF1Momentum(schedule, momentum=options.momentum)
    else:
        optimizer = keras.optimizers.SGD(schedule, momentum=options.momentum)
    if options.precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def optimizer_slots(optimizer: keras.optimizers.Optimizer, variable) -> dict:
    """{slot name: Keras variable} the optimizer keeps for `variable`, in TF1's terms:
    `momentum_accumulator` (TF1Momentum), `adam_m` / `adam_v` (Adam), `velocity` (SGD)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    index = inner._get_variable_index(variable)
    if isinstance(inner, TF1Momentum):
        return {"momentum_accumulator": inner.accumulators[index]}
    if isinstance(inner, keras.optimizers.Adam):
        return {"adam_m": inner._momentums[index], "adam_v": inner._velocities[index]}
    if isinstance(inner, keras.optimizers.SGD) and inner.momentum:
        return {"velocity": inner.momentums[index]}
    return {}

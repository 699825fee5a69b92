"""Synchronized BatchNorm: batch statistics over the global batch of all replicas.

    layer = BatchNormalization(epsilon=1e-5, momentum=0.9997, name="conv/BatchNorm")

Under a tf.distribute strategy with N > 1 replicas, training-mode moments are those of the
global batch, and so are their gradients: a step on N replicas equals the step on one device
that sees the whole batch. Elsewhere (one replica, no strategy, inference, frozen layer) the
layer is exactly `keras.layers.BatchNormalization`.

Why not `keras.layers.BatchNormalization(synchronized=True)`: it issues three
`ReplicaContext.all_reduce` per layer (sum, sum of squares, count), each wrapped by TF in a
graph-mode `tf.custom_gradient` that walks the graph behind its output to look for
variables. Under MirroredStrategy the all-reduced output of one replica depends on the inputs
of every replica, so each of those walks covers the whole multi-replica graph (minutes of
tracing with 8 replicas). Here each layer makes one all-reduce of
concat([sum, sum of squares, count]) through `merge_call` + `batch_reduce_to` (no TF
gradient wrapper), inside our own custom gradient whose output is cut from the graph by a
`stop_gradient` (so its variable walk stops at once) and whose gradient is the all-reduce of
the upstream gradient.

The class keeps the name `BatchNormalization` (and subclasses Keras'), so code keyed on the
class name or `isinstance(layer, keras.layers.BatchNormalization)` treats it as BatchNorm.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_SUM = tf.distribute.ReduceOp.SUM


def _uses_merge_call(strategy: tf.distribute.Strategy) -> bool:
    # Mirrored/MultiWorkerMirrored strategies skip merge_call only under XLA on all-GPU
    # devices; everything else (OneDevice, Mirrored on CPU/GPU, MWMS) uses it.
    use = getattr(strategy.extended, "_use_merge_call", None)
    return True if use is None else bool(use())


def _all_reduce_sum(ctx: tf.distribute.ReplicaContext, value: tf.Tensor) -> tf.Tensor:
    """Sum of `value` over the replicas, as a value without gradient.

    Every replica must call this in the same order (as for any all-reduce): the callers are
    the forward pass of a layer and its backward pass, which every replica traces alike.
    """
    if _uses_merge_call(ctx.strategy):
        def reduce(strategy, per_replica):
            return strategy.extended.batch_reduce_to(_SUM, [(per_replica, per_replica)])[0]

        total = ctx.merge_call(reduce, args=(value,))
    else:
        total = ctx.all_reduce(_SUM, value)
    return tf.stop_gradient(total)


@tf.custom_gradient
def cross_replica_sum(value: tf.Tensor):
    """Sum over the replicas of the current replica context; differentiable.

    The gradient with respect to each replica's `value` is the sum over replicas of the
    upstream gradients (the gradient of an all-sum is an all-sum).
    """
    ctx = tf.distribute.get_replica_context()
    # The result comes out of a stop_gradient, so tf.custom_gradient's search for variables
    # behind it ends there instead of walking the other replicas' graphs.
    total = _all_reduce_sum(ctx, value)

    def grad(upstream):
        return _all_reduce_sum(ctx, upstream)

    return total, grad


def sync_moments(x: tf.Tensor, axes, shift: tf.Tensor | None = None):
    """Mean and variance of `x` over `axes` and over all replicas; shapes [C].

    One replica (or no replica context): `tf.nn.moments`. Otherwise one all-reduce of the
    local [sum, sum of squares, count] of x - shift; `shift` (same on every replica, e.g. the
    moving mean; no gradient) only improves the precision of E[x^2] - E[x]^2.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tf.nn.moments(x, axes)
    centred = x if shift is None else x - tf.stop_gradient(tf.cast(shift, x.dtype))
    shape = tf.shape(x)
    count = tf.cast(tf.reduce_prod(tf.gather(shape, axes)), x.dtype)
    local = tf.concat([tf.reduce_sum(centred, axes), tf.reduce_sum(tf.square(centred), axes),
                       count[None]], axis=0)
    total = cross_replica_sum(local)
    sums, squares = tf.split(total[:-1], 2)
    n = total[-1]
    mean = tf.math.divide_no_nan(sums, n)
    variance = tf.maximum(tf.math.divide_no_nan(squares, n) - tf.square(mean), 0.0)
    if shift is not None:
        mean = mean + tf.stop_gradient(tf.cast(shift, x.dtype))
    return mean, variance


@keras.saving.register_keras_serializable(package="deeplab")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose `synchronized=True` (the default here) is
    correct and fast to trace; see the module docstring. With a mask the statistics are
    the replica's own (as in Keras)."""

    def __init__(self, *args, synchronized: bool = True, **kwargs):
        super().__init__(*args, synchronized=synchronized, **kwargs)

    def _moments(self, inputs, mask):
        if not self.synchronized or mask is not None:
            return super()._moments(inputs, mask)
        return sync_moments(inputs, self._reduction_axes, shift=self.moving_mean)

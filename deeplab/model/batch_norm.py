"""BatchNorm for every network here: synchronized statistics across replicas on request,
fused kernels on one replica, no float32 round trips in half precision.

    layer = BatchNormalization(epsilon=1e-5, momentum=0.9997, name="conv/BatchNorm")

Under a tf.distribute strategy with N > 1 replicas, training-mode moments are those of the
global batch, and so are their gradients: a step on N replicas equals the step on one device
that sees the whole batch. Elsewhere (one replica, no strategy, inference, frozen layer) the
layer computes the function of `keras.layers.BatchNormalization`, with the same variable
updates, through faster kernels (see `BatchNormalization.call`).

Why not `keras.layers.BatchNormalization(synchronized=True)`: its gradient is right, but it
issues three `ReplicaContext.all_reduce` per layer (sum, sum of squares, count), each wrapped
by TF in a graph-mode `tf.custom_gradient` that walks the graph behind its output to look
for variables. Under MirroredStrategy the all-reduced output of one replica depends on the
inputs of every replica, so each walk covers the whole multi-replica graph (many minutes of
tracing with 8 replicas). It also takes the variance as E[x^2] - E[x]^2, less precise than
one device's two-pass `tf.nn.moments`.

Here each layer makes one all-reduce (every replica's [mean, sum of squared deviations,
count]) through `merge_call` + `batch_reduce_to`, without TF's gradient wrapper, inside our
own custom gradient whose output leaves through a `stop_gradient` (so the variable walk
stops at once) and whose gradient is the all-reduce of the upstream gradient.

The class subclasses Keras' `BatchNormalization` (and keeps its name), so
`isinstance(layer, keras.layers.BatchNormalization)` treats it as BatchNorm.
"""

from __future__ import annotations

import contextlib
import threading

import keras
import tensorflow as tf

_SUM = tf.distribute.ReduceOp.SUM
_FROZEN = threading.local()


@contextlib.contextmanager
def moving_statistics_frozen(frozen: bool = True):
    """Within it (when `frozen`), training calls normalise with batch statistics as usual but
    do not update the moving ones: for a forward pass computed again (recomputation in the
    backward pass), whose statistics the first pass has already averaged in."""
    previous = getattr(_FROZEN, "value", False)
    _FROZEN.value = previous or frozen
    try:
        yield
    finally:
        _FROZEN.value = previous


def _uses_merge_call(strategy: tf.distribute.Strategy) -> bool:
    # Mirrored/MultiWorkerMirrored strategies skip merge_call only under XLA on all-GPU
    # devices; everything else (OneDevice, Mirrored on CPU/GPU, MWMS) uses it.
    use = getattr(strategy.extended, "_use_merge_call", None)
    return True if use is None else bool(use())


@tf.autograph.experimental.do_not_convert
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
@tf.autograph.experimental.do_not_convert
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


@tf.autograph.experimental.do_not_convert
def sync_moments(x: tf.Tensor, axes):
    """Mean and variance of `x` over `axes` and over all replicas; shapes [C]."""
    mean, variance, _ = global_moments(x, axes)
    return mean, variance


@tf.autograph.experimental.do_not_convert
def global_moments(x: tf.Tensor, axes):
    """Mean [C], population variance [C] and value count (scalar, x's dtype) of `x` over
    `axes` and over all replicas.

    One replica (or no replica context): `tf.nn.moments`. Otherwise each replica computes
    its count n_r, mean m_r and sum of squared deviations M2_r (two-pass, as tf.nn.moments),
    one all-reduce gathers every replica's [m_r, M2_r, n_r] (each in its own row of an
    R x (2C + 1) matrix, zeros elsewhere), and every replica combines them (Chan et al.):
    mean = sum n_r m_r / N, variance = (sum M2_r + sum n_r (m_r - mean)^2) / N. Unlike
    E[x^2] - E[x]^2 this loses no precision when the mean is large against the deviation,
    and it allows different batch sizes on different replicas.
    """
    ctx = tf.distribute.get_replica_context()
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), x.dtype)
    if ctx is None or ctx.num_replicas_in_sync == 1:
        mean, variance = tf.nn.moments(x, axes)
        return mean, variance, count
    replicas = ctx.num_replicas_in_sync
    mean = tf.reduce_mean(x, axes, keepdims=True)
    # As tf.nn.moments: no gradient through the mean here (its true gradient is 0).
    squares = tf.reduce_sum(tf.math.squared_difference(x, tf.stop_gradient(mean)), axes)
    local = tf.concat([tf.reshape(mean, [-1]), squares, count[None]], axis=0)
    slot = tf.one_hot(ctx.replica_id_in_sync_group, replicas, dtype=x.dtype)
    gathered = cross_replica_sum(slot[:, None] * local[None, :])  # [R, 2C + 1]
    means, squares = tf.split(gathered[:, :-1], 2, axis=1)
    counts = gathered[:, -1:]
    total = tf.reduce_sum(counts)
    mean = tf.math.divide_no_nan(tf.reduce_sum(counts * means, 0), total)
    spread = tf.reduce_sum(counts * tf.square(means - mean), 0)
    variance = tf.math.divide_no_nan(tf.reduce_sum(squares, 0) + spread, total)
    return mean, variance, tf.stop_gradient(total)


def bessel_correction(count):
    """n / (n - 1) for n values (1 for n <= 1), as TF1's fused BatchNorm kernel applies to
    the variance it returns (and the original averages into moving_variance)."""
    return count / tf.maximum(count - 1.0, 1.0)


@keras.saving.register_keras_serializable(package="deeplab")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose `synchronized=True` (the default here) is
    correct and fast to trace; see the module docstring. With a mask the statistics are
    the replica's own (as in Keras).

    Two rules of the original's (TF1 fused) BatchNorm that Keras' does not follow:
    - the moving variance averages the Bessel-corrected batch variance, n / (n - 1) times
      the variance it normalises with (n values per channel over the global batch);
    - `frozen_statistics` (the original's fine_tune_batch_norm=False): training calls
      normalise with the moving statistics and leave them alone, while gamma and beta stay
      trainable (Keras' `trainable = False` would freeze those too).
    """

    def __init__(self, *args, synchronized: bool = True, frozen_statistics: bool = False,
                 **kwargs):
        super().__init__(*args, synchronized=synchronized, **kwargs)
        self.frozen_statistics = frozen_statistics

    def _moments(self, inputs, mask):
        if not self.synchronized or mask is not None:
            return super()._moments(inputs, mask)
        return sync_moments(inputs, self._reduction_axes)

    _folded_into = None  # weak reference to the convolution that folds this layer

    def uses_moving_statistics(self, training) -> bool:
        """Whether a call with this `training` normalises with the moving statistics."""
        return self.frozen_statistics or not (training and self.trainable)

    def moving_scale_offset(self):
        """The inference transform y = x * scale + offset; float32 [C] each."""
        scale = tf.math.rsqrt(tf.cast(self.moving_variance, tf.float32) + self.epsilon)
        if self.scale:
            scale *= tf.cast(self.gamma, tf.float32)
        offset = -tf.cast(self.moving_mean, tf.float32) * scale
        if self.center:
            offset += tf.cast(self.beta, tf.float32)
        return scale, offset

    def call(self, inputs, training=None, mask=None):
        """Keras' BatchNorm, faster where it can be (same function, same variable updates).

        - Moving statistics, folded into the preceding convolution
          (`deeplab.model.folded_conv.fold_batch_norm`): the input, already normalised by that
          convolution, passes through.
        - Moving statistics, bfloat16/float16 input: one multiply-add in the compute dtype.
          Keras casts half-precision inputs to float32 and back around every BatchNorm,
          which costs more than the convolutions gain.
        - Batch statistics of this replica alone (one replica, or not synchronized): one
          FusedBatchNormV3 (and one fused gradient) instead of Keras' ~15 elementwise and
          reduction ops; see `_fused_training`.

        - Batch statistics over several replicas: `global_moments` (one all-reduce).

        Masks and renorm are Keras' own code (population variance in the moving average).
        """
        last_axis = self.axis in (-1, len(inputs.shape) - 1)
        if not self.uses_moving_statistics(training):
            if mask is None and not self.renorm:
                local = not self.synchronized or _one_replica()
                if local and last_axis:
                    return self._fused_training(inputs)
                return self._synced_training(inputs)
            return super().call(inputs, training=training, mask=mask)
        folded = self._folded_into is not None and self._folded_into() is not None
        if mask is None and folded:
            return inputs
        half = inputs.dtype in (tf.bfloat16, tf.float16)
        if mask is not None or not (half and last_axis):
            return super().call(inputs, training=False, mask=mask)
        scale, offset = self.moving_scale_offset()
        return inputs * tf.cast(scale, inputs.dtype) + tf.cast(offset, inputs.dtype)

    def _fused_training(self, inputs):
        """Normalise [..., C] `inputs` with their own batch moments; update the moving ones.

        oneDNN's fused kernel is fast in bfloat16 only when C is a multiple of 16 (2-3x
        slower than float32 otherwise, e.g. Xception's 728), so other widths go through
        float32 (see `fused_batch_norm_training`). The kernel returns the Bessel-corrected
        variance, which the moving average takes as it is (the original's rule).
        """
        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        flat = tf.reshape(inputs, [1, -1, 1, channels]) if len(inputs.shape) != 4 else inputs
        y, mean, variance = fused_batch_norm_training(flat, gamma, beta, self.epsilon)
        self._update_moving_statistics(mean, variance)
        return tf.cast(tf.reshape(y, tf.shape(inputs)), self.compute_dtype)

    def _synced_training(self, inputs):
        """Normalise with the moments of the global batch (every replica's values);
        update the moving ones with the Bessel-corrected variance."""
        x = tf.cast(inputs, tf.float32)
        mean, variance, count = global_moments(x, self._reduction_axes)
        self._update_moving_statistics(mean, variance * bessel_correction(count))
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else None
        beta = tf.cast(self.beta, tf.float32) if self.center else None
        shape = [1] * len(inputs.shape)
        shape[self.axis] = inputs.shape[self.axis]
        y = tf.nn.batch_normalization(
            x, tf.reshape(mean, shape), tf.reshape(variance, shape),
            None if beta is None else tf.reshape(beta, shape),
            None if gamma is None else tf.reshape(gamma, shape), self.epsilon)
        return tf.cast(y, self.compute_dtype)

    def _update_moving_statistics(self, mean, variance):
        """moving -= (moving - batch) * (1 - decay) for mean and variance [C], in float32
        with 1 - decay formed from float32(decay), as TF1's assign_moving_average; nothing
        within `moving_statistics_frozen`."""
        if getattr(_FROZEN, "value", False):
            return
        rate = 1.0 - tf.constant(self.momentum, tf.float32)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            value = tf.cast(moving, tf.float32)
            moving.assign(tf.cast(value - (value - batch) * rate, moving.dtype))

    def get_config(self):
        return {**super().get_config(), "frozen_statistics": self.frozen_statistics}


def _kernel_dtype(x: tf.Tensor) -> tf.DType:
    """The dtype FusedBatchNorm runs in for `x` [..., C]: bfloat16 if x is bfloat16 with C a
    multiple of 16 (the widths oneDNN's bfloat16 kernel is fast on), else float32."""
    if x.dtype == tf.bfloat16 and x.shape[-1] % 16 == 0:
        return tf.bfloat16
    return tf.float32


def fused_batch_norm_training(x, gamma, beta, epsilon: float):
    """Batch-statistics BatchNorm of NHWC `x` through FusedBatchNormV3 / its gradient.

    Args: x [N, H, W, C] (any float dtype); gamma, beta float32 [C].
    Returns (y [N, H, W, C] in the kernel dtype, batch mean float32 [C], Bessel-corrected
    batch variance float32 [C]).

    When x is cast to float32 for the kernel, the backward pass casts it again rather than
    keeping the float32 copy alive from forward to backward (in a bfloat16 training step
    those copies were 0.72 GB of Xception-65's activations at 513x513, batch 2).
    """
    dtype = _kernel_dtype(x)
    empty = tf.zeros([0], tf.float32)

    @tf.custom_gradient
    def run(x, gamma, beta):
        y, mean, variance, reserve_1, reserve_2, reserve_3 = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(x, dtype), scale=gamma, offset=beta, mean=empty, variance=empty,
            epsilon=epsilon, data_format="NHWC", is_training=True)

        def grad(dy, unused_dmean, unused_dvariance):
            # Tie the second cast to dy so grappler cannot merge it with the forward one.
            with tf.control_dependencies([dy]):
                again = tf.cast(tf.identity(x), dtype)
            dx, dgamma, dbeta, _, _ = tf.raw_ops.FusedBatchNormGradV3(
                y_backprop=tf.cast(dy, dtype), x=again, scale=gamma,
                reserve_space_1=reserve_1, reserve_space_2=reserve_2,
                reserve_space_3=reserve_3, epsilon=epsilon, data_format="NHWC",
                is_training=True)
            return tf.cast(dx, x.dtype), dgamma, dbeta

        return (y, mean, variance), grad

    return run(x, gamma, beta)


def _one_replica() -> bool:
    ctx = tf.distribute.get_replica_context()
    return ctx is None or ctx.num_replicas_in_sync == 1

"""TensorBoard output of a training run: scalars, and input / label / prediction images."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from deeplab.data.descriptors import load_descriptor
from deeplab.data.pipeline import make_dataset
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.vis.colormap import colorize, dataset_palette

IMAGE_BATCH = 2


def _colormap_for(data):
    """The palette of the training data's descriptor (see `colormap.dataset_palette`)."""
    return dataset_palette(load_descriptor(data.dataset_dir, data.dataset))


class SummaryWriter:
    """Writes to `logdir` (None: writes nothing, as on non-chief workers).

    Images (every save_summaries_secs, with save_summaries_images) come from a separate
    two-image batch of the training split run in inference mode, in the dataset's colours.
    """

    def __init__(self, logdir: str | None, data, options, extra_scalars: dict | None = None):
        """extra_scalars: {name: value} written with the scalars of every logged step."""
        self.data, self.options = data, options
        self.extra_scalars = dict(extra_scalars or {})
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
        self.last_images = time.monotonic()
        self._batches = None

    def scalars(self, step: int, values: dict) -> None:
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for name, value in {**values, **self.extra_scalars}.items():
                tf.summary.scalar(name, value)

    def maybe_images(self, step: int, model) -> None:
        if self.writer is None or not self.options.save_summaries_images:
            return
        if time.monotonic() - self.last_images < self.options.save_summaries_secs and step > 1:
            return
        self.last_images = time.monotonic()
        if self._batches is None:
            self._batches = iter(make_dataset(
                self.data.dataset_dir, self.data.train_split, IMAGE_BATCH, self.data.input,
                training=True, seed=0))
        batch = next(self._batches)
        logits = tf.cast(model(batch["image"], training=False), tf.float32)
        up = resize_bilinear_align_corners(logits, tf.shape(batch["image"])[1:3])
        prediction = tf.argmax(up, -1).numpy()
        label = batch["label"][..., 0].numpy()
        name = _colormap_for(self.data)
        with self.writer.as_default(step=step):
            tf.summary.image("image", tf.cast(batch["image"], tf.uint8), max_outputs=IMAGE_BATCH)
            tf.summary.image("label", np.stack([colorize(x, name) for x in label]),
                             max_outputs=IMAGE_BATCH)
            tf.summary.image("prediction", np.stack([colorize(x, name) for x in prediction]),
                             max_outputs=IMAGE_BATCH)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


class ProfileWindow:
    """TensorBoard's profiler over `steps` training steps after `warmup` ones (the first
    steps trace and compile), written to `logdir` (the original's --profile_logdir); open
    it with `tensorboard --logdir=LOGDIR`, Profile tab. None: profiles nothing."""

    def __init__(self, logdir: str | None, start_step: int, warmup: int = 2, steps: int = 3):
        self.logdir = logdir
        self.first, self.last = start_step + warmup, start_step + warmup + steps
        self.active = False

    def before_step(self, step: int) -> None:
        """Called with the step about to run (the optimizer's iteration count)."""
        if self.logdir and not self.active and self.first <= step < self.last:
            tf.profiler.experimental.start(self.logdir)
            self.active = True

    def after_step(self, step: int) -> None:
        """Called with the step count after the step ran."""
        if self.active and step >= self.last:
            self.stop()

    def stop(self) -> None:
        if self.active:
            tf.profiler.experimental.stop()
            self.active = False

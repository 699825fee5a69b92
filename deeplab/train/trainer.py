"""The training loop: one custom loop over `strategy.run` for every tf.distribute strategy.

    result = train(model_options, train_options, data_options, strategy)

Writes into train_logdir: `options.json` (model, train and data options), checkpoints
`model.ckpt-<step>` (the newest keep_checkpoint_max), TensorBoard events, and `TRAINING_DONE`
when the last step is saved. A run started again with the same logdir resumes at the newest
intact checkpoint with the same schedule (the step is the optimizer's iteration count).

Nothing is lost on a stop: SIGTERM or Ctrl-C ends the step in progress, saves it and returns
(`TrainResult.stopped` names the signal). A save that fails (full disk) removes its partial
files and raises CheckpointError; the previous checkpoint stays usable. Temporary files of
saves that a killed run left behind are removed at the next start. On resume every tensor of
the chosen checkpoint, optimizer slots included, is read and checksummed first; a damaged
newest checkpoint is reported and the newest intact one is used, and the run's files
(options.json, TRAINING_DONE) are only touched after that choice.

A damaged record in the training shards (CRC mismatch, cut shard, undecodable image or
label) saves the current step as a stop does, then raises `record_scan.DamagedRecordError`
naming the shard, record and byte offset; with `skip_damaged_records` in the input options
the damaged records are left out, named once each, and counted (`TrainResult.
skipped_records`, TensorBoard `data/damaged_records_skipped`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import shutil
import sys
import time

import keras
import tensorflow as tf

from deeplab.checkpoints.io import (
    USE_ANOTHER,
    CheckpointError,
    checkpoint_step,
    describe_failure,
    last_layer_scopes,
    model_checkpoint,
    numbered_checkpoints,
    partial_save_paths,
    remove_paths,
    restore_model,
    stale_temporaries,
    variable_map,
    verify_checkpoint,
)
from deeplab.data import record_scan
from deeplab.data.pipeline import InputOptions, damage_of, list_shards, make_dataset
from deeplab.model import nas, quantize
from deeplab.model.batch_norm import BatchNormalization
from deeplab.model.deeplab import build_model
from deeplab.model.layer_walk import all_layers
from deeplab.model.options import ModelOptions
from deeplab.model.predict import logits_stride
from deeplab.model.pyramid import MERGED, pyramid_logits
from deeplab.train import losses
from deeplab.train.optimizers import make_optimizer
from deeplab.train.options import TrainOptions
from deeplab.train.recompute import recomputing
from deeplab.train.strategy import is_chief, worker_id
from deeplab.train.summaries import ProfileWindow, SummaryWriter
from deeplab.utils.progress import Progress
from deeplab.utils.run_options import (
    clear_training_done,
    load_run_options,
    mark_training_done,
    save_run_options,
)
from deeplab.utils.signals import StopRequests

CHECKPOINT_NAME = "model.ckpt"
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """Where the training examples come from and how they are preprocessed."""

    dataset: str
    dataset_dir: str
    train_split: str
    num_classes: int
    ignore_label: int
    input: InputOptions


@dataclasses.dataclass
class TrainResult:
    step: int
    loss: float
    images_per_second: float
    seconds_per_step: float
    checkpoint: str | None
    stopped: str = ""  # the signal that stopped the run early ("SIGTERM", "SIGINT"), or ""
    signum: int | None = None
    skipped_records: int = 0  # damaged records left out (skip_damaged_records)


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""


def build_training_model(options: ModelOptions, precision: str,
                         sync_batch_norm: bool = False) -> keras.Model:
    """The network with its layers' dtype policy set by `precision` (global policy restored)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[precision])
    try:
        return build_model(options, sync_batch_norm=sync_batch_norm)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def trainable_variable_names(model: keras.Model) -> list[str]:
    """The TF1 name (`logits/semantic/biases`) of each of model.trainable_variables."""
    names = {id(var): name for name, var in variable_map(model).items()}
    return [names[id(var)] for var in model.trainable_variables]


def gradient_multipliers(model: keras.Model, options: TrainOptions) -> list[float]:
    """Per trainable variable, the factor on its gradient, by the original's rule
    (train_utils.get_model_gradient_multipliers): bias_gradient_multiplier (2) on every
    `biases` variable, last_layer_gradient_multiplier on variables whose name contains a
    last-layer scope, their product on last-layer biases, 1 elsewhere."""
    scopes = last_layer_scopes(options.last_layers_contain_logits_only)
    result = []
    for name in trainable_variable_names(model):
        factor = options.bias_gradient_multiplier if "biases" in name else 1.0
        if any(scope in name for scope in scopes):
            factor *= options.last_layer_gradient_multiplier
        result.append(factor)
    return result


def freeze_batch_norm(model: keras.Model) -> None:
    """fine_tune_batch_norm=False: BatchNorm normalises with, and keeps, its moving
    statistics; gamma and beta still train (the original's is_training=False BatchNorm)."""
    for layer in all_layers(model):
        if isinstance(layer, BatchNormalization):
            layer.frozen_statistics = True
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # a plain Keras BatchNorm cannot keep gamma/beta apart


class Trainer:
    """Holds the model, optimizer, data and checkpoints of one run; `run()` trains."""

    def __init__(self, model_options: ModelOptions, options: TrainOptions,
                 data: DataOptions, strategy: tf.distribute.Strategy):
        self.model_options, self.options, self.data = model_options, options, data
        self.losses = losses.build_losses(options.loss, options.loss_options)
        self.strategy = strategy
        self.chief = is_chief(strategy)
        with strategy.scope():
            self.model = build_training_model(model_options, options.precision,
                                              options.sync_batch_norm)
            if not options.fine_tune_batch_norm:
                freeze_batch_norm(self.model)
            self.optimizer = make_optimizer(options)
            self.optimizer.build(self.model.trainable_variables)
            # NAS drop path ramps in over the training steps (no-op without DropPath layers)
            nas.attach_drop_path_schedule(self.model, self.optimizer.iterations,
                                          options.training_number_of_steps)
            if model_options.quantize_delay_step >= 0:
                quantize.attach(self.model, self.optimizer.iterations,
                                model_options.quantize_delay_step)
            self.checkpoint = model_checkpoint(self.model, optimizer=self.optimizer)
        self.manager = self._checkpoint_manager()
        self.multipliers = gradient_multipliers(self.model, options)
        # the network's training forward, with the activations of options.recompute
        # computed again in the backward pass instead of kept
        self.forward = recomputing(self.model, options.recompute)
        self._saved = (None, None)  # (step, path) of the last checkpoint written

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def _checkpoint_dir(self) -> str:
        """train_logdir on the chief; a scratch folder on other workers (they must save too)."""
        if self.chief:
            return self.options.train_logdir
        return os.path.join(self.options.train_logdir, f".worker{worker_id(self.strategy)}")

    def _checkpoint_manager(self) -> tf.train.CheckpointManager:
        """Reads the state file of the checkpoint folder; saves as model.ckpt-<step>."""
        return tf.train.CheckpointManager(
            self.checkpoint, self._checkpoint_dir(), max_to_keep=self.options.keep_checkpoint_max,
            checkpoint_name=CHECKPOINT_NAME, step_counter=self.optimizer.iterations)

    def intact_checkpoint(self) -> str | None:
        """The newest checkpoint of train_logdir whose every tensor reads back intact.

        Damaged ones are logged as warnings naming the file; CheckpointError when there are
        checkpoints but none is intact. None for a new run.
        """
        damaged = []
        listed = list(self.manager.checkpoints)
        on_disk = numbered_checkpoints(self._checkpoint_dir(), CHECKPOINT_NAME)
        candidates = sorted({os.path.normpath(p) for p in listed + on_disk}, key=checkpoint_step)
        for prefix in reversed(candidates):
            try:
                verify_checkpoint(prefix)
            except CheckpointError as exc:
                logging.warning("%s; resuming from an older checkpoint",
                                str(exc).removesuffix(f"; {USE_ANOTHER}"))
                damaged.append(str(exc))
                continue
            if prefix not in map(os.path.normpath, listed):
                self._adopt(prefix, listed)
            return prefix
        if damaged:
            raise CheckpointError(f"{self._checkpoint_dir()}: every checkpoint is damaged "
                                  f"({damaged[0]}); move them away to train anew")
        return None

    def _adopt(self, prefix: str, listed: list[str]) -> None:
        """Lists a whole checkpoint that a kill kept out of the state file, so the manager
        resumes its numbering from it and deletes it in turn (keep_checkpoint_max)."""
        logging.info("%s is whole but was not in the checkpoint state file (the run was "
                     "stopped while saving it); resuming from it", prefix)
        state = tf.train.get_checkpoint_state(self._checkpoint_dir())
        stamps = list(state.all_model_checkpoint_timestamps) if state else []
        if len(stamps) != len(listed):
            stamps = [os.path.getmtime(p + ".index") for p in listed]
        tf_logger = logging.getLogger("tensorflow")
        level = tf_logger.level
        tf_logger.setLevel(logging.ERROR)  # the v1 call warns that it is deprecated
        try:
            tf.compat.v1.train.update_checkpoint_state(
                self._checkpoint_dir(), prefix, all_model_checkpoint_paths=listed + [prefix],
                all_model_checkpoint_timestamps=stamps + [os.path.getmtime(prefix + ".index")],
                last_preserved_timestamp=state.last_preserved_timestamp if state else 0.0)
        finally:
            tf_logger.setLevel(level)
        self.manager = self._checkpoint_manager()

    def restore(self) -> None:
        """Resumes from train_logdir, else starts from tf_initial_checkpoint, else from init."""
        latest = self.intact_checkpoint()
        if latest:
            try:
                self.checkpoint.restore(latest).expect_partial()
            except (tf.errors.OpError, ValueError, IndexError) as exc:
                raise CheckpointError(f"{latest}: cannot resume from it ({exc})") from None
            logging.info("resumed from %s at step %d", latest, self.step)
            self._saved = (self.step, latest)
            return
        if self.options.tf_initial_checkpoint:
            exclude = ()
            if not self.options.initialize_last_layer:
                exclude = last_layer_scopes(self.options.last_layers_contain_logits_only)
            report = restore_model(self.model, self.options.tf_initial_checkpoint,
                                   exclude_scopes=exclude, allow_missing=True)
            logging.info("initialised from %s", report.summary())

    def remove_stale_temporaries(self) -> None:
        """Removes the `*_temp/` folders and state temporaries of saves a dead run left."""
        for path in remove_paths(stale_temporaries(self._checkpoint_dir())):
            logging.info("removed %s, left by an interrupted checkpoint save", path)

    def save(self) -> str:
        """Writes `model.ckpt-<step>` (once per step); see the module docstring on failures."""
        step = self.step
        if self._saved[0] == step:
            return self._saved[1]
        prefix = os.path.join(self._checkpoint_dir(), f"{CHECKPOINT_NAME}-{step}")
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as exc:
            remove_paths(partial_save_paths(prefix))
            raise CheckpointError(
                f"{prefix}: saving step {step} failed ({describe_failure(exc)}); its partial "
                f"files are removed, the last good checkpoint is "
                f"{self.manager.latest_checkpoint or 'none'}") from None
        if not self.chief:
            shutil.rmtree(self._checkpoint_dir(), ignore_errors=True)
        self._saved = (step, path)
        return path

    def dataset(self):
        """The distributed training input.

        Local devices split each global batch (so N clones see exactly the batch one device
        would); several workers each read their own share of the shards.
        """
        def make(context=None):
            return make_dataset(self.data.dataset_dir, self.data.train_split,
                                self.options.train_batch_size, self.data.input, training=True,
                                seed=self.options.seed, input_context=context)

        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return self.strategy.distribute_datasets_from_function(make)
        return self.strategy.experimental_distribute_dataset(make())

    def _replica_step(self, images, labels, return_gradients: bool = False):
        o, replicas = self.options, self.strategy.num_replicas_in_sync
        top_k = None
        if o.top_k_percent_pixels < 1.0:
            top_k = losses.top_k_ratio(self.optimizer.iterations, o.top_k_percent_pixels,
                                       o.hard_example_mining_step)
        spec = losses.LossSpec(self.data.num_classes, self.data.ignore_label,
                               o.upsample_logits, o.label_weights)
        with tf.GradientTape() as tape:
            outputs = pyramid_logits(self.forward, images, o.image_pyramid, o.merge_method,
                                     logits_stride(self.model_options), training=True)
            terms = {}
            for key, logits in outputs.items():  # one loss per scale, and the merged one
                suffix = "" if key == MERGED else f"_{key}"
                terms.update(losses.weighted_terms(self.losses, logits, labels, spec, top_k,
                                                   replicas, suffix))
            terms["weight_decay"] = losses.weight_decay_loss(self.model, o.weight_decay) / replicas
            loss = tf.add_n(list(terms.values()))
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under fp16, else as is
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled, variables)
        grads = [g * m if m != 1.0 else g for g, m in zip(grads, self.multipliers, strict=True)]
        self.optimizer.apply(grads, variables)
        norm = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads])
        values = {"total_loss": loss, **terms, "gradient_norm": norm}
        if return_gradients:
            values["gradients"] = grads
        return values

    def make_step_fn(self, return_gradients: bool = False):
        """One training step as a tf.function: iterator -> {name: scalar} summed over replicas.

        return_gradients: the values also hold "gradients", the applied gradient of each of
        model.trainable_variables (after the multipliers), summed over replicas.
        With xla the per-replica computation is compiled (the iterator op cannot be).
        """
        replica_step = functools.partial(self._replica_step, return_gradients=return_gradients)
        if self.options.xla:
            replica_step = tf.function(replica_step, jit_compile=True)

        def reduce(value):
            if isinstance(value, list):
                return [self.strategy.reduce("sum", v, axis=None) for v in value]
            return self.strategy.reduce("sum", value, axis=None)

        def step(iterator):
            batch = next(iterator)
            per_replica = self.strategy.run(replica_step, args=(batch["image"], batch["label"]))
            values = {k: reduce(v) for k, v in per_replica.items()}
            # The gradient norm of the replicas' gradients, averaged (not summed).
            values["gradient_norm"] /= self.strategy.num_replicas_in_sync
            return values

        return tf.function(step)

    def run(self) -> TrainResult:
        """Trains to training_number_of_steps; see the module docstring for what it writes."""
        o = self.options
        self.remove_stale_temporaries()
        self.restore()  # decides which checkpoint to resume before the run's files change
        if self.chief:
            save_run_options(o.train_logdir, model=self.model_options, train=o, data=self.data)
            clear_training_done(o.train_logdir)
        start_step = self.step
        if start_step >= o.training_number_of_steps:
            logging.info("already at step %d of %d", start_step, o.training_number_of_steps)
            if self.chief:
                mark_training_done(o.train_logdir, f"{start_step}\n")
            return TrainResult(start_step, float("nan"), 0.0, 0.0, self.manager.latest_checkpoint)
        step_fn = self.make_step_fn()
        skipped = self.skipped_records()
        iterator = iter(self.dataset())
        writer = SummaryWriter(o.train_logdir if self.chief else None, self.data, o,
                               None if skipped is None
                               else {"data/damaged_records_skipped": skipped})
        monitor = _Monitor(o, start_step)
        values = {}
        with StopRequests() as stop:
            try:
                values = self._loop(step_fn, iterator, writer, monitor, stop)
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
                self._raise_damaged(exc)
            finally:
                monitor.close()
                writer.close()
            checkpoint = self.save()  # also on a stop request: nothing is lost
        result = TrainResult(self.step, values.get("total_loss", float("nan")),
                             monitor.images_per_second, monitor.seconds_per_step, checkpoint,
                             skipped_records=skipped or 0)
        if stop.requested and self.step < o.training_number_of_steps:
            logging.warning("%s: saved step %d in %s", stop.name, self.step, checkpoint)
            return dataclasses.replace(result, stopped=stop.name, signum=stop.signum)
        if self.chief:
            mark_training_done(o.train_logdir, f"{self.step}\n")
        return result

    def skipped_records(self) -> int | None:
        """Damaged records the input leaves out (with skip_damaged_records, which scans the
        split once); None without."""
        files = list_shards(self.data.dataset_dir, self.data.train_split)
        damage = damage_of(files, self.data.input)
        return len(damage.damaged) if damage is not None else None

    def _raise_damaged(self, exc: tf.errors.OpError) -> None:
        """After an input error: saves the step, then raises DamagedRecordError naming the
        record (the original error when no record of the split is damaged)."""
        checkpoint = self.save()
        files = list_shards(self.data.dataset_dir, self.data.train_split)
        record = record_scan.locate_damage(files, exc)
        if record is None:
            raise exc
        logging.warning("damaged input: saved step %d in %s; after the fix the same command "
                        "resumes there", self.step, checkpoint)
        raise record_scan.DamagedRecordError(record) from None

    def _loop(self, step_fn, iterator, writer, monitor, stop) -> dict:
        """Steps until training_number_of_steps or a stop request; returns the last values."""
        o = self.options
        last_save = time.monotonic()
        values = {}
        profile = ProfileWindow(o.profile_logdir if self.chief else None, self.step)
        try:
            while self.step < o.training_number_of_steps and not stop.requested:
                profile.before_step(self.step)
                values = {k: float(v) for k, v in step_fn(iterator).items()}
                step = self.step
                profile.after_step(step)
                if not math.isfinite(values["total_loss"]):
                    raise TrainingDiverged(
                        f"the loss became {values['total_loss']} at step {step}; the last "
                        f"good checkpoint is {self.manager.latest_checkpoint or 'none'} "
                        f"(try a lower --base_learning_rate)")
                lr = float(self.optimizer.learning_rate)
                monitor.update(step, values, lr)
                if step % o.log_steps == 0 or step == o.training_number_of_steps:
                    writer.scalars(step, {**values, "learning_rate": lr,
                                          "images_per_second": monitor.images_per_second})
                writer.maybe_images(step, self.model)
                due_steps = o.save_interval_steps and step % o.save_interval_steps == 0
                if due_steps or time.monotonic() - last_save >= o.save_interval_secs:
                    self.save()
                    last_save = time.monotonic()
        finally:
            profile.stop()
        return values


class _Monitor:
    """Log lines every log_steps and a progress bar on a terminal."""

    def __init__(self, options: TrainOptions, start_step: int):
        self.options = options
        self.start_step = start_step
        self.start = time.monotonic()
        self.window_start, self.window_step = self.start, start_step
        self.seconds_per_step = 0.0
        self.images_per_second = 0.0
        self.bar = Progress(options.training_number_of_steps - start_step, "train") \
            if sys.stderr.isatty() else None

    def update(self, step: int, values: dict, lr: float) -> None:
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update()
        if step % self.options.log_steps and step != self.options.training_number_of_steps:
            return
        steps = max(step - self.window_step, 1)
        self.seconds_per_step = (now - self.window_start) / steps
        self.images_per_second = self.options.train_batch_size / max(self.seconds_per_step, 1e-9)
        self.window_start, self.window_step = now, step
        logging.info("step %d/%d loss %.4f lr %.3g %.3f s/step %.1f images/s", step,
                     self.options.training_number_of_steps, values["total_loss"], lr,
                     self.seconds_per_step, self.images_per_second)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(model_options: ModelOptions, options: TrainOptions, data: DataOptions,
          strategy: tf.distribute.Strategy) -> TrainResult:
    """Checks the logdir against earlier runs, then trains; see the module docstring."""
    saved = load_run_options(options.train_logdir) if os.path.isdir(
        options.train_logdir) else None
    if saved and "model" in saved:
        changed = ModelOptions.from_dict(saved["model"]).differences(model_options)
        if changed:
            raise ValueError(f"{options.train_logdir} holds a run with other model options "
                             f"({', '.join(changed)}); use a new --train_logdir")
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    return Trainer(model_options, options, data, strategy).run()

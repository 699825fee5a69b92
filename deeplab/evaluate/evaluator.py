"""Evaluation over a whole split: predictions cut back to each image, a confusion matrix, mIoU.

One loop (`predict_split`) reads a split with the eval pipeline, runs a *probabilities
function* and yields one `Prediction` per image at the image's own size; eval.py counts them
(`run_evaluation`) and vis.py draws them. A probabilities function maps
raw-pixel images float32 [B, H, W, 3] (0..255) to probabilities [B, H, W, C] (a tf tensor or
numpy array); it is a `deeplab.inference.SegmentationModel` (a checkpoint's network with
single/multi-scale, flip and sliding window, the same code as predict.py, or any exported
model; label-only ones count their labels) or a plain function. The label of a pixel is the
argmax of its probabilities.

Crop handling: with `InputOptions.crop_size` set, the pipeline pads every image bottom/right
to the crop (image with the model's mean pixel, label with the ignore label) and the model
runs on the padded crop, as the original's eval; the prediction is then cut back to the
image's height and width before anything is counted or drawn, so padded pixels never count.
Without a crop size every image is run whole (batch size 1) and the labels equal predict.py's
for the same image.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from deeplab.checkpoints.io import CheckpointError, checkpoint_num_classes, restore_model
from deeplab.data import pipeline, record_scan, schema
from deeplab.data.descriptors import DatasetDescriptor
from deeplab.evaluate.metrics import ConfusionMatrix, EvalResult
from deeplab.inference.checkpoint_model import CheckpointModel
from deeplab.inference.segmentation_model import SegmentationModel
from deeplab.model.backbones import mean_pixel
from deeplab.model.options import ModelOptions
from deeplab.model.predict import InferenceOptions
from deeplab.utils.progress import Progress

ProbabilitiesFn = Callable[[tf.Tensor], "tf.Tensor | np.ndarray"]


def as_probabilities_fn(model, num_classes: int | None = None) -> ProbabilitiesFn:
    """A SegmentationModel (a label-only one gives its labels one-hot over `num_classes`) or
    any probabilities function, as a probabilities function."""
    if isinstance(model, SegmentationModel) and not model.has_probabilities:
        if num_classes is None:
            raise ValueError(f"{model.source}: gives labels only; evaluating it needs the "
                             "dataset's class count")
        logging.info("%s gives labels only (no probabilities); evaluating them", model.source)
        return lambda images: model.one_hot(images, num_classes)
    if not callable(model):
        raise TypeError(f"expected a SegmentationModel or a probabilities function, got "
                        f"{model!r}")
    return model


def single_image_fn(fn: Callable[[np.ndarray], np.ndarray]) -> ProbabilitiesFn:
    """Batches for a function that takes one image at a time (an exported model's runner).

    `fn` receives uint8 [1, H, W, 3] (the exported graph's ImageTensor; pipeline pixels are
    whole numbers, so rounding loses nothing) and returns float32 [1, H, W, C].
    The result maps float32 [B, H, W, 3] to float32 numpy [B, H, W, C].
    """

    def batched(images):
        images = np.asarray(images)
        pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        return np.concatenate([np.asarray(fn(pixels[i:i + 1]), np.float32)
                               for i in range(pixels.shape[0])], axis=0)

    return batched


def eval_input_options(descriptor: DatasetDescriptor, crop_size=None,
                       model_variant: str | None = None, **resize) -> pipeline.InputOptions:
    """InputOptions for evaluation or visualisation.

    Args:
      descriptor: the dataset's descriptor (gives the ignore label used for label padding).
      crop_size: (height, width) every image is padded to, or None/() to run images whole.
      model_variant: picks the padding pixel (see `backbones.mean_pixel`).
      **resize: min_resize_value, max_resize_value, resize_factor, keep_aspect_ratio (and
        skip_damaged_records: any other InputOptions field).
    """
    return pipeline.InputOptions(
        crop_size=tuple(crop_size) if crop_size else None,
        ignore_label=descriptor.ignore_label, mean_pixel=mean_pixel(model_variant),
        flip=False, **resize)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One image of a split and its prediction, all at the image's size (h, w).

    image: float32 [h, w, 3] pixels 0..255 (after the optional resize, before padding).
    label: int32 [h, w] ground truth (may hold the ignore label).
    prediction: int32 [h, w] predicted class per pixel.
    filename: the record's image/filename.
    """

    filename: str
    image: np.ndarray
    label: np.ndarray
    prediction: np.ndarray


def split_size(dataset_dir: str, split: str, descriptor: DatasetDescriptor | None,
               input_options: pipeline.InputOptions | None = None) -> int | None:
    """Number of examples of the split: records present, else the descriptor's (or None);
    with input_options.skip_damaged_records the intact records only."""
    if input_options is not None and input_options.skip_damaged_records:
        damage = pipeline.damage_of(pipeline.list_shards(dataset_dir, split), input_options)
        return damage.records - len(damage.damaged)
    return pipeline.split_size(dataset_dir, split, descriptor)


def _split_where(dataset_dir: str, split: str) -> str:
    return os.path.join(dataset_dir, schema.shard_pattern(split))


def _data_error(exc: tf.errors.OpError, where: str) -> ValueError:
    """A one-line ValueError for a failure inside the input pipeline."""
    message = exc.message.strip().splitlines()[0] if exc.message else type(exc).__name__
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    for noise, clean in (("assertion failed: ", ""), ("[", ""), ("]", ""), ('\\"', '"')):
        message = message.replace(noise, clean)
    return ValueError(f"{where}: {message.strip()}")


def _batches(dataset: tf.data.Dataset, where: str, files=()) -> Iterator[dict]:
    """The dataset's batches as numpy dicts; pipeline errors become ValueError naming `where`,
    or `record_scan.DamagedRecordError` naming the damaged record of `files` behind them."""
    iterator = iter(dataset)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as exc:
            if isinstance(exc, (tf.errors.DataLossError, tf.errors.InvalidArgumentError)):
                record = record_scan.locate_damage(files, exc)
                if record is not None:
                    raise record_scan.DamagedRecordError(record) from None
            raise _data_error(exc, where) from None
        yield {k: v.numpy() for k, v in batch.items()}


def skipped_records(dataset_dir: str, split: str, input_options: pipeline.InputOptions) -> int:
    """Damaged records the eval input leaves out (0 without skip_damaged_records)."""
    damage = pipeline.damage_of(pipeline.list_shards(dataset_dir, split), input_options)
    return len(damage.damaged) if damage is not None else 0


def _labels_of(probabilities, num_classes: int | None) -> np.ndarray:
    """argmax over classes: probabilities [B, H, W, C] -> int32 numpy [B, H, W]."""
    if num_classes is not None and probabilities.shape[-1] != num_classes:
        raise ValueError(f"the model predicts {probabilities.shape[-1]} classes but the dataset "
                         f"has {num_classes}: evaluate on the dataset the model was trained for")
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32).numpy()


def predict_split(predictor, dataset_dir: str, split: str, input_options: pipeline.InputOptions,
                  batch_size: int = 1, num_classes: int | None = None,
                  progress: Progress | None = None) -> Iterator[Prediction]:
    """Runs `predictor` over every image of a split; yields one `Prediction` per image.

    Args:
      predictor: a SegmentationModel or a probabilities function (see the module docstring).
      dataset_dir, split: shards `dataset_dir/<split>-*`.
      input_options: eval InputOptions (see `eval_input_options`); with crop_size None the
        batch size must be 1.
      batch_size: images per model call.
      num_classes: when given, a model with another class count raises ValueError.
      progress: updated with the number of images after every batch.

    Raises:
      ValueError: no shards, an unreadable record, an image larger than the crop, or a class
        count mismatch; the message names the shards or file. A damaged record (without
        input_options.skip_damaged_records) raises record_scan.DamagedRecordError.
    """
    fn = as_probabilities_fn(predictor, num_classes)
    where = _split_where(dataset_dir, split)
    dataset = pipeline.make_dataset(dataset_dir, split, batch_size, input_options, training=False)
    for batch in _batches(dataset, where, pipeline.list_shards(dataset_dir, split)):
        predictions = _labels_of(fn(tf.constant(batch["image"])), num_classes)
        for i in range(len(predictions)):
            height, width = int(batch["height"][i]), int(batch["width"][i])
            yield Prediction(
                filename=batch["filename"][i].decode("utf-8", "replace"),
                image=batch["image"][i, :height, :width],
                label=batch["label"][i, :height, :width, 0],
                prediction=predictions[i, :height, :width])
        if progress is not None:
            progress.update(len(predictions))


@dataclasses.dataclass(frozen=True, eq=False)
class SplitEvaluation:
    """The outcome of evaluating a split.

    result: the metrics (EvalResult).
    matrix: int64 [C, C] confusion matrix, rows = ground truth, columns = prediction.
    num_images: images evaluated.
    seconds: wall time of the whole pass (reading, inference, counting).
    first_batch_seconds: time until the first batch was counted (includes tracing).
    skipped_records: damaged records left out (skip_damaged_records): not evaluated.
    """

    result: EvalResult
    matrix: np.ndarray
    num_images: int
    seconds: float
    first_batch_seconds: float
    skipped_records: int = 0

    @property
    def images_per_second(self) -> float:
        return self.num_images / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready: the EvalResult's dict plus counts, timing and the confusion matrix."""
        return {**self.result.to_dict(), "num_images": self.num_images,
                "damaged_records_skipped": self.skipped_records,
                "seconds": round(self.seconds, 3),
                "images_per_second": round(self.images_per_second, 3),
                "confusion_matrix": self.matrix.tolist()}

    def summary(self) -> str:
        """The metrics table followed by a line of counts and throughput."""
        skipped = ""
        if self.skipped_records:
            skipped = (f"\n{self.skipped_records} damaged record(s) could not be evaluated: "
                       f"the metrics are over the other {self.num_images} images")
        return (f"{self.result.table()}\n{self.num_images} images in {self.seconds:.1f} s "
                f"({self.images_per_second:.2f} images/s; first batch incl. tracing "
                f"{self.first_batch_seconds:.1f} s){skipped}")


def run_evaluation(predictor, dataset_dir: str, split: str, descriptor: DatasetDescriptor,
                   input_options: pipeline.InputOptions, batch_size: int = 1,
                   progress: bool = True) -> SplitEvaluation:
    """Accumulates an int64 confusion matrix over the whole split (ignore label left out).

    Args:
      predictor: a SegmentationModel or a probabilities function.
      dataset_dir, split: shards `dataset_dir/<split>-*`.
      descriptor: class count, ignore label and class names of the dataset.
      input_options: eval InputOptions (crop, resize); see `eval_input_options`.
      batch_size: images per model call (1 when crop_size is None).
      progress: show a progress bar with images per second on stderr.

    Returns:
      SplitEvaluation (metrics, matrix, image count, timing).
    """
    matrix = ConfusionMatrix(descriptor.num_classes, descriptor.ignore_label)
    skipped = skipped_records(dataset_dir, split, input_options)
    bar = Progress(split_size(dataset_dir, split, descriptor, input_options), f"eval {split}") \
        if progress else None
    start = time.perf_counter()
    first_batch = None
    count = 0
    try:
        for item in predict_split(predictor, dataset_dir, split, input_options, batch_size,
                                  descriptor.num_classes, bar):
            try:
                matrix.update(item.label, item.prediction)
            except ValueError as exc:
                raise ValueError(f"{_split_where(dataset_dir, split)}: image "
                                 f"{item.filename!r}: {exc}") from None
            count += 1
            first_batch = first_batch or time.perf_counter() - start
    finally:
        if bar is not None:
            bar.close()
    if count == 0:
        raise ValueError(f"{_split_where(dataset_dir, split)}: the split holds no examples")
    seconds = time.perf_counter() - start
    names = descriptor.class_names or None
    return SplitEvaluation(matrix.result(names), matrix.matrix, count, seconds, first_batch,
                           skipped)


def check_checkpoint_classes(checkpoint: str, descriptor: DatasetDescriptor) -> None:
    """Raises CheckpointError (one line) when the checkpoint's logits do not fit the dataset.

    A checkpoint without logits (a backbone-only one) passes; the restore reports it.
    """
    try:
        found = checkpoint_num_classes(checkpoint)
    except CheckpointError:
        return
    if found != descriptor.num_classes:
        raise CheckpointError(
            f"{checkpoint}: the checkpoint's logits have {found} classes but dataset "
            f"{descriptor.name!r} has {descriptor.num_classes}: evaluate on the dataset the "
            "model was trained for (--dataset / --dataset_dir)")


class CheckpointPredictors:
    """The network of each of a sequence of checkpoints of one training run, as a
    `CheckpointModel` (a SegmentationModel).

    The network is built (and its prediction traced) for the first checkpoint only; later
    checkpoints are restored into it. Every checkpoint is first checked against the
    dataset's class count (`check_checkpoint_classes`).

    Args:
      descriptor: the dataset evaluated.
      inference: scales, flip and window of the predictions.
      load_model: (ModelOptions, prefix) -> keras.Model built and restored
        (`deeplab.checkpoints.io.load_model`).
      model_options: prefix -> ModelOptions of that checkpoint (saved options + flags).
    """

    def __init__(self, descriptor: DatasetDescriptor, inference: InferenceOptions,
                 load_model: Callable[[ModelOptions, str], keras.Model],
                 model_options: Callable[[str], ModelOptions]):
        self.descriptor = descriptor
        self.inference = inference
        self._load_model = load_model
        self._model_options = model_options
        self.model: CheckpointModel | None = None

    def load(self, prefix: str) -> CheckpointModel:
        """The network with the weights of checkpoint `prefix`, as a SegmentationModel."""
        check_checkpoint_classes(prefix, self.descriptor)
        if self.model is None:
            options = self._model_options(prefix)
            self.model = CheckpointModel(self._load_model(options, prefix), options,
                                         self.inference, checkpoint=prefix)
        else:
            logging.info(restore_model(self.model.keras_model, prefix).summary())
            self.model.refresh()
            self.model.checkpoint = self.model.source = prefix
        return self.model

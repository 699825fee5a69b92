"""The runtimes of exported models: one class per runtime (TF1 session, SavedModel, ONNX
Runtime, TFLite), each an `ExportedModel`; `deeplab.export.loading` picks one from a path.

    model = FrozenGraphModel(path)
    probabilities = model(images)      # [B, H, W, 3] uint8/float -> float32 [B, H, W, C]

`path` is one artefact of export_model.py: a frozen graph (`*.pb`), a SavedModel directory,
an ONNX file (`*.onnx`) or a TFLite file (`*.tflite`); or an export directory holding
exactly one of them. Every format runs the same computation (see `deeplab.export.contract`):
the image is padded to (or shrunk to fit) the crop size baked in at export, scales and flips
are baked in too, and the result is at the input size.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from deeplab.export import frozen, onnx, saved_model
from deeplab.export.contract import INPUT_NAME, LABELS_NAME, PROBABILITIES_NAME
from deeplab.export.errors import ExportError
from deeplab.inference.segmentation_model import SegmentationModel
from deeplab.utils.quiet import cpp_stderr


def as_uint8_images(images) -> np.ndarray:
    """[B, H, W, 3] raw pixels (uint8, or float in 0..255, rounded) -> uint8 numpy."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [batch, height, width, 3], got {list(images.shape)}")
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


class ExportedModel(SegmentationModel):
    """An exported DeepLab model: a `SegmentationModel` (see there) whose scales, flip and
    crop were fixed at export. Inputs are rounded to uint8, the exported input type.

    Attributes besides the protocol's: `path`, `format` ("frozen", "saved_model", "onnx" or
    "tflite"). Label-only models raise ExportError when asked for probabilities.
    """

    def _batch(self, images) -> np.ndarray:
        return as_uint8_images(images)

    def __call__(self, images) -> np.ndarray:
        if not self.has_probabilities:
            raise ExportError(f"{self.path}: this model gives labels only (no probabilities "
                              "output, as the original's frozen graphs before 2019): use its "
                              "labels")
        return super().__call__(images)


class FrozenGraphModel(ExportedModel):
    """frozen_inference_graph.pb, run in a TF1 Session by tensor name as the original's demo.
    `probe_crop()` finds the fixed crop of the original's exports."""

    format = "frozen"

    def __init__(self, path: str):
        super().__init__(path)
        graph_def = frozen.read_graph_def(path)
        nodes = {node.name for node in graph_def.node}
        self.has_probabilities = PROBABILITIES_NAME in nodes
        if self.has_probabilities:
            frozen.check_node_names(graph_def, path)
        elif INPUT_NAME not in nodes or LABELS_NAME not in nodes:
            missing = [n for n in (INPUT_NAME, LABELS_NAME) if n not in nodes]
            raise ExportError(f"{path}: no node(s) {', '.join(missing)}; a DeepLab frozen "
                              f"graph has {INPUT_NAME} -> {LABELS_NAME} (and optionally "
                              f"{PROBABILITIES_NAME})")
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
            scores = _argmax_input(graph)
            self._scores = None if scores is None else tf.nn.softmax(tf.cast(scores, tf.float32))
            self._scores_shape = None if scores is None else tf.shape(scores)
        self._session = tf.compat.v1.Session(graph=graph)

    def _run(self, image):
        return self._session.run(f"{PROBABILITIES_NAME}:0", feed_dict={f"{INPUT_NAME}:0": image})

    def labels(self, images) -> np.ndarray:
        if self.has_probabilities:
            return super().labels(images)
        images = as_uint8_images(images)
        return np.concatenate([self._session.run(f"{LABELS_NAME}:0", feed_dict={
            f"{INPUT_NAME}:0": image[None]}) for image in images], axis=0).astype(np.int32)

    @property
    def has_scores(self) -> bool:
        """True when the graph has an ArgMax over class scores (`probe_crop` can look)."""
        return self._scores is not None

    def probe_crop(self) -> tuple[int, int] | None:
        """(height, width) the graph pads every image to, or None when it has none.

        The original's exports pad each image to their crop and take the ArgMax there, then
        cut the labels back; the crop is not stored in the graph. Two small probe images of
        different sizes reveal it: the ArgMax input has the crop's size for both. Sets
        num_classes from the ArgMax input's channels as well."""
        if self._scores is None:
            return None
        shapes = [tuple(int(v) for v in self._session.run(self._scores_shape, feed_dict={
            f"{INPUT_NAME}:0": np.zeros((1, 9 + k, 11 + k, 3), np.uint8)})) for k in (0, 2)]
        self.num_classes = self.num_classes or int(shapes[0][-1])
        return shapes[0][1:3] if shapes[0] == shapes[1] else None

    def labels_and_scores(self, image: np.ndarray):
        """uint8 [1, H, W, 3] -> (labels int32 [H, W], probabilities float32 [H, W, C] or
        None): SemanticProbabilities, else the softmax of the ArgMax's input, the upsampled
        logits, which are the image's own only when the image is of the graph's crop (the
        graph pads nothing). None when the graph has neither."""
        feed = {f"{INPUT_NAME}:0": as_uint8_images(image)}
        if self.has_probabilities:
            probabilities = self._run(feed[f"{INPUT_NAME}:0"])[0]
            return probabilities.argmax(-1).astype(np.int32), probabilities
        fetches = [f"{LABELS_NAME}:0"] + ([self._scores] if self._scores is not None else [])
        out = self._session.run(fetches, feed_dict=feed)
        return out[0][0].astype(np.int32), (out[1][0] if len(out) > 1 else None)


def _argmax_input(graph):
    """The 4-D input of the graph's ArgMax over classes (its logits), or None."""
    for op in graph.get_operations():
        if op.type == "ArgMax" and op.inputs[0].shape.rank == 4:
            return op.inputs[0]
    return None


class SavedModelModel(ExportedModel):
    """SavedModel directory, run through its batched `serving_default` signature.

    `loaded` is the `tf.saved_model.load` object (all signatures, e.g. serving_bytes).
    """

    format = "saved_model"

    def __init__(self, path: str):
        super().__init__(path)
        try:
            loaded = tf.saved_model.load(path)
            self._signature = loaded.signatures[saved_model.DEFAULT_SIGNATURE]
        except (OSError, KeyError, ValueError) as exc:
            raise ExportError(f"{path}: not a DeepLab SavedModel ({exc})") from None
        self.loaded = loaded  # also keeps the variables alive

    def __call__(self, images) -> np.ndarray:
        images = tf.constant(as_uint8_images(images))
        return self._signature(images=images)["probabilities"].numpy()


class OnnxModel(ExportedModel):
    """model.onnx, run by ONNX Runtime on the CPU."""

    format = "onnx"

    def __init__(self, path: str):
        super().__init__(path)
        try:
            import onnxruntime  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise ExportError(f"{path}: running ONNX models needs onnxruntime "
                              "(pip install onnxruntime)") from None
        try:
            self._session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise ExportError(f"{path}: not a readable ONNX model ({exc})") from None
        self._input = self._session.get_inputs()[0].name
        self._output = onnx.OUTPUTS[1]

    def _run(self, image):
        return self._session.run([self._output], {self._input: image})[0]


def _tflite_interpreter(path: str, num_threads: int | None):
    """LiteRT's interpreter when installed (ai-edge-litert), else tf.lite's."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except ImportError:
        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        try:
            return Interpreter(model_path=path, num_threads=num_threads)
        except ValueError as exc:
            raise ExportError(f"{path}: not a readable TFLite model ({exc})") from None


class TfliteModel(ExportedModel):
    """A TFLite DeepLab: ours (model.tflite, model_dynamic_range.tflite, model_int8.tflite:
    uint8 input of any size, probabilities out) or a foreign one, whose signature is read
    and adapted (Google's deeplabv3_257_mv_gpu.tflite: float input in [-1, 1] of fixed size,
    logits out):

    - input uint8: raw pixels; float: pixels / 127.5 - 1 (MobileNet's [-1, 1]).
    - a fixed input size (no -1 in its signature): each image resized to it (bilinear) and
      the results resized back to the image size (nearest neighbour).
    - output float [1, H, W, C]: probabilities when every pixel's values are >= 0 and sum
      to 1, else logits (a softmax is taken); integer [1, H, W]: labels only.
    """

    format = "tflite"

    def __init__(self, path: str, num_threads: int | None = None):
        super().__init__(path)
        self._interpreter = _tflite_interpreter(path, num_threads)
        details = self._interpreter.get_input_details()[0]
        self._input, self._input_dtype = details["index"], details["dtype"]
        signature = details["shape_signature"]
        self.fixed_size = None if _dynamic(signature) else tuple(int(v) for v in signature[1:3])
        outputs = self._interpreter.get_output_details()
        scores = [d for d in outputs if d["dtype"] == np.float32 and len(d["shape"]) == 4]
        labels = [d for d in outputs if np.issubdtype(d["dtype"], np.integer)
                  and len(d["shape"]) == 3]
        if len(scores) == 1:
            self._output = scores[0]["index"]
        elif len(labels) == 1:
            self._output, self.has_probabilities = labels[0]["index"], False
        else:
            raise ExportError(f"{path}: expected one float32 [1, H, W, C] output (probabilities "
                              "or logits) or one integer [1, H, W] output (labels), found "
                              f"{[(d['name'], d['dtype'].__name__) for d in outputs]}")
        self._shape = None

    def labels(self, images) -> np.ndarray:
        if self.has_probabilities:
            return super().labels(images)
        images = as_uint8_images(images)
        return np.concatenate([self._invoke(image[None]) for image in images]).astype(np.int32)

    def _run(self, image):
        out = self._invoke(image)
        total = out.sum(-1)
        # quantised probabilities sum to 1 within a few 1/256; logits are neither >= 0 nor so
        if out.min() < 0 or not np.allclose(total, 1.0, atol=0.05):
            out = np.exp(out - out.max(-1, keepdims=True))
            out /= out.sum(-1, keepdims=True)
        return out.astype(np.float32)

    def _invoke(self, image: np.ndarray) -> np.ndarray:
        """uint8 [1, H, W, 3] -> the raw output [1, H, W, ...] at the image size."""
        size = image.shape[1:3]
        if self.fixed_size is not None and size != self.fixed_size:
            image = tf.image.resize(image, self.fixed_size).numpy()
        if self._input_dtype == np.uint8:
            feed = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        else:
            feed = (image.astype(np.float32) / 127.5 - 1.0).astype(self._input_dtype)
        if self._shape != feed.shape:
            if self.fixed_size is None:
                self._interpreter.resize_tensor_input(self._input, feed.shape)
            with cpp_stderr():  # `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`
                self._interpreter.allocate_tensors()
            self._shape = feed.shape
        self._interpreter.set_tensor(self._input, feed)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output).copy()
        return resize_nearest(out[0], size)[None] if out.shape[1:3] != size else out


def resize_nearest(values: np.ndarray, size) -> np.ndarray:
    """[h, w, ...] -> [size[0], size[1], ...] by nearest neighbour (pixel centres)."""
    rows = ((np.arange(size[0]) + 0.5) * values.shape[0] / size[0]).astype(np.int64)
    cols = ((np.arange(size[1]) + 0.5) * values.shape[1] / size[1]).astype(np.int64)
    return values[rows][:, cols]


def _dynamic(signature) -> bool:
    """True when a [1, H, W, 3] input signature has a free height or width."""
    return any(int(v) < 0 for v in signature[1:3])

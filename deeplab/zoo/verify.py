"""Parity of our network with the original export each zoo tarball holds.

`frozen_inference_graph.pb` (`ImageTensor` uint8 [1, H, W, 3] -> `SemanticPredictions`) runs
on a few generated probe images of the graph's crop size (so the graph pads nothing), and so
does our network, built from the registry's options at the graph's output stride and filled
from the tarball's checkpoint. Recorded: label agreement (fraction of pixels) and the max
absolute difference of the class probabilities (the graph's `SemanticProbabilities` when it
has them, else the softmax of its ArgMax input, the upsampled logits, as the original's).
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from deeplab.zoo.registry import ZooEntry, ZooError

MIN_AGREEMENT = 0.999
NUM_PROBES = 3
LABELS_NODE = "SemanticPredictions"
PROBABILITIES_NODE = "SemanticProbabilities"
INPUT_NODE = "ImageTensor"


def probe_images(height: int, width: int, count: int = NUM_PROBES, seed: int = 0):
    """uint8 [count, height, width, 3]: smooth random colour fields plus fine noise, so the
    probes have regions (as photos do) rather than pure noise. Deterministic in `seed`."""
    rng = np.random.RandomState(seed)
    probes = []
    for i in range(count):
        coarse = rng.uniform(0, 255, (1, 4 + 2 * i, 4 + 3 * i, 3)).astype(np.float32)
        smooth = tf.image.resize(coarse, (height, width), method="bilinear").numpy()[0]
        noise = rng.normal(0, 12, (height, width, 3))
        probes.append(np.clip(np.rint(smooth + noise), 0, 255).astype(np.uint8))
    return np.stack(probes)


class FrozenGraphRunner:
    """The original's frozen graph in a TF1 session: uint8 [1, H, W, 3] -> (labels [H, W],
    probabilities [H, W, C] or None)."""

    def __init__(self, path: str):
        graph_def = tf.compat.v1.GraphDef()
        with open(path, "rb") as f:
            graph_def.ParseFromString(f.read())
        names = {node.name: node for node in graph_def.node}
        for name in (INPUT_NODE, LABELS_NODE):
            if name not in names:
                raise ZooError(f"{path}: has no {name} node (not a DeepLab frozen graph)")
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
            self._probabilities = self._probability_tensor(graph, names)
        self._labels = graph.get_tensor_by_name(f"{LABELS_NODE}:0")
        self._session = tf.compat.v1.Session(graph=graph)

    @staticmethod
    def _probability_tensor(graph, names):
        if PROBABILITIES_NODE in names:
            return graph.get_tensor_by_name(f"{PROBABILITIES_NODE}:0")
        for op in graph.get_operations():
            if op.type == "ArgMax" and op.inputs[0].shape.rank == 4:
                return tf.nn.softmax(tf.cast(op.inputs[0], tf.float32))
        return None

    def __call__(self, image: np.ndarray):
        fetches = [self._labels] + ([self._probabilities] if self._probabilities is not None
                                    else [])
        out = self._session.run(fetches, feed_dict={f"{INPUT_NODE}:0": image[None]})
        return out[0][0], (out[1][0] if len(out) > 1 else None)


def check_parity(entry: ZooEntry, folder: str, output_stride: int | None = None,
                 crop_size=None, num_probes: int = NUM_PROBES, log=print) -> dict:
    """Runs the frozen graph and our network on the probes; returns the figures.

    Raises ZooError naming agreement and probability difference when agreement is below
    MIN_AGREEMENT (99.9 %).
    """
    from deeplab.entry import load_model
    from deeplab.model.predict import Predictor

    graph_settings = entry.frozen_graph or {}
    output_stride = output_stride or graph_settings.get("output_stride") or entry.output_stride
    height, width = crop_size or graph_settings.get("crop_size") or (513, 513)
    start = time.monotonic()
    graph_path = os.path.join(folder, "frozen_inference_graph.pb")
    log(f"{entry.name}: checking our network against {graph_path} on {num_probes} probe "
        f"images {height}x{width}, output stride {output_stride}")
    options = entry.model_options(output_stride=output_stride)
    predictor = Predictor(load_model(options, folder), options)
    graph = FrozenGraphRunner(graph_path)
    same, total, max_diff = 0, 0, None
    for image in probe_images(height, width, num_probes):
        labels, probabilities = graph(image)
        ours = predictor.probabilities(image[None].astype(np.float32)).numpy()[0]
        same += int(np.sum(ours.argmax(-1) == labels))
        total += labels.size
        if probabilities is not None:
            diff = float(np.max(np.abs(ours - probabilities)))
            max_diff = diff if max_diff is None else max(max_diff, diff)
    result = {"label_agreement": same / total, "max_probability_difference": max_diff,
              "probes": num_probes, "crop_size": [height, width],
              "output_stride": output_stride, "seconds": round(time.monotonic() - start, 1),
              "min_agreement": MIN_AGREEMENT}
    figures = (f"label agreement {100 * result['label_agreement']:.3f} %, max probability "
               f"difference {'n/a' if max_diff is None else f'{max_diff:.2e}'}")
    if result["label_agreement"] < MIN_AGREEMENT:
        hint = "" if graph_settings.get("documented") else (
            "; the graph's output stride and crop are assumed, try python -m deeplab.zoo "
            f"verify {entry.name} --output_stride=N --crop_size=H,W")
        raise ZooError(f"{entry.name}: refused: our network disagrees with the tarball's "
                       f"frozen graph ({figures}, below {100 * MIN_AGREEMENT:.1f} % at output "
                       f"stride {output_stride}, crop {height}x{width}){hint}")
    log(f"{entry.name}: matches the original's frozen graph ({figures})")
    return result

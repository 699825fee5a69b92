"""Parity of our network with the original export each zoo tarball holds.

`frozen_inference_graph.pb` (`ImageTensor` uint8 [1, H, W, 3] -> `SemanticPredictions`) runs
on generated probe images of the graph's crop size (so the graph pads nothing), and so does
our network, built from the registry's options at the graph's output stride and filled from
the tarball's checkpoint. Gated: label agreement (fraction of pixels) >= MIN_AGREEMENT and
the max absolute difference of the class probabilities <= MAX_PROBABILITY_DIFFERENCE (the
graph's `SemanticProbabilities` when it has them, else the softmax of its ArgMax input, the
upsampled logits, as the original's). The original's real exports and our import of their
checkpoints differ by < 1e-5; weights of another checkpoint of the same network differ by
far more than 1e-3.

Probes: smooth colour fields (`probe_images`), on which a network often says one class
everywhere, and class-seeking probes (`class_seeking_probes`): the same fields whose four
quadrants a few signed-gradient steps on our network push towards four different classes,
so the networks are compared across class boundaries, where other weights show at once.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from deeplab.zoo.registry import ZooEntry, ZooError

MIN_AGREEMENT = 0.999
MAX_PROBABILITY_DIFFERENCE = 1e-3
NUM_PROBES = 3
NUM_CLASS_SEEKING_PROBES = 2
SEEKING_STEPS = 5
SEEKING_STEP_SIZE = 12.0  # pixel levels per signed-gradient step


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


def class_seeking_probes(model, options, height: int, width: int,
                         count: int = NUM_CLASS_SEEKING_PROBES, steps: int = SEEKING_STEPS,
                         seed: int = 1) -> np.ndarray:
    """uint8 [count, height, width, 3] on which `model` predicts several classes.

    Each probe starts as a smooth field (`probe_images`); its four quadrants get target
    classes (probe p, quadrant q: class (4p + q + 1) mod C), and `steps` signed-gradient
    steps of SEEKING_STEP_SIZE pixel levels raise the mean log-probability of each pixel's
    target. One probe at a time (memory of one backward pass at batch 1).
    """
    from deeplab.model.predict import logits_stride, multi_scale_probabilities

    classes = options.num_classes
    stride = logits_stride(options)
    start = probe_images(height, width, count, seed).astype(np.float32)
    rows, cols = np.arange(height)[:, None] >= height // 2, np.arange(width)[None] >= width // 2
    quadrant = (2 * rows + cols).astype(np.int64)
    probes = []
    for p, image in enumerate(start):
        target = tf.one_hot((4 * p + quadrant + 1) % classes, classes)[None]
        x = tf.constant(image[None])
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                probabilities = multi_scale_probabilities(model, x, stride)
                score = tf.reduce_mean(tf.reduce_sum(
                    target * tf.math.log(probabilities + 1e-12), axis=-1))
            step = tf.sign(tape.gradient(score, x)) * SEEKING_STEP_SIZE
            x = tf.clip_by_value(x + step, 0.0, 255.0)
        probes.append(np.rint(x.numpy()[0]).astype(np.uint8))
    return np.stack(probes)


def original_graph(path: str):
    """The tarball's frozen graph as a deeplab.export.runtimes.FrozenGraphModel; ZooError
    when it is not a DeepLab frozen graph."""
    from deeplab.export.errors import ExportError
    from deeplab.export.runtimes import FrozenGraphModel

    try:
        return FrozenGraphModel(path)
    except ExportError as exc:
        raise ZooError(f"{exc} (not the DeepLab frozen graph a zoo tarball holds)") from None


def check_parity(entry: ZooEntry, folder: str, output_stride: int | None = None,
                 crop_size=None, num_probes: int = NUM_PROBES, log=print) -> dict:
    """Runs the frozen graph and our network on the probes; returns the figures.

    Raises ZooError naming agreement and probability difference when agreement is below
    MIN_AGREEMENT (99.9 %).
    """
    from deeplab.checkpoints.io import load_model
    from deeplab.inference.checkpoint_model import CheckpointModel

    graph_settings = entry.frozen_graph or {}
    output_stride = output_stride or graph_settings.get("output_stride") or entry.output_stride
    height, width = crop_size or graph_settings.get("crop_size") or (513, 513)
    start = time.monotonic()
    graph_path = os.path.join(folder, "frozen_inference_graph.pb")
    log(f"{entry.name}: checking our network against {graph_path} on {num_probes} smooth "
        f"and {NUM_CLASS_SEEKING_PROBES} class-seeking probe images {height}x{width}, output "
        f"stride {output_stride}")
    options = entry.model_options(output_stride=output_stride)
    ours_model = CheckpointModel(load_model(options, folder), options, checkpoint=folder)
    graph = original_graph(graph_path)
    probes = np.concatenate([probe_images(height, width, num_probes),
                             class_seeking_probes(ours_model.keras_model, options, height,
                                                  width)])
    same, total, max_diff, classes = 0, 0, None, set()
    for image in probes:
        labels, probabilities = graph.labels_and_scores(image[None])
        ours = ours_model(image[None])[0]
        same += int(np.sum(ours.argmax(-1) == labels))
        total += labels.size
        classes.update(np.unique(labels).tolist())
        if probabilities is not None:
            diff = float(np.max(np.abs(ours - probabilities)))
            max_diff = diff if max_diff is None else max(max_diff, diff)
    result = {"label_agreement": same / total, "max_probability_difference": max_diff,
              "probes": len(probes), "classes_in_probes": len(classes),
              "crop_size": [height, width], "output_stride": output_stride,
              "seconds": round(time.monotonic() - start, 1), "min_agreement": MIN_AGREEMENT,
              "max_allowed_probability_difference": MAX_PROBABILITY_DIFFERENCE}
    figures = (f"label agreement {100 * result['label_agreement']:.3f} %, max probability "
               f"difference {'n/a' if max_diff is None else f'{max_diff:.2e}'}, "
               f"{len(classes)} classes on {len(probes)} probes")
    refusals = []
    if result["label_agreement"] < MIN_AGREEMENT:
        refusals.append(f"agreement below {100 * MIN_AGREEMENT:.1f} %")
    if max_diff is not None and max_diff > MAX_PROBABILITY_DIFFERENCE:
        refusals.append(f"probabilities differ by more than {MAX_PROBABILITY_DIFFERENCE:g}: "
                        "the checkpoint is not the one the graph was made from")
    if refusals:
        hint = "" if graph_settings.get("documented") else (
            "; the graph's output stride and crop are assumed, try python -m deeplab.zoo "
            f"verify {entry.name} --output_stride=N --crop_size=H,W")
        raise ZooError(f"{entry.name}: refused: our network disagrees with the tarball's "
                       f"frozen graph at output stride {output_stride}, crop {height}x{width} "
                       f"({figures}): {'; '.join(refusals)}{hint}")
    log(f"{entry.name}: matches the original's frozen graph ({figures})")
    return result

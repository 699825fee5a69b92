"""Per-class loss weights from the data: median frequency balancing, and --label_weights.

Median frequency balancing (Eigen & Fergus, 2015): the frequency of class c is
freq(c) = pixels of c / all pixels of the images holding c, and its weight is
median(freq) / freq(c), the median taken over the classes present. Frequent classes get
weights below 1, rare ones above. Classes absent from the split get weight 1 (they have no
pixel to weigh). The counts are those the converters store in dataset.json
(`DatasetDescriptor.class_statistics`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from deeplab.data.descriptors import DatasetDescriptor

AUTO_WEIGHTS = ("auto", "median_frequency")


def median_frequency_weights(pixels: Sequence[int], image_pixels: Sequence[int]) -> np.ndarray:
    """float64 [C] weights from per-class pixel counts [C] and image pixel totals [C]."""
    pixels = np.asarray(pixels, np.float64)
    image_pixels = np.asarray(image_pixels, np.float64)
    present = (pixels > 0) & (image_pixels > 0)
    weights = np.ones_like(pixels)
    if present.any():
        frequency = pixels[present] / image_pixels[present]
        weights[present] = np.median(frequency) / frequency
    return weights


def resolve_label_weights(values: Sequence | None, descriptor: DatasetDescriptor,
                          split: str) -> tuple[float, ...] | None:
    """The weights of --label_weights (repeated numbers, or "auto" / "median_frequency").

    Args:
      values: the flag's values (strings or numbers); None or empty: no weights.
      descriptor: the training dataset's descriptor (class count, class_statistics).
      split: the training split whose pixel counts "auto" uses.

    Returns:
      num_classes floats, or None. Raises ValueError naming the flag and the fix.
    """
    if not values:
        return None
    words = [str(v).strip().lower() for v in values]
    if any(word in AUTO_WEIGHTS for word in words):
        if len(words) != 1:
            raise ValueError(f"--label_weights: {words[0]} stands alone, got {list(values)}")
        return _auto(descriptor, split)
    try:
        weights = tuple(float(v) for v in values)
    except ValueError:
        raise ValueError(f"--label_weights: {list(values)} must be numbers (one per class) or "
                         f"one of {', '.join(AUTO_WEIGHTS)}") from None
    if len(weights) != descriptor.num_classes:
        raise ValueError(f"--label_weights: {len(weights)} weights for "
                         f"{descriptor.num_classes} classes: give one per class")
    return weights


def _auto(descriptor: DatasetDescriptor, split: str) -> tuple[float, ...]:
    stats = descriptor.class_statistics.get(split)
    if stats is None:
        raise ValueError(f"--label_weights=auto: the dataset.json of {descriptor.name!r} holds no "
                         f"per-class pixel counts of split {split!r}: convert the split again "
                         "with this version's converter (it stores them)")
    weights = median_frequency_weights(stats["pixels"], stats["image_pixels"])
    names = descriptor.class_names or tuple(str(i) for i in range(descriptor.num_classes))
    logging.info("label weights (median frequency balancing over %s): %s", split,
                 ", ".join(f"{n}={w:.4g}" for n, w in zip(names, weights, strict=True)))
    return tuple(float(w) for w in weights)

"""`all_layers(model)`: every layer inside a Keras model, nested models included, through
the public `layers` attribute (in the order Keras lists them)."""

from __future__ import annotations

from collections.abc import Iterator

import keras


def all_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Each layer of `model` (not `model` itself), depth first: a nested model, then its
    layers."""
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from all_layers(layer)

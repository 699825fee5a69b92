"""Head registry: the module that turns backbone features into the decoder's input.

`ModelOptions.head` names the entry ("aspp", or "dense_prediction_cell" when a cell config
is set). Each entry is `build(features [B, h, w, C], options, norm) -> [B, h, w, C']`; adding
a head is one module plus one line here.
"""

from __future__ import annotations

from deeplab.model import aspp, dense_prediction_cell

HEADS = {
    "aspp": aspp.build,
    "dense_prediction_cell": dense_prediction_cell.build,
}


def build_head(features, options, norm):
    """The head `options.head` applied to `features`; see the module docstring."""
    return HEADS[options.head](features, options, norm)

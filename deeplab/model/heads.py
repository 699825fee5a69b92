"""Head registry: the module that turns backbone features into the decoder's input.

Each entry is a `HeadSpec`: `build(features [B, h, w, C], options, norm) -> [B, h, w, C']`,
the predicate `applies(options)` that selects it, the TF1 variable scopes it creates that
count as "last layers" (`--last_layer_gradient_multiplier`, `--initialize_last_layer`),
and the `ModelOptions` fields that only it reads (its option group). `select(options)` is
the first registered entry whose predicate holds, else ASPP (the default head, whose
predicate is None). Adding a head is one module plus one `register` call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from deeplab.model import aspp, decoder, dense_prediction_cell
from deeplab.utils.registry import Registry


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """A head: see the module docstring. `build` may return `features` unchanged."""

    name: str
    build: Callable
    applies: Callable[[object], bool] | None
    last_layer_scopes: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


HEADS: Registry[HeadSpec] = Registry("head")


def register(spec: HeadSpec) -> HeadSpec:
    return HEADS.register(spec.name, spec)


register(HeadSpec(
    "dense_prediction_cell", dense_prediction_cell.build,
    lambda options: bool(options.dense_prediction_cell_config),
    (dense_prediction_cell.SCOPE,), ("dense_prediction_cell_config",)))
# The original skips ASPP without aspp_with_batch_norm: the backbone features go on.
register(HeadSpec("none", lambda features, options, norm: features,
                  lambda options: not options.aspp_with_batch_norm))
DEFAULT = register(HeadSpec("aspp", aspp.build, None, aspp.LAST_LAYER_SCOPES, aspp.OPTIONS))

# The decoder and the classifier: the other last layers (the original's
# get_extra_layer_scopes: logits, image_pooling, aspp, concat_projection, decoder,
# meta_architecture).
LOGITS_SCOPES = ("logits",)
DECODER_SCOPES = (decoder.SCOPE,)
# Options of the whole network (every other ModelOptions field belongs to the option group
# of a backbone family, a head or the decoder)
NETWORK_OPTIONS = ("num_classes", "model_variant", "output_stride", "aspp_with_batch_norm",
                   "logits_kernel_size", "head_batch_norm_decay", "use_bounded_activation",
                   "prediction_with_upsampled_logits", "normalization", "group_norm_groups",
                   "quantize_delay_step")


def select(options) -> HeadSpec:
    """The head `options` ask for: the first registered entry that applies, else ASPP."""
    return next((spec for spec in HEADS.values()
                 if spec.applies is not None and spec.applies(options)), DEFAULT)


def build_head(features, options, norm):
    """The selected head applied to `features`; see the module docstring."""
    return select(options).build(features, options, norm)


def last_layer_scopes(logits_only: bool = False) -> tuple[str, ...]:
    """The "last layers" as TF1 scope names: the logits, then (unless `logits_only`, the
    original's --last_layers_contain_logits_only) every head's scopes and the decoder's."""
    if logits_only:
        return LOGITS_SCOPES
    scopes = [*LOGITS_SCOPES]
    for spec in HEADS.values():
        scopes += [s for s in spec.last_layer_scopes if s not in scopes]
    return (*scopes, *DECODER_SCOPES)

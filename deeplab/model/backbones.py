"""Backbone registry: model_variant -> BackboneSpec (see `backbone_spec` for the contract).

Adding a backbone is one new module defining a `BackboneSpec` plus one entry in `_SPECS`
(or `register(spec)` from outside the package).
Everything else (the `--model_variant` choices, preprocessing, the padding pixel, BatchNorm
defaults, which decoder strides exist) is read from here.
"""

from __future__ import annotations

from deeplab.model import mobilenet_edgetpu, mobilenet_v2, mobilenet_v3, nas, resnet, xception
from deeplab.model.backbone_spec import BackboneSpec
from deeplab.utils.registry import Registry

_SPECS = (
    xception.SPEC,
    resnet.SPEC,
    mobilenet_v2.SPEC,
    mobilenet_v3.SPEC,
    mobilenet_edgetpu.SPEC,
    nas.SPEC,
    nas.HNAS_SPEC,
)

# model_variant -> the spec building it (a family registers each of its variants)
BACKBONES: Registry[BackboneSpec] = Registry("model_variant")


def register(spec: BackboneSpec) -> BackboneSpec:
    """Registers every variant of `spec`; ValueError if one is taken."""
    for variant in spec.variants:
        BACKBONES.register(variant, spec)
    return spec


for _spec in _SPECS:
    register(_spec)
MODEL_VARIANTS = BACKBONES.names()  # the built-in variants (flag choices)


def get_backbone(model_variant: str) -> BackboneSpec:
    """The spec building `model_variant`; ValueError naming the known variants otherwise."""
    return BACKBONES.lookup(model_variant)


def mean_pixel(model_variant: str | None) -> tuple[float, float, float]:
    """RGB value (0..255) that the variant's preprocessing maps to zero: what images are
    padded with (127.5 when the variant is unknown)."""
    if not model_variant or model_variant not in BACKBONES:
        return (127.5, 127.5, 127.5)
    return get_backbone(model_variant).mean_pixel(model_variant)

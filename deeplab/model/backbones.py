"""Backbone registry: model_variant -> BackboneSpec (see `backbone_spec` for the contract).

Adding a backbone is one new module defining a `BackboneSpec` plus one entry in `_SPECS`.
Everything else (the `--model_variant` choices, preprocessing, the padding pixel, BatchNorm
defaults, which decoder strides exist) is read from here.
"""

from __future__ import annotations

from deeplab.model import mobilenet_edgetpu, mobilenet_v2, mobilenet_v3, nas, resnet, xception
from deeplab.model.backbone_spec import BackboneSpec

_SPECS = (
    xception.SPEC,
    resnet.SPEC,
    mobilenet_v2.SPEC,
    mobilenet_v3.SPEC,
    mobilenet_edgetpu.SPEC,
    nas.SPEC,
    nas.HNAS_SPEC,
)

_BY_VARIANT = {variant: spec for spec in _SPECS for variant in spec.variants}
MODEL_VARIANTS = tuple(_BY_VARIANT)


def get_backbone(model_variant: str) -> BackboneSpec:
    """The spec building `model_variant`; ValueError naming the known variants otherwise."""
    try:
        return _BY_VARIANT[model_variant]
    except KeyError:
        raise ValueError(f"model_variant={model_variant!r} is not one of "
                         f"{', '.join(MODEL_VARIANTS)}") from None


def preprocessing_mode(model_variant: str) -> str:
    """'subtract_mean' (plain resnet_v1: ImageNet mean RGB) or 'unit_range' (x * 2/255 - 1)."""
    return get_backbone(model_variant).preprocessing(model_variant)


def mean_pixel(model_variant: str | None) -> tuple[float, float, float]:
    """RGB value (0..255) that the variant's preprocessing maps to zero: what images are
    padded with (127.5 when the variant is unknown)."""
    if not model_variant or model_variant not in _BY_VARIANT:
        return (127.5, 127.5, 127.5)
    return get_backbone(model_variant).mean_pixel(model_variant)

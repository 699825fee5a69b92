"""Backbone registry: model_variant -> feature extractor.

Every backbone module exposes `build(images, options) -> (features, low_level)` where
`images` is the preprocessed [B, H, W, 3] float tensor, `features` the deepest feature map
at `options.output_stride` and `low_level` the stride-4 map the DeepLabv3+ decoder projects
(None where the original defines none). Layers are named by `layers.keras_name` of the
original TF1 scope, so checkpoints of the model zoo map by name.
"""

from __future__ import annotations

from deeplab.model import mobilenet_v2, resnet, xception
from deeplab.model.layers import Preprocess
from deeplab.model.options import ModelOptions


def build_backbone(images, options: ModelOptions):
    """Returns (features, low_level) for `options.model_variant`; see the module docstring."""
    if options.is_xception:
        return xception.build(images, options)
    if options.is_resnet:
        return resnet.build(images, options)
    if options.is_mobilenet:
        return mobilenet_v2.build(images, options)
    raise ValueError(f"no backbone for model_variant={options.model_variant!r}")


def preprocessing_mode(model_variant: str) -> str:
    """'subtract_mean' for plain resnet_v1_* (ImageNet mean RGB), else 'unit_range'."""
    if model_variant.startswith("resnet_v1") and not model_variant.endswith("_beta"):
        return "subtract_mean"
    return "unit_range"


def mean_pixel(model_variant: str | None) -> tuple[float, float, float]:
    """RGB value (0..255) that the variant's preprocessing maps to zero: what images are
    padded with (the ImageNet mean for plain resnet_v1, else 127.5)."""
    if model_variant and preprocessing_mode(model_variant) == "subtract_mean":
        return Preprocess.MEAN_RGB
    return (127.5, 127.5, 127.5)

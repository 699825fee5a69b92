"""Decoder: the stride comes from the backbone's end points; the sum merge as logits."""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.checkpoints.io import variable_map
from deeplab.model.deeplab import build_model
from deeplab.model.options import ModelOptions


def test_a_stride_the_backbone_has_no_end_point_for_is_refused():
    options = ModelOptions(model_variant="mobilenet_v2", decoder_output_stride=8)
    with pytest.raises(ValueError, match=r"end points at stride\(s\) \[4\]; "
                                         r"decoder_output_stride=8"):
        build_model(options)


def test_sum_merge_output_is_the_logits():
    options = ModelOptions(model_variant="mobilenet_v2", num_classes=5, depth_multiplier=0.5,
                           decoder_output_stride=4, decoder_use_sum_merge=True,
                           decoder_output_is_logits=True, decoder_filters=5,
                           aspp_convs_filters=8)
    model = build_model(options)
    names = variable_map(model)
    assert not any(n.startswith("logits/") for n in names)
    assert names["decoder/feature_projection0/weights"].shape == (1, 1, 72, 5)
    assert names["decoder/decoder_conv0/weights"].shape == (1, 1, 8, 5)
    assert "decoder/decoder_conv0/biases" in names
    assert not any("BatchNorm" in n for n in names if n.startswith("decoder/"))
    assert model(np.zeros((1, 33, 33, 3), np.float32)).shape == (1, 9, 9, 5)


def test_logits_from_the_decoder_need_as_many_filters_as_classes():
    with pytest.raises(ValueError, match="decoder_filters=256 must equal num_classes=5"):
        ModelOptions(num_classes=5, decoder_output_stride=4, decoder_output_is_logits=True)


def _activations(options) -> dict[str, str]:
    """{conv scope: activation name} of the head's and decoder's activation layers."""
    model = build_model(options)
    return {layer.name.rsplit(".", 1)[0]: layer.activation.__name__ for layer in model.layers
            if layer.name.startswith(("aspp", "image_pooling", "concat_projection", "decoder"))
            and hasattr(layer, "activation") and layer.activation is not None
            and not layer.weights}


def test_bounded_activation_uses_relu6_in_aspp_and_decoder_but_not_image_pooling():
    options = ModelOptions(model_variant="mobilenet_v2", num_classes=3, depth_multiplier=0.25,
                           atrous_rates=(1, 2), decoder_output_stride=4, aspp_convs_filters=8,
                           decoder_filters=8, use_bounded_activation=True)
    bounded, plain = _activations(options), _activations(options.replace(
        use_bounded_activation=False))
    assert set(bounded) == set(plain)
    changed = sorted(name for name in bounded if bounded[name] != plain[name])
    assert changed == sorted([
        "aspp0", "aspp1_depthwise", "aspp1_pointwise", "aspp2_depthwise", "aspp2_pointwise",
        "concat_projection", "decoder.feature_projection0",
        "decoder.decoder_conv0_depthwise", "decoder.decoder_conv0_pointwise",
        "decoder.decoder_conv1_depthwise", "decoder.decoder_conv1_pointwise"])
    assert {bounded[n] for n in bounded if bounded[n] != plain[n]} == {"relu6"}
    assert bounded["image_pooling"] == plain["image_pooling"] == "relu"

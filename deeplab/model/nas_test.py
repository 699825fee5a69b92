"""NAS backbones: the original's variable names, the classification head, the OS32 option,
drop path."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import variable_map
from deeplab.model import nas
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.deeplab import backbone_norm, build_model
from deeplab.model.options import ModelOptions


def _backbone(**fields) -> keras.Model:
    options = ModelOptions(nas_stem_output_num_conv_filters=4, **fields)
    images = keras.Input((None, None, 3))
    out = nas.build(images, options, backbone_norm(options))
    return keras.Model(images, {str(k): v for k, v in out.items()})


def test_classification_head_reaches_stride_32_dilated_past_the_output_stride():
    model = _backbone(model_variant="nas_pnasnet", output_stride=16,
                      nas_use_classification_head=True)
    out = model(np.zeros((1, 65, 65, 3), np.float32))
    assert out[OUTPUT].shape == (1, 5, 5, 2048)  # OS16 kept: the last 3x3 is dilated
    conv = model.get_layer("pnasnet.downsample_os32_conv")
    assert (conv.strides, conv.dilation_rate, conv.filters) == ((1, 1), (2, 2), 1024)
    names = variable_map(model)
    assert "pnasnet/classification_head_bn/gamma" in names
    assert out["4"].shape == (1, 17, 17, 128)  # pnasnet's decoder feature: the stem


def test_remove_os32_stride_keeps_the_last_level_at_stride_16():
    kept = _backbone(model_variant="nas_pnasnet", output_stride=32, decoder_output_stride=4,
                     nas_remove_os32_stride=True)
    plain = _backbone(model_variant="nas_pnasnet", output_stride=32)
    image = np.zeros((1, 65, 65, 3), np.float32)
    assert kept(image)[OUTPUT].shape == (1, 5, 5, 5 * 32)
    assert plain(image)[OUTPUT].shape == (1, 3, 3, 5 * 32)
    with pytest.raises(ValueError, match="needs a decoder"):
        _backbone(model_variant="nas_pnasnet", output_stride=32, nas_remove_os32_stride=True)


def test_hnasnet_ends_at_stride_8_and_taps_cell_2():
    model = _backbone(model_variant="nas_hnasnet", output_stride=8)
    out = model(np.zeros((1, 33, 33, 3), np.float32))
    assert out[OUTPUT].shape == (1, 5, 5, 5 * 8)
    assert out["4"].shape == (1, 9, 9, 5 * 4)
    with pytest.raises(ValueError, match="output_stride 8, not 16"):
        build_model(ModelOptions(model_variant="nas_hnasnet", output_stride=16))


def test_drop_path_scales_with_depth_and_progress_and_is_off_at_inference():
    model = _backbone(model_variant="nas_pnasnet", output_stride=8, drop_path_keep_prob=0.5)
    drops = {layer.name: layer for layer in model.layers if isinstance(layer, nas.DropPath)}
    assert drops["pnasnet.cell_11.comb_iter_0.left.drop_path"].keep_prob == pytest.approx(0.5)
    assert drops["pnasnet.cell_0.comb_iter_0.left.drop_path"].keep_prob == \
        pytest.approx(1 - 0.5 / 12)
    assert not any(".right." in name and "comb_iter_4" in name for name in drops)  # "none"
    layer = drops["pnasnet.cell_11.comb_iter_0.left.drop_path"]
    x = np.ones((400, 1, 1, 2), np.float32)
    np.testing.assert_array_equal(layer(x, training=False), x)
    kept = layer(x, training=True).numpy()[:, 0, 0, 0]
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.35 < (kept > 0).mean() < 0.65
    step = tf.Variable(0, dtype=tf.int64)
    nas.attach_drop_path_schedule(model, step, total_steps=100)
    np.testing.assert_array_equal(layer(x, training=True), x)  # step 0: nothing dropped
    step.assign(50)  # halfway: keep 0.75
    kept = layer(x, training=True).numpy()[:, 0, 0, 0]
    assert set(np.unique(kept)) <= {0.0, np.float32(1 / 0.75)} and 0.6 < (kept > 0).mean() < 0.9

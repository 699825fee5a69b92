"""Every registered head builds, is the one selected by its options, and declares the scopes
of its variables that count as last layers; the last-layer list matches the original's
get_extra_layer_scopes, Dense Prediction Cell included (xception_71 + DPC, as the zoo's
xception71_dpc entries)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import last_layer_scopes, restore_model, variable_map
from deeplab.model import heads
from deeplab.model.deeplab import build_model
from deeplab.model.dense_prediction_cell import CITYSCAPES_CELL, load_config
from deeplab.model.layers import NormSpec
from deeplab.model.options import ModelOptions
from deeplab.train.options import TrainOptions
from deeplab.train.trainer import gradient_multipliers

TINY = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=3,
                    aspp_convs_filters=8, atrous_rates=(1, 2))
CELL = [{"kernel": 3, "rate": [1, 6], "op": "conv", "input": -1},
        {"kernel": 3, "rate": [1, 1], "op": "conv", "input": 0}]
# options selecting each registered head; a new head adds its entry here
SELECTING = {
    "dense_prediction_cell": TINY.replace(dense_prediction_cell_config=CELL),
    "none": TINY.replace(aspp_with_batch_norm=False),
    "aspp": TINY,
}
# the original's model.get_extra_layer_scopes(last_layers_contain_logits_only=False)
ORIGINAL_LAST_LAYERS = {"logits", "image_pooling", "aspp", "concat_projection", "decoder",
                        "meta_architecture"}


def test_every_head_has_options_that_select_it():
    assert set(SELECTING) == set(heads.HEADS)


@pytest.mark.parametrize("name", list(heads.HEADS))
def test_head_builds_and_its_variables_are_last_layers(name):
    options = SELECTING[name]
    spec = heads.HEADS.lookup(name)
    assert heads.select(options) is spec
    features = keras.Input((None, None, 16))
    model = keras.Model(features, spec.build(features, options, NormSpec()))
    out = model(np.zeros((1, 5, 7, 16), np.float32))
    assert out.shape[:3] == (1, 5, 7)
    names = list(variable_map(model))
    assert all(any(n.startswith(s) for s in spec.last_layer_scopes)
               for n in names), names
    assert bool(names) == bool(spec.last_layer_scopes)
    assert set(spec.options) <= {f for f in ModelOptions.__dataclass_fields__}


def test_unknown_head_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown head 'psp'; registered: dense_pred"):
        heads.HEADS.lookup("psp")


def test_last_layer_scopes_are_the_originals():
    assert set(last_layer_scopes(False)) == ORIGINAL_LAST_LAYERS
    assert last_layer_scopes(True) == ("logits",)


@pytest.fixture(scope="module")
def xception71_dpc():
    options = ModelOptions(model_variant="xception_71", num_classes=19, atrous_rates=None,
                           decoder_output_stride=4,
                           dense_prediction_cell_config=load_config(CITYSCAPES_CELL))
    return build_model(options)


def test_xception71_dpc_last_layers_as_the_original(xception71_dpc, tmp_path):
    """--last_layer_gradient_multiplier scales exactly the variables outside the backbone
    (DPC, decoder, logits); --initialize_last_layer=false restores only the backbone."""
    model = xception71_dpc
    trainable = [n for n, v in variable_map(model).items() if v.trainable]
    factors = dict(zip(trainable, gradient_multipliers(model, TrainOptions(
        train_logdir="unused", last_layer_gradient_multiplier=10.0)), strict=True))
    head = {n for n in trainable if not n.startswith("xception_71/")}
    assert any(n.startswith("meta_architecture/") for n in head)
    for name, factor in factors.items():
        expected = (10.0 if name in head else 1.0) * (2.0 if "biases" in name else 1.0)
        assert factor == expected, name
    prefix = tf.train.Checkpoint(model={n: v.value for n, v in
                                        variable_map(model).items()}).write(
        str(tmp_path / "ckpt"))
    report = restore_model(model, prefix, exclude_scopes=last_layer_scopes(False))
    assert all(n.startswith("xception_71/") for n in report.loaded)
    assert {n.split("/")[0] for n in report.excluded} == {"meta_architecture", "decoder",
                                                          "logits"}


def test_every_model_option_has_an_owner():
    """Each ModelOptions field is the whole network's or in the option group of a backbone
    family, a head or the decoder, and every group names real fields."""
    from deeplab.model import backbones, decoder

    groups = [heads.NETWORK_OPTIONS, decoder.OPTIONS,
              *(spec.options for spec in heads.HEADS.values()),
              *(spec.options for spec in backbones.BACKBONES.values())]
    owned = {name for group in groups for name in group}
    assert owned == set(ModelOptions.__dataclass_fields__)
    assert backbones.get_backbone("mobilenet_v2").options == ("depth_multiplier", "divisible_by")

"""The Dense Prediction Cell: config parsing, anisotropic rates, the packaged cell."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from deeplab.checkpoints.io import variable_map
from deeplab.model import dense_prediction_cell as dpc
from deeplab.model import heads
from deeplab.model.layers import NormSpec
from deeplab.model.options import ModelOptions


def test_packaged_cell_loads_by_name_and_by_the_originals_path():
    cell = dpc.load_config(dpc.CITYSCAPES_CELL)
    assert [b.rate for b in cell] == [(1, 6), (18, 15), (6, 3), (1, 1), (6, 21)]
    assert [b.input for b in cell] == [-1, 0, 1, 0, 0]
    assert dpc.load_config(f"deeplab/core/{dpc.CITYSCAPES_CELL}") == cell


def test_bad_configs_name_the_branch(tmp_path):
    with pytest.raises(ValueError, match="branch 1.*input 3"):
        dpc.normalize_config([{"op": "conv", "input": -1}, {"op": "conv", "input": 3}])
    with pytest.raises(ValueError, match="branch 0.*'pool'"):
        dpc.normalize_config([{"op": "pool", "input": -1}])
    broken = tmp_path / "cell.json"
    broken.write_text("[{")
    with pytest.raises(ValueError, match="cell.json: cannot read"):
        dpc.load_config(str(broken))
    with pytest.raises(ValueError, match="no such dense prediction cell file"):
        dpc.load_config("missing.json")


@pytest.mark.parametrize("output_stride, factor", [(16, 1), (8, 2)])
def test_rates_are_height_width_and_double_at_output_stride_8(output_stride, factor):
    cell = dpc.normalize_config([{"op": "conv", "kernel": 3, "rate": [1, 6], "input": -1},
                                 {"op": "conv", "kernel": 1, "input": 0}])
    options = ModelOptions(model_variant="mobilenet_v2", output_stride=output_stride,
                           dense_prediction_cell_config=cell)
    features = keras.Input((None, None, 8))
    model = keras.Model(features, dpc.build(features, options, NormSpec()))
    depthwise = model.get_layer("meta_architecture.branch0_depthwise")
    assert tuple(depthwise.dilation_rate) == (1 * factor, 6 * factor)
    names = variable_map(model)
    assert names["meta_architecture/branch1/weights"].shape == (1, 1, 256, 256)
    assert names["meta_architecture/concat_projection/weights"].shape == (1, 1, 512, 256)
    assert model(np.zeros((1, 9, 9, 8), np.float32)).shape == (1, 9, 9, 256)


def test_options_keep_the_cell_through_json():
    cell = dpc.load_config(dpc.CITYSCAPES_CELL)
    options = ModelOptions(model_variant="xception_71", dense_prediction_cell_config=cell)
    assert heads.select(options).name == "dense_prediction_cell"
    text = options.to_json()
    assert json.loads(text)["dense_prediction_cell_config"][1]["rate"] == [18, 15]
    assert ModelOptions.from_json(text) == options
    assert hash(ModelOptions.from_json(text)) == hash(options)

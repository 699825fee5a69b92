"""The assembled network saved as a `.keras` file loads back and computes the same logits."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deeplab.model.deeplab import build_model
from deeplab.model.options import ModelOptions

SAVED = [
    ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=3,
                 decoder_output_stride=4, aspp_convs_filters=8, decoder_filters=8,
                 image_pooling_crop_size=(33, 33)),
    ModelOptions(model_variant="resnet_v1_18_beta", num_classes=3, decoder_output_stride=4,
                 multi_grid=(1, 2)),
    ModelOptions(model_variant="nas_pnasnet", num_classes=3, drop_path_keep_prob=0.7),
]


@pytest.mark.parametrize("options", SAVED, ids=[o.model_variant for o in SAVED])
def test_keras_file_round_trip(options, tmp_path):
    """Every custom layer is registered (package "deeplab"): Preprocess, ResizeLike,
    GlobalMeanPool, FixedImagePooling, Dropout, BatchNormalization, the NAS layers."""
    model = build_model(options)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), atol=1e-5)

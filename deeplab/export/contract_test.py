"""The export computation: crop padding, shrinking to fit, baked-in scales and flips."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deeplab.export.contract import (
    ExportModule,
    ExportOptions,
    export_probabilities,
    fit_size,
    mean_pixel,
)
from deeplab.export.frozen import freeze
from deeplab.export.testing import TINY_OPTIONS, tiny_folded_model, tiny_model
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.predict import Predictor, logits_stride, multi_scale_probabilities

CROP = (33, 41)


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (1, h, w, 3)).astype(np.uint8)


@pytest.mark.parametrize("size, expected", [((20, 30), (20, 30)), ((33, 41), (33, 41)),
                                            ((66, 40), (33, 20)), ((12, 164), (3, 41))])
def test_fit_size_keeps_small_images_and_shrinks_large_ones(size, expected):
    assert tuple(fit_size(tf.constant(size), CROP).numpy()) == expected


def test_mean_pixel_is_what_preprocessing_maps_to_zero():
    assert mean_pixel(TINY_OPTIONS.model_variant) == (127.5, 127.5, 127.5)
    assert mean_pixel("resnet_v1_101") == (123.15, 115.90, 103.06)


def test_image_inside_crop_is_mean_padded_and_sliced_with_scales_and_flip():
    model, export = tiny_model(), ExportOptions(CROP, scales=(0.5, 1.0), flip=True)
    image = _image(20, 30)
    got = export_probabilities(model, TINY_OPTIONS, export, image).numpy()
    padded = np.full((1,) + CROP + (3,), 127.5, np.float32)
    padded[:, :20, :30] = image
    expected = multi_scale_probabilities(model, padded, logits_stride(TINY_OPTIONS),
                                         (0.5, 1.0), True).numpy()[:, :20, :30]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_image_of_crop_size_matches_the_predictor():
    model = tiny_model()
    image = _image(*CROP)
    got = export_probabilities(model, TINY_OPTIONS, ExportOptions(CROP), image).numpy()
    expected = Predictor(model, TINY_OPTIONS).probabilities(image.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_large_image_is_shrunk_to_fit_and_resized_back():
    model, export = tiny_model(), ExportOptions(CROP)
    image = _image(66, 50)
    got = export_probabilities(model, TINY_OPTIONS, export, image)
    assert got.shape == (1, 66, 50, 3)
    shrunk = resize_bilinear_align_corners(tf.cast(image, tf.float32), [33, 25])
    expected = resize_bilinear_align_corners(
        export_probabilities(model, TINY_OPTIONS, export, shrunk), [66, 50])
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)


def test_module_outputs_labels_as_argmax():
    module = ExportModule(tiny_model(), TINY_OPTIONS, ExportOptions(CROP))
    outputs = module.original_interface()(tf.constant(_image(25, 17)))
    assert outputs["SemanticPredictions"].dtype == tf.int32
    assert outputs["SemanticPredictions"].shape == (1, 25, 17)
    np.testing.assert_array_equal(outputs["SemanticPredictions"].numpy(),
                                  outputs["SemanticProbabilities"].numpy().argmax(-1))


def test_bad_export_options_name_the_flag():
    with pytest.raises(ValueError, match="crop_size"):
        ExportOptions((513,))
    with pytest.raises(ValueError, match="inference_scales"):
        ExportOptions(scales=(0.0,))


def _filter_sources(graph_def):
    """{conv node name: op of the node feeding its filter (input 1)} of a GraphDef."""
    ops = {node.name: node for node in graph_def.node}
    sources = {}
    for node in graph_def.node:
        if node.op in ("Conv2D", "DepthwiseConv2dNative", "MatMul", "_FusedConv2D"):
            source = ops[node.input[1].split(":")[0].lstrip("^")]
            while source.op in ("Identity", "Reshape"):
                source = ops[source.input[0].split(":")[0]]
            sources[node.name] = source.op
    return sources


def test_batch_norm_is_folded_into_constant_weights_and_keeps_the_function():
    model = tiny_folded_model()
    module = ExportModule(model, TINY_OPTIONS, ExportOptions(CROP))
    assert len(module.folded) == 3
    image = _image(40, 50)
    baked = module.outputs(tf.constant(image))["probabilities"].numpy()
    per_call = export_probabilities(model, TINY_OPTIONS, module.export, image).numpy()
    assert per_call.std() > 0.05  # labels vary: the comparison means something
    np.testing.assert_allclose(baked, per_call, atol=2e-6)
    graph_def = freeze(module).graph.as_graph_def()
    sources = _filter_sources(graph_def)
    assert len(sources) == 3
    assert set(sources.values()) == {"Const"}, sources  # no per-call kernel x scale multiply

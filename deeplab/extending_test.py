"""The cost of an extension: in a package of its own (outside deeplab), a backbone, a head,
a palette and an export format each take one module and one registration call, and the
rest of the code picks them up (model building, last layers, colours, --format)."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

MODULES = {
    "tiny_backbone": """
        import keras
        from deeplab.model import backbones
        from deeplab.model.backbone_spec import OUTPUT, AtrousSchedule, BackboneSpec
        from deeplab.model.layers import conv_norm_act

        def build(images, options, norm):
            schedule, x, out = AtrousSchedule(options.output_stride), images, {}
            for i, stride in enumerate((2, 2, 2, 2)):
                stride, rate = schedule.step(stride)
                x = conv_norm_act(x, 8, 3, f"tiny/conv{i}", norm, stride=stride, rate=rate)
                if i == 1:
                    out[4] = x  # the decoder's end point
            schedule.check("tiny_net")
            return {**out, OUTPUT: x}

        SPEC = backbones.register(BackboneSpec("tiny", ("tiny_net",), build, 1e-3, 0.997,
                                               output_strides=(8, 16)))
    """,
    "tiny_head": """
        from deeplab.model import heads
        from deeplab.model.layers import conv_norm_act

        def build(features, options, norm):
            return conv_norm_act(features, 6, 1, "tiny_head/conv", norm)

        SPEC = heads.register(heads.HeadSpec(
            "tiny_head", build, lambda options: options.aspp_convs_filters == 6,
            last_layer_scopes=("tiny_head",)))
    """,
    "toy_palette": """
        from deeplab.data import descriptors

        DESCRIPTOR = descriptors.register(descriptors.DatasetDescriptor(
            "toy_set", 2, 255, {"val": 1}, ("sea", "land"), colormap=((0, 0, 200), (0, 150, 0))),
            palette_aliases=("toy",))
    """,
    "npz_format": """
        import numpy as np
        from deeplab.export import formats

        def write(source, path):
            np.savez(path, crop=np.array(source.crop_size))

        FORMAT = formats.register(formats.ExportFormat(
            "npz", "model.npz", write, lambda path, **kwargs: np.load(path), in_all=False))
    """,
}


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    """The package `plugin` with one module per extension, imported; unregistered after."""
    package = tmp_path / "plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in MODULES.items():
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = {name: importlib.import_module(f"plugin.{name}") for name in MODULES}
    yield loaded
    from deeplab.data import descriptors
    from deeplab.export import formats
    from deeplab.model import backbones, heads

    backbones.BACKBONES.unregister("tiny_net")
    heads.HEADS.unregister("tiny_head")
    descriptors.unregister("toy_set")
    formats.REGISTRY.unregister("npz")
    for name in [m for m in sys.modules if m == "plugin" or m.startswith("plugin.")]:
        del sys.modules[name]


def test_one_module_and_one_registration_each(plugin):
    from deeplab.checkpoints.io import last_layer_scopes, variable_map
    from deeplab.export import formats
    from deeplab.model.deeplab import build_model
    from deeplab.model.options import ModelOptions
    from deeplab.vis import colormap

    options = ModelOptions(model_variant="tiny_net", num_classes=2, aspp_convs_filters=6,
                           decoder_output_stride=4, decoder_filters=4)
    model = build_model(options)
    logits = model(np.zeros((1, 33, 33, 3), np.float32))
    assert logits.shape == (1, 9, 9, 2)
    names = set(variable_map(model))
    assert "tiny/conv3/weights" in names and "tiny_head/conv/weights" in names
    assert "tiny_head" in last_layer_scopes(False)
    with pytest.raises(ValueError, match="tiny_net builds at output_stride 8, 16, not 32"):
        build_model(options.replace(output_stride=32))
    np.testing.assert_array_equal(colormap.colorize(np.array([[1, 0]]), "toy"),
                                  [[[0, 150, 0], [0, 0, 200]]])
    assert formats.parse("npz") == ("npz",) and formats.by_suffix(".npz").name == "npz"
    assert "npz" not in formats.default_names()

"""The registry: the 22 published names, and every entry's options build a network whose
variables match the original's (reference fixtures' vars.txt) where the architecture has a
fixture; entries whose network is not built are refused with the reason."""

from __future__ import annotations

import json

import pytest

from deeplab.zoo import registry
from deeplab.zoo.registry import ZooError, get_entry, load_registry, unavailable_reason

NAMES = {
    "mobilenetv2_dm05_coco_voc_trainaug", "mobilenetv2_dm05_coco_voc_trainval",
    "mobilenetv2_coco_voc_trainaug", "mobilenetv2_coco_voc_trainval",
    "xception65_coco_voc_trainaug", "xception65_coco_voc_trainval",
    "mobilenetv2_coco_cityscapes_trainfine", "mobilenetv3_large_cityscapes_trainfine",
    "mobilenetv3_small_cityscapes_trainfine", "xception65_cityscapes_trainfine",
    "xception71_dpc_cityscapes_trainfine", "xception71_dpc_cityscapes_trainval",
    "EdgeTPU-DeepLab", "EdgeTPU-DeepLab-slim", "mobilenetv2_ade20k_train",
    "xception65_ade20k_train", "xception_41_imagenet", "xception_65_imagenet",
    "xception_65_imagenet_coco", "xception_71_imagenet", "resnet_v1_50_beta_imagenet",
    "resnet_v1_101_beta_imagenet",
}

# Reference fixture folder of an architecture: (model_variant, depth_multiplier, DPC?,
# decoder stride) -> folder; backbone entries compare only the backbone's scope.
FIXTURES = {
    ("xception_65", 1.0, False, 4): "xception65",
    ("mobilenet_v2", 1.0, False, None): "mobilenet_v2",
    ("mobilenet_v3_large_seg", 1.0, False, 8): "mobilenet_v3_large_seg",
    ("mobilenet_v3_small_seg", 1.0, False, 8): "mobilenet_v3_small_seg",
    ("xception_71", 1.0, True, 4): "xception71_dpc",
    ("mobilenet_edgetpu", 1.0, False, None): "mobilenet_edgetpu",
    ("mobilenet_edgetpu", 0.75, False, None): "mobilenet_edgetpu_slim",
}
BACKBONE_FIXTURES = {"xception_65": ("xception65", "xception_65/"),
                     "xception_71": ("xception71_dpc", "xception_71/"),
                     "resnet_v1_101_beta": ("resnet_v1_101_beta", "resnet_v1_101/")}


def test_registry_lists_the_22_published_checkpoints():
    entries = load_registry()
    assert set(entries) == NAMES
    files = [e.file_name for e in entries.values()]
    assert len(set(files)) == 22 and all(f.endswith(".tar.gz") for f in files)
    assert all(e.url.startswith("http://download.tensorflow.org/models/")
               for e in entries.values())
    segmentation = [e for e in entries.values() if e.kind == "segmentation"]
    assert len(segmentation) == 16
    for entry in segmentation:
        assert entry.published and entry.frozen_graph and entry.num_classes
        assert (entry.dataset, entry.num_classes, entry.ignore_label) in {
            ("pascal_voc_seg", 21, 255), ("cityscapes", 19, 255), ("ade20k", 151, 0)}
    x65 = entries["xception65_coco_voc_trainaug"]
    assert x65.model == {"model_variant": "xception_65", "output_stride": 16,
                         "atrous_rates": [6, 12, 18], "decoder_output_stride": 4}
    assert [p["value"] for p in x65.published] == [82.20, 83.58]
    assert x65.published[1]["scales"] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert x65.model_fields(output_stride=8)["atrous_rates"] == [12, 24, 36]


def test_unknown_name_lists_the_names():
    with pytest.raises(ZooError, match="xception65_coco_voc_trainaug"):
        get_entry("xception65_voc")


def test_extra_registry_file_adds_entries(tmp_path, monkeypatch):
    from deeplab.zoo.testing import write_registry, zoo_entry

    monkeypatch.setenv(registry.REGISTRY_ENV, write_registry(str(tmp_path / "r.json"),
                                                             [zoo_entry("mine")]))
    assert get_entry("mine").dataset == "synthetic"
    assert registry.is_zoo_name("mine") and not registry.is_zoo_name(str(tmp_path))
    assert len(load_registry()) == 23


def _fixture_variables(folder, scope=""):
    """{name: shape} from a fixture's vars.txt (the names without ':0')."""
    variables = {}
    for line in (folder / "vars.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")[:2]
        name = name.removesuffix(":0")
        if name.startswith(scope):
            variables[name] = tuple(int(d) for d in shape.split("x")) if shape else ()
    return variables


def _fixture_classes(folder) -> int:
    """Class count of a fixture (the README's: 21 for the first three, 19 for the others)."""
    return 21 if folder in ("xception65", "mobilenet_v2", "resnet_v1_101_beta") else 19


def _plan(entry):
    """(options to build, fixture folder or None, variable scope compared) for an entry.

    Segmentation entries build at the fixture's class count; backbone entries build the
    segmentation network of their fixture and compare the backbone scope only.
    """
    options = entry.model_options()
    if entry.kind == "backbone":
        folder, scope = BACKBONE_FIXTURES.get(options.model_variant, (None, ""))
        for other in load_registry().values():
            if other.kind == "segmentation" and folder and not unavailable_reason(other) \
                    and _plan(other)[1] == folder:
                return _plan(other)[0], folder, scope
        return options, folder, scope
    key = (options.model_variant, options.depth_multiplier,
           bool(entry.dense_prediction_cell_json), options.decoder_output_stride)
    folder = FIXTURES.get(key)
    if folder:
        options = options.replace(num_classes=_fixture_classes(folder), output_stride=16,
                                  atrous_rates=options.atrous_rates and (6, 12, 18))
        if options.model_variant.startswith("mobilenet_v3"):
            options = options.replace(output_stride=32)
    return options, folder, ""


def _architectures():
    """One parameter per distinct network to build: the entry names sharing it."""
    groups = {}
    for entry in load_registry().values():
        if unavailable_reason(entry):
            key = entry.name
        else:
            options, folder, _ = _plan(entry)
            key = json.dumps([options.to_dict(), folder], sort_keys=True, default=str)
        groups.setdefault(key, []).append(entry.name)
    return [pytest.param(names, id=names[0]) for names in groups.values()]


@pytest.mark.parametrize("names", _architectures())
def test_entry_options_build_the_original_variables(names, reference_fixtures):
    from deeplab.checkpoints.io import variable_map
    from deeplab.model.deeplab import build_model

    entry = get_entry(names[0])
    reason = unavailable_reason(entry)
    if reason:  # refused, naming the issue it waits for
        assert entry.requires and entry.requires in reason
        with pytest.raises(ZooError, match=entry.name):
            entry.model_options()
        return
    model = build_model(_plan(entry)[0])
    variables = variable_map(model)
    for name in names:
        options, folder, scope = _plan(get_entry(name))
        if folder is None:  # no fixture for this architecture: it builds, with logits
            assert "logits/semantic/weights" in variables
            continue
        expected = _fixture_variables(reference_fixtures / folder, scope)
        ours = {n: tuple(v.shape) for n, v in variables.items() if n.startswith(scope)}
        assert ours == expected, (name, sorted(set(ours) ^ set(expected))[:10])

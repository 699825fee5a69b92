"""--model_zoo in the entry points: registry values fill the model flags not given (given ones
override with a warning), and `predict.py --model_zoo=NAME photo.png` writes the frozen
graph's labels."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from PIL import Image

from deeplab.export.testing import assert_labels_agree
from deeplab.flags import define_model_flags, model_flag_values
from deeplab.zoo import cache, testing
from deeplab.zoo.flags import apply_model_flags, define_model_zoo_flag, resolve_checkpoint_flag
from deeplab.zoo.registry import get_entry
from deeplab.zoo.verify import class_seeking_probes, original_graph

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _flag_values(*argv):
    fv = flags.FlagValues()
    define_model_flags(fv)
    define_model_zoo_flag(fv)
    flags.DEFINE_string("tf_initial_checkpoint", None, "", flag_values=fv)
    fv(["prog", *argv])
    return fv


def test_registry_fills_the_model_flags_not_given(caplog):
    fv = _flag_values("--output_stride=8")
    apply_model_flags(fv, get_entry("xception65_coco_voc_trainaug"))
    values = model_flag_values(fv)
    assert values["model_variant"] == "xception_65"
    assert values["atrous_rates"] == (6, 12, 18) and values["decoder_output_stride"] == 4
    assert values["output_stride"] == 8  # given by hand: kept, with a warning
    assert "--output_stride=8 overrides xception65_coco_voc_trainaug's 16" in caplog.text


def test_output_stride_given_rescales_the_registry_atrous_rates(caplog):
    from deeplab.zoo.flags import rescale_atrous_rates

    fv = _flag_values("--output_stride=8")
    entry = get_entry("xception65_coco_voc_trainaug")
    apply_model_flags(fv, entry)
    rescale_atrous_rates(fv, entry)
    assert model_flag_values(fv)["atrous_rates"] == (12, 24, 36)
    assert fv["atrous_rates"].present  # so it overrides the cached options.json
    assert "atrous rates [6, 12, 18] become [12, 24, 36]" in caplog.text
    given = _flag_values("--output_stride=8", "--atrous_rates=1")
    rescale_atrous_rates(given, entry)
    assert model_flag_values(given)["atrous_rates"] == (1,)


def test_model_zoo_and_a_path_together_are_refused():
    fv = _flag_values("--model_zoo=xception65_coco_voc_trainaug",
                      "--tf_initial_checkpoint=some/ckpt")
    with pytest.raises(flags.ValidationError, match="not both"):
        resolve_checkpoint_flag(fv, "tf_initial_checkpoint")


def test_predict_model_zoo_gives_the_frozen_graph_labels(zoo_home, tmp_path, tarballs):
    entry = testing.zoo_entry("tiny_predict", size=os.path.getsize(tarballs["good"]))
    registry = testing.write_registry(str(tmp_path / "zoo.json"), [entry])
    os.makedirs(os.path.dirname(cache.tarball_path(entry)))
    shutil.copy(tarballs["good"], cache.tarball_path(entry))  # placed by hand: no network
    model, options = testing.tarball_model()
    image = class_seeking_probes(model, options, *testing.CROP, count=1)[0]  # several classes
    Image.fromarray(image).save(tmp_path / "photo.png")
    env = {**os.environ, "DEEPLAB_HOME": str(zoo_home), "DEEPLAB_ZOO_REGISTRY": registry,
           "DEEPLAB_ZOO_URL": "http://127.0.0.1:9/unreachable"}
    run = subprocess.run(
        [sys.executable, "predict.py", f"--model_zoo={entry.name}",
         f"--output_dir={tmp_path / 'out'}", str(tmp_path / "photo.png")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    labels = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    graph = original_graph(os.path.join(cache.model_dir(entry), "frozen_inference_graph.pb"))
    expected = graph.labels_and_scores(image[None])[0]
    assert_labels_agree(labels, expected)
    assert len(np.unique(expected)) > 1

"""The built wheel, installed into a fresh virtual environment, runs its console scripts.

Builds from a copy of the package (pip wheel --no-build-isolation: no download), installs
it with --no-deps into a venv that sees this interpreter's packages (TensorFlow, Keras)
through a .pth line, and runs the scripts from outside the checkout.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np
import pytest
from PIL import Image

from eval_test import tiny_run  # noqa: F401 - the session fixture

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = ("deeplab-train", "deeplab-eval", "deeplab-vis", "deeplab-export", "deeplab-predict",
           "deeplab-zoo", "deeplab-doctor")


def _setuptools_builds_pyproject() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77  # pyproject's build requirement


def _run(*command, cwd, timeout=300):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """{"bin": the venv's bin directory, "wheel": the wheel file, "home": a folder outside
    the checkout}."""
    if not _setuptools_builds_pyproject():
        pytest.skip("building the wheel offline needs setuptools>=77 in this environment "
                    "(the `test` extra installs it)")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "deeplab", source / "deeplab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                 "--no-build-isolation", "-w", str(root / "dist"), str(source), cwd=root)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((root / "dist").glob("deeplab_tf2-*.whl"))
    env = root / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", str(env), cwd=root)
    assert made.returncode == 0, made.stderr
    python = env / "bin" / "python"
    purelib = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                   cwd=root).stdout.strip()
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    # a path line (not the .pth files there): this checkout's editable install stays out
    pathlib.Path(purelib, "deeplab_test_deps.pth").write_text("\n".join(sorted(here)) + "\n")
    installed = _run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                     "--no-deps", "--no-index", str(wheel), cwd=root)
    assert installed.returncode == 0, installed.stderr[-3000:]
    home = root / "home"
    home.mkdir()
    return {"bin": env / "bin", "wheel": wheel, "home": home}


@pytest.mark.slow
def test_wheel_holds_the_data_files_and_no_tests(venv):
    names = zipfile.ZipFile(venv["wheel"]).namelist()
    assert "deeplab/zoo/model_zoo.json" in names
    assert any(n.startswith("deeplab/model/cells/") and n.endswith(".json") for n in names)
    assert "deeplab/datasets/doctor.py" in names and "deeplab/cli/train.py" in names
    assert not [n for n in names if n.endswith("_test.py") or n.endswith("conftest.py")]
    assert not [n for n in names if n.split("/")[0] in ("datasets", "test", "bench")]
    for script in SCRIPTS:
        assert (venv["bin"] / script).is_file(), script


@pytest.mark.slow
def test_installed_console_scripts_run_outside_the_checkout(venv, tiny_run, tmp_path):  # noqa: F811
    from deeplab.datasets.synthetic import generate_example
    from deeplab.entry import load_model
    from deeplab.model.predict import InferenceOptions, Predictor

    where = _run(str(venv["bin"] / "python"), "-c", "import deeplab; print(deeplab.__file__)",
                 cwd=venv["home"])
    assert str(REPO) not in where.stdout and "site-packages" in where.stdout, where
    listed = _run(str(venv["bin"] / "deeplab-zoo"), "list", cwd=venv["home"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("name")
    assert "mobilenetv2_dm05_coco_voc_trainaug" in listed.stdout
    helped = _run(str(venv["bin"] / "deeplab-predict"), "--help", cwd=venv["home"])
    assert "--checkpoint" in helped.stdout, helped.stderr[-2000:]  # absl's --help exits 1
    image = np.asarray(generate_example(1, "val", (40, 56))[0], np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    predicted = _run(str(venv["bin"] / "deeplab-predict"), f"--checkpoint={tiny_run['train']}",
                     f"--output_dir={tmp_path / 'out'}", str(tmp_path / "a.png"),
                     cwd=venv["home"])
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    got = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    predictor = Predictor(load_model(tiny_run["options"], tiny_run["prefix"]),
                          tiny_run["options"], InferenceOptions())
    np.testing.assert_array_equal(got, predictor.labels(image[None].astype(np.float32))
                                  .numpy()[0])

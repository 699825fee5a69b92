"""Fixtures of the model-zoo and API tests (deeplab/zoo, deeplab/api_test.py): tiny zoo
tarballs built once per session, a private cache."""

from __future__ import annotations

import tarfile

import pytest

from deeplab.zoo import testing


@pytest.fixture(scope="session")
def tarballs(tmp_path_factory):
    """{"good", "other_graph", "perturbed", "good_again": path} of tiny zoo tarballs.

    good: checkpoint and frozen graph of the same weights. other_graph: the frozen graph of
    other weights (parity must fail). perturbed: good's graph with a checkpoint of the
    weights under 1 % relative noise (verification must refuse it). good_again: good's
    files with other mtimes (same content, other bytes and sha256).
    """
    out = tmp_path_factory.mktemp("zoo_tarballs")
    paths = testing.build_tarballs(str(out))
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(paths["good"]) as tar:
        tar.extractall(unpacked)
    again = testing.write_tarball(str(unpacked / "deeplab_tiny"), str(out / "again.tar.gz"),
                                  mtime=12345)
    return {**paths, "good_again": again}


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    """A private $DEEPLAB_HOME; $DEEPLAB_ZOO_URL and $DEEPLAB_ZOO_REGISTRY unset."""
    monkeypatch.setenv("DEEPLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPLAB_ZOO_URL", raising=False)
    monkeypatch.delenv("DEEPLAB_ZOO_REGISTRY", raising=False)
    return tmp_path / "home"

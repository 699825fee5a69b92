"""Downloads from a local directory and a 127.0.0.1 HTTP server: first download, cache hit,
resume, corrupted tarball, changed sha256, parity failure, offline message, placed tarball."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket

import pytest

from deeplab.zoo import cache, testing
from deeplab.zoo.registry import ZooError
from deeplab.zoo.verify import MIN_AGREEMENT


def _entry(path, **changes):
    return testing.zoo_entry(size=os.path.getsize(path), **changes)


def _mirror(tmp_path, entry, tarball):
    """A local directory holding `tarball` under the entry's original file name."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    shutil.copy(tarball, mirror / entry.file_name)
    return mirror


def test_local_directory_download_verifies_then_hits_cache(zoo_home, tmp_path, tarballs,
                                                           monkeypatch):
    entry = _entry(tarballs["good"])
    monkeypatch.setenv("DEEPLAB_ZOO_URL", str(_mirror(tmp_path, entry, tarballs["good"])))
    folder = cache.ensure(entry, log=lambda _: None)
    assert folder == str(zoo_home / "zoo" / "models" / entry.name)
    assert os.path.isfile(os.path.join(folder, "frozen_inference_graph.pb"))
    with open(os.path.join(folder, cache.VERIFICATION_FILE)) as f:
        record = json.load(f)
    assert record["label_agreement"] >= MIN_AGREEMENT
    assert record["max_probability_difference"] < 1e-4
    assert record["crop_size"] == list(testing.CROP) and record["output_stride"] == 16
    with open(zoo_home / "zoo" / "downloads" / cache.SHA_FILE) as f:
        recorded = json.load(f)[entry.file_name]["sha256"]
    assert recorded == hashlib.sha256(testing.read_bytes(tarballs["good"])).hexdigest()
    with open(os.path.join(folder, "options.json")) as f:
        assert json.load(f)["model"]["depth_multiplier"] == 0.5

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(cache, "download", no_download)
    assert cache.ensure(entry, log=lambda _: None) == folder


def test_http_download_resumes_after_a_cut_connection(zoo_home, tarballs, monkeypatch):
    entry = _entry(tarballs["good"])
    data = testing.read_bytes(tarballs["good"])
    with testing.serve_files({entry.file_name: data}, cut_first={entry.file_name}) as (
            url, requests):
        monkeypatch.setenv("DEEPLAB_ZOO_URL", url)
        folder = cache.ensure(entry, verify=False, log=lambda _: None)
        assert requests == [(entry.file_name, None),
                            (entry.file_name, f"bytes={len(data) // 2}-")]
        assert testing.read_bytes(cache.tarball_path(entry)) == data
        assert cache.ensure(entry, log=lambda _: None) == folder
        assert len(requests) == 2  # the cache answered; no third request


def test_corrupted_tarball_is_refused(zoo_home, tarballs, monkeypatch):
    entry = _entry(tarballs["good"])
    bad = testing.corrupt(testing.read_bytes(tarballs["good"]))
    with testing.serve_files({entry.file_name: bad}) as (url, _):
        monkeypatch.setenv("DEEPLAB_ZOO_URL", url)
        with pytest.raises(ZooError, match="not a readable tarball"):
            cache.ensure(entry, log=lambda _: None)
    assert not cache.is_cached(entry)
    assert os.path.isfile(cache.tarball_path(entry) + ".rejected")
    assert not os.path.exists(cache.tarball_path(entry))


def test_wrong_size_is_refused(zoo_home, tarballs, monkeypatch):
    entry = testing.zoo_entry(size=os.path.getsize(tarballs["good"]) + 1)
    with testing.serve_files({entry.file_name: testing.read_bytes(tarballs["good"])}) as (
            url, _):
        monkeypatch.setenv("DEEPLAB_ZOO_URL", url)
        with pytest.raises(ZooError, match="bytes, expected"):
            cache.ensure(entry, log=lambda _: None)


def test_changed_sha256_is_refused(zoo_home, tmp_path, tarballs, monkeypatch):
    entry = testing.zoo_entry()  # no exact size: only the hash can tell
    first = hashlib.sha256(testing.read_bytes(tarballs["good"])).hexdigest()
    monkeypatch.setenv("DEEPLAB_ZOO_URL", str(_mirror(tmp_path, entry, tarballs["good"])))
    cache.ensure(entry, verify=False, log=lambda _: None)
    shutil.rmtree(cache.model_dir(entry))
    os.remove(cache.tarball_path(entry))
    shutil.copy(tarballs["good_again"], tmp_path / "mirror" / entry.file_name)
    with pytest.raises(ZooError, match=f"differs from {first} recorded"):
        cache.ensure(entry, verify=False, log=lambda _: None)
    assert not cache.is_cached(entry)


def test_parity_failure_is_refused(zoo_home, tmp_path, tarballs, monkeypatch):
    entry = _entry(tarballs["other_graph"])
    monkeypatch.setenv("DEEPLAB_ZOO_URL", str(_mirror(tmp_path, entry, tarballs["other_graph"])))
    with pytest.raises(ZooError) as error:
        cache.ensure(entry, log=lambda _: None)
    message = str(error.value)
    assert "refused" in message and "below 99.9 %" in message
    agreement = float(message.split("label agreement ")[1].split(" %")[0])
    assert agreement < 99.9
    assert not cache.is_cached(entry)
    assert os.listdir(zoo_home / "zoo" / "models") == []  # no partial folder left


def test_a_checkpoint_of_other_weights_is_refused(zoo_home, tmp_path, tarballs, monkeypatch):
    """The same architecture with every weight under 1 % noise: its labels may still agree
    (smooth probes, one class), the probabilities do not; the genuine tarball passes with
    several classes on the probes."""
    for kind in ("perturbed", "good"):
        entry = _entry(tarballs[kind], name=f"tiny_{kind}")
        monkeypatch.setenv("DEEPLAB_ZOO_URL", str(_mirror(tmp_path, entry, tarballs[kind])))
        if kind == "good":
            folder = cache.ensure(entry, log=lambda _: None)
            with open(os.path.join(folder, cache.VERIFICATION_FILE)) as f:
                record = json.load(f)
            assert record["max_probability_difference"] < 1e-4
            assert record["classes_in_probes"] >= 3
            return
        with pytest.raises(ZooError) as error:
            cache.ensure(entry, log=lambda _: None)
        message = str(error.value)
        assert "not the one the graph was made from" in message
        difference = float(message.split("max probability difference ")[1].split(",")[0])
        assert difference > 1e-3
        assert not cache.is_cached(entry)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_message_names_url_and_path(zoo_home, tarballs, monkeypatch):
    entry = testing.zoo_entry()
    base = f"http://127.0.0.1:{_closed_port()}/mirror"
    monkeypatch.setenv("DEEPLAB_ZOO_URL", base)
    with pytest.raises(ZooError) as error:
        cache.download(entry, attempts=2)
    message = str(error.value)
    assert f"{base}/{entry.file_name}" in message
    assert f"put it at {cache.tarball_path(entry)}" in message
    # the tarball placed there by hand is used as is
    shutil.copy(tarballs["good"], cache.tarball_path(entry))
    assert cache.is_cached(entry) is False
    folder = cache.ensure(entry, verify=False, log=lambda _: None)
    assert os.path.isfile(os.path.join(folder, "model.ckpt.index"))


def test_unbuildable_entry_is_refused_before_any_download(zoo_home, monkeypatch):
    entry = testing.zoo_entry(model={"model_variant": "no_such_net"}, requires="issue 10")

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded")

    monkeypatch.setattr(cache, "download", no_download)
    with pytest.raises(ZooError, match=r"network not built yet \(issue 10\).*no_such_net"):
        cache.ensure(entry)


@pytest.mark.slow
def test_original_format_checkpoint_of_the_reference_fixtures(zoo_home, tmp_path, monkeypatch,
                                                              reference_checkpoint):
    """A TF1 checkpoint (the original's format, with its `checkpoint` file naming a path that
    does not exist here) in a tarball with our frozen graph: verified and loaded."""
    from deeplab.model.options import ModelOptions

    entry = testing.zoo_entry("reference_mnv2", model={"model_variant": "mobilenet_v2"},
                              num_classes=21, dataset="pascal_voc_seg")
    options = ModelOptions(model_variant="mobilenet_v2", num_classes=21)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    testing.tarball_from_checkpoint(reference_checkpoint("mobilenet_v2"), options,
                                    str(mirror / entry.file_name))
    monkeypatch.setenv("DEEPLAB_ZOO_URL", str(mirror))
    folder = cache.ensure(entry, log=lambda _: None)
    with open(os.path.join(folder, cache.VERIFICATION_FILE)) as f:
        assert json.load(f)["label_agreement"] >= MIN_AGREEMENT
    assert sorted(os.listdir(folder)) == sorted([
        "TRAINING_DONE", "checkpoint", "frozen_inference_graph.pb",
        "model.ckpt.data-00000-of-00001", "model.ckpt.index", "options.json",
        "verification.json", "zoo_entry.json"])
    with open(os.path.join(folder, "checkpoint")) as f:  # no longer the writer's tmp path
        assert f.readline() == 'model_checkpoint_path: "model.ckpt"\n'


def test_availability_is_remembered_until_the_model_code_or_the_entry_changes(
        tmp_path, monkeypatch):
    """`zoo list` answers from availability.json (no TensorFlow) while deeplab/model's files
    and the entry are unchanged; a change asks unavailable_reason again."""
    monkeypatch.setenv(cache.HOME_ENV, str(tmp_path))
    good = testing.zoo_entry()
    bad = testing.zoo_entry(name="tiny_bad", model={"model_variant": "no_such_net"})
    first = cache.unavailable_reasons([good, bad])
    assert first["tiny_synthetic"] is None and "no_such_net" in first["tiny_bad"]
    asked = []
    monkeypatch.setattr(cache, "unavailable_reason", lambda e: asked.append(e.name) or "x")
    assert cache.unavailable_reasons([good, bad]) == first and asked == []
    changed = testing.zoo_entry(name="tiny_bad", model={"model_variant": "mobilenet_v2"})
    assert cache.unavailable_reasons([good, changed]) == {"tiny_synthetic": None,
                                                          "tiny_bad": "x"}
    assert asked == ["tiny_bad"]
    monkeypatch.setattr(cache, "_model_code_fingerprint", lambda: "edited")
    assert cache.unavailable_reasons([good]) == {"tiny_synthetic": "x"}

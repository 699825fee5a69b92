"""Flags defined without TensorFlow: registry names come from the cache, which follows the
package's files."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from deeplab.utils import names_cache

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_cached_value_is_computed_once_per_package_state(tmp_path, monkeypatch):
    monkeypatch.setenv(names_cache.HOME_ENV, str(tmp_path))
    monkeypatch.setattr(names_cache, "_IN_PROCESS", {})
    calls = []
    assert names_cache.cached("k", lambda: calls.append(1) or ("a", "b")) == ("a", "b")
    monkeypatch.setattr(names_cache, "_IN_PROCESS", {})  # a new process
    assert names_cache.cached("k", lambda: calls.append(1) or ("x",)) == ("a", "b")
    assert calls == [1]
    monkeypatch.setattr(names_cache, "_IN_PROCESS", {})
    monkeypatch.setattr(names_cache, "fingerprint", lambda root=None: "edited")
    assert names_cache.cached("k", lambda: calls.append(1) or ("x",)) == ("x",)
    assert calls == [1, 1]


def test_fingerprint_follows_file_changes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = names_cache.fingerprint(str(tmp_path))
    assert names_cache.fingerprint(str(tmp_path)) == before
    (tmp_path / "a.py").write_text("x = 22\n")
    assert names_cache.fingerprint(str(tmp_path)) != before


def test_help_does_not_import_tensorflow(tmp_path):
    """The five programs define their flags without TensorFlow (registry names through
    deeplab.utils.names_cache, filled here first)."""
    env = {**os.environ, "DEEPLAB_HOME": str(tmp_path)}
    code = ("import sys; sys.argv = ['x']; import deeplab.cli.{}; "
            "print('tensorflow' in sys.modules)")
    fill = code.format("export_model") + "; import deeplab.train.options as t; t.loss_names()"
    first = subprocess.run([sys.executable, "-c", fill], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.stdout.strip() == "True", first.stderr  # the cache was empty: filled
    for name in ("train", "eval", "vis", "predict", "export_model"):
        run = subprocess.run([sys.executable, "-c", code.format(name)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.stdout.strip() == "False", (name, run.stderr[-2000:])

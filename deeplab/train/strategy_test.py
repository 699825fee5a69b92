"""TF_CONFIG checking: every malformed configuration is one ValueError naming the fault."""

from __future__ import annotations

import json

import pytest

from deeplab.train.strategy import cluster_workers, read_tf_config

WORKERS = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize("raw, message", [
    ('{"cluster": []}', '"cluster" is \\[\\], not an object of host:port lists'),
    ("[1, 2]", "a JSON list, not an object"),
    ('{"cluster": {"worker": "a:1"}}', "not an object of host:port lists"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', 'names several workers but no "task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "must be one of the cluster's jobs \\['worker'\\]"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     'index 3 is not one of the 1 worker entries'),
    ('{"cluster": ', "not valid JSON"),
])
def test_malformed_tf_config_is_one_value_error(monkeypatch, raw, message):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ValueError, match=f"^TF_CONFIG: .*{message}.*expected e.g."):
        cluster_workers()


def test_valid_tf_config_counts_workers(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(WORKERS))
    assert cluster_workers() == 2 and read_tf_config() == WORKERS
    monkeypatch.delenv("TF_CONFIG")
    assert cluster_workers() == 0

"""python -m deeplab.zoo: list shows cached entries, download fetches once, verify re-runs the
parity check and records it, errors are one line with status 2."""

from __future__ import annotations

import json
import os
import re

from deeplab.zoo import cache, testing
from deeplab.zoo.__main__ import main
from deeplab.zoo.verify import MIN_AGREEMENT


def test_download_list_verify(zoo_home, tmp_path, tarballs, monkeypatch, capsys):
    entry = testing.zoo_entry("tiny_cli", size=os.path.getsize(tarballs["good"]))
    monkeypatch.setenv("DEEPLAB_ZOO_REGISTRY",
                       testing.write_registry(str(tmp_path / "zoo.json"), [entry]))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    os.symlink(tarballs["good"], mirror / entry.file_name)
    monkeypatch.setenv("DEEPLAB_ZOO_URL", f"file://{mirror}")
    assert main(["download", "tiny_cli", "--no_verify"]) == 0
    assert not os.path.exists(os.path.join(cache.model_dir(entry), cache.VERIFICATION_FILE))
    assert main(["download", "tiny_cli"]) == 0
    assert "already in" in capsys.readouterr().out
    assert main(["verify", "tiny_cli"]) == 0
    with open(os.path.join(cache.model_dir(entry), cache.VERIFICATION_FILE)) as f:
        assert json.load(f)["label_agreement"] >= MIN_AGREEMENT
    capsys.readouterr()
    assert main(["list"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("tiny_cli"))
    assert re.search(r"cached, verified (100\.00|99\.9\d) %", row), row
    assert "50.00 % val (OS16, 1 scale)" in row
    assert "xception65_coco_voc_trainaug" in table and str(zoo_home / "zoo") in table


def test_errors_are_one_line(zoo_home, capsys):
    assert main(["download", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 'no_such_model' is not in the model zoo")
    assert len(err.strip().splitlines()) == 1

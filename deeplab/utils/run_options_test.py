"""Run options and the TRAINING_DONE marker: atomic writes through unique temporary files."""

from __future__ import annotations

import json
import os

from deeplab.utils import run_options


def test_writes_never_go_through_a_fixed_temporary_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in ("options.json.tmp", "TRAINING_DONE.tmp"):  # stray or planted in a shared dir
        os.symlink(victim, tmp_path / name)
    path = run_options.save_run_options(str(tmp_path), model={"num_classes": 3})
    assert json.loads(open(path).read()) == {"model": {"num_classes": 3}}
    run_options.mark_training_done(str(tmp_path), "7\n")
    assert (tmp_path / run_options.TRAINING_DONE).read_text() == "7\n"
    assert victim.read_text() == "keep me"
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".tmp")) == [
        "TRAINING_DONE.tmp", "options.json.tmp"]  # only the planted ones, untouched
    assert run_options.training_done(str(tmp_path))

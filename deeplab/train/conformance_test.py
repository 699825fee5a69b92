"""The training conformance runner on the original's fixtures: every shared case passes,
and a trainer that breaks one of the original's rules fails it."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import training_cases
from deeplab.train import conformance

# Cases present beside the checkout; a placeholder keeps the test (skipped) where none are.
CASES = training_cases() or ["A"]


@pytest.mark.parametrize("case", CASES)
def test_every_shared_case_passes(training_fixtures, case, capsys):
    assert conformance.main([str(training_fixtures / case)]) == 0
    out = capsys.readouterr().out
    assert "-> PASS" in out and "FAIL" not in out


def test_keras_momentum_fails_the_replay_and_the_free_run(training_fixtures, tmp_path, capsys):
    """Case A with Keras' momentum rule (v = m*v - lr*g, its velocity warmed up from zero
    as the fixture README prescribes): step 0 (zero momentum) still agrees, the replay of
    the later steps, whose rate poly has changed, does not."""
    case = tmp_path / "training" / "A"  # ../reference beside it, as in shared/fixtures
    shutil.copytree(training_fixtures / "A", case)
    shutil.copy(training_fixtures / "make_batch.py", case.parent)
    (tmp_path / "reference").symlink_to(training_fixtures.parent / "reference")
    spec = json.loads((case / "case.json").read_text())
    spec["train_py_flags"].append("--momentum_update=keras")
    (case / "case.json").write_text(json.dumps(spec))
    checks = {c.name: c for c in conformance.check_case(str(case))}
    assert checks["step0_loss"].passed and checks["step0_gradients (arrays)"].passed
    assert not checks["optimizer_replay (values)"].passed
    failed = [line for line in checks["optimizer_replay (values)"].worst if "FAIL" in line]
    assert failed and not any("step 0" in line for line in failed)
    assert conformance.report(str(case), list(checks.values())) is False
    assert "FAIL optimizer_replay (values)" in capsys.readouterr().out


def test_a_folder_that_is_not_a_case_is_one_line_and_status_2(tmp_path, capsys):
    assert conformance.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path}: not a training conformance case (no case.json)"

"""Shared pytest fixtures: the reference (original DeepLab) conformance fixtures."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent
REFERENCE_ENV = "DEEPLAB_REFERENCE_DIR"
TRAINING_ENV = "DEEPLAB_TRAINING_FIXTURES_DIR"
REQUIRE_ENV = "DEEPLAB_REQUIRE_FIXTURES"


def reference_dir() -> pathlib.Path:
    """$DEEPLAB_REFERENCE_DIR, else ../shared/fixtures/reference beside the checkout."""
    return pathlib.Path(os.environ.get(REFERENCE_ENV, REPO.parent / "shared/fixtures/reference"))


def training_fixtures_dir() -> pathlib.Path:
    """$DEEPLAB_TRAINING_FIXTURES_DIR, else ../shared/fixtures/training beside the checkout."""
    return pathlib.Path(os.environ.get(TRAINING_ENV, REPO.parent / "shared/fixtures/training"))


def training_cases() -> list[str]:
    """Names of the training conformance cases (folders holding a case.json), sorted."""
    root = training_fixtures_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "case.json").is_file())


def _fixture_folder(path: pathlib.Path, marker: str, env: str) -> pathlib.Path:
    """`path` if it holds `marker`; else a skip (a user's machine, a fork's hosted CI), or
    a failure when DEEPLAB_REQUIRE_FIXTURES=1 (the project's .ci/run)."""
    if not (path / marker).is_file():
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"fixtures missing at {path} and {REQUIRE_ENV}=1 (set {env})")
        pytest.skip(f"fixtures not found at {path}; set {env} to use them")
    return path


@pytest.fixture(scope="session")
def reference_fixtures() -> pathlib.Path:
    """The reference fixture folder; skips the test where it is absent (a user's machine)."""
    return _fixture_folder(reference_dir(), "make_checkpoint.py", REFERENCE_ENV)


@pytest.fixture(scope="session")
def training_fixtures() -> pathlib.Path:
    """The training conformance fixtures (one folder per case); skips where absent."""
    return _fixture_folder(training_fixtures_dir(), "make_batch.py", TRAINING_ENV)


@pytest.fixture(scope="session")
def reference_checkpoint(reference_fixtures, tmp_path_factory):
    """Factory: variant folder name -> prefix of the TF1 checkpoint make_checkpoint.py writes.

    Each variant is written once per session (about 6 s and 165 MB for xception65).
    """
    spec = importlib.util.spec_from_file_location(
        "make_checkpoint", reference_fixtures / "make_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = {}

    def make(variant: str) -> str:
        if variant not in made:
            values = module.variable_values(str(reference_fixtures / variant))
            out = tmp_path_factory.mktemp(f"ref_{variant}")
            made[variant] = module.write_checkpoint(values, str(out))
        return made[variant]

    return make

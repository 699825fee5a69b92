"""Shared pytest fixtures: the reference (original DeepLab) conformance fixtures."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent
REFERENCE_ENV = "DEEPLAB_REFERENCE_DIR"
REQUIRE_ENV = "DEEPLAB_REQUIRE_FIXTURES"


def reference_dir() -> pathlib.Path:
    """$DEEPLAB_REFERENCE_DIR, else ../shared/fixtures/reference beside the checkout."""
    return pathlib.Path(os.environ.get(REFERENCE_ENV, REPO.parent / "shared/fixtures/reference"))


@pytest.fixture(scope="session")
def reference_fixtures() -> pathlib.Path:
    """The reference fixture folder; skips the test where it is absent (a user's machine, a
    fork's hosted CI), fails instead when DEEPLAB_REQUIRE_FIXTURES=1 (the project's .ci/run)."""
    path = reference_dir()
    if not (path / "make_checkpoint.py").is_file():
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"reference fixtures missing at {path} and {REQUIRE_ENV}=1 "
                        f"(set {REFERENCE_ENV})")
        pytest.skip(f"reference fixtures not found at {path}; set {REFERENCE_ENV} to use them")
    return path


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

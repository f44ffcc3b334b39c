"""The code's own checks run with the suite: ruff (the rules in pyproject.toml) over everything, mypy --strict
over the store and the service (pyproject.toml's [tool.mypy]). A finding fails the suite with the finding."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import ROOT


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_on_the_store_and_the_service_finds_nothing():
    result = _run("mypy", "governance/store", "governance/service")
    assert result.returncode == 0, result.stdout + result.stderr

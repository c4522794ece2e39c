"""The template's own code (hooks, tests, bench) passes the linters it holds baked projects to."""

import subprocess
import sys
from pathlib import Path

import pytest

RUFF = Path(sys.executable).parent / "ruff"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(check):
    result = subprocess.run(
        [RUFF, *check, "--no-cache", "."], cwd=TEMPLATE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr

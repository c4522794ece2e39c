"""The template's own code (hooks, tests, bench) passes the linters it holds baked projects to."""

from pathlib import Path


def test_ruff_is_clean(ruff_problems):
    assert ruff_problems(Path(__file__).resolve().parent.parent) == ""

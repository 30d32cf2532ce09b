"""Docs that cannot drift, types that are checked: README's command reference is what
--help prints (cog), and mypy passes on src/ ([tool.mypy]).

As tests, they run wherever the suite runs: in CI (.ci/run) and on every developer's pytest.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(importlib.util.find_spec("cogapp") is None, reason="needs the dev extra")
def test_readme_command_reference_is_current():
    proc = subprocess.run([sys.executable, "-m", "cogapp", "--check", "README.md"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, f"run 'cog -r README.md':\n{proc.stdout}{proc.stderr}"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="needs the dev extra")
def test_mypy_passes():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout

"""The tree is formatted and linted by ruff (its settings in pyproject.toml): a violation fails the suite."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    found = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(found).exists():
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return subprocess.run([found, *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_passes():
    result = ruff("check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout[-3000:]


def test_ruff_format_leaves_the_tree_unchanged():
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout[-3000:]

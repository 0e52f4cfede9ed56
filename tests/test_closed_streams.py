"""A command started with standard input or output closed (`<&-`, `>&-`) answers with rnnkit's own line and
status, never an internal error; an input that holds nothing to predict says so the same way for every task."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def rnnkit(arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m rnnkit ARGUMENTS` through the shell, so that `<&-` and `>&-` close its streams."""
    command = f"{sys.executable} -m rnnkit {arguments}"
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("closed")
    trained = rnnkit("classify train --preset tiny --train.max_steps=2 --out run --quiet", folder)
    assert trained.returncode == 0, trained.stderr
    return folder


@pytest.mark.parametrize("command", ["classify predict run --input -", "classify predict run"])
def test_a_closed_standard_input_reads_as_empty(run, command):
    result = rnnkit(f"{command} <&-", run)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "rnnkit: note: standard input is closed; it reads as empty\n"
        "rnnkit: note: nothing to predict: the input holds none\n"
    )


@pytest.mark.parametrize("command", ["classify predict run --text 'a fine film'", "charlm sample --dry-run"])
def test_a_closed_standard_output_refuses_a_command_that_prints_its_results(run, command):
    result = rnnkit(f"{command} >&-", run)
    assert result.returncode == 1
    assert (
        result.stderr == "rnnkit: error: standard output is closed (>&-): what this command prints could not be read\n"
    )


def test_training_with_standard_output_closed_still_writes_its_run(run):
    result = rnnkit("classify train --preset tiny --train.max_steps=2 --out again --quiet >&-", run)
    assert result.returncode == 0, result.stderr
    assert "standard output is closed" in result.stderr and (run / "again" / "best.pt").is_file()


@pytest.mark.parametrize(
    "command, verb",
    [
        ("classify predict run --input empty.txt", "predict"),
        ("seqmnist predict --dry-run --input empty-idx", "predict"),
    ],
)
def test_an_empty_input_says_so_and_succeeds(run, command, verb):
    (run / "empty.txt").write_text("")
    (run / "empty-idx").write_bytes(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (0, 28, 28)))
    result = rnnkit(command, run)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == f"rnnkit: note: nothing to {verb}: the input holds none\n"

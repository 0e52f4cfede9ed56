"""A command that writes pictures as it goes never takes what is not its own: stopped by Ctrl-C, SIGTERM or
SIGKILL, failing, or racing another command, it removes only the files it staged and a directory it made only
while that directory is empty; a stage a killed command left is found and removed by the next run."""

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.files import STAGE_MARKER, StaleOutput, staged_output

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def test_a_failure_leaves_a_file_someone_else_put_in_the_directory_it_made(tmp_path):
    out = tmp_path / "made" / "out"
    with pytest.raises(RnnkitError, match="bad input"), staged_output(out, "*.png", "--out") as stage:
        (stage / "a.png").write_bytes(b"mine")
        (out / "notes.txt").write_text("the user's")  # written by someone else meanwhile
        raise RnnkitError("bad input")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_failure_removes_the_directories_it_made_when_they_are_empty(tmp_path):
    out = tmp_path / "made" / "out"
    with pytest.raises(KeyboardInterrupt), staged_output(out, "*.png", "--out") as stage:
        (stage / "a.png").write_bytes(b"mine")
        raise KeyboardInterrupt
    assert not (tmp_path / "made").exists()


def test_a_closed_reader_keeps_what_was_made(tmp_path):
    with pytest.raises(BrokenPipeError), staged_output(tmp_path / "out", "*.png", "--out") as stage:
        (stage / "a.png").write_bytes(b"mine")
        raise BrokenPipeError
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_a_stale_stage_is_removed_only_when_it_is_rnnkits_and_its_process_is_gone(tmp_path):
    out = tmp_path / "out"
    for name, owner in (("dead", "999999999"), ("alive", str(os.getpid())), ("users", None)):
        stage = out / f".partial-{name}"
        stage.mkdir(parents=True)
        (stage / "x.png").write_bytes(b"")
        if owner is not None:
            (stage / STAGE_MARKER).write_text(owner)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with staged_output(out, "*.png", "--out") as stage:
            (stage / "b.png").write_bytes(b"new")
    assert sorted(p.name for p in out.iterdir()) == [".partial-alive", ".partial-users", "b.png"]
    assert [w.category for w in said] == [StaleOutput] and ".partial-dead" in str(said[0].message)


def slow_caption(tmp_path: Path, out: Path) -> subprocess.Popen:
    """`caption predict --out` on 3,000 images: pictures keep coming for long enough to be stopped part way."""
    np.save(tmp_path / "many.npy", np.zeros((3000, 64, 64), dtype=np.uint8))
    command = [sys.executable, "-m", "rnnkit", "caption", "predict", "--dry-run", "--input", "many.npy"]
    return subprocess.Popen(
        [*command, "--out", str(out), "--batch-size", "8"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_pictures(out: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not any(out.glob(".partial-*/captioned-*.png")):
        assert process.poll() is None and time.monotonic() < deadline, "no picture was staged"
        time.sleep(0.1)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_stopped_command_leaves_only_what_others_wrote(tmp_path, signum, status):
    out = tmp_path / "shown"
    process = slow_caption(tmp_path, out)
    wait_for_pictures(out, process)
    (out / "notes.txt").write_text("written by the user during the run")
    (out / "samples.png").write_bytes(b"written by another command")
    process.send_signal(signum)
    _, error = process.communicate(timeout=120)
    assert process.returncode == status, error
    left = sorted(p.name for p in out.iterdir())
    if signum == signal.SIGKILL:  # nothing runs after SIGKILL: the next command into the place cleans up
        assert left[0].startswith(".partial-") and left[1:] == ["notes.txt", "samples.png"]
        np.save(tmp_path / "one.npy", np.zeros((1, 64, 64), dtype=np.uint8))
        again = subprocess.run(
            [sys.executable, "-m", "rnnkit", "caption", "predict", "--dry-run", "--input", "one.npy", "--out", "shown"],
            cwd=tmp_path,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert "rnnkit: note: removed" in again.stderr and "killed" in again.stderr
        left = sorted(p.name for p in out.iterdir())
        assert left == ["captioned-1.png", "notes.txt", "samples.png"]
    else:
        assert left == ["notes.txt", "samples.png"]
        assert error.count("\n") == 1, error


class SwallowsASignal:
    """Python runs a finaliser's code and prints, then drops, any exception raised in it: a signal handled there
    (as Ctrl-C landing in a weakref callback of a library) raises Stopped where nobody can catch it."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        signal.raise_signal(self.signum)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing, as it should be
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_swallowed_by_a_finaliser_still_stops_the_command(tmp_path, signum, monkeypatch):
    """The signal stays pending and comes again, so the command stops within a second or two instead of
    running on, and what it staged is removed."""
    import rnnkit.files

    monkeypatch.setattr(rnnkit.files, "REDELIVERY_SECONDS", 0.2)
    out = tmp_path / "out"
    began = time.monotonic()
    with pytest.raises(rnnkit.files.Stopped) as stopped:
        with staged_output(out, "*.png", "--out") as stage:
            (stage / "a.png").write_bytes(b"made")
            SwallowsASignal(signum)  # collected at once: the handler's Stopped is printed as ignored
            while time.monotonic() - began < 30:  # a command running on
                time.sleep(0.01)
    assert stopped.value.signum == signum and time.monotonic() - began < 10
    assert not out.exists() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert rnnkit.files.PENDING == []

"""The run directory's lock (rnnkit/runs.py): held while a run writes, its file gone when the run ends."""

import os

import pytest

from rnnkit.errors import RnnkitError
from rnnkit.runs import LOCK, RunDirectory, lock_holder


def test_the_lock_file_is_removed_when_the_run_ends_and_the_directory_can_be_locked_again(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.start({"task": "charlm"})
    assert (tmp_path / "run" / LOCK).read_text() == str(os.getpid())
    assert lock_holder(tmp_path / "run") == os.getpid()
    run.release()
    assert not (tmp_path / "run" / LOCK).exists()
    again = RunDirectory(tmp_path / "run", resume_step=0)
    again.lock()
    assert (tmp_path / "run" / LOCK).exists()
    again.release()
    assert not (tmp_path / "run" / LOCK).exists()


def test_a_lock_file_put_in_place_of_the_released_one_is_not_removed(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.start({"task": "charlm"})
    (tmp_path / "run" / LOCK).unlink()
    (tmp_path / "run" / LOCK).write_text("")  # another process's lock file, created after ours was removed
    run.release()
    assert (tmp_path / "run" / LOCK).exists()


def test_a_users_file_named_lock_is_still_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK).write_text("my notes")
    with pytest.raises(RnnkitError, match="not a run lock rnnkit wrote"):
        RunDirectory(tmp_path / "run", resume_step=0).lock()

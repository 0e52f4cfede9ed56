"""A training run on disk: checkpoints (last.pt, best.pt), metrics.jsonl, config.json and loss.png in one directory.

Nothing the user already has is overwritten unless they ask: a directory that holds any of a run's files
is refused unless the run resumes from it or `overwrite` is set. While a run writes to a directory it
holds an OS lock on DIR/.lock (released by the kernel when the process ends, however it ends), so a
second run into the same directory is refused with the holder's PID, --overwrite or not.
"""

import fcntl
import json
import math
import os
from pathlib import Path

from rnnkit.checkpoint import save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write, stale_temporaries
from rnnkit.plots import plot_losses

CHECKPOINTS = ("last.pt", "best.pt")
# any of them means an earlier run is there (confusion.png: the classifiers' and the tagger's best validation figure)
RUN_FILES = (*CHECKPOINTS, "metrics.jsonl", "config.json", "loss.png", "confusion.png")
LOCK = ".lock"


def lock_holder(directory: Path) -> int | None:
    """The PID of the process holding `directory`'s run lock, or None when no live process holds it."""
    path = directory / LOCK
    if not path.exists():
        return None
    with path.open("r") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = file.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(file, fcntl.LOCK_UN)
    return None


def is_run_lock(path: Path) -> bool:
    """Is `path` absent, or a lock file as RunDirectory.lock leaves it (empty, or a process number)?"""
    if path.is_symlink():
        return False
    if not path.exists():
        return True
    return path.is_file() and (path.stat().st_size == 0 or path.read_bytes().strip().isdigit())


def in_use_error(directory: Path, pid: int) -> RnnkitError:
    who = f"PID {pid}" if pid > 0 else "another process"
    return RnnkitError(
        f"{directory} is being written by another run ({who}); wait for it, stop it, or pass another --out"
    )


def read_metrics(path: str | Path, up_to_step: float = math.inf) -> list[dict]:
    """The records of a metrics.jsonl file (none if it is missing), up to a step; a line cut short by a kill
    is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill: it belongs to the lost steps
            continue
    return [r for r in records if isinstance(r, dict) and r.get("step", math.inf) <= up_to_step]


class RunDirectory:
    def __init__(self, path: str | Path, resume_step: int | None = None, overwrite: bool = False):
        self.path = Path(path)
        self.replacing = (
            resume_step is None and overwrite
        )  # a new run where an earlier one may be: start() clears its files
        if resume_step is None and not overwrite:
            self.refuse_existing()
        if self.path.exists() and not self.path.is_dir():
            raise RnnkitError(f"{self.path}: exists and is not a directory")
        self.metrics_path = self.path / "metrics.jsonl"
        self.records = (
            read_metrics(self.metrics_path, resume_step) if resume_step is not None else []
        )  # later lines belong to the lost run

    def refuse_existing(self) -> None:
        """Raise if another run is writing here, or the directory already holds files of a run this one
        would replace."""
        holder = lock_holder(self.path) if self.path.is_dir() else None
        if holder is not None:
            raise in_use_error(self.path, holder)
        existing = [name for name in RUN_FILES if (self.path / name).exists()]
        if existing:
            raise RnnkitError(
                f"{self.path} already holds {', '.join(existing)}; "
                f"pass --resume {self.path / 'last.pt'}, --overwrite, or another --out"
            )

    def lock(self) -> None:
        """Hold the directory's run lock for as long as this process lives (or until release())."""
        path = self.path / LOCK
        if not is_run_lock(path):
            raise RnnkitError(
                f"{path}: not a run lock rnnkit wrote (those hold a process number), "
                "and taking the lock would replace it; move it away or pass another --out"
            )
        while True:
            # O_NOFOLLOW: a link put in its place fails here rather than leading the write elsewhere
            self.lock_file = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644), "a+")
            try:
                fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.lock_file.seek(0)
                text = self.lock_file.read().strip()
                self.lock_file.close()
                raise in_use_error(self.path, int(text) if text.isdigit() else -1) from None
            if self.holds(path):  # not a file a finished run removed after this process opened it: locked
                break
            self.lock_file.close()
        self.lock_file.truncate(0)
        self.lock_file.write(str(os.getpid()))
        self.lock_file.flush()

    def holds(self, path: Path) -> bool:
        """Is the lock file this process holds the one at `path`?"""
        try:
            return os.path.samestat(os.fstat(self.lock_file.fileno()), os.lstat(path))
        except FileNotFoundError:
            return False

    def release(self) -> None:
        """Remove the lock file, then drop the lock (removed first, so no process can lock a file that is gone)."""
        if getattr(self, "lock_file", None) is not None:
            path = self.path / LOCK
            if self.holds(path):
                path.unlink()
            self.lock_file.close()  # closing the file drops the lock
            self.lock_file = None

    def start(self, config: dict | None = None) -> None:
        """Take the lock, then create the directory and (re)write the metrics file and config.json: called once
        the inputs are known good."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        if self.replacing:  # --overwrite: none of the earlier run's files stays to be mistaken for the new run's
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
        for name in CHECKPOINTS:  # a kill during an atomic save leaves its temporary file: never the checkpoint itself
            for stale in stale_temporaries(self.path, name):
                stale.unlink(missing_ok=True)
        self.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        if config is not None:  # the run's resolved settings, for people and for tools
            atomic_write(
                self.path / "config.json", lambda file: file.write((json.dumps(config, indent=1) + "\n").encode())
            )

    def log(self, record: dict) -> None:
        self.records.append(record)
        with self.metrics_path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    def save(self, checkpoint: dict, is_best: bool) -> None:
        save_checkpoint(self.path / "last.pt", checkpoint)
        if is_best:
            save_checkpoint(self.path / "best.pt", checkpoint)

    def picture(self, name: str, png: bytes) -> Path:
        """A figure of the run (the best model's validation confusion matrix, say), written atomically."""
        path = self.path / name
        atomic_write(path, lambda file: file.write(png))
        return path

    def plot(self, title: str = "", ylabel: str = "loss (nats per token)") -> Path:
        path = self.path / "loss.png"
        if self.records:
            plot_losses(self.records, path, title, ylabel)
        return path

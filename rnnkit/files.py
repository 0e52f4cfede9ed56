"""Writing a file so that no reader, and no kill, ever sees half of it.

    atomic_write(path, lambda file: torch.save(data, file))

The bytes go to a temporary file beside `path` (same directory, so the rename stays on one file system),
are flushed to disk, and the rename over `path` is the commit. Each writer gets its own temporary name,
so processes writing the same file at once (torchrun ranks) never write into each other's.
"""

import os
import secrets
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from rnnkit.errors import RnnkitError


def temporary_name(path: Path) -> Path:
    """.NAME.<pid>-<random>.tmp beside path: unique per writer, and matched by stale_temporaries."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a new binary file and put it at `path` in one rename; on any failure `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        with temporary.open("xb") as file:  # a new file with the usual permissions (0666 less the umask)
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic on POSIX
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def stale_temporaries(directory: str | Path, name: str) -> Iterator[Path]:
    """Temporary files a killed atomic_write of `name` left in `directory`."""
    return Path(directory).glob(f".{name}.*.tmp")


def output_directory(path: str | Path, pattern: str, flag: str, overwrite: bool | None = None) -> Path:
    """`path` made ready for files named like `pattern` (a glob): created if absent; an error naming `flag` when it
    is a file, or when it already holds such a file, unless `overwrite` (None: the command has no --overwrite)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise RnnkitError(f"{flag}: {out} is a file, not a directory")
    taken = sorted(out.glob(pattern)) if out.is_dir() else []
    if taken and not overwrite:
        remedy = (
            "choose another directory (nothing there is replaced)"
            if overwrite is None
            else "pass --overwrite to replace the files there"
        )
        raise RnnkitError(f"{flag}: {out} already holds {taken[0].name}; {remedy}")
    out.mkdir(parents=True, exist_ok=True)
    return out


class StaleOutput(UserWarning):
    """What an earlier, killed command left half-written, and this one removed (the CLI says it as a note)."""


STAGE_MARKER = ".rnnkit-stage"  # in each staging directory: its command's process id, so a later run knows it


class Stopped(BaseException):
    """SIGTERM or SIGINT reached a command while it staged its output: raised so the staging is undone before it
    exits."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


PENDING: list[int] = []  # a stopping signal received and not yet acted on (its Stopped may have been swallowed)
REDELIVERY_SECONDS = 1.0


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Inside the block SIGTERM and SIGINT raise Stopped (SIGTERM's default would end the process with no clean-up
    at all). A signal that lands while Python runs a finaliser or a weakref callback has its exception printed as
    "ignored" and swallowed, and the command would run on: so the signal stays PENDING until acted on (acted_on),
    and is delivered again every REDELIVERY_SECONDS until it is. Outside the main thread, where no handler can be
    set, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def redeliver(signum: int) -> None:
        if signum in PENDING:
            os.kill(os.getpid(), signum)

    def stop(signum, frame):
        if signum not in PENDING:
            PENDING.append(signum)
        timer = threading.Timer(REDELIVERY_SECONDS, redeliver, (signum,))
        timer.daemon = True
        timer.start()
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
        if PENDING:  # the signal came, and its Stopped was swallowed after the block's last step
            raise Stopped(PENDING[0])
    finally:
        PENDING.clear()  # acted on: Stopped (or the block's own error) is on its way out
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_stages(out: Path) -> list[Path]:
    """The staging directories in `out` that a command killed outright (SIGKILL) left, removed: only those rnnkit
    marked as its own and whose process has gone. Returns what it removed."""
    removed = []
    for stage in sorted(out.glob(".partial-*")):
        marker = stage / STAGE_MARKER
        if stage.is_symlink() or not stage.is_dir() or marker.is_symlink() or not marker.is_file():
            continue  # not rnnkit's: left alone
        owner = marker.read_text(encoding="ascii", errors="replace").strip()
        if not owner.isdigit() or running(int(owner)):
            continue
        shutil.rmtree(stage, ignore_errors=True)
        removed.append(stage)
    return removed


def commit(stage: Path, out: Path, overwrite: bool | None) -> None:
    """Move the staged files into `out` (none replacing a file there unless `overwrite`), then remove the stage."""
    for file in sorted(stage.iterdir()):
        if file.name != STAGE_MARKER and (overwrite or not (out / file.name).exists()):
            os.replace(file, out / file.name)
    shutil.rmtree(stage, ignore_errors=True)


def undo(stage: Path, made: list[Path]) -> None:
    """Remove the stage (every file in it is this command's), then each directory this command created, deepest
    first, only while it is empty: a file someone else put there meanwhile keeps its directory."""
    shutil.rmtree(stage, ignore_errors=True)
    for directory in reversed(made):
        try:
            directory.rmdir()
        except OSError:
            break


@contextmanager
def staged_output(path: str | Path, pattern: str, flag: str, overwrite: bool | None = None) -> Iterator[Path | None]:
    """For a command that writes its files as it goes: output_directory's checks, then the files go to a hidden
    directory inside `path`, marked as this process's, and move out of it only when the block completes.

    A failure part way, Ctrl-C or SIGTERM removes what the command staged and any directory it created, if nothing
    else is in it; nothing else is ever removed. When the reader of standard output goes away (`| head`), what was
    made is kept. A stage that an earlier, killed command left is removed first, with a StaleOutput warning. No file
    replaces one of the same name unless `overwrite` (None: the command has no --overwrite). An empty `path` (no
    such flag) yields None."""
    if not path:
        yield None
        return
    out = Path(path)
    made = [p for p in [*reversed(out.parents), out] if not p.exists()]  # the directories this creates, top first
    output_directory(out, pattern, flag, overwrite)
    for removed in remove_stale_stages(out):
        warnings.warn(f"removed {removed}, the unfinished output of an earlier command that was killed", StaleOutput, 3)
    stage = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    (stage / STAGE_MARKER).write_text(str(os.getpid()), encoding="ascii")
    with stopped_by_signals():
        try:
            yield stage
            taken = [
                file.name
                for file in sorted(stage.iterdir())
                if file.name != STAGE_MARKER and (out / file.name).exists() and not overwrite
            ]
            if taken:
                remedy = "choose another directory" if overwrite is None else "pass --overwrite to replace it"
                raise RnnkitError(f"{flag}: {out} already holds {taken[0]}, which this would replace; {remedy}")
        except BrokenPipeError:  # the reader of the printed results has gone: the pictures made so far are kept
            commit(stage, out, overwrite)
            raise
        except BaseException:
            undo(stage, made)
            raise
        commit(stage, out, overwrite)

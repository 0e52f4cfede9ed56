"""Writing a file so that no reader, and no kill, ever sees half of it.

    atomic_write(path, lambda file: torch.save(data, file))

The bytes go to a temporary file beside `path` (same directory, so the rename stays on one file system),
are flushed to disk, and the rename over `path` is the commit. Each writer gets its own temporary name,
so processes writing the same file at once (torchrun ranks) never write into each other's.
"""

import os
import secrets
import shutil
import tempfile
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


@contextmanager
def staged_output(path: str | Path, pattern: str, flag: str, overwrite: bool | None = None) -> Iterator[Path | None]:
    """For a command that writes its files as it goes: output_directory's checks, then the files go to a hidden
    directory inside `path` and move out of it only when the block completes, so a failure part way leaves none of
    them, nor a directory it made; nor does any replace a file of the same name there unless `overwrite` (None:
    the command has no --overwrite). An empty `path` (no such flag) yields None."""
    if not path:
        yield None
        return
    out = Path(path)
    made = next(
        (p for p in [*reversed(out.parents), out] if not p.exists()), None
    )  # the topmost directory this creates
    output_directory(out, pattern, flag, overwrite)
    stage = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    try:
        yield stage
        taken = [file.name for file in sorted(stage.iterdir()) if (out / file.name).exists() and not overwrite]
        if taken:
            remedy = "choose another directory" if overwrite is None else "pass --overwrite to replace it"
            raise RnnkitError(f"{flag}: {out} already holds {taken[0]}, which this would replace; {remedy}")
    except BaseException:
        shutil.rmtree(made if made is not None else stage, ignore_errors=True)
        raise
    for file in sorted(stage.iterdir()):
        os.replace(file, out / file.name)
    stage.rmdir()

"""Writing a file so that no reader, and no kill, ever sees half of it.

    atomic_write(path, lambda file: torch.save(data, file))

The bytes go to a temporary file beside `path` (same directory, so the rename stays on one file system),
are flushed to disk, and the rename over `path` is the commit. Each writer gets its own temporary name,
so processes writing the same file at once (torchrun ranks) never write into each other's.
"""

import os
import secrets
from collections.abc import Callable, Iterator
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
        remedy = "choose another directory (nothing there is replaced)" if overwrite is None else "pass --overwrite to replace the files there"
        raise RnnkitError(f"{flag}: {out} already holds {taken[0].name}; {remedy}")
    out.mkdir(parents=True, exist_ok=True)
    return out

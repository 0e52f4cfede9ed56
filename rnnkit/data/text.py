"""Reading a user's text file: UTF-8 or a one-line error that says where it is not.

Every failure is an RnnkitError naming the file and, for bad bytes, the line and byte offset, so the
CLI can stop before it writes anything.
"""

from importlib import resources
from pathlib import Path

from rnnkit.errors import RnnkitError

BUNDLED = {"shakespeare": "tinyshakespeare.txt"}  # shipped inside the package: the demo needs no download


def read_text(path: str | Path) -> str:
    """The whole file as a str. Empty, whitespace-only, unreadable or non-UTF-8 files are errors."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RnnkitError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise RnnkitError(f"{path}: not UTF-8 at line {line}, byte offset {error.start} (byte 0x{raw[error.start]:02x}: {error.reason})") from None
    if not text.strip():
        raise RnnkitError(f"{path}: the file is {'empty' if not text else 'only whitespace'}")
    return text


def bundled_text(name: str = "shakespeare") -> str:
    """A corpus shipped with rnnkit (Tiny Shakespeare, public domain)."""
    return resources.files("rnnkit.data").joinpath("corpora", BUNDLED[name]).read_text(encoding="utf-8")


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """Train on the first (1 − f) of the text, validate on the last f (nanoGPT's split of Tiny Shakespeare)."""
    if not 0.0 < val_fraction < 1.0:
        raise RnnkitError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]

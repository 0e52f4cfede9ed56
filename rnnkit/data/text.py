"""Reading a user's text file: UTF-8 or a one-line error that says where it is not.

Every failure is an RnnkitError naming the file and, for bad bytes, the line and byte offset, so the
CLI can stop before it writes anything. The file is decoded in blocks, so the same reader serves a
small text read whole and a corpus larger than memory streamed into a token cache (tokens.py). A file
whose name ends in .gz is decompressed as it is read (line and byte offsets then count the decompressed text).
"""

import codecs
import gzip
import sys
import zlib
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from rnnkit.errors import RnnkitError

BUNDLED = {"shakespeare": "tinyshakespeare.txt"}  # shipped inside the package: the demo needs no download


MAX_LINE_CHARS = 1 << 24  # a line of a file read by lines (CoNLL-U, a table, parallel text, an input) is at most this
BLOCK_BYTES = 8 << 20  # 8 MiB of bytes per block: bounded memory whatever the file's size
Progress = Callable[[int], None]  # called with the number of bytes just processed


def decoded_blocks(path: Path, progress: Progress | None = None) -> Iterator[str]:
    """The file's text, block by block: strict UTF-8, and a bad byte is an error naming its line and offset."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, lines = 0, 1
    try:
        file = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    except OSError as error:
        raise RnnkitError(f"{path}: cannot read ({error.strerror or error})") from None
    with file:
        while True:
            block = read_block(file, path)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                pending = len(error.object) - len(block)  # bytes of a character begun in the previous block
                position = offset - pending + error.start
                line = lines + block[: max(0, error.start - pending)].count(b"\n")
                raise RnnkitError(
                    f"{path}: not UTF-8 at line {line}, byte offset {position} ({error.reason})"
                ) from None
            if text:
                yield text
            if not block:
                return
            offset += len(block)
            lines += block.count(b"\n")
            if progress is not None:
                progress(len(block))


def text_lines(path: str | Path) -> Iterator[str]:
    """The file's lines without their line ends ("\n", and a "\r" before it), decoded strictly (a bad byte names
    its line and offset), as they are read; a byte-order mark at the start is dropped. A line longer than
    MAX_LINE_CHARS is an error naming it, so an endless input (/dev/zero) is refused instead of read without end."""
    path, pending, number = Path(path), "", 0
    for k, block in enumerate(decoded_blocks(path)):
        pending += block.removeprefix("\ufeff") if k == 0 else block
        *complete, pending = pending.split("\n")
        for line in complete:
            number += 1
            yield line.removesuffix("\r")
        if len(pending) > MAX_LINE_CHARS:
            raise RnnkitError(f"{path}: line {number + 1} is longer than {MAX_LINE_CHARS:,} characters")
    if pending:
        yield pending.removesuffix("\r")


def read_block(file, path: Path) -> bytes:
    """The next BLOCK_BYTES of the file (decompressed, for .gz); a damaged gzip stream is an error naming the file."""
    try:
        return file.read(BLOCK_BYTES)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise RnnkitError(f"{path}: not a readable gzip file ({error})") from None
    except OSError as error:
        raise RnnkitError(f"{path}: cannot read ({error.strerror or error})") from None


def check_not_blank(path: Path, length: int, printable: bool) -> None:
    """A text of `length` characters, `printable` if any is not whitespace, must have something to learn."""
    if length == 0 or not printable:
        raise RnnkitError(f"{path}: the file is {'empty' if length == 0 else 'only whitespace'}")


def read_text(path: str | Path) -> str:
    """The whole file as a str. Empty, whitespace-only, unreadable or non-UTF-8 files are errors."""
    path = Path(path)
    text = "".join(decoded_blocks(path))
    check_not_blank(path, len(text), bool(text.strip()))
    return text


def bundled_text(name: str = "shakespeare") -> str:
    """A corpus shipped with rnnkit (Tiny Shakespeare, public domain)."""
    return resources.files("rnnkit.data").joinpath("corpora", BUNDLED[name]).read_text(encoding="utf-8")


def split_text(text, val_fraction: float):
    """Train on the first (1 − f) of the text, validate on the last f (nanoGPT's split of Tiny Shakespeare).
    Works on anything sliceable: a str, or the token cache's memory-mapped array (giving two views)."""
    if not 0.0 < val_fraction < 1.0:
        raise RnnkitError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def check_input(source: str, text: str = "") -> None:
    """--input must be '-' (standard input), an existing file, or unused beside --text: checked before any output."""
    if source != "-" and not text and not Path(source).is_file():
        raise RnnkitError(
            f"--input: {source}: {'a directory, not a file' if Path(source).is_dir() else 'no such file'}"
        )


def input_batches(source: str, text: str, batch_size: int) -> Iterator[list[tuple[str, str]]]:
    """input_lines gathered into lists of batch_size (the last may be shorter), each given as soon as it is
    full: a prediction command reading a pipe writes each batch's results before the next lines come."""
    batch: list[tuple[str, str]] = []
    for line, where in input_lines(source, text):
        batch.append((line, where))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def input_lines(source: str, text: str = "") -> Iterator[tuple[str, str]]:
    """(line, where) for each line of the file `source` ('-': standard input), as it is read, or the one
    `text` when given; bytes that are not UTF-8 are an error naming the line and byte offset."""
    if text:
        yield text, "--text"
        return
    where = "standard input" if source == "-" else source
    file = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115  (closed below)
    offset = 0
    try:
        for number, raw in enumerate(iter(lambda: file.readline(MAX_LINE_CHARS + 1), b""), start=1):
            if len(raw) > MAX_LINE_CHARS:
                raise RnnkitError(f"{where}: line {number} is longer than {MAX_LINE_CHARS:,} bytes")
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
                yield (
                    line.removeprefix("\ufeff") if number == 1 else line,
                    f"{where}:{number}",
                )  # a byte-order mark is no text
            except UnicodeDecodeError as error:
                raise RnnkitError(
                    f"{where}: not UTF-8 at line {number}, byte offset {offset + error.start} ({error.reason})"
                ) from None
            offset += len(raw)
    finally:
        if file is not sys.stdin.buffer:
            file.close()

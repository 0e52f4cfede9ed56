"""Large corpora: a text file encoded once into a compact token array on disk, then memory-mapped.

Training reads batches straight from the mapped file, so a corpus much larger than RAM trains with
bounded memory. Encoding streams the file in blocks (rnnkit/data/text.py's decoded_blocks, the reader
read_text uses too) and never holds it whole:

    pass 1  decode each block (strict UTF-8: a bad byte is reported with its line and byte offset),
            collect the code points seen            -> the sorted vocabulary
    pass 2  decode again, map each block to ids     -> tokens.npy, uint8 / uint16 / uint32 by vocabulary size

The cache directory holds tokens.npy, vocab.json and source.json (the text's path, size and
modification time); a cache whose source.json no longer matches the text is encoded again. Every file
is written under a temporary name and renamed, so a kill never leaves a half-written cache behind. A
marker file, written first, tells the cache's files from a user's files of the same names: those are
never replaced.
"""

import json
from pathlib import Path

import numpy as np

from rnnkit.data.text import Progress, check_not_blank, decoded_blocks
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every id."""
    return np.dtype(np.uint8 if vocab_size <= 1 << 8 else np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (len(text),)


UNICODE_SIZE = 0x110000  # code points 0 .. U+10FFFF


def scan_vocabulary(path: Path, progress: Progress | None = None) -> tuple[Vocab, int]:
    """Pass 1: the sorted vocabulary of the file and its length in characters."""
    seen, length, printable = np.zeros(UNICODE_SIZE, dtype=bool), 0, False
    for text in decoded_blocks(path, progress):
        seen[code_points(text)] = True  # a scatter: O(block), no sorting
        length += len(text)
        printable = printable or bool(text.strip())
    check_not_blank(path, length, printable)
    return Vocab([chr(point) for point in np.flatnonzero(seen).tolist()]), length


def source_record(path: Path) -> dict:
    status = path.stat()
    return {"path": str(path.resolve()), "bytes": status.st_size, "mtime_ns": status.st_mtime_ns}


def is_source_record(path: Path) -> bool:
    """Is `path` a source.json as source_record writes it (a cache made before caches were marked)?"""
    try:
        return set(json.loads(path.read_text(encoding="utf-8"))) == {"path", "bytes", "mtime_ns"}
    except (OSError, ValueError, TypeError):
        return False


# a cache directory's own mark, so files of the same names it did not write are never replaced
MARKER = ".rnnkit-token-cache"


def encode_file(path: str | Path, cache: str | Path, progress: Progress | None = None) -> tuple[np.ndarray, Vocab]:
    """Encode `path` into `cache`/tokens.npy (unless an up-to-date cache exists); return the mapped ids and vocab."""
    path, cache = Path(path), Path(cache)
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    if cache.exists() and not cache.is_dir():
        raise RnnkitError(f"{cache}: the token cache must be a directory, and this is a file")
    source = source_record(path)
    tokens_path, vocab_path, source_path = cache / "tokens.npy", cache / "vocab.json", cache / "source.json"
    if source_path.exists() and tokens_path.exists() and vocab_path.exists():
        try:
            if json.loads(source_path.read_text()) == source:
                return load_tokens(cache)
        except (OSError, ValueError):
            pass  # an unreadable cache is rebuilt
    theirs = [file.name for file in (tokens_path, vocab_path, source_path) if file.exists()]
    if (
        theirs and not (cache / MARKER).exists() and not is_source_record(source_path)
    ):  # no cache this code began: the user's files
        raise RnnkitError(
            f"{cache}: holds {', '.join(theirs)} that are no rnnkit token cache, and encoding would replace them; "
            "name another --data.token_cache directory"
        )
    vocab, length = scan_vocabulary(path, progress)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / MARKER).touch()  # before the first file: an interrupted encoding is still known as ours and redone

    dtype = token_dtype(len(vocab))
    lookup = np.zeros(UNICODE_SIZE, dtype=dtype)  # code point -> id, one gather per block
    lookup[vocab.code_points] = np.arange(len(vocab), dtype=dtype)

    def write_tokens(file) -> None:
        # plain sequential writes, not a writable memory map: mapped dirty pages would count against memory
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
        np.lib.format.write_array_header_2_0(file, header)
        for text in decoded_blocks(path, progress):  # pass 2
            file.write(lookup[code_points(text)].tobytes())

    atomic_write(tokens_path, write_tokens)
    atomic_write(vocab_path, lambda file: file.write(json.dumps(vocab.to_dict()).encode()))
    atomic_write(source_path, lambda file: file.write(json.dumps(source).encode()))  # last: it marks the cache complete
    return load_tokens(cache)


def load_tokens(cache: str | Path) -> tuple[np.ndarray, Vocab]:
    """The mapped token array (read-only) and its vocabulary."""
    cache = Path(cache)
    try:
        vocab = Vocab.from_dict(json.loads((cache / "vocab.json").read_text(encoding="utf-8")))
        tokens = np.load(cache / "tokens.npy", mmap_mode="r", allow_pickle=False)
    except Exception as error:  # truncated, empty, not numpy, bad JSON (even nested too deep): all one answer
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RnnkitError(f"{cache}: not a readable token cache ({reason[:200]})") from None
    if tokens.ndim != 1 or tokens.dtype != token_dtype(len(vocab)):
        raise RnnkitError(f"{cache}: tokens.npy does not match vocab.json")
    if len(tokens) and int(tokens.max()) >= len(vocab):  # one pass over the mapped file, at GB/s
        raise RnnkitError(
            f"{cache}: tokens.npy holds id {int(tokens.max())}, but vocab.json has only {len(vocab)} symbols"
        )
    return tokens, vocab

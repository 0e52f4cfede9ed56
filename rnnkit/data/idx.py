"""The IDX format of the MNIST files (LeCun's): a 4-byte magic, the sizes, then the values, big-endian.

    bytes 0-1   zero
    byte  2     the values' type: 0x08 unsigned byte (the only one MNIST uses; the others are read too)
    byte  3     the number of dimensions n
    bytes 4..   n sizes, 4-byte big-endian integers, then prod(sizes) values

A .gz file is read through gzip. A wrong magic, a truncated body or trailing bytes are errors naming
the file and the byte offset.
"""

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnkit.data.images import pixels
from rnnkit.errors import RnnkitError

TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as file:
                return file.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise RnnkitError(f"{path}: not a readable gzip file ({error})") from None
    except OSError as error:
        raise RnnkitError(f"{path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:  # a name no file can have (a NUL byte)
        raise RnnkitError(f"{str(path)!r}: not a usable file name ({error})") from None


def parse_idx(data: bytes, where: str) -> Tensor:
    """IDX bytes -> a tensor of the sizes the header gives (uint8 for MNIST)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in TYPES or not 1 <= data[3] <= 8:
        raise RnnkitError(
            f"{where}: not an IDX file (magic {data[:4].hex() or 'missing'} at byte offset 0; "
            "expected 0000 then a type byte 08-0e and 1-8 dimensions, as MNIST's 00000803 and 00000801)"
        )
    dtype, dims = np.dtype(TYPES[data[2]]), data[3]
    header = 4 + 4 * dims
    if len(data) < header:
        raise RnnkitError(f"{where}: the header is cut short ({len(data)} bytes; {dims} sizes need {header})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    expected = header + math.prod(shape) * dtype.itemsize  # Python's integers: sizes of 2³² - 1 do not overflow
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "longer than its header says"
        raise RnnkitError(
            f"{where}: {kind}: sizes {'×'.join(map(str, shape))} need {expected} bytes, the file has {len(data)} "
            f"(the values start at byte offset {header})"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(values.astype(values.dtype.newbyteorder("="), copy=True))


def read_idx(path: str | Path) -> Tensor:
    path = Path(path)
    return parse_idx(read_bytes(path), str(path))


def find_mnist(directory: str | Path, split: str) -> tuple[Path, Path]:
    """The images and labels files of a split ("train" or "t10k"), .gz or not."""
    directory = Path(directory)
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [directory / f"{split}-{kind}{suffix}" for suffix in ("", ".gz")]
        existing = [c for c in candidates if c.is_file()]
        if not existing:
            raise RnnkitError(
                f"{directory}: no {candidates[0].name}[.gz] (MNIST's four idx files, from yann.lecun.com or a mirror)"
            )
        found.append(existing[0])
    return found[0], found[1]


def read_mnist(directory: str | Path, split: str = "train") -> tuple[Tensor, Tensor]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of a split; their counts must agree."""
    images_path, labels_path = find_mnist(directory, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or labels.dim() != 1:
        raise RnnkitError(
            f"{images_path}: expected images (N, Y, X) and labels (N,), "
            f"got sizes {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if len(images) != len(labels):
        raise RnnkitError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path.name}")
    if len(labels) and (labels.is_floating_point() or int(labels.min()) < 0 or int(labels.max()) > 9):
        raise RnnkitError(
            f"{labels_path}: labels must be digits 0-9, found {labels.min().item()}..{labels.max().item()}"
        )
    return read_pixels(images, images_path), labels.long()


def read_pixels(values: Tensor, where: str | Path) -> Tensor:
    """An IDX file's images as uint8 pixels (MNIST's own type passes as it is; see images.pixels)."""
    return values if values.dtype == torch.uint8 else pixels(values.numpy(), str(where))

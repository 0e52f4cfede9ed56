"""Reading images to caption: PNG or JPEG (through Pillow) or NumPy .npy arrays, as (Y, X) uint8 grayscale.

A file that is not an image, a truncated one, one with an alpha channel, or one of another size than the
model was trained on is an error naming the file (and the sizes); nothing is resized silently.
"""

import tokenize
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import RnnkitError

SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")


def image_files(path: str | Path) -> list[Path]:
    """The image itself, or a directory's images (by suffix, sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise RnnkitError(f"{path}: no {', '.join(SUFFIXES)} file in the directory")
        return files
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    return [path]


def read_images(path: str | Path, size: int) -> Tensor:
    """A file's images as (N, size, size) uint8: one for PNG/JPEG, N for an .npy of shape (N, Y, X) or (Y, X)."""
    path = Path(path)
    images = read_array(path) if path.suffix.lower() == ".npy" else read_picture(path)
    if images.dim() == 2:
        images = images[None]
    if images.dim() != 3 or tuple(images.shape[1:]) != (size, size):
        raise RnnkitError(f"{path}: an image of {' × '.join(map(str, images.shape[-2:]))} pixels (shape {tuple(images.shape)}); "
                          f"the model reads {size} × {size}")
    return images


def read_picture(path: Path) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
            if "A" in picture.getbands() or (picture.mode == "P" and "transparency" in picture.info):
                raise RnnkitError(f"{path}: the image has an alpha channel ({picture.mode}); give grayscale or RGB, digits light on dark")
            gray = picture.convert("L")
    except UnidentifiedImageError:
        raise RnnkitError(f"{path}: not an image Pillow can read (PNG or JPEG)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise RnnkitError(f"{path}: a damaged or truncated image ({str(error).strip()[:120]})") from None
    return torch.from_numpy(np.array(gray, dtype=np.uint8))  # (Y, X)


def read_array(path: Path) -> Tensor:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as error:  # numpy parses the header with tokenize
        raise RnnkitError(f"{path}: not a readable .npy array ({str(error).strip()[:120]})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif" or array.ndim not in (2, 3) or array.size == 0:
        raise RnnkitError(f"{path}: expected a numeric (Y, X) or (N, Y, X) array, got {getattr(array, 'dtype', '?')} of shape {getattr(array, 'shape', '?')}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise RnnkitError(f"{path}: the array holds NaN or infinite values")
        array = array * 255.0 if array.max() <= 1.0 else array  # [0, 1] floats are scaled to [0, 255]
    if array.min() < 0 or array.max() > 255:
        raise RnnkitError(f"{path}: pixel values must lie in [0, 255] (or [0, 1] as floats), found {array.min()}..{array.max()}")
    return torch.from_numpy(np.ascontiguousarray(array.round().astype(np.uint8)))

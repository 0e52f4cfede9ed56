"""Reading images to caption and clips to label: PNG, JPEG or animated GIF (through Pillow) or NumPy .npy
arrays, as (Y, X) uint8 grayscale frames.

A file that is not an image, a truncated one, one with an alpha channel, or one of another size than the
model was trained on is an error naming the file (and the sizes); nothing is resized silently.
"""

import struct
import tokenize
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import ArgumentError, RnnkitError

SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")


def image_files(path: str | Path, suffixes: tuple[str, ...] = SUFFIXES) -> list[Path]:
    """The file itself, or a directory's files of these suffixes (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise RnnkitError(f"{path}: no {', '.join(suffixes)} file in the directory")
        return files
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    return [path]


def read_images(path: str | Path, size: int) -> Tensor:
    """A file's images as (N, size, size) uint8: one for PNG/JPEG, N for an .npy of shape (N, Y, X) or (Y, X)."""
    path = Path(path)
    images = read_array(path) if path.suffix.lower() == ".npy" else read_picture(path)[0]
    if images.dim() == 2:
        images = images[None]
    if images.dim() != 3 or tuple(images.shape[1:]) != (size, size):
        raise RnnkitError(
            f"{path}: an image of {' × '.join(map(str, images.shape[-2:]))} pixels (shape {tuple(images.shape)}); "
            f"the model reads {size} × {size}"
        )
    return images


def read_clips(path: str | Path, size: int) -> Tensor:
    """A file's clips as (N, T, size, size) uint8: one for an animated GIF, N for an .npy of shape
    (N, T, Y, X) or (T, Y, X)."""
    path = Path(path)
    clips = read_array(path, (3, 4)) if path.suffix.lower() == ".npy" else read_picture(path, still=False)
    if clips.dim() == 3:
        clips = clips[None]
    if tuple(clips.shape[2:]) != (size, size):
        raise RnnkitError(
            f"{path}: frames of {' × '.join(map(str, clips.shape[-2:]))} pixels (shape {tuple(clips.shape)}); "
            f"the model reads {size} × {size}"
        )
    return clips


def read_picture(path: Path, still: bool = True) -> Tensor:
    """A picture's frames (T, Y, X) uint8 grayscale (one unless it is animated and still=False)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            frames = [picture] if still else list(ImageSequence.Iterator(picture))
            grays = []
            for frame in frames:
                frame.load()
                if "A" in frame.getbands() or (frame.mode == "P" and "transparency" in frame.info):
                    raise RnnkitError(
                        f"{path}: the image has an alpha channel ({frame.mode}); "
                        "give grayscale or RGB, digits light on dark"
                    )
                grays.append(np.array(frame.convert("L"), dtype=np.uint8))
    except UnidentifiedImageError:
        raise RnnkitError(f"{path}: not an image Pillow can read (PNG, JPEG{'' if still else ', GIF'})") from None
    except Image.DecompressionBombError:
        raise RnnkitError(
            f"{path}: the image claims more pixels than Pillow will decode (a damaged file or a decompression bomb)"
        ) from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        struct.error,
    ) as error:  # what Pillow's decoders raise on damaged files
        raise RnnkitError(f"{path}: a damaged or truncated image ({str(error).strip()[:120]})") from None
    return torch.from_numpy(np.stack(grays))  # (T, Y, X)


def load_npy(path: Path) -> np.ndarray:
    """One array of a .npy file, never a pickle; damaged bytes, or an .npz archive, are an error naming the file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile) as error:
        # numpy parses the header with tokenize, and reads bytes that begin "PK" as a zip archive
        raise RnnkitError(f"{path}: not a readable .npy array ({str(error).strip()[:120]})") from None
    if not isinstance(loaded, np.ndarray):  # a zip of arrays (.npz)
        loaded.close()
        raise RnnkitError(f"{path}: an .npz archive of arrays, not one .npy array")
    return loaded


def read_array(path: Path, ranks: tuple[int, ...] = (2, 3)) -> Tensor:
    array = load_npy(path)
    if array.dtype.kind not in "uif" or array.ndim not in ranks or array.size == 0:
        shapes = {2: "(Y, X)", 3: "(N, Y, X)"} if ranks == (2, 3) else {3: "(T, Y, X)", 4: "(N, T, Y, X)"}
        raise RnnkitError(
            f"{path}: expected a numeric {' or '.join(shapes.values())} array, got {array.dtype} of shape {array.shape}"
        )
    return pixels(array, str(path))


def pixels(array: np.ndarray, where: str) -> Tensor:
    """Numeric pixel values -> uint8: [0, 255], or floats in [0, 1] scaled to it; NaN, infinities and other
    ranges are errors naming `where`."""
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise RnnkitError(f"{where}: the pixels hold NaN or infinite values")
        array = array * 255.0 if array.max() <= 1.0 else array  # [0, 1] floats are scaled to [0, 255]
    if array.min() < 0 or array.max() > 255:
        raise RnnkitError(
            f"{where}: pixel values must lie in [0, 255] (or [0, 1] as floats), found {array.min()}..{array.max()}"
        )
    return torch.from_numpy(np.ascontiguousarray(array.round().astype(np.uint8)))


def pixel_argument(value, argument: str, what: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A numpy array or tensor given to a Python call as pixels -> its numpy array, once it has `shape` (None: any
    size but 0) and numbers; otherwise an ArgumentError naming `argument` and `what` ("a (Y, X) image")."""
    array = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
    sizes_fit = all(
        size == expected if expected is not None else size > 0 for size, expected in zip(array.shape, shape)
    )
    if array.ndim != len(shape) or array.dtype.kind not in "uif" or not sizes_fit:
        raise ArgumentError(argument, f"expected {what} of numbers, got {array.dtype} of shape {array.shape}")
    return array


def argument_pixels(array: np.ndarray, argument: str) -> Tensor:
    """pixels() of an argument's array: values that are no pixels are the argument's ArgumentError."""
    try:
        return pixels(array, argument)
    except RnnkitError as error:
        raise ArgumentError(argument, str(error).removeprefix(f"{argument}: ")) from None


FEATURE_SUFFIXES = (".npy", ".safetensors")


def read_features(path: str | Path, size: int | None = None) -> Tensor:
    """Precomputed image features (N, F) float32 from a .npy or a .safetensors file (its one tensor, or the one
    named "features"), any pretrained vision model's; with `size`, F must equal it (the checkpoint's)."""
    path = Path(path)
    if path.suffix.lower() not in FEATURE_SUFFIXES:
        raise RnnkitError(f"{path}: features must be a .npy or .safetensors file of (N, F) vectors")
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        array = load_npy(path)
    else:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise RnnkitError(f"{path}: not a readable .safetensors file ({str(error).strip()[:120]})") from None
        if len(tensors) != 1 and "features" not in tensors:
            raise RnnkitError(
                f"{path}: holds {len(tensors)} tensors ({', '.join(sorted(tensors)[:4])}); "
                'name the features one "features"'
            )
        array = tensors["features"] if "features" in tensors else next(iter(tensors.values()))
    if array.dtype.kind not in "uif" or array.ndim != 2 or array.size == 0:
        raise RnnkitError(
            f"{path}: expected a numeric (N, F) array of feature vectors, got {array.dtype} of shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise RnnkitError(f"{path}: the features hold NaN or infinite values")
    if array.dtype.kind == "f" and array.dtype.itemsize > 4 and np.abs(array).max() > np.finfo(np.float32).max:
        raise RnnkitError(
            f"{path}: the features hold values beyond float32's range (up to {float(np.abs(array).max()):.3g})"
        )
    if size is not None and array.shape[1] != size:
        raise RnnkitError(f"{path}: feature vectors of {array.shape[1]} numbers; the checkpoint's model reads {size}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))  # (N, F)


def read_captions(path: str | Path, count: int, of: tuple[str, str] = ("its features file", "vector")) -> list[str]:
    """One caption per line, line n the caption of item n (`of`: where the items are, what one is called); other
    line counts and empty lines are errors."""
    from rnnkit.data.parallel import read_lines

    captions, (holder, item) = read_lines(path), of
    if len(captions) != count:
        raise RnnkitError(
            f"{path} has {len(captions):,} lines but {holder} holds {count:,} {item}s; give one caption per {item}"
        )
    for number, line in enumerate(captions, start=1):
        if not line.strip():
            raise RnnkitError(f"{path}:{number}: an empty line (each line is the caption of one {item})")
    return [" ".join(line.split()) for line in captions]

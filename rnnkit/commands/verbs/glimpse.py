"""`rnnkit glimpse predict`: each image's digit and its probability; with --out, where the glimpses looked, as a
PNG and a GIF per image."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from rnnkit.config import option
from rnnkit.data.datasets import tiny_images
from rnnkit.data.images import image_files, read_images
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write, staged_output
from rnnkit.plots import animated_gif, picture_png


@dataclass(frozen=True)
class Options:
    input: str = option(
        "", "an image (PNG, JPEG, or .npy of (Y, X) or (N, Y, X)) of the checkpoint's size, or a directory of them"
    )
    out: str = option(
        "", "also draw each image's glimpses as DIR/glimpses-N.png and DIR/glimpses-N.gif (DIR must hold none yet)"
    )
    batch_size: int = option(256, "images classified together", at_least=1)


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no input classifies a few generated images, written to scratch/images.npy."""
    if options.input:
        return options
    path = scratch / "images.npy"
    np.save(path, tiny_images(3, seed=1)[0].numpy())
    return replace(options, input=str(path))


def path_pictures(image: torch.Tensor, locations: torch.Tensor, patch: int, scales: int, label: str, scale: int = 4):
    """The image enlarged with each glimpse's squares drawn on it, one picture per step (the path so far): Pillow
    images."""
    from PIL import Image, ImageDraw

    Y, X = image.shape
    base = Image.fromarray(image.numpy()).convert("RGB").resize((X * scale, Y * scale), Image.NEAREST)
    pictures = []
    for t in range(len(locations)):
        picture = base.copy()
        draw = ImageDraw.Draw(picture)
        centres = [((float(l[1]) + 1) * X / 2 * scale, (float(l[0]) + 1) * Y / 2 * scale) for l in locations[: t + 1]]
        if len(centres) > 1:
            draw.line(centres, fill=(80, 160, 255), width=2)
        cx, cy = centres[-1]
        for i in range(scales):
            half = patch * 2**i * scale / 2
            draw.rectangle(
                [cx - half, cy - half, cx + half, cy + half],
                outline=(255, 64, 64) if i == 0 else (255, 180, 64),
                width=2,
            )
        caption = f"glimpse {t + 1}: {label}" if t + 1 == len(locations) else f"glimpse {t + 1}"
        draw.text((4, 4), caption, fill=(255, 255, 0))
        pictures.append(picture)
    return pictures


def run(trained, settings, options: Options, out: TextIO) -> None:
    """ "file<TAB>digit<TAB>probability" per image; --out draws where the glimpses looked."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    patch, scales = model.config.patch, model.config.scales  # the glimpses' squares, drawn with --out
    if not options.input:
        raise RnnkitError("--input: give an image (PNG, JPEG, .npy) of the checkpoint's size, or a directory of them")
    with staged_output(options.out, "glimpses-*.*", "--out") as stage:  # no pictures left behind by a failure
        done = 0
        for file in image_files(options.input):
            images = read_images(file, model.height)  # (N, Y, X)
            for start in range(0, len(images), options.batch_size):
                chunk = images[start : start + options.batch_size]
                for k, seen in enumerate(task.predict(model, vocabularies, chunk, settings)):
                    chance = seen.probabilities[seen.label]
                    done += 1
                    if stage is not None:
                        label = f"{seen.label} ({chance:.0%})"
                        pictures = path_pictures(chunk[k], seen.locations, patch, scales, label)
                        for suffix, data in (("png", picture_png(pictures[-1])), ("gif", animated_gif(pictures, 500))):
                            atomic_write(
                                stage / f"glimpses-{done}.{suffix}", lambda handle, data=data: handle.write(data)
                            )
                    name = str(file) if len(images) == 1 else f"{file}[{start + k}]"
                    out.write(f"{name}\t{seen.label}\t{chance:.4f}\n")

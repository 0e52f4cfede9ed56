"""`rnnkit caption predict`: "file<TAB>caption" per image, batch by batch, and with --out each image drawn with its
caption under it as DIR/captioned-N.png."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from rnnkit.config import option
from rnnkit.data.compose import CANVAS, compose, held_out_pairs
from rnnkit.data.datasets import tiny_images
from rnnkit.data.images import FEATURE_SUFFIXES, SUFFIXES, image_files, read_features, read_images
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write, staged_output


@dataclass(frozen=True)
class Options:
    input: str = option(
        "",
        "an image (PNG, JPEG, or .npy of (Y, X) or (N, Y, X) pixels, 64 × 64, light on dark) or a directory of them; "
        "for a model of precomputed features, a .npy or .safetensors of (N, F_in) vectors",
    )
    out: str = option(
        "", "also save each image with its caption under it as DIR/captioned-N.png (DIR must hold none yet)"
    )
    batch_size: int = option(64, "images captioned together", at_least=1)


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no input captions a few generated images, written to scratch/images.npy."""
    if options.input:
        return options
    images, labels = tiny_images(200, seed=3)
    path = scratch / "images.npy"
    np.save(path, compose(images, labels, 2, 5, held_out_pairs(), unseen=True).images.numpy())
    return replace(options, input=str(path))


def captioned_png(image: torch.Tensor, text: str) -> bytes:
    """The image (Y, X) uint8 with its caption written under it."""
    from rnnkit.plots import figure_png, plt

    figure, axes = plt.subplots(figsize=(2.6, 3.0))
    axes.imshow(image.numpy(), cmap="gray", vmin=0, vmax=255)
    axes.set_axis_off()
    figure.text(0.5, 0.04, text, ha="center", va="bottom", fontsize=8, wrap=True)
    figure.subplots_adjust(bottom=0.2)
    return figure_png(figure)


def run(trained, settings, options: Options, out: TextIO) -> None:
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    if not options.input:
        raise RnnkitError("--input: give an image file (PNG, JPEG, .npy) or a directory of them")
    size = model.config.image_features
    if size and options.out:
        raise RnnkitError("--out draws each image with its caption; this model reads precomputed features, not images")
    files = image_files(options.input, FEATURE_SUFFIXES if size else SUFFIXES)
    with staged_output(options.out, "captioned-*.png", "--out") as stage:  # no pictures left behind by a failure
        done = 0
        for file in files:
            images = read_features(file, size) if size else read_images(file, CANVAS)  # (N, F_in) or (N, 64, 64)
            for start in range(0, len(images), options.batch_size):
                chunk = images[start : start + options.batch_size]
                for k, caption in enumerate(task.predict(model, vocabularies, chunk, settings)):
                    name = str(file) if len(images) == 1 else f"{file}[{start + k}]"
                    if stage is not None:
                        picture = captioned_png(chunk[k], caption.text)
                        atomic_write(
                            stage / f"captioned-{done + 1}.png", lambda handle, data=picture: handle.write(data)
                        )
                    done += 1
                    out.write(f"{name}\t{caption.text}\n")
                    out.flush()

"""`rnnkit seqmnist predict`: one "digit<TAB>probability" line per image of an idx file (or generated ones)."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from rnnkit.config import option
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import read_idx, read_pixels
from rnnkit.errors import RnnkitError
from rnnkit.tasks.seqmnist import size_problem


@dataclass(frozen=True)
class Options:
    input: str = option("", "an idx images file (.gz or not) of the checkpoint's image size")
    generated: int = option(
        0,
        "instead of --input, classify this many generated bar images (a demo of the tiny preset's data)",
        at_least=0,
        at_most=100000,
    )
    batch_size: int = option(256, "images classified together", at_least=1)


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no --input classifies a few generated images."""
    return options if options.input or options.generated else replace(options, generated=8)


def run(trained, settings, options: Options, out: TextIO) -> None:
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    if options.generated:
        images, where = tiny_images(options.generated, seed=1, size=model.height)[0], "generated images"  # (N, Y, X)
    elif not options.input:
        raise RnnkitError("--input: name an idx images file to classify (or --generated N)")
    else:
        images, where = read_pixels(read_idx(options.input), options.input), options.input
    if images.dim() != 3:
        raise RnnkitError(
            f"{where}: values of sizes {'×'.join(map(str, images.shape))}, "
            f"not images (N × Y × X: an idx3 file, not idx{images.dim()})"
        )
    problem = size_problem(images, model.height, model.width)
    if problem is not None:
        raise RnnkitError(f"{where}: {problem}")
    for start in range(0, len(images), options.batch_size):
        for result in task.predict(model, vocabularies, images[start : start + options.batch_size], settings):
            out.write(f"{result.label}\t{result.probability:.4f}\n")
        out.flush()

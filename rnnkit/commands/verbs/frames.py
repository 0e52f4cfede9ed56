"""`rnnkit frames predict`: each clip's labels, frame by frame (or the clip's digit, for a model of head "clip");
with --out, a labelled strip PNG and a GIF per clip."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from rnnkit.config import option
from rnnkit.data.clips import CANVAS
from rnnkit.data.images import image_files, read_clips
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write, staged_output
from rnnkit.plots import animated_gif, picture_png
from rnnkit.tasks import frames
from rnnkit.tasks.frames import ClipLabel, FrameLabels


@dataclass(frozen=True)
class Options:
    input: str = option(
        "",
        f"clips: .npy of (T, Y, X) or (N, T, Y, X) pixels, or an animated GIF, {CANVAS} × {CANVAS}, light on dark; "
        "or a directory of them",
    )
    out: str = option(
        "",
        "also save each clip's frames with their labels as DIR/clip-N.png (a strip) and DIR/clip-N.gif "
        "(DIR must hold none yet)",
    )
    batch_size: int = option(64, "clips labelled together", at_least=1)


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no input labels two generated clips, written to scratch/clips.npy."""
    if options.input:
        return options
    images, labels, _ = frames.glyphs(frames.task.Config(), tiny=True)
    path = scratch / "clips.npy"
    np.save(path, frames.make_clips(frames.scaled(images[:50]), labels[:50], 2, 5).frames.numpy())
    return replace(options, input=str(path))


def labelled_pictures(clip: torch.Tensor, labels: FrameLabels | ClipLabel, scale: int = 4):
    """Each frame (Y, X) enlarged `scale` times with its labels written under it (a clip's one label under every
    frame): a list of Pillow images."""
    from PIL import Image, ImageDraw

    if isinstance(labels, ClipLabel):
        labels = FrameLabels(["clip:"] * len(clip), [labels.digit] * len(clip), [], [])
    pictures = []
    for frame, direction, digit in zip(clip, labels.directions, labels.digits):
        picture = Image.fromarray(frame.numpy()).resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
        canvas = Image.new("L", (picture.width, picture.height + 26), 0)
        canvas.paste(picture, (0, 0))
        draw = ImageDraw.Draw(canvas)
        draw.text((3, picture.height + 1), direction, fill=255)
        draw.text((3, picture.height + 13), digit, fill=255)
        pictures.append(canvas)
    return pictures


def strip_png(pictures) -> bytes:
    """The frames side by side, one PNG."""
    from PIL import Image

    strip = Image.new("L", (sum(p.width for p in pictures) + 2 * (len(pictures) - 1), pictures[0].height), 64)
    x = 0
    for picture in pictures:
        strip.paste(picture, (x, 0))
        x += picture.width + 2
    return picture_png(strip)


def as_text(labels: FrameLabels | ClipLabel) -> str:
    """ "direction/digit ..." (one pair per frame), or a clip's "digit<TAB>probability"."""
    if isinstance(labels, ClipLabel):
        return f"{labels.digit}\t{labels.probability:.4f}"
    return " ".join(f"{d}/{c}" for d, c in zip(labels.directions, labels.digits))


def run(trained, settings, options: Options, out: TextIO) -> None:
    """ "file<TAB>direction/digit ..." per clip (a .npy of N clips gives file[n]), one label pair per frame; for a
    model of head "clip", "file<TAB>digit<TAB>probability"."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    if not options.input:
        raise RnnkitError(
            "--input: give a clip (.npy of (T, Y, X) or (N, T, Y, X) pixels, or an animated GIF) or a directory of them"
        )
    files = image_files(options.input, (".npy", ".gif"))
    with staged_output(options.out, "clip-*.*", "--out") as stage:  # no pictures left behind by a failure
        done = 0
        for file in files:
            clips = read_clips(file, CANVAS)  # (N, T, Y, X)
            for start in range(0, len(clips), options.batch_size):
                chunk = clips[start : start + options.batch_size]
                for k, labels in enumerate(task.predict(model, vocabularies, list(chunk), settings)):
                    done += 1
                    if stage is not None:
                        pictures = labelled_pictures(chunk[k], labels)
                        for suffix, data in (("png", strip_png(pictures)), ("gif", animated_gif(pictures))):
                            atomic_write(stage / f"clip-{done}.{suffix}", lambda handle, data=data: handle.write(data))
                    name = str(file) if len(clips) == 1 else f"{file}[{start + k}]"
                    out.write(f"{name}\t{as_text(labels)}\n")

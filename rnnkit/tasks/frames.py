"""Frame-level video labelling (the notes' many-to-many, equal lengths): a label per frame of a clip.

    rnnkit frames train --data ../data/mnist --preset mnist-cpu --out runs/frames
    rnnkit frames train --data ../data/mnist --preset mnist-cpu --model.context=none --out runs/frames-cnn   # no recurrence
    rnnkit frames eval runs/frames/best.pt --data ../data/mnist                  # clips of the t10k digits
    rnnkit frames predict runs/frames/best.pt --input clips.npy --out runs/frames/shown   # strip PNG and GIF per clip

Clips are generated (rnnkit/data/clips.py): a digit bouncing around a 32×32 canvas behind a grey band. Each
frame's labels are where the digit goes next (up-left, up-right, down-left, down-right), which no single frame
shows, and which digit it is, which the frames where it is behind the band do not show. --data is MNIST's idx
directory (validation clips use the last 5000 training digits, eval the t10k ones); without it, bar glyphs
generated in the package.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
from rnnkit.data.clips import CANVAS, DIRECTIONS, FRAMES, ClipBatches, make_clips, scaled
from rnnkit.data.compose import NAMES
from rnnkit.data.images import image_files, read_clips
from rnnkit.data.text import Progress
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.files import atomic_write, staged_output
from rnnkit.models.core import CoreConfig
from rnnkit.models.frames import FrameLabeller
from rnnkit.plots import animated_gif, picture_png
from rnnkit.recurrent import map_state
from rnnkit.tasks.caption import glyphs

name = "frames"
description = "frame-level video labelling (many-to-many): direction of motion and the occluded digit, per frame: train, eval, predict"
unit, per = "frames", "frame"
predict_verb = "predict"
headline = "accuracy"


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    context: str = option(
        "rnn",
        "what each frame's labels read: rnn (the recurrent layer over the frames) or none (the per-frame CNN alone)",
        choices=("rnn", "none"),
    )
    bidirectional: bool = option(
        True, "read the clip both ways (a one-directional layer cannot know the first frame's direction)"
    )
    hidden_size: int = option(128, "hidden units of the recurrent layer (per direction)", at_least=1)
    num_layers: int = option(1, "stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(0.0, "dropout between layers and before the heads", at_least=0, below=1)
    feature_size: int = option(64, "F: the size of each frame's vector v_t", at_least=1)
    channels: int = option(16, "channels of the CNN's first convolution (then twice that)", at_least=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "MNIST's idx directory (train-images-idx3-ubyte[.gz], ...; empty: generated bar glyphs)")
    train_count: int = option(20000, "clips per pass (every training batch is new clips)", at_least=1)
    val_count: int = option(1000, "validation clips", at_least=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a frame-labelling run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class PredictConfig:
    input: str = option(
        "",
        f"clips: .npy of (T, Y, X) or (N, T, Y, X) pixels, or an animated GIF, {CANVAS} × {CANVAS}, light on dark; or a directory of them",
    )
    out: str = option(
        "",
        "also save each clip's frames with their labels as DIR/clip-N.png (a strip) and DIR/clip-N.gif (DIR must hold none yet)",
    )
    batch_size: int = option(64, "clips labelled together", at_least=1)


Config, Predict = RunConfig, PredictConfig

PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU, on generated glyphs: for tests and --dry-run
    "tiny": {
        "model.hidden_size": 32,
        "model.feature_size": 32,
        "model.channels": 8,
        "data.train_count": 640,
        "data.val_count": 64,
        "train.batch_size": 32,
        "train.max_steps": 120,
        "train.eval_interval": 40,
        "train.learning_rate": 5e-3,
        "train.weight_decay": 0.0,
    },
    # MNIST digits on 2 CPU cores
    "mnist-cpu": {
        "model.cell": "lstm",
        "model.channels": 32,
        "train.batch_size": 32,
        "train.max_steps": 100000,
        "train.max_minutes": 28.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 1000,
        "train.learning_rate": 2e-3,
        "train.weight_decay": 0.0,
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class ClipData:
    vocabularies: dict  # {"directions", "digits"}
    train_glyphs: torch.Tensor  # (N, DIGIT, DIGIT) uint8
    train_labels: torch.Tensor  # (N,)
    val_glyphs: torch.Tensor
    val_labels: torch.Tensor
    source: str


def vocabularies() -> dict:
    return {"directions": TokenVocab(list(DIRECTIONS)), "digits": TokenVocab(list(NAMES))}


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> ClipData:
    images, labels, source = glyphs(config, tiny)
    cut = len(images) * 11 // 12  # MNIST: 55,000 digits for training clips, the last 5,000 for validation ones
    small = scaled(images)  # (N, DIGIT, DIGIT)
    return ClipData(vocabularies(), small[:cut], labels[:cut], small[cut:], labels[cut:], f"{source} in moving clips")


def batches(config: RunConfig, data: ClipData) -> tuple[ClipBatches, ClipBatches]:
    seed = config.train.seed
    return (
        ClipBatches(
            data.train_glyphs,
            data.train_labels,
            config.train.batch_size,
            True,
            seed,
            config.data.train_count,
            f"{data.source} (training)",
        ),
        ClipBatches(
            data.val_glyphs, data.val_labels, 100, False, seed + 1, config.data.val_count, f"{data.source} (validation)"
        ),
    )


def build_model(config: RunConfig, vocabularies: dict) -> FrameLabeller:
    model = FrameLabeller(config.model, CANVAS, len(vocabularies["directions"]), len(vocabularies["digits"]))
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def loss(model, batch, state) -> tuple[torch.Tensor, None, int]:
    """The two labels' cross-entropies, summed, per frame."""
    directions, digits = model(batch.frames)  # (B, T, K_d), (B, T, K_c)
    total = F.cross_entropy(directions.flatten(0, 1), batch.directions.flatten()) + F.cross_entropy(
        digits.flatten(0, 1), batch.digits.flatten()
    )
    return total, None, batch.directions.numel()


@torch.no_grad()
def evaluate(model, batches: ClipBatches, device="cpu", max_tokens: int = 0) -> dict:
    """Loss per frame; the share of frames with both labels right (accuracy), each label's, and the digit's on
    the frames where it is hidden."""
    total, frames, both, direction, digit, hidden, hidden_right = 0.0, 0, 0, 0, 0, 0, 0
    with evaluating(model):
        for k in range(len(batches)):
            batch = map_state(lambda field: field.to(device), batches[k])
            direction_logits, digit_logits = model(batch.frames)  # (B, T, K_d), (B, T, K_c)
            total += float(
                F.cross_entropy(direction_logits.flatten(0, 1), batch.directions.flatten(), reduction="sum")
                + F.cross_entropy(digit_logits.flatten(0, 1), batch.digits.flatten(), reduction="sum")
            )
            direction_right = direction_logits.argmax(-1) == batch.directions  # (B, T)
            digit_right = digit_logits.argmax(-1) == batch.digits  # (B, T)
            frames += batch.directions.numel()
            both += int((direction_right & digit_right).sum())
            direction += int(direction_right.sum())
            digit += int(digit_right.sum())
            hidden += int(batch.hidden.sum())
            hidden_right += int((digit_right & batch.hidden).sum())
    return {
        "loss": total / frames,
        "accuracy": both / frames,
        "direction_accuracy": direction / frames,
        "digit_accuracy": digit / frames,
        "hidden_digit_accuracy": hidden_right / max(hidden, 1),
        "examples": frames,
        "hidden_frames": hidden,
    }


def describe(metrics: dict, per: str = per) -> str:
    return (
        f"loss {metrics['loss']:.4f} nats/{per}, frames right {metrics['accuracy']:.2%} (direction {metrics['direction_accuracy']:.2%}, "
        f"digit {metrics['digit_accuracy']:.2%}, digit while hidden {metrics['hidden_digit_accuracy']:.2%}; {metrics['examples']:,} frames)"
    )


def summary(loss_value: float, per: str = per) -> str:
    return f"{loss_value:.4f} nats/{per}"


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """Clips of MNIST's t10k digits."""
    config = config or RunConfig()
    from rnnkit.data.idx import read_mnist

    images, labels = read_mnist(path, "t10k")
    if tuple(images.shape[1:]) != (28, 28):
        raise RnnkitError(f"{path}: MNIST digits are 28 × 28, these are {tuple(images.shape[1:])}")
    return {
        f"{path} (t10k digits in moving clips)": ClipBatches(
            scaled(images), labels, 100, False, config.train.seed + 2, config.data.val_count, path
        )
    }


def label_clips(model, vocabularies: dict, clips: torch.Tensor) -> list[list[tuple[str, str]]]:
    """Each frame's (direction, digit) for clips (N, T, Y, X) uint8, from Python."""
    device = next(model.parameters()).device
    with torch.no_grad(), evaluating(model):
        directions, digits = model(clips.to(device))  # (N, T, K_d), (N, T, K_c)
    words, names = vocabularies["directions"].symbols, vocabularies["digits"].symbols
    return [
        [(words[d], names[c]) for d, c in zip(row_d, row_c)]
        for row_d, row_c in zip(directions.argmax(-1).tolist(), digits.argmax(-1).tolist())
    ]


def labelled_pictures(clip: torch.Tensor, labels: list[tuple[str, str]], scale: int = 4):
    """Each frame (Y, X) enlarged `scale` times with its labels written under it: a list of Pillow images."""
    from PIL import Image, ImageDraw

    pictures = []
    for frame, (direction, digit) in zip(clip, labels):
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


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None) -> Iterator[str]:
    """ "file<TAB>direction/digit ..." per clip (a .npy of N clips gives file[n]), one label pair per frame."""
    if not settings.input:
        raise RnnkitError(
            "--input: give a clip (.npy of (T, Y, X) or (N, T, Y, X) pixels, or an animated GIF) or a directory of them"
        )
    files = image_files(settings.input, (".npy", ".gif"))
    with staged_output(settings.out, "clip-*.*", "--out") as out:  # no pictures left behind by a failure
        done = 0
        for file in files:
            clips = read_clips(file, CANVAS)  # (N, T, Y, X)
            for start in range(0, len(clips), settings.batch_size):
                chunk = clips[start : start + settings.batch_size]
                for k, labels in enumerate(label_clips(model, vocabularies, chunk)):
                    done += 1
                    if out is not None:
                        pictures = labelled_pictures(chunk[k], labels)
                        for suffix, data in (("png", strip_png(pictures)), ("gif", animated_gif(pictures))):
                            atomic_write(out / f"clip-{done}.{suffix}", lambda handle, data=data: handle.write(data))
                    name = str(file) if len(clips) == 1 else f"{file}[{start + k}]"
                    yield f"{name}\t{' '.join(f'{d}/{c}' for d, c in labels)}\n"


def dry_run(settings: PredictConfig) -> PredictConfig:
    """--dry-run with no input labels two generated clips, written to a temporary .npy."""
    if settings.input:
        return settings
    import atexit
    import shutil
    import tempfile

    import numpy as np

    images, labels = glyphs(RunConfig(), tiny=True)[:2]
    clips = make_clips(scaled(images[:50]), labels[:50], 2, 5)
    folder = tempfile.mkdtemp(prefix="rnnkit-frames-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the dry run leaves nothing behind
    path = Path(folder) / "clips.npy"
    np.save(path, clips.frames.numpy())
    return replace(settings, input=str(path))


def preview(model, data: ClipData, config: RunConfig, length: int, seed: int) -> str:
    """One validation clip: its labels and the model's, frame by frame."""
    clip = make_clips(data.val_glyphs, data.val_labels, 1, random.Random(seed).randrange(2**31))
    names, words = vocabularies()["digits"].symbols, DIRECTIONS
    truth = " ".join(f"{words[d]}/{names[c]}" for d, c in zip(clip.directions[0].tolist(), clip.digits[0].tolist()))
    guess = " ".join(f"{d}/{c}" for d, c in label_clips(model, data.vocabularies, clip.frames)[0])
    return f"true      {truth}\npredicted {guess}\n({FRAMES} frames; hidden at {[t for t, h in enumerate(clip.hidden[0].tolist()) if h]})"

"""Glimpse classification (the recurrent attention model): an image classified from a few small glimpses, each
placed by what the earlier ones saw.

    rnnkit glimpse train --data ../data/mnist --preset mnist-cpu --out runs/glimpse           # 28×28, 6 glimpses of 8×8
    rnnkit glimpse train --data ../data/mnist --preset cluttered-cpu --out runs/cluttered     # 60×60 with clutter
    rnnkit glimpse eval runs/glimpse/best.pt --data ../data/mnist                            # the t10k digits: test error
    rnnkit glimpse predict runs/glimpse/best.pt --input digit.png --out runs/glimpse/shown    # the path as a PNG and a GIF

--data is MNIST's idx directory; data.canvas says how the digits are shown (rnnkit/data/translated.py). The last
data.val_size training digits are validation. Without --data, bar images generated in the package.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
from rnnkit.data.batching import batch_seed
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import read_mnist
from rnnkit.data.images import image_files, read_images
from rnnkit.data.padded import LabelledBatch, LengthBuckets
from rnnkit.data.text import Progress
from rnnkit.data.translated import CANVASES, place
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.files import atomic_write, staged_output
from rnnkit.models.core import CoreConfig
from rnnkit.models.glimpse import RecurrentAttention, reinforce_loss
from rnnkit.plots import animated_gif, picture_png
from rnnkit.tasks import classify
from rnnkit.tasks.seqmnist import DIGITS, image_batches

name = "glimpse"
description = (
    "glimpse classification (recurrent attention, REINFORCE): MNIST, translated, cluttered: train, eval, predict"
)
unit, per = "images", "image"
predict_verb = "predict"
headline = "accuracy"


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    cell: str = option(
        "rnn",
        "the core's cell (the paper's: rnn with ReLU, or lstm)",
        choices=CoreConfig.__dataclass_fields__["cell"].metadata["choices"],
    )
    nonlinearity: str = option(
        "relu", "g of the vanilla RNN core", choices=CoreConfig.__dataclass_fields__["nonlinearity"].metadata["choices"]
    )
    hidden_size: int = option(256, "hidden units of the core", at_least=1)
    glimpses: int = option(6, "glimpses per image", at_least=1, at_most=1000)
    patch: int = option(8, "g: each glimpse's patch is g × g pixels", at_least=1, at_most=1000)
    scales: int = option(1, "k: patches of g, 2g, 4g ... pixels, each shrunk to g × g", at_least=1, at_most=8)
    glimpse_size: int = option(128, "the sizes of h_g and h_l", at_least=1)
    location: str = option(
        "reinforce",
        "how glimpses are placed: sampled and trained by REINFORCE (the paper's), or differentiable "
        "(bilinear sampling at the mean, trained by backpropagation)",
        choices=("reinforce", "differentiable"),
    )
    location_std: float = option(0.17, "σ of the location policy (REINFORCE)", at_least=1e-4, at_most=2)


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "directory with MNIST's idx files (empty: generated bar images)")
    canvas: str = option(
        "mnist",
        "mnist (28×28 as they are), translated (on 60×60) or cluttered (60×60 with fragments)",
        choices=CANVASES,
    )
    size: int = option(60, "translated and cluttered: the canvas's side", at_least=28, at_most=1000)
    clutter: int = option(4, "cluttered: 8×8 fragments of other digits per image", at_least=0, at_most=1000)
    val_size: int = option(5000, "the last this many training digits are validation", at_least=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a glimpse run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class PredictConfig:
    input: str = option(
        "", "an image (PNG, JPEG, or .npy of (Y, X) or (N, Y, X)) of the checkpoint's size, or a directory of them"
    )
    out: str = option(
        "", "also draw each image's glimpses as DIR/glimpses-N.png and DIR/glimpses-N.gif (DIR must hold none yet)"
    )
    batch_size: int = option(256, "images classified together", at_least=1)


Config, Predict = RunConfig, PredictConfig
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU, on generated bars: for tests and --dry-run
    "tiny": {
        "model.hidden_size": 64,
        "model.glimpse_size": 32,
        "model.glimpses": 4,
        "model.patch": 8,
        "model.scales": 2,
        "data.val_size": 200,
        "train.batch_size": 32,
        "train.max_steps": 150,
        "train.eval_interval": 50,
        "train.learning_rate": 3e-3,
        "train.weight_decay": 0.0,
    },
    # the paper's 28×28 set-up (6 glimpses of 8×8, one scale) on 2 CPU cores, 30 minutes annealed by time
    "mnist-cpu": {
        "train.batch_size": 64,
        "train.max_steps": 1_000_000,
        "train.max_minutes": 30.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 2000,
        "train.learning_rate": 1e-3,
        "train.weight_decay": 0.0,
    },
    # 60×60 cluttered translated MNIST: 6 glimpses of 12×12 at 3 scales
    "cluttered-cpu": {
        "data.canvas": "cluttered",
        "model.patch": 12,
        "model.scales": 3,
        "train.batch_size": 64,
        "train.max_steps": 1_000_000,
        "train.max_minutes": 30.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 2000,
        "train.learning_rate": 1e-3,
        "train.weight_decay": 0.0,
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class GlimpseData:
    vocabularies: dict
    train_images: torch.Tensor  # (N, 28, 28) uint8: the digits as they are, placed batch by batch
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    source: str


def shown(config: RunConfig, digits: torch.Tensor, seed: int) -> torch.Tensor:
    data = config.data
    return place(digits, data.canvas, data.size, data.clutter, seed)


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> GlimpseData:
    data = config.data
    if tiny or not data.path:
        images, labels, source = *tiny_images(1200 + data.val_size, seed=0), "generated bar images"
    else:
        images, labels = read_mnist(data.path, "train")
        source = data.path
    if data.val_size >= len(images):
        raise RnnkitError(
            f"{source}: --data.val_size={data.val_size} leaves none of its {len(images)} images to train on"
        )
    cut, seed = len(images) - data.val_size, config.train.seed
    # training keeps the digits as they are: each batch places them anew (PlacedBatches); validation is shown once
    return GlimpseData(
        {"labels": TokenVocab(DIGITS)},
        images[:cut],
        labels[:cut],
        shown(config, images[cut:], seed + 1),
        labels[cut:],
        f"{source} ({data.canvas})",
    )


class PlacedBatches(LengthBuckets):
    """Training batches of digits placed anew every time: batch k's places (and clutter, drawn from every training
    digit) come from (seed, k), so a digit is seen at a new place in each pass, never the same 55,000 images
    again (those a model learns by heart), and a resumed run reads the same batches."""

    def __init__(self, digits: torch.Tensor, labels: torch.Tensor, config: RunConfig, what: str):
        super().__init__(digits, labels, config.train.batch_size, True, config.train.seed, what=what, unit="images")
        self.data, self.classes = config.data, DIGITS

    def __getitem__(self, k: int) -> LabelledBatch:
        batch = super().__getitem__(k)
        placed = place(
            batch.inputs,
            self.data.canvas,
            self.data.size,
            self.data.clutter,
            batch_seed(self.seed, k),
            pool=self.sequences,
        )  # (B, Y, X)
        return batch._replace(inputs=placed)


def batches(config: RunConfig, data: GlimpseData):
    train = PlacedBatches(data.train_images, data.train_labels, config, f"{data.source} (training part)")
    return train, image_batches(data.val_images, data.val_labels, 500, False, what=f"{data.source} (validation part)")


def build_model(config: RunConfig, vocabularies: dict) -> RecurrentAttention:
    side = 28 if config.data.canvas == "mnist" else config.data.size
    model = RecurrentAttention(config.model, len(vocabularies["labels"]), side, side)
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def loss(model, batch, state) -> tuple[torch.Tensor, None, int, torch.Tensor]:
    """Cross-entropy of the class, plus REINFORCE for the locations (reward 1 when right) and the baseline's squared
    error; the cross-entropy alone is what the log reports."""
    out = model(batch.inputs)
    classification = F.cross_entropy(out.logits, batch.labels)
    rewards = (out.logits.argmax(-1) == batch.labels).float()  # (B,)
    total = classification + F.mse_loss(out.baselines, rewards[:, None].expand_as(out.baselines))
    if model.config.location == "reinforce":
        total = total + reinforce_loss(out.log_probs, rewards, out.baselines)
    return total, None, len(batch.labels), classification


class Logits(torch.nn.Module):
    """The model's class logits alone, for classify.evaluate."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, lengths=None):
        return self.model(images).logits


def evaluate(model, batches, device="cpu", max_tokens: int = 0) -> dict:
    """The text classifier's metrics (loss, accuracy, macro F1, the confusion matrix) of the glimpses' class, and the error."""
    metrics = classify.evaluate(Logits(model), batches, device)
    return {**metrics, "error": 1 - metrics["accuracy"]}


def describe(metrics: dict) -> str:
    return f"{classify.describe(metrics, per)}, error {metrics['error']:.2%}"


details, figures = classify.details, classify.figures


def summary(loss_value: float) -> str:
    return classify.summary(loss_value, per)


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """The t10k digits, shown as the checkpoint's training images were."""
    config = config or RunConfig()
    images, labels = read_mnist(path, "t10k")
    name = f"{Path(path) / 't10k'} ({config.data.canvas})"
    return {name: image_batches(shown(config, images, config.train.seed + 2), labels, 500, False, what=path)}


def path_pictures(image: torch.Tensor, locations: torch.Tensor, patch: int, scales: int, label: str, scale: int = 4):
    """The image enlarged with each glimpse's squares drawn on it, one picture per step (the path so far): Pillow images."""
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
        draw.text(
            (4, 4), f"glimpse {t + 1}: {label}" if t + 1 == len(locations) else f"glimpse {t + 1}", fill=(255, 255, 0)
        )
        pictures.append(picture)
    return pictures


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None):
    """ "file<TAB>digit<TAB>probability" per image; --out draws where the glimpses looked."""
    if not settings.input:
        raise RnnkitError("--input: give an image (PNG, JPEG, .npy) of the checkpoint's size, or a directory of them")
    if model.height != model.width:
        raise RnnkitError(f"the model reads {model.height} × {model.width} images; square images only")
    with staged_output(settings.out, "glimpses-*.*", "--out") as out:  # no pictures left behind by a failure
        device, done = next(model.parameters()).device, 0
        for file in image_files(settings.input):
            images = read_images(file, model.height)  # (N, Y, X)
            for start in range(0, len(images), settings.batch_size):
                chunk = images[start : start + settings.batch_size]
                with torch.no_grad(), evaluating(model):
                    seen = model(chunk.to(device))
                chances = seen.logits.softmax(-1).cpu()  # (B, 10)
                for k in range(len(chunk)):
                    digit, p = int(chances[k].argmax()), float(chances[k].max())
                    done += 1
                    if out is not None:
                        pictures = path_pictures(
                            chunk[k],
                            seen.locations[k].cpu(),
                            model.config.patch,
                            model.config.scales,
                            f"{digit} ({p:.0%})",
                        )
                        for suffix, data in (("png", picture_png(pictures[-1])), ("gif", animated_gif(pictures, 500))):
                            atomic_write(
                                out / f"glimpses-{done}.{suffix}", lambda handle, data=data: handle.write(data)
                            )
                    name = str(file) if len(images) == 1 else f"{file}[{start + k}]"
                    yield f"{name}\t{vocabularies['labels'].symbols[digit]}\t{p:.4f}\n"


def dry_run(settings: PredictConfig) -> PredictConfig:
    """--dry-run with no input classifies a few generated images, written to a temporary .npy."""
    if settings.input:
        return settings
    import atexit
    import shutil
    import tempfile

    import numpy as np

    folder = tempfile.mkdtemp(prefix="rnnkit-glimpse-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the dry run leaves nothing behind
    path = Path(folder) / "images.npy"
    np.save(path, tiny_images(3, seed=1)[0].numpy())
    return replace(settings, input=str(path))


def preview(model, data: GlimpseData, config: RunConfig, length: int, seed: int) -> str:
    """The first validation images' true and predicted digits."""
    with torch.no_grad(), evaluating(model):
        guesses = model(data.val_images[:8].to(next(model.parameters()).device)).logits.argmax(-1).cpu()  # (8,)
    return f"true {' '.join(map(str, data.val_labels[:8].tolist()))}\npredicted {' '.join(map(str, guesses.tolist()))}"

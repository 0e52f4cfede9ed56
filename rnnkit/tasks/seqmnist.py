"""Sequential MNIST: an image read one row or one pixel per step, then classified from h_l (the notes'
sequential processing of non-sequential data; Le et al. 2015, Arjovsky et al. 2016).

    rnnkit seqmnist train --data ../data/mnist --preset rows-cpu --out runs/rows      # T = 28 rows of 28 pixels
    rnnkit seqmnist train --data ../data/mnist --preset pixels-gpu                      # T = 784 pixels, one GPU
    rnnkit seqmnist eval runs/rows/best.pt --data ../data/mnist                        # the t10k test images
    rnnkit seqmnist predict runs/rows/best.pt --input t10k-images-idx3-ubyte.gz        # digit<TAB>probability

--data names a directory with MNIST's four idx files (.gz or not). The last data.val_size training images
are validation. data.reading=permuted reads the pixels in a fixed order drawn from data.permutation_seed,
kept in the model (and so in every checkpoint).
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import read_idx, read_mnist, read_pixels
from rnnkit.data.padded import LengthBuckets
from rnnkit.data.text import Progress
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.models.classifier import ImageSequenceClassifier
from rnnkit.models.core import CoreConfig
from rnnkit.readout import READOUTS
from rnnkit.tasks import classify
from rnnkit.tasks.classify import details, evaluate, figures, loss, probabilities  # noqa: F401  (shared with the text classifier)

name = "seqmnist"
description = "sequential MNIST (row by row, pixel by pixel, permuted): train, eval, predict"
unit, per = "images", "image"
predict_verb = "predict"
headline = "accuracy"  # shown with the best validation loss when training ends


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    hidden_size: int = option(128, "hidden units per layer", at_least=1)
    num_layers: int = option(1, "stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(0.0, "dropout between layers", at_least=0, below=1)
    bidirectional: bool = option(False, "read each sequence both ways")
    readout: str = option("last", "what the head reads: last (h_l), mean or max over the steps", choices=READOUTS)
    input_dropout: float = option(0.0, "dropout on the pixels", at_least=0, below=1)
    output_dropout: float = option(0.0, "dropout on h_l before the head", at_least=0, below=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option(
        "", "directory with MNIST's idx files (train-images-idx3-ubyte[.gz], ...; empty: generated tiny images)"
    )
    reading: str = option(
        "row",
        "row (T = 28), pixel (T = 784) or permuted (T = 784, a fixed random order)",
        choices=("row", "pixel", "permuted"),
    )
    permutation_seed: int = option(0, "reading=permuted: the seed of the pixel order", at_least=0, below=2**63)
    val_size: int = option(5000, "the last this many training images are validation", at_least=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a seqmnist run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class PredictConfig:
    input: str = option("", "an idx images file (.gz or not) of the checkpoint's image size")
    generated: int = option(
        0,
        "instead of --input, classify this many generated bar images (a demo of the tiny preset's data)",
        at_least=0,
        at_most=100000,
    )
    batch_size: int = option(256, "images classified together", at_least=1)


Config, Predict = RunConfig, PredictConfig
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU, on generated bars: for tests and --dry-run
    "tiny": {
        "model.hidden_size": 32,
        "train.batch_size": 32,
        "train.max_steps": 120,
        "train.eval_interval": 40,
        "train.learning_rate": 1e-2,
        "train.weight_decay": 0.0,
        "data.val_size": 200,
    },
    # row by row (T = 28) on 2 CPU cores, about 15 minutes
    "rows-cpu": {
        "model.hidden_size": 128,
        "train.batch_size": 128,
        "train.max_steps": 8000,
        "train.eval_interval": 1000,
        "train.learning_rate": 2e-3,
        "train.weight_decay": 0.0,
        "train.max_minutes": 15.0,
    },
    # pixel by pixel (T = 784) and permuted, one GPU
    "pixels-gpu": {
        "data.reading": "pixel",
        "model.hidden_size": 256,
        "train.batch_size": 128,
        "train.max_steps": 40000,
        "train.eval_interval": 2000,
        "train.learning_rate": 1e-3,
        "train.weight_decay": 0.0,
        "train.max_minutes": 30.0,
        "train.device": "cuda",
    },
    "permuted-gpu": {
        "data.reading": "permuted",
        "model.hidden_size": 256,
        "train.batch_size": 128,
        "train.max_steps": 40000,
        "train.eval_interval": 2000,
        "train.learning_rate": 1e-3,
        "train.weight_decay": 0.0,
        "train.max_minutes": 30.0,
        "train.device": "cuda",
    },
}
DIGITS = [str(d) for d in range(10)]


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class ImageData:
    vocabularies: dict  # {"labels": the ten digits}
    train_images: torch.Tensor  # (N, Y, X) uint8
    train_labels: torch.Tensor  # (N,)
    val_images: torch.Tensor
    val_labels: torch.Tensor
    source: str


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> ImageData:
    data = config.data
    if tiny or not data.path:
        images, labels, source = *tiny_images(1200 + data.val_size, seed=0), "generated tiny images"
    else:
        images, labels = read_mnist(data.path, "train")
        source = data.path
    if data.val_size >= len(images):
        raise RnnkitError(
            f"{source}: --data.val_size={data.val_size} leaves none of its {len(images)} images to train on"
        )
    check_size(images, None, source)
    cut = len(images) - data.val_size
    return ImageData({"labels": TokenVocab(DIGITS)}, images[:cut], labels[:cut], images[cut:], labels[cut:], source)


def permutation(config: RunConfig, pixels: int) -> torch.Tensor | None:
    if config.data.reading != "permuted":
        return None
    return torch.randperm(pixels, generator=torch.Generator().manual_seed(config.data.permutation_seed))  # (Y·X,)


def build_model(config: RunConfig, vocabularies: dict, height: int = 28, width: int = 28) -> ImageSequenceClassifier:
    model = ImageSequenceClassifier(
        len(vocabularies["labels"]),
        config.model,
        height,
        width,
        config.data.reading,
        permutation(config, height * width),
    )
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def image_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool, seed: int = 0, what: str = "images"
) -> LengthBuckets:
    batches = LengthBuckets(images, labels, batch_size, train, seed, what=what, unit=unit)
    batches.classes = DIGITS
    return batches


def batches(config: RunConfig, data: ImageData) -> tuple[LengthBuckets, LengthBuckets]:
    train = image_batches(
        data.train_images,
        data.train_labels,
        config.train.batch_size,
        True,
        config.train.seed,
        f"{data.source} (training part)",
    )
    return train, image_batches(data.val_images, data.val_labels, 500, False, what=f"{data.source} (validation part)")


def describe(metrics: dict) -> str:
    return classify.describe(metrics, per)


def summary(loss_value: float) -> str:
    return classify.summary(loss_value, per)


def check_size(images: torch.Tensor, model: ImageSequenceClassifier | None, where: str) -> None:
    """Images must be of the model's size (None: MNIST's 28×28, what build_model makes)."""
    height, width = (model.height, model.width) if model is not None else (28, 28)
    if images.dim() != 3:
        raise RnnkitError(
            f"{where}: values of sizes {'×'.join(map(str, images.shape))}, not images (N × Y × X: an idx3 file, not idx{images.dim()})"
        )
    if tuple(images.shape[1:]) != (height, width):
        raise RnnkitError(
            f"{where}: images of size {'×'.join(map(str, images.shape[1:]))}, but the model reads {height}×{width} images"
        )


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """The t10k test images of an MNIST directory."""
    images, labels = read_mnist(path, "t10k")
    check_size(images, None, str(Path(path) / "t10k"))
    return {f"{Path(path) / 't10k'}": image_batches(images, labels, 500, False, what=path)}


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None):
    """One "digit<TAB>probability" line per image of the idx file."""
    if settings.generated:
        images = tiny_images(settings.generated, seed=1, size=model.height)[0]  # (N, Y, X)
    elif not settings.input:
        raise RnnkitError("--input: name an idx images file to classify (or --generated N)")
    else:
        images = read_pixels(read_idx(settings.input), settings.input)
    check_size(images, model, settings.input or "generated images")
    device = model.order.device
    with torch.no_grad(), evaluating(model):
        for start in range(0, len(images), settings.batch_size):
            chances = probabilities(model(images[start : start + settings.batch_size].to(device))).cpu()  # (B, 10)
            best = chances.max(-1)
            yield "".join(
                f"{vocabularies['labels'].symbols[k]}\t{p:.4f}\n"
                for p, k in zip(best.values.tolist(), best.indices.tolist())
            )


def dry_run(settings: PredictConfig) -> PredictConfig:
    """--dry-run with no --input classifies a few generated images."""
    return settings if settings.input or settings.generated else replace(settings, generated=8)


def preview(model, data: ImageData, config: RunConfig, length: int, seed: int) -> str:
    """The first validation images' true and predicted digits."""
    with torch.no_grad(), evaluating(model):
        guesses = probabilities(model(data.val_images[:8].to(model.order.device))).argmax(-1).cpu()  # (8,)
    return f"true {' '.join(map(str, data.val_labels[:8].tolist()))}\npredicted {' '.join(map(str, guesses.tolist()))}"

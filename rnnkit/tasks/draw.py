"""DRAW: binarised MNIST generated one piece at a time, each step adding to a canvas (a sequential variational
auto-encoder with Gaussian read and write attention).

    rnnkit draw train --data ../data/mnist --preset mnist-cpu --out runs/draw                 # with attention
    rnnkit draw train --data ../data/mnist --preset mnist-cpu --model.attention=false        # without
    rnnkit draw eval runs/draw/best.pt --data ../data/mnist                                 # the bound in nats on t10k
    rnnkit draw sample runs/draw/best.pt --out runs/draw/samples                            # a grid PNG and a GIF of the canvas

--data is MNIST's idx directory, binarised at 128 (pixels ≥ 128 are 1); the last data.val_size training digits
are validation. Without it, bar images generated in the package (binarised the same way).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import read_mnist
from rnnkit.data.text import Progress
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.files import atomic_write, output_directory, staged_output
from rnnkit.models.core import CoreConfig
from rnnkit.models.draw import DRAW, nats_bound
from rnnkit.plots import animated_gif, picture_png
from rnnkit.tasks.seqmnist import image_batches

name = "draw"
description = "DRAW (generating images a piece at a time): binarised MNIST, the bound in nats: train, eval, sample"
unit, per = "images", "image"
predict_verb = "sample"


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    hidden_size: int = option(256, "hidden units of the encoder and decoder LSTMs", at_least=1)
    z_size: int = option(100, "size of each step's latent z_t", at_least=1)
    steps: int = option(64, "T: glimpses read and patches written per image", at_least=1, at_most=10000)
    attention: bool = option(True, "read and write through Gaussian filterbanks (false: the whole image every step)")
    read_size: int = option(2, "N of the read window's N × N filters", at_least=1, at_most=1000)
    write_size: int = option(5, "N of the write window's N × N filters", at_least=1, at_most=1000)
    mean_in_eval: bool = option(
        False, "in evaluation use z = μ instead of sampling (the bound needs samples: keep false to report it)"
    )


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "directory with MNIST's idx files (empty: generated bar images)")
    val_size: int = option(5000, "the last this many training digits are validation", at_least=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a DRAW run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class SampleConfig:
    count: int = option(64, "digits drawn from the prior", at_least=1, at_most=100000)
    seed: int = option(0, "seed of the prior's samples", at_least=0)
    out: str = option(
        "", "write DIR/samples.png (a grid) and DIR/drawing.gif (the canvases step by step, write windows in red)"
    )


Config, Predict = RunConfig, SampleConfig
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU, on generated bars: for tests and --dry-run
    "tiny": {
        "model.hidden_size": 32,
        "model.z_size": 8,
        "model.steps": 4,
        "data.val_size": 200,
        "train.batch_size": 32,
        "train.max_steps": 100,
        "train.eval_interval": 50,
        "train.learning_rate": 3e-3,
        "train.weight_decay": 0.0,
    },
    # the paper's MNIST model (256-unit LSTMs, z of 100, 64 steps, read 2 × 2, write 5 × 5) on 2 CPU cores, 30 minutes
    "mnist-cpu": {
        "model.cell": "lstm",
        "train.batch_size": 64,
        "train.max_steps": 1_000_000,
        "train.max_minutes": 30.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 2000,
        "train.learning_rate": 1e-3,
        "train.weight_decay": 0.0,
        "train.grad_clip": 5.0,
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class BinaryImages:
    vocabularies: dict
    train_images: torch.Tensor  # (N, Y, X) uint8 in {0, 1}
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    source: str


def binarised(images: torch.Tensor) -> torch.Tensor:
    return (images >= 128).to(torch.uint8)


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> BinaryImages:
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
    cut = len(images) - data.val_size
    images = binarised(images)
    return BinaryImages(
        {"labels": TokenVocab([str(d) for d in range(10)])},
        images[:cut],
        labels[:cut],
        images[cut:],
        labels[cut:],
        f"{source} (binarised)",
    )


def batches(config: RunConfig, data: BinaryImages):
    train = image_batches(
        data.train_images,
        data.train_labels,
        config.train.batch_size,
        True,
        config.train.seed,
        f"{data.source} (training part)",
    )
    return train, image_batches(data.val_images, data.val_labels, 500, False, what=f"{data.source} (validation part)")


def build_model(config: RunConfig, vocabularies: dict) -> DRAW:
    model = DRAW(config.model, 28, 28)
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def loss(model, batch, state) -> tuple[torch.Tensor, None, int]:
    """The variational bound L^x + L^z, per image (nats)."""
    return nats_bound(model(batch.inputs)).mean(), None, len(batch.inputs)


@torch.no_grad()
def evaluate(model, batches, device="cpu", max_tokens: int = 0) -> dict:
    """The bound on −log p(x) per image (one sample of z per image, seeded), and its two terms."""
    total, reconstruction, kl, count = 0.0, 0.0, 0.0, 0
    with (
        evaluating(model),
        torch.random.fork_rng(devices=[]),
    ):  # the same samples of z at every evaluation; training's RNG untouched
        torch.manual_seed(0)
        for k in range(len(batches)):
            drawn = model(batches[k].inputs.to(device))
            total += float(nats_bound(drawn).sum())
            reconstruction += float(drawn.reconstruction.sum())
            kl += float(drawn.kl.sum())
            count += len(drawn.reconstruction)
    return {
        "loss": total / count,
        "bound": total / count,
        "reconstruction": reconstruction / count,
        "kl": kl / count,
        "examples": count,
    }


def describe(metrics: dict) -> str:
    return (
        f"−log p(x) ≤ {metrics['bound']:.2f} nats/image (reconstruction {metrics['reconstruction']:.2f}, KL {metrics['kl']:.2f}; "
        f"{metrics['examples']:,} images)"
    )


def summary(loss_value: float) -> str:
    return f"{loss_value:.2f} nats/image"


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """MNIST's t10k digits, binarised."""
    images, labels = read_mnist(path, "t10k")
    return {f"{path} (t10k, binarised)": image_batches(binarised(images), labels, 500, False, what=path)}


def grid_picture(images: torch.Tensor, columns: int = 8, scale: int = 2):
    """Images (N, Y, X) in [0, 1] tiled in a grid, one pixel apart: a Pillow image."""
    from PIL import Image

    N, Y, X = images.shape
    rows = -(-N // columns)
    grid = torch.zeros(rows * (Y + 1), columns * (X + 1))
    for n in range(N):
        r, c = divmod(n, columns)
        grid[r * (Y + 1) : r * (Y + 1) + Y, c * (X + 1) : c * (X + 1) + X] = images[n]
    picture = Image.fromarray((grid * 255).round().to(torch.uint8).numpy())
    return picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)


def drawing_gif(drawn, write_size: int, columns: int = 8, scale: int = 3) -> bytes:
    """The canvases σ(c_t) step by step, each write window drawn as a red rectangle: one GIF frame per step."""
    from PIL import ImageDraw

    canvases = torch.sigmoid(drawn.canvases).cpu()  # (N, T, Y, X)
    N, T, Y, X = canvases.shape
    pictures = []
    for t in range(T):
        frame = grid_picture(canvases[:, t], columns, scale).convert("RGB")
        draw = ImageDraw.Draw(frame)
        if drawn.windows:
            window = drawn.windows[t]
            for n in range(N):
                r, c = divmod(n, columns)
                half = float(window.delta[n]) * write_size / 2  # the write grid spans N·δ pixels
                cx, cy = c * (X + 1) + float(window.g_x[n]) - 1, r * (Y + 1) + float(window.g_y[n]) - 1
                draw.rectangle(
                    [(cx - half) * scale, (cy - half) * scale, (cx + half) * scale, (cy + half) * scale],
                    outline=(255, 40, 40),
                )
        pictures.append(frame)
    return animated_gif(pictures, 120)


def predict(model, vocabularies: dict, settings: SampleConfig, config: RunConfig | None = None):
    """Draws settings.count digits from the prior; prints where the pictures went (with --out) and the step count."""
    with staged_output(settings.out, "samples.png", "--out") as stage:  # both pictures or neither
        if stage is not None:
            output_directory(settings.out, "drawing.gif", "--out")  # neither picture replaces an earlier one
        with evaluating(model):
            drawn = model.sample(settings.count, torch.Generator().manual_seed(settings.seed))
        if stage is not None:
            grid = picture_png(
                grid_picture(torch.sigmoid(drawn.canvases[:, -1]).cpu())
            )  # the finished canvases (N, Y, X)
            atomic_write(stage / "samples.png", lambda handle: handle.write(grid))
            gif = drawing_gif(drawn, model.config.write_size)
            atomic_write(stage / "drawing.gif", lambda handle: handle.write(gif))
    if settings.out:
        out = Path(settings.out)
        yield f"wrote {out / 'samples.png'} and {out / 'drawing.gif'} ({settings.count} digits, {drawn.canvases.shape[1]} steps each)\n"
    else:
        yield f"drew {settings.count} digits in {drawn.canvases.shape[1]} steps each; give --out DIR for the pictures\n"


def dry_run(settings: SampleConfig) -> SampleConfig:
    return settings


def preview(model, data: BinaryImages, config: RunConfig, length: int, seed: int) -> str:
    """The bound on a few validation images."""
    with torch.no_grad(), evaluating(model):
        bound = nats_bound(model(data.val_images[:64].to(model.write.weight.device))).mean()
    return f"−log p(x) ≤ {float(bound):.2f} nats on 64 validation images"

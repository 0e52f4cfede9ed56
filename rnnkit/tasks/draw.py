"""DRAW: binarised MNIST generated one piece at a time, each step adding to a canvas (a sequential variational
auto-encoder with Gaussian read and write attention).

    rnnkit draw train --data ../data/mnist --preset mnist-cpu --out runs/draw            # with attention
    rnnkit draw train --data ../data/mnist --preset mnist-cpu --model.attention=false   # without
    rnnkit draw eval runs/draw/best.pt --data ../data/mnist                            # the bound in nats on t10k
    rnnkit draw sample runs/draw/best.pt --out runs/draw/samples                       # a grid PNG, a GIF of the canvas

--data is MNIST's idx directory, binarised at 128 (pixels ≥ 128 are 1); the last data.val_size training digits
are validation. Without it, bar images generated in the package (binarised the same way).
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.config import option
from rnnkit.data.idx import read_mnist
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import ArgumentError, ArgumentTypeError
from rnnkit.evaluate import evaluating
from rnnkit.models.core import CoreConfig
from rnnkit.models.draw import DRAW, nats_bound
from rnnkit.tasks.base import Task, evaluation_batches
from rnnkit.tasks.seqmnist import DIGITS, ImageData, image_batches, training_digits
from rnnkit.trained import Trained, one_or_many


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
class SampleConfig:
    count: int = option(64, "digits drawn from the prior", at_least=1, at_most=100000)


SEEDS = 2**63  # a seed is a whole number in [0, 2**63), what torch.Generator.manual_seed takes


@dataclass(frozen=True)
class Drawing:
    """Digits drawn from the prior, step by step, from one seed.

    canvases: (N, T, Y, X) floats in [0, 1]: σ(c_t), each digit's canvas after each of the T steps
    windows:  (N, T, 3) where each step wrote, in pixels (0-based): the write grid's centre y, centre x and width
              (write_size · δ); None for a model without attention, which writes the whole image every step
    """

    canvases: Tensor
    windows: Tensor | None

    @property
    def digits(self) -> Tensor:
        """The finished digits (N, Y, X): each canvas after the last step."""
        return self.canvases[:, -1]


def binarised(images: Tensor) -> Tensor:
    return (images >= 128).to(torch.uint8)


class TrainedDrawer(Trained):
    """A DRAW model from Python: draw digits from the prior."""

    def draw(self, count: int = 64, seed: int | list[int] = 0, **settings) -> Drawing | list[Drawing]:
        """`count` digits drawn from the prior with `seed` (one seed, or a list: a Drawing for each).

        >>> drawing = rnnkit.load("runs/draw").draw(count=16, seed=3)
        >>> drawing.canvases.shape, drawing.digits.shape
        (torch.Size([16, 64, 28, 28]), torch.Size([16, 28, 28]))
        """
        seeds, single = one_or_many(seed, "seed", int, "a seed (a whole number)")
        for k, value in enumerate(seeds):
            where = "seed" if single else f"seed[{k}]"
            if isinstance(value, bool):
                raise ArgumentTypeError(where, f"expected a whole number, got bool {value}")
            if not 0 <= value < SEEDS:
                raise ArgumentError(where, f"must be in [0, 2**63), got {value}")
        chosen = self.settings({"count": count, **settings})
        drawings = list(self.task.predict(self.model, self.vocabularies, seeds, chosen))
        return drawings[0] if single else drawings


class Drawer(Task):
    """Learns to draw binarised digits a piece at a time; samples new ones from the prior."""

    name = "draw"
    description = "DRAW (generating images a piece at a time): binarised MNIST, the bound in nats: train, eval, sample"
    verb = "sample"
    unit, per = "images", "image"
    Model, Data, Predict = ModelConfig, DataConfig, SampleConfig
    vocabulary_kinds = {"labels": TokenVocab}
    trained = TrainedDrawer

    def load_data(self, config, tiny: bool = False) -> ImageData:
        images, labels, source = training_digits(config.data, tiny, "generated bar images")
        images, cut = binarised(images), len(images) - config.data.val_size  # (N, Y, X) in {0, 1}
        vocabularies = {"labels": TokenVocab(DIGITS)}
        return ImageData(vocabularies, images[:cut], labels[:cut], images[cut:], labels[cut:], f"{source} (binarised)")

    def batches(self, config, data: ImageData):
        size, seed = config.train.batch_size, config.train.seed
        train = image_batches(data.train_images, data.train_labels, size, True, seed, f"{data.source} (training part)")
        val = image_batches(data.val_images, data.val_labels, 500, False, what=f"{data.source} (validation part)")
        return train, val

    def build_model(self, config, vocabularies: dict) -> DRAW:
        model = DRAW(config.model, 28, 28)
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def loss(self, model: DRAW, batch) -> tuple[Tensor, int]:
        """The variational bound L^x + L^z, per image (nats)."""
        return nats_bound(model(batch.inputs)).mean(), len(batch.inputs)

    def evaluate(self, model: DRAW, batches, device="cpu") -> dict:
        """The bound on −log p(x) per image (one sample of z per image, seeded), and its two terms."""
        total, reconstruction, kl, count = 0.0, 0.0, 0.0, 0
        with torch.random.fork_rng(devices=[]):  # the same samples of z at every evaluation; training's RNG untouched
            torch.manual_seed(0)
            for batch in evaluation_batches(model, batches, device):
                drawn = model(batch.inputs)
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

    def describe(self, metrics: dict) -> str:
        return (
            f"−log p(x) ≤ {metrics['bound']:.2f} nats/image (reconstruction {metrics['reconstruction']:.2f}, "
            f"KL {metrics['kl']:.2f}; {metrics['examples']:,} images)"
        )

    def summary(self, loss_value: float) -> str:
        return f"{loss_value:.2f} nats/image"

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """MNIST's t10k digits, binarised."""
        images, labels = read_mnist(path, "t10k")
        return {f"{path} (t10k, binarised)": image_batches(binarised(images), labels, 500, False, what=path)}

    def predict(self, model: DRAW, vocabularies: dict, inputs: list[int], settings: SampleConfig) -> Iterator[Drawing]:
        """For each seed in `inputs`, settings.count digits drawn from the prior, every step's canvas kept."""
        for seed in inputs:
            with evaluating(model):
                drawn = model.sample(settings.count, torch.Generator().manual_seed(seed))
            # each step's window (N, 3), in float64 so that g − 1 and δ·write_size are exact; the paper's g is 1-based
            write = model.config.write_size
            windows = [
                torch.stack([w.g_y.double() - 1, w.g_x.double() - 1, w.delta.double() * write], -1)
                for w in drawn.windows
            ]
            canvases = torch.sigmoid(drawn.canvases).cpu()  # (N, T, Y, X)
            yield Drawing(canvases, torch.stack(windows, 1).cpu() if windows else None)  # windows (N, T, 3)

    def preview(self, model: DRAW, data: ImageData, config, length: int, seed: int) -> str:
        """The bound on a few validation images."""
        with torch.no_grad(), evaluating(model):
            bound = nats_bound(model(data.val_images[:64].to(model.write.weight.device))).mean()
        return f"−log p(x) ≤ {float(bound):.2f} nats on 64 validation images"


task = Drawer()

"""Glimpse classification (the recurrent attention model): an image classified from a few small glimpses, each
placed by what the earlier ones saw.

    rnnkit glimpse train --data ../data/mnist --preset mnist-cpu --out runs/glimpse        # 28×28, 6 glimpses of 8×8
    rnnkit glimpse train --data ../data/mnist --preset cluttered-cpu --out runs/cluttered  # 60×60 with clutter
    rnnkit glimpse eval runs/glimpse/best.pt --data ../data/mnist                         # the t10k digits: test error
    rnnkit glimpse predict runs/glimpse/best.pt --input digit.png --out runs/shown         # the path: a PNG and a GIF

--data is MNIST's idx directory; data.canvas says how the digits are shown (rnnkit/data/translated.py). The last
data.val_size training digits are validation. Without --data, bar images generated in the package.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import option
from rnnkit.data.batching import batch_seed
from rnnkit.data.idx import read_mnist
from rnnkit.data.padded import LabelledBatch, LengthBuckets
from rnnkit.data.translated import CANVASES, place
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import ArgumentError
from rnnkit.evaluate import evaluating
from rnnkit.models.core import CoreConfig
from rnnkit.models.glimpse import RecurrentAttention, reinforce_loss
from rnnkit.tasks.classify import Classifier, Label
from rnnkit.tasks.seqmnist import (
    DIGITS,
    ImageData,
    TrainedImageClassifier,
    image_batches,
    size_problem,
    training_digits,
)


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
class Glimpses(Label):
    """One image's class and where the model looked for it: the most likely label, every class's probability by
    label (they sum to 1; `probability` is the label's), and locations (G, 2), each glimpse's centre (y, x) in
    [−1, 1] in the order taken ((−1, −1) the top-left corner, (0, 0) the centre)."""

    locations: Tensor


def shown(data: DataConfig, digits: Tensor, seed: int) -> Tensor:
    """The digits on the canvas data.canvas says: (N, Y, X)."""
    return place(digits, data.canvas, data.size, data.clutter, seed)


class Logits(nn.Module):
    """The model's class logits alone, as the classifier's evaluation reads a model."""

    def __init__(self, model: RecurrentAttention):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, lengths=None) -> Tensor:
        return self.model(images).logits  # (B, K)


class PlacedBatches(LengthBuckets):
    """Training batches of digits placed anew every time: batch k's places (and clutter, drawn from every training
    digit) come from (seed, k), so a digit is seen at a new place in each pass, never the same 55,000 images
    again (those a model learns by heart), and a resumed run reads the same batches."""

    def __init__(self, digits: Tensor, labels: Tensor, config, what: str):
        super().__init__(digits, labels, config.train.batch_size, True, config.train.seed, what=what, unit="images")
        self.data, self.classes = config.data, DIGITS

    def __getitem__(self, k: int) -> LabelledBatch:
        batch = super().__getitem__(k)
        data = self.data
        placed = place(
            batch.inputs, data.canvas, data.size, data.clutter, batch_seed(self.seed, k), pool=self.sequences
        )  # (B, Y, X)
        return batch._replace(inputs=placed)


class TrainedGlimpseClassifier(TrainedImageClassifier):
    """A glimpse classifier from Python: classify images, and see where it looked."""

    def classify_image(self, images, **settings) -> Glimpses | list[Glimpses]:
        """The digit of `images`, every digit's probability and the glimpses' places: one (Y, X) image of the
        model's size (a numpy array or a tensor, uint8 or floats in [0, 1]), a stack (N, Y, X), or a list of them;
        one Glimpses for one image, else a list.

        >>> seen = rnnkit.load("runs/glimpse").classify_image(digit)
        >>> seen.label, round(seen.probability, 2), seen.locations.shape
        ('7', 0.98, torch.Size([6, 2]))
        """
        return super().classify_image(images, **settings)


class GlimpseClassifier(Classifier):
    """Classifies an image from a few glimpses, each placed by what the earlier ones saw."""

    name = "glimpse"
    description = (
        "glimpse classification (recurrent attention, REINFORCE): MNIST, translated, cluttered: train, eval, predict"
    )
    unit, per = "images", "image"
    Model, Data = ModelConfig, DataConfig
    vocabulary_kinds = {"labels": TokenVocab}
    trained = TrainedGlimpseClassifier

    def load_data(self, config, tiny: bool = False) -> ImageData:
        data = config.data
        images, labels, source = training_digits(data, tiny, "generated bar images")
        cut, vocabularies = len(images) - data.val_size, {"labels": TokenVocab(DIGITS)}
        # training keeps the digits as they are: each batch places them anew (PlacedBatches); validation is shown once
        val_images = shown(data, images[cut:], config.train.seed + 1)  # (N_val, Y, X)
        return ImageData(
            vocabularies, images[:cut], labels[:cut], val_images, labels[cut:], f"{source} ({data.canvas})"
        )

    def batches(self, config, data: ImageData):
        train = PlacedBatches(data.train_images, data.train_labels, config, f"{data.source} (training part)")
        val = image_batches(data.val_images, data.val_labels, 500, False, what=f"{data.source} (validation part)")
        return train, val

    def build_model(self, config, vocabularies: dict) -> RecurrentAttention:
        side = 28 if config.data.canvas == "mnist" else config.data.size
        model = RecurrentAttention(config.model, len(vocabularies["labels"]), side, side)
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def loss(self, model: RecurrentAttention, batch) -> tuple[Tensor, int, Tensor]:
        """Cross-entropy of the class, plus REINFORCE for the locations (reward 1 when right) and the baseline's
        squared error; the cross-entropy alone is what the log reports."""
        out = model(batch.inputs)
        classification = F.cross_entropy(out.logits, batch.labels)
        rewards = (out.logits.argmax(-1) == batch.labels).float()  # (B,)
        total = classification + F.mse_loss(out.baselines, rewards[:, None].expand_as(out.baselines))
        if model.config.location == "reinforce":
            total = total + reinforce_loss(out.log_probs, rewards, out.baselines)
        return total, len(batch.labels), classification

    def evaluate(self, model: RecurrentAttention, batches, device="cpu") -> dict:
        """The classifier's metrics (loss, accuracy, macro F1, the confusion matrix) of the glimpses' class, and the
        error."""
        metrics = super().evaluate(Logits(model), batches, device)
        return {**metrics, "error": 1 - metrics["accuracy"]}

    def describe(self, metrics: dict) -> str:
        return f"{super().describe(metrics)}, error {metrics['error']:.2%}"

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """The t10k digits, shown as the checkpoint's training images were."""
        images, labels = read_mnist(path, "t10k")
        name = f"{Path(path) / 't10k'} ({config.data.canvas})"
        return {name: image_batches(shown(config.data, images, config.train.seed + 2), labels, 500, False, what=path)}

    def predict(self, model: RecurrentAttention, vocabularies: dict, inputs: Tensor, settings) -> Iterator[Glimpses]:
        """Each image's class and glimpses; `inputs` (N, Y, X) uint8 images of the model's size, classified
        together; `settings` are the task's Predict (it has none)."""
        problem = size_problem(inputs, model.height, model.width) if inputs.dim() == 3 else "not (N, Y, X) images"
        if problem is not None:
            raise ArgumentError("images", f"{problem} (shape {tuple(inputs.shape)})")
        labels = vocabularies["labels"].symbols
        with torch.no_grad(), evaluating(model):
            seen = model(inputs.to(next(model.parameters()).device))
        chances, locations = seen.logits.softmax(-1).cpu(), seen.locations.cpu()  # (N, K), (N, G, 2)
        for k, row, where in zip(chances.argmax(-1).tolist(), chances.tolist(), locations):
            yield Glimpses(labels[k], dict(zip(labels, row)), where)

    def preview(self, model: RecurrentAttention, data: ImageData, config, length: int, seed: int) -> str:
        """The first validation images' true and predicted digits."""
        guesses = [seen.label for seen in self.predict(model, data.vocabularies, data.val_images[:8], self.Predict())]
        return f"true {' '.join(map(str, data.val_labels[:8].tolist()))}\npredicted {' '.join(guesses)}"


task = GlimpseClassifier()

"""Sequential MNIST: an image read one row or one pixel per step, then classified from h_l (the notes'
sequential processing of non-sequential data; Le et al. 2015, Arjovsky et al. 2016).

    rnnkit seqmnist train --data ../data/mnist --preset rows-cpu --out runs/rows      # T = 28 rows of 28 pixels
    rnnkit seqmnist train --data ../data/mnist --preset pixels-gpu                      # T = 784 pixels, one GPU
    rnnkit seqmnist eval runs/rows/best.pt --data ../data/mnist                        # the t10k test images
    rnnkit seqmnist predict runs/rows/best.pt --input t10k-images-idx3-ubyte.gz        # digit<TAB>probability

--data names a directory with MNIST's four idx files (.gz or not). The last data.val_size training images
are validation. data.reading=permuted reads the pixels in a fixed order drawn from data.permutation_seed,
kept in the model (and so in every checkpoint). The loss, metrics and figures are every classifier's
(classify.Classifier).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from rnnkit.config import option
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import read_mnist
from rnnkit.data.images import argument_pixels, pixel_argument
from rnnkit.data.padded import LengthBuckets
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import ArgumentError, RnnkitError
from rnnkit.models.classifier import ImageSequenceClassifier
from rnnkit.models.core import CoreConfig
from rnnkit.readout import READOUTS
from rnnkit.tasks.classify import Classifier, Label, labelled
from rnnkit.trained import Trained, one_or_stack


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


DIGITS = [str(d) for d in range(10)]
SIZE = 28  # MNIST's images are SIZE × SIZE, and so are the models build_model makes
BATCH = 256  # images classified together from Python


@dataclass
class ImageData:
    vocabularies: dict  # {"labels": the ten digits}
    train_images: Tensor  # (N, Y, X) uint8
    train_labels: Tensor  # (N,)
    val_images: Tensor
    val_labels: Tensor
    source: str


def size_problem(images: Tensor, height: int = SIZE, width: int = SIZE) -> str | None:
    """What keeps (N, Y, X) `images` from a model that reads height × width images, or None."""
    if tuple(images.shape[1:]) != (height, width):
        return f"images of size {'×'.join(map(str, images.shape[1:]))}, but the model reads {height}×{width} images"
    return None


def check_size(images: Tensor, where: str) -> None:
    problem = size_problem(images)
    if problem is not None:
        raise RnnkitError(f"{where}: {problem}")


def training_digits(data, tiny: bool, generated: str) -> tuple[Tensor, Tensor, str]:
    """MNIST's training digits (N, 28, 28) (generated bars when tiny or without data.path), their labels and where
    they came from (`generated` for the bars); the last data.val_size of them must leave some to train on (glimpse
    and draw read them too)."""
    if tiny or not data.path:
        images, labels, source = *tiny_images(1200 + data.val_size, seed=0), generated
    else:
        images, labels = read_mnist(data.path, "train")
        source = data.path
    if data.val_size >= len(images):
        raise RnnkitError(
            f"{source}: --data.val_size={data.val_size} leaves none of its {len(images)} images to train on"
        )
    return images, labels, source


def image_batches(
    images: Tensor, labels: Tensor, batch_size: int, train: bool, seed: int = 0, what: str = "images"
) -> LengthBuckets:
    batches = LengthBuckets(images, labels, batch_size, train, seed, what=what, unit="images")
    batches.classes = DIGITS
    return batches


def image_of(value, argument: str, height: int, width: int) -> Tensor:
    """A (Y, X) numpy array or tensor of pixels -> (Y, X) uint8 (floats in [0, 1] scaled, as the readers do)."""
    array = pixel_argument(value, argument, "a (Y, X) image", (None, None))
    problem = size_problem(array[None], height, width)
    if problem is not None:
        raise ArgumentError(argument, problem)
    return argument_pixels(array, argument)  # (Y, X)


class TrainedImageClassifier(Trained):
    """A sequential-MNIST model from Python: read digits."""

    def classify_image(self, images, **settings) -> Label | list[Label]:
        """The digit of `images` with every digit's probability: one (Y, X) uint8 image (a numpy array or a
        tensor), a stack (N, Y, X) of them, or a list of images; one Label for one image, else a list.

        >>> rnnkit.load("runs/rows").classify_image(image).label
        '7'
        >>> [label.label for label in trained.classify_image(test_images[:3])]
        ['7', '2', '1']
        """
        chosen = self.settings(settings)
        empty = "an empty stack (0, Y, X): there is nothing to classify"
        items, single = one_or_stack(images, "images", "a (Y, X) image", 2, empty)
        size = self.model.height, self.model.width
        batch = torch.stack(
            [image_of(item, "images" if single else f"images[{k}]", *size) for k, item in enumerate(items)]
        )  # (N, Y, X)
        results = self.predict_in_batches(batch, chosen, BATCH)
        return results[0] if single else results


class SequentialImages(Classifier):
    """Reads an image as a sequence of rows or pixels, and names its digit."""

    name = "seqmnist"
    description = "sequential MNIST (row by row, pixel by pixel, permuted): train, eval, predict"
    unit, per = "images", "image"
    Model, Data = ModelConfig, DataConfig
    vocabulary_kinds = {"labels": TokenVocab}
    trained = TrainedImageClassifier

    def load_data(self, config, tiny: bool = False) -> ImageData:
        data = config.data
        images, labels, source = training_digits(data, tiny, "generated tiny images")
        check_size(images, source)
        cut = len(images) - data.val_size
        return ImageData({"labels": TokenVocab(DIGITS)}, images[:cut], labels[:cut], images[cut:], labels[cut:], source)

    def build_model(self, config, vocabularies: dict) -> ImageSequenceClassifier:
        data = config.data
        generator = torch.Generator().manual_seed(data.permutation_seed)
        order = torch.randperm(SIZE * SIZE, generator=generator) if data.reading == "permuted" else None  # (Y·X,)
        model = ImageSequenceClassifier(len(vocabularies["labels"]), config.model, SIZE, SIZE, data.reading, order)
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def batches(self, config, data: ImageData) -> tuple[LengthBuckets, LengthBuckets]:
        size, seed = config.train.batch_size, config.train.seed
        train = image_batches(data.train_images, data.train_labels, size, True, seed, f"{data.source} (training part)")
        val = image_batches(data.val_images, data.val_labels, 500, False, what=f"{data.source} (validation part)")
        return train, val

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """The t10k test images of an MNIST directory."""
        images, labels = read_mnist(path, "t10k")
        check_size(images, str(Path(path) / "t10k"))
        return {f"{Path(path) / 't10k'}": image_batches(images, labels, 500, False, what=path)}

    def predict(self, model: ImageSequenceClassifier, vocabularies: dict, inputs: Tensor, settings) -> Iterator[Label]:
        """The Label of each image of `inputs` (N, Y, X), uint8 or float in [0, 255], of the model's size,
        classified together; `settings` are the task's Predict (it has none)."""
        if inputs.dim() != 3:
            raise ArgumentError("images", f"expected (N, Y, X) images, got shape {tuple(inputs.shape)}")
        problem = size_problem(inputs, model.height, model.width)
        if problem is not None:
            raise ArgumentError("images", problem)
        yield from labelled(model, inputs, None, vocabularies)

    def preview(self, model: ImageSequenceClassifier, data: ImageData, config, length: int, seed: int) -> str:
        """The first validation images' true and predicted digits."""
        guesses = self.predict(model, data.vocabularies, data.val_images[:8], self.Predict())
        truth = " ".join(map(str, data.val_labels[:8].tolist()))
        return f"true {truth}\npredicted {' '.join(guess.label for guess in guesses)}"


task = SequentialImages()

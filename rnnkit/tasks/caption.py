"""Image captioning (the notes' one-to-many): a CNN reads the image into v, an RNN writes its caption word by word.

    rnnkit caption train --data ../data/mnist --preset mnist-cpu --out runs/captions
    rnnkit caption eval runs/captions/best.pt --data ../data/mnist --beam_width 3  # exact captions, unseen compositions
    rnnkit caption predict runs/captions/best.pt --input digits.png --out runs/captions/shown
    rnnkit.load("runs/captions").caption("digits.png").text                       # the same, from Python

The images are composed from digits (rnnkit/data/compose.py): 1-3 of them on a 64×64 canvas, captioned from
the composition ("a large seven left of a small two"); ten pairs of digits never appear together in
training, and validation and eval hold only images with such a pair. --data is MNIST's idx directory
(validation composes the last 5000 training digits, eval the t10k ones); without it, bar glyphs generated
in the package. The image enters the recurrence as W_ih·v at the first step (rnnkit/models/captioner.py).

Your own images: compute their features with any pretrained vision model, save them as (N, F_in) vectors in
FILE.npy or FILE.safetensors with the captions in FILE.txt (line n, vector n), and train on them:

    rnnkit caption train --data.features train.npy --data.val_features val.npy --model.image_features 2048 \
        --out runs/mine
"""

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from rnnkit.config import option
from rnnkit.data.batching import Generated
from rnnkit.data.compose import (
    CANVAS,
    WORDS,
    CaptionBuckets,
    Composed,
    Composer,
    compose,
    held_out_pairs,
    training_batch,
)
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import read_mnist
from rnnkit.data.images import FEATURE_SUFFIXES, SUFFIXES, image_files, read_captions, read_features, read_images
from rnnkit.data.vocab import END, PAD, START, UNK, TokenVocab
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.metrics import bleu_scores
from rnnkit.models.attention import ATTENTION
from rnnkit.models.captioner import Captioner
from rnnkit.models.core import CoreConfig
from rnnkit.tasks.base import Task, evaluation_batches, search_name, summed_cross_entropy
from rnnkit.trained import Trained, one_or_many


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    cell: str = option(
        "rnn",
        "the caption RNN's cell (rnn: the notes' h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v))",
        choices=CoreConfig.__dataclass_fields__["cell"].metadata["choices"],
    )
    hidden_size: int = option(256, "hidden units of the caption RNN", at_least=1)
    num_layers: int = option(
        1, "stacked layers of the caption RNN (v enters the first; at most 1000)", at_least=1, at_most=1000
    )
    dropout: float = option(0.1, "dropout on the word embeddings and before the output layer", at_least=0, below=1)
    embedding_size: int = option(64, "size of the word embeddings", at_least=1)
    word_dropout: float = option(
        0.0,
        "in training, the share of input words replaced by nothing (a zero embedding), so the caption "
        "leans on the image rather than on the words before (Bowman et al. 2016)",
        at_least=0,
        below=1,
    )
    feature_size: int = option(128, "F: the size of the image vector v", at_least=1)
    channels: int = option(32, "channels of the CNN's first convolution (then twice that)", at_least=1)
    context_layers: int = option(
        0,
        "3×3 convolutions after the CNN's strided ones, at the map's resolution: each widens what one "
        "location of the map sees by 16 pixels (a whole digit, for attention)",
        at_least=0,
        at_most=8,
    )
    inject: str = option(
        "first", "where W_ih·v enters: the first step (the notes') or every step", choices=("first", "every")
    )
    image_features: int = option(
        0,
        "F_in of precomputed feature vectors that replace the CNN (--data.features); 0: the CNN reads the images",
        at_least=0,
    )
    attention: str = option(
        "none",
        "the decoder also attends over the CNN's map: additive (Bahdanau), dot or general (Luong), or none",
        choices=ATTENTION,
    )
    attention_size: int = option(0, "additive attention: size of its hidden layer (0: the decoder's size)", at_least=0)
    input_feeding: bool = option(
        True, "with attention: feed each step's attentional vector into the next step's input (Luong et al. 2015)"
    )


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "MNIST's idx directory (train-images-idx3-ubyte[.gz], ...; empty: generated bar glyphs)")
    train_count: int = option(
        20000, "composed training images per pass (every training batch is new images)", at_least=1
    )
    val_count: int = option(1000, "composed validation images (each with a held-out pair)", at_least=1)
    held_out: int = option(10, "digit pairs never composed together in training (of 45)", at_least=1, at_most=44)
    held_out_seed: int = option(0, "which pairs are held out", at_least=0)
    features: str = option(
        "",
        "instead of composed digits: precomputed image features, FILE.npy or FILE.safetensors of (N, F_in), "
        "captioned by FILE.txt beside it (line n: vector n's caption)",
    )
    val_features: str = option(
        "", "validation features of the same kind, captioned by their .txt (empty: the last val_count training vectors)"
    )


@dataclass(frozen=True)
class EvaluateConfig:
    """How captions are decoded, by eval, predict and Trained.caption."""

    beam_width: int = option(1, "hypotheses kept per image (1: greedy)", at_least=1, at_most=1000)
    max_length: int = option(20, "write at most this many words", at_least=1, at_most=10000)


BATCH_SIZE = 64  # images Trained.caption captions together


@dataclass
class CaptionData:
    vocabularies: dict  # {"words"}
    train: Composed | None  # precomputed features; composed digits are new in every batch (composer)
    val: Composed
    source: str
    composer: Composer | None = None
    held_out: set | None = None


@dataclass(frozen=True)
class Caption:
    """One image's caption: its words, and where the model looked while writing them: `attention`
    (len(words) + 1, Y', X'), row t the weights over the CNN map's Y' × X' locations (8 × 8 for a 64 × 64 image,
    each location 8 pixels square) while writing word t (each row sums to 1; the last row while writing the end
    token), or None for a model without attention (--model.attention=none, or precomputed features)."""

    words: list[str]
    attention: torch.Tensor | None

    @property
    def text(self) -> str:
        return " ".join(self.words)


def glyphs(config, tiny: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    if tiny or not config.data.path:
        images, labels = tiny_images(2000, seed=0)
        return images, labels, "generated bar glyphs"
    images, labels = read_mnist(config.data.path, "train")
    if tuple(images.shape[1:]) != (28, 28):
        raise RnnkitError(f"{config.data.path}: MNIST digits are 28 × 28, these are {tuple(images.shape[1:])}")
    return images, labels, config.data.path


def featured(path: str, size: int) -> Composed:
    """Feature vectors FILE.npy|.safetensors (N, F_in) and their captions, FILE.txt."""
    vectors = read_features(path, size)  # (N, F_in)
    return Composed(vectors, read_captions(Path(path).with_suffix(".txt"), len(vectors)), [])


CAPTIONS = "captions.txt"  # beside a directory's images: line n the caption of its n-th image, in name order


def captioned_images(directory: str) -> Composed:
    """A directory's images (PNG, JPEG, .npy; sorted by name, an .npy's images in its order) and captions.txt."""
    images = torch.cat([read_images(file, CANVAS) for file in image_files(directory, SUFFIXES)])  # (N, 64, 64)
    captions = read_captions(Path(directory) / CAPTIONS, len(images), (f"{directory}", "image"))
    return Composed(images, captions, [])


def vocabulary_of(train: Composed) -> dict:
    counts = Counter(word for caption in train.captions for word in caption.split())
    return {"words": TokenVocab.from_counts(counts, [PAD, UNK, START, END])}


def load_features(config) -> CaptionData:
    data, size = config.data, config.model.image_features
    if not data.features or not size:
        raise RnnkitError(
            "precomputed features need both --data.features FILE and --model.image_features F_in (the vectors' size)"
        )
    train = featured(data.features, size)
    if data.val_features:
        val = featured(data.val_features, size)
    elif len(train.images) <= data.val_count:
        raise RnnkitError(
            f"{data.features}: {len(train.images)} vectors leave none to train on beside "
            f"--data.val_count={data.val_count}; give --data.val_features"
        )
    else:
        cut = len(train.images) - data.val_count
        train, val = (
            Composed(train.images[:cut], train.captions[:cut], []),
            Composed(train.images[cut:], train.captions[cut:], []),
        )
    return CaptionData(vocabulary_of(train), train, val, f"{data.features} (precomputed features)")


def encode(composed: Composed, vocabularies: dict, config, train: bool, what: str) -> CaptionBuckets:
    words = vocabularies["words"]
    captions = [words.encode([START, *c.split(), END]) for c in composed.captions]
    batches = CaptionBuckets(
        composed.images,
        captions,
        composed.captions,
        config.train.batch_size if train else 100,
        train,
        config.train.seed,
        words.index[PAD],
        what,
    )
    batches.words = words  # evaluation writes the captions with them
    return batches


def attention_over_map(model: Captioner, v: torch.Tensor, memory, outputs: list[list[int]]) -> torch.Tensor:
    """The weights (B, T + 1, Y', X') of the decoder reading its own captions back (the end token last): what it
    attended to while writing each word."""
    written = [torch.tensor([model.start_id, *ids]) for ids in outputs]
    captions_in = pad_sequence(written, batch_first=True, padding_value=model.padding_id).to(v.device)  # (B, T + 1)
    x = torch.cat(
        [model.embedding(captions_in), model.image_terms(v, captions_in.shape[1])], dim=-1
    )  # (B, T + 1, E + F)
    state, weights = model.first_state(len(outputs)), []
    for t in range(x.shape[1]):
        _, state, step_weights = model.attend(x[:, t], state, memory)  # (B, P)
        weights.append(step_weights)
    side = math.isqrt(memory.outputs.shape[1])  # the canvas is square, and so is its map
    return torch.stack(weights, dim=1).unflatten(2, (side, side))  # (B, T + 1, Y', X')


def model_input(item, argument: str, features: int) -> tuple[torch.Tensor, bool]:
    """One item Trained.caption takes -> ((N, 64, 64) uint8 images, or (N, F_in) vectors for a model of precomputed
    features; whether it was one image): a file or directory name (one image: a PNG or JPEG file), a PIL image, or
    a (64, 64) or (N, 64, 64) array or tensor ((F_in,) or (N, F_in) for features)."""
    from PIL import Image

    if isinstance(item, (str, Path)):
        files = image_files(item, FEATURE_SUFFIXES if features else SUFFIXES)
        read = [read_features(file, features) if features else read_images(file, CANVAS) for file in files]
        return torch.cat(read), not features and Path(item).is_file() and Path(item).suffix.lower() != ".npy"
    if isinstance(item, Image.Image):
        if "A" in item.getbands():  # as the file readers: a transparent background has no brightness to read
            raise ArgumentError(argument, f"the image has an alpha channel ({item.mode}); give grayscale or RGB")
        item = np.array(item.convert("L"), dtype=np.uint8)  # (Y, X)
    array = torch.from_numpy(np.ascontiguousarray(item)) if isinstance(item, np.ndarray) else item.detach().cpu()
    one = (features,) if features else (CANVAS, CANVAS)  # the shape of one input
    if array.dim() not in (len(one), len(one) + 1) or tuple(array.shape[-len(one) :]) != one or not array.numel():
        shapes = f"{one} or (N, {', '.join(map(str, one))}) {'feature vectors' if features else 'pixels'}"
        raise ArgumentError(argument, f"expected {shapes}, got shape {tuple(array.shape)}")
    if not features and array.dtype != torch.uint8:
        raise ArgumentTypeError(argument, f"expected uint8 pixels (0-255, light on dark), got {array.dtype}")
    if features and not torch.isfinite(array.float()).all():
        raise ArgumentError(argument, "the features hold NaN or infinite values (or values beyond float32's range)")
    array = array.float() if features else array
    return (array[None], True) if array.dim() == len(one) else (array, False)


class TrainedCaptioner(Trained):
    """A captioning model from Python: caption images."""

    def caption(self, images, **settings) -> Caption | list[Caption]:
        """Caption images: a file or directory name, a PIL image, a (64, 64) or (N, 64, 64) uint8 array or tensor
        (light on dark), or a list of them; for a model of precomputed features, (F_in,) or (N, F_in) vectors or
        their .npy/.safetensors files. One Caption for one image (a PNG or JPEG file, a PIL image, a (64, 64)
        array), a list otherwise; decoded by beam search of `beam_width` (1: greedy), at most `max_length` words.

        >>> rnnkit.load("runs/captions").caption("digits.png", beam_width=3).text
        'a large seven left of a small two'
        """
        from PIL import Image

        chosen = self.settings(settings)
        features = self.model.config.image_features
        what = "an image (a file name, a PIL image, a uint8 array or tensor)"
        items, lone = one_or_many(images, "images", (str, Path, np.ndarray, torch.Tensor, Image.Image), what)
        read = [model_input(item, "images" if lone else f"images[{k}]", features) for k, item in enumerate(items)]
        inputs = torch.cat([batch for batch, _ in read])  # (N, 64, 64) or (N, F_in)
        results = self.predict_in_batches(inputs, chosen, BATCH_SIZE)
        return results[0] if lone and read[0][1] else results


class ImageCaptioner(Task):
    """Writes a caption of an image: a CNN's vector of it starts a recurrent language model."""

    name = "caption"
    description = (
        "image captioning (one-to-many): digits composed on a canvas, exact captions on unseen compositions: "
        "train, eval, predict"
    )
    Model, Data, Predict, Evaluate = ModelConfig, DataConfig, EvaluateConfig, EvaluateConfig
    vocabulary_kinds = {"words": TokenVocab}
    headline = "exact_match"
    trained = TrainedCaptioner

    def load_data(self, config, tiny: bool = False) -> CaptionData:
        data = config.data
        if data.features or config.model.image_features:
            if tiny:
                raise RnnkitError(
                    "the built-in tiny data are composed digit images, not precomputed features: "
                    "leave out --data.features and --model.image_features"
                )
            return load_features(config)
        images, labels, source = glyphs(config, tiny)
        cut = len(images) * 11 // 12  # MNIST: 55,000 digits compose training images, the last 5,000 validation ones
        held_out = held_out_pairs(data.held_out, data.held_out_seed)
        val = compose(images[cut:], labels[cut:], data.val_count, config.train.seed + 1, held_out, unseen=True)
        vocabularies = {"words": TokenVocab(sorted(WORDS), [PAD, UNK, START, END])}  # every word a caption can hold
        return CaptionData(
            vocabularies,
            None,
            val,
            f"{source} composed ({len(held_out)} digit pairs held out)",
            Composer(images[:cut], labels[:cut]),
            held_out,
        )

    def batches(self, config, data: CaptionData) -> tuple[Generated | CaptionBuckets, CaptionBuckets]:
        val = encode(data.val, data.vocabularies, config, False, f"{data.source} (validation: unseen compositions)")
        if data.composer is None:
            return encode(data.train, data.vocabularies, config, True, f"{data.source} (training vectors)"), val
        words, size = data.vocabularies["words"], config.train.batch_size

        def make(seed: int):  # every batch new compositions
            caption_ids = lambda text: words.encode([START, *text.split(), END])  # noqa: E731
            return training_batch(data.composer, data.held_out, caption_ids, size, seed, words.index[PAD])

        return Generated(make, config.train.seed, max(1, config.data.train_count // size)), val

    def build_model(self, config, vocabularies: dict) -> Captioner:
        words = vocabularies["words"]
        model = Captioner(config.model, len(words), CANVAS, words.index[PAD], words.index[START], words.index[END])
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def loss(self, model: Captioner, batch) -> tuple[torch.Tensor, int]:
        """−Σ_t log p(y_t | y_<t, v) over each caption's words and its end token, per token."""
        logits = model(batch.images, batch.captions_in, batch.lengths)  # (B, T, V)
        count = int(batch.lengths.sum())
        total = summed_cross_entropy(logits, batch.captions_out)
        return total / count, count

    def evaluate(
        self, model: Captioner, batches: CaptionBuckets, device="cpu", settings: EvaluateConfig | None = None
    ) -> dict:
        """Loss per token (teacher-forced); of the decoded captions, the share exactly right and BLEU (sacrebleu)."""
        settings = settings or EvaluateConfig()
        total, tokens, written = 0.0, 0, {}
        for batch in evaluation_batches(model, batches, device):
            v, memory = model.look(batch.images)  # (B, F): once, for both
            logits = model.read(v, memory, batch.captions_in, batch.lengths.cpu())  # (B, T, V): teacher-forced
            total += float(summed_cross_entropy(logits, batch.captions_out))
            tokens += int(batch.lengths.sum())
            outputs = model.caption_features(v, memory, settings.beam_width, settings.max_length)
            for i, ids in zip(batch.index.tolist(), outputs):
                written[i] = " ".join(batches.words.decode(ids))
        hypotheses = [written[i] for i in range(len(written))]
        return {
            "loss": total / tokens,
            "exact_match": sum(h == r for h, r in zip(hypotheses, batches.references)) / len(hypotheses),
            "bleu": bleu_scores(hypotheses, batches.references)["bleu"],
            "examples": tokens,
            "images": len(hypotheses),
            "beam_width": settings.beam_width,
        }

    def describe(self, metrics: dict) -> str:
        return (
            f"loss {metrics['loss']:.4f} nats/{self.per}, exact captions {metrics['exact_match']:.2%}, "
            f"BLEU {metrics['bleu']:.2f} ({metrics['images']:,} images, {search_name(metrics['beam_width'])})"
        )

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """MNIST's t10k digits, composed into images that each hold a held-out pair; a directory of one's own
        images with their captions in captions.txt; for a model of precomputed features, PATH.npy|.safetensors
        and its captions PATH.txt."""
        if config.model.image_features:
            return {path: encode(featured(path, config.model.image_features), vocabularies, config, False, path)}
        if (Path(path) / CAPTIONS).is_file():
            return {path: encode(captioned_images(path), vocabularies, config, False, path)}
        images, labels = read_mnist(path, "t10k")
        held_out = held_out_pairs(config.data.held_out, config.data.held_out_seed)
        composed = compose(images, labels, config.data.val_count, config.train.seed + 2, held_out, unseen=True)
        return {f"{path} (t10k digits, unseen compositions)": encode(composed, vocabularies, config, False, path)}

    def predict(
        self, model: Captioner, vocabularies: dict, inputs: torch.Tensor, settings: EvaluateConfig
    ) -> Iterator[Caption]:
        """The images of `inputs` ((N, 64, 64) uint8; (N, F_in) feature vectors for a model of precomputed
        features) captioned together (one batch: the caller sizes it), in order. The attention is the decoder's as
        it reads its own caption back."""
        device = next(model.parameters()).device
        with torch.no_grad(), evaluating(model):
            v, memory = model.look(inputs.to(device))  # (N, F)
            outputs = model.caption_features(v, memory, settings.beam_width, settings.max_length)
            weights = None if memory is None else attention_over_map(model, v, memory, outputs).cpu()
        for b, ids in enumerate(outputs):
            yield Caption(vocabularies["words"].decode(ids), None if weights is None else weights[b, : len(ids) + 1])

    def preview(self, model, data: CaptionData, config, length: int, seed: int) -> str:
        """Two validation images: their captions and what the model writes."""
        written = self.predict(model, data.vocabularies, data.val.images[:2], EvaluateConfig())
        return "\n".join(f"{truth} -> {guess.text}" for truth, guess in zip(data.val.captions[:2], written))


task = ImageCaptioner()

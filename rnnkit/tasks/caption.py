"""Image captioning (the notes' one-to-many): a CNN reads the image into v, an RNN writes its caption word by word.

    rnnkit caption train --data ../data/mnist --preset mnist-cpu --out runs/captions
    rnnkit caption eval runs/captions/best.pt --data ../data/mnist --beam_width 3   # exact captions on unseen compositions
    rnnkit caption predict runs/captions/best.pt --input digits.png --out runs/captions/shown

The images are composed from digits (rnnkit/data/compose.py): 1-3 of them on a 64×64 canvas, captioned from
the composition ("a large seven left of a small two"); ten pairs of digits never appear together in
training, and validation and eval hold only images with such a pair. --data is MNIST's idx directory
(validation composes the last 5000 training digits, eval the t10k ones); without it, bar glyphs generated
in the package. The image enters the recurrence as W_ih·v at the first step (rnnkit/models/captioner.py).

Your own images: compute their features with any pretrained vision model, save them as (N, F_in) vectors in
FILE.npy or FILE.safetensors with the captions in FILE.txt (line n, vector n), and train on them:

    rnnkit caption train --data.features train.npy --data.val_features val.npy --model.image_features 2048 --out runs/mine
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
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
from rnnkit.data.padded import IGNORE
from rnnkit.data.text import Progress
from rnnkit.data.vocab import END, PAD, START, UNK, TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.files import atomic_write, staged_output
from rnnkit.metrics import bleu_scores
from rnnkit.models.attention import ATTENTION
from rnnkit.models.captioner import Captioner
from rnnkit.models.core import CoreConfig
from rnnkit.recurrent import map_state

name = "caption"
description = "image captioning (one-to-many): digits composed on a canvas, exact captions on unseen compositions: train, eval, predict"
unit, per = "tokens", "token"
predict_verb = "predict"
headline = "exact_match"


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
class RunConfig:
    """Everything a captioning run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class EvaluateConfig:
    beam_width: int = option(1, "hypotheses kept per image (1: greedy)", at_least=1, at_most=1000)
    max_length: int = option(20, "write at most this many words", at_least=1, at_most=10000)


@dataclass(frozen=True)
class PredictConfig(EvaluateConfig):
    input: str = option(
        "",
        "an image (PNG, JPEG, or .npy of (Y, X) or (N, Y, X) pixels, 64 × 64, light on dark) or a directory of them; "
        "for a model of precomputed features, a .npy or .safetensors of (N, F_in) vectors",
    )
    out: str = option(
        "", "also save each image with its caption under it as DIR/captioned-N.png (DIR must hold none yet)"
    )
    batch_size: int = option(64, "images captioned together", at_least=1)


Config, Predict, Evaluate = RunConfig, PredictConfig, EvaluateConfig

PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU, on generated glyphs: for tests and --dry-run
    "tiny": {
        "model.hidden_size": 48,
        "model.embedding_size": 16,
        "model.feature_size": 32,
        "model.channels": 8,
        "model.dropout": 0.0,
        "data.train_count": 1500,
        "data.val_count": 200,
        "train.batch_size": 32,
        "train.max_steps": 150,
        "train.eval_interval": 50,
        "train.learning_rate": 5e-3,
        "train.weight_decay": 0.0,
    },
    # MNIST digits on 2 CPU cores: attention over a map whose every location sees a whole digit, half the input words dropped
    # (so a digit is named from the image, not from the digit before it), weights averaged, 28 minutes annealed by time;
    # a 64-wide attention layer (the 256-wide one was half of each step) pays for a 48/96-channel CNN
    "mnist-cpu": {
        "model.cell": "lstm",
        "model.inject": "every",
        "model.attention": "additive",
        "model.attention_size": 64,
        "model.channels": 48,
        "model.context_layers": 2,
        "model.word_dropout": 0.5,
        "data.train_count": 40000,
        "train.batch_size": 64,
        "train.max_steps": 1_000_000,
        "train.max_minutes": 28.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 500,
        "train.learning_rate": 2e-3,
        "train.ema_decay": 0.999,
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class CaptionData:
    vocabularies: dict  # {"words"}
    train: Composed | None  # precomputed features; composed digits are new in every batch (composer)
    val: Composed
    source: str
    composer: Composer | None = None
    held_out: set | None = None


def glyphs(config: RunConfig, tiny: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
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


def vocabulary_of(train: Composed) -> dict:
    counts = Counter(word for caption in train.captions for word in caption.split())
    return {"words": TokenVocab.from_counts(counts, [PAD, UNK, START, END])}


def load_features(config: RunConfig) -> CaptionData:
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
            f"{data.features}: {len(train.images)} vectors leave none to train on beside --data.val_count={data.val_count}; "
            "give --data.val_features"
        )
    else:
        cut = len(train.images) - data.val_count
        train, val = (
            Composed(train.images[:cut], train.captions[:cut], []),
            Composed(train.images[cut:], train.captions[cut:], []),
        )
    return CaptionData(vocabulary_of(train), train, val, f"{data.features} (precomputed features)")


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> CaptionData:
    data = config.data
    if data.features or config.model.image_features:
        if tiny:
            raise RnnkitError(
                "--dry-run composes the built-in digit images; it does not read --data.features or --model.image_features"
            )
        return load_features(config)
    images, labels, source = glyphs(config, tiny)
    cut = len(images) * 11 // 12  # MNIST: 55,000 digits compose training images, the last 5,000 validation ones
    held_out = held_out_pairs(data.held_out, data.held_out_seed)
    seed = config.train.seed
    val = compose(images[cut:], labels[cut:], data.val_count, seed + 1, held_out, unseen=True)
    vocabularies = {
        "words": TokenVocab(sorted(WORDS), [PAD, UNK, START, END])
    }  # every word a composed caption can hold
    return CaptionData(
        vocabularies,
        None,
        val,
        f"{source} composed ({len(held_out)} digit pairs held out)",
        Composer(images[:cut], labels[:cut]),
        held_out,
    )


def encode(composed: Composed, vocabularies: dict, config: RunConfig, train: bool, what: str) -> CaptionBuckets:
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


def batches(config: RunConfig, data: CaptionData) -> tuple[Generated | CaptionBuckets, CaptionBuckets]:
    val = encode(data.val, data.vocabularies, config, False, f"{data.source} (validation: unseen compositions)")
    if data.composer is None:
        return encode(data.train, data.vocabularies, config, True, f"{data.source} (training vectors)"), val
    words, size = data.vocabularies["words"], config.train.batch_size
    encode_caption = lambda text: words.encode([START, *text.split(), END])  # noqa: E731
    make = lambda seed: training_batch(data.composer, data.held_out, encode_caption, size, seed, words.index[PAD])  # noqa: E731
    return Generated(
        make, config.train.seed, max(1, config.data.train_count // size)
    ), val  # every batch new compositions


def build_model(config: RunConfig, vocabularies: dict) -> Captioner:
    words = vocabularies["words"]
    model = Captioner(config.model, len(words), CANVAS, words.index[PAD], words.index[START], words.index[END])
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def loss(model, batch, state) -> tuple[torch.Tensor, None, int]:
    """−Σ_t log p(y_t | y_<t, v) over each caption's words and its end token, per token."""
    logits = model(batch.images, batch.captions_in, batch.lengths)  # (B, T, V)
    count = int(batch.lengths.sum())
    return (
        F.cross_entropy(logits.flatten(0, 1), batch.captions_out.flatten(), ignore_index=IGNORE, reduction="sum")
        / count,
        None,
        count,
    )


@torch.no_grad()
def evaluate(
    model, batches: CaptionBuckets, device="cpu", max_tokens: int = 0, settings: EvaluateConfig | None = None
) -> dict:
    """Loss per token (teacher-forced); of the decoded captions, the share exactly right and BLEU (sacrebleu)."""
    settings = settings or EvaluateConfig()
    words = batches.words
    total, tokens, written = 0.0, 0, {}
    with evaluating(model):
        for k in range(len(batches)):
            batch = map_state(lambda field: field.to(device), batches[k])
            v, memory = model.look(batch.images)  # (B, F): once, for both
            logits = model.read(
                v, memory, batch.captions_in, batch.lengths.cpu()
            )  # (B, T, V): teacher-forced, for the loss
            total += float(
                F.cross_entropy(
                    logits.flatten(0, 1), batch.captions_out.flatten(), ignore_index=IGNORE, reduction="sum"
                )
            )
            tokens += int(batch.lengths.sum())
            for i, ids in zip(
                batch.index.tolist(), model.caption_features(v, memory, settings.beam_width, settings.max_length)
            ):
                written[i] = " ".join(words.decode(ids))
    hypotheses = [written[i] for i in range(len(written))]
    exact = sum(h == r for h, r in zip(hypotheses, batches.references)) / len(hypotheses)
    scores = bleu_scores(hypotheses, batches.references)
    return {
        "loss": total / tokens,
        "exact_match": exact,
        "bleu": scores["bleu"],
        "examples": tokens,
        "images": len(hypotheses),
        "beam_width": settings.beam_width,
    }


def describe(metrics: dict, per: str = per) -> str:
    how = "greedy" if metrics["beam_width"] == 1 else f"beam {metrics['beam_width']}"
    return (
        f"loss {metrics['loss']:.4f} nats/{per}, exact captions {metrics['exact_match']:.2%}, BLEU {metrics['bleu']:.2f} "
        f"({metrics['images']:,} images, {how})"
    )


def summary(loss_value: float, per: str = per) -> str:
    return f"{loss_value:.4f} nats/{per}"


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """MNIST's t10k digits, composed into images that each hold a held-out pair; for a model of precomputed
    features, PATH.npy|.safetensors and its captions PATH.txt."""
    config = config or RunConfig()
    if config.model.image_features:
        return {path: encode(featured(path, config.model.image_features), vocabularies, config, False, path)}
    images, labels = read_mnist(path, "t10k")
    held_out = held_out_pairs(config.data.held_out, config.data.held_out_seed)
    composed = compose(images, labels, config.data.val_count, config.train.seed + 2, held_out, unseen=True)
    return {f"{path} (t10k digits, unseen compositions)": encode(composed, vocabularies, config, False, path)}


def caption_images(
    model, vocabularies: dict, images: torch.Tensor, settings: EvaluateConfig | None = None
) -> list[str]:
    """The caption of each image (N, 64, 64) uint8, from Python."""
    settings = settings or EvaluateConfig()
    device = next(model.parameters()).device
    with evaluating(model):
        outputs = model.caption(images.to(device), settings.beam_width, settings.max_length)
    return [" ".join(vocabularies["words"].decode(ids)) for ids in outputs]


def captioned_png(image: torch.Tensor, text: str) -> bytes:
    from rnnkit.plots import figure_png, plt

    figure, axes = plt.subplots(figsize=(2.6, 3.0))
    axes.imshow(image.numpy(), cmap="gray", vmin=0, vmax=255)
    axes.set_axis_off()
    figure.text(0.5, 0.04, text, ha="center", va="bottom", fontsize=8, wrap=True)
    figure.subplots_adjust(bottom=0.2)
    return figure_png(figure)


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None) -> Iterator[str]:
    """ "file<TAB>caption" per image (a .npy of N images gives file[n]), batch by batch."""
    if not settings.input:
        raise RnnkitError("--input: give an image file (PNG, JPEG, .npy) or a directory of them")
    size = model.config.image_features
    if size and settings.out:
        raise RnnkitError("--out draws each image with its caption; this model reads precomputed features, not images")
    files = image_files(settings.input, FEATURE_SUFFIXES if size else SUFFIXES)
    with staged_output(settings.out, "captioned-*.png", "--out") as out:  # no pictures left behind by a failure
        done = 0
        for file in files:
            images = read_features(file, size) if size else read_images(file, CANVAS)  # (N, F_in) or (N, 64, 64)
            for start in range(0, len(images), settings.batch_size):
                chunk = images[start : start + settings.batch_size]
                for k, text in enumerate(caption_images(model, vocabularies, chunk, settings)):
                    name = str(file) if len(images) == 1 else f"{file}[{start + k}]"
                    if out is not None:
                        picture = captioned_png(chunk[k], text)
                        atomic_write(out / f"captioned-{done + 1}.png", lambda handle, data=picture: handle.write(data))
                    done += 1
                    yield f"{name}\t{text}\n"


def dry_run(settings: PredictConfig) -> PredictConfig:
    """--dry-run with no input captions a few generated images, written to a temporary .npy."""
    if settings.input:
        return settings
    import atexit
    import shutil
    import tempfile

    import numpy as np

    images, labels = tiny_images(200, seed=3)
    composed = compose(images, labels, 2, 5, held_out_pairs(), unseen=True)
    folder = tempfile.mkdtemp(prefix="rnnkit-caption-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the dry run leaves nothing behind
    path = Path(folder) / "images.npy"
    np.save(path, composed.images.numpy())
    return replace(settings, input=str(path))


def preview(model, data: CaptionData, config: RunConfig, length: int, seed: int) -> str:
    """Two validation images: their captions and what the model writes."""
    written = caption_images(model, data.vocabularies, data.val.images[:2])
    return "\n".join(f"{truth} -> {guess}" for truth, guess in zip(data.val.captions[:2], written))

"""The character-level language model (the notes' many-to-many LM, sampled one character at a time).

    rnnkit charlm train --data input.txt --out runs/mine
    rnnkit charlm sample runs/mine/best.pt --prime "ROMEO:" --length 500 --temperature 0.8
    rnnkit charlm eval runs/mine/best.pt --data held_out.txt

The vocabulary is the text's sorted code points; the last val_fraction of the text is validation
(nanoGPT's split of Tiny Shakespeare, which ships with rnnkit so the tiny preset needs no download).
"""

from dataclasses import dataclass, replace
from typing import Any

import torch

from rnnkit import config as settings
from rnnkit.config import TrainConfig, option
from rnnkit.data.datasets import tiny_text
from rnnkit.data.text import Progress, bundled_text, read_text, split_text
from rnnkit.data.tokens import encode_file
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import bits_per_char
from rnnkit.models.char_lm import CharLM
from rnnkit.models.core import CoreConfig
from rnnkit.tasks import lm
from rnnkit.tasks.lm import LMData, SampleConfig, dry_run, evaluate, loss  # noqa: F401  (the task's loss, evaluation, dry run)

name = "charlm"
description = "character-level language model: train, sample, eval"
unit, per = "tokens", "character"
predict_verb = "sample"
Predict = SampleConfig


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    embedding_size: int = option(128, "size of the embedding table (one-hot × W is a lookup)", at_least=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "UTF-8 text file to train on, .gz read as it is (empty: the bundled Tiny Shakespeare)")
    val_fraction: float = option(
        0.1, "the last fraction of the text held out for validation (nanoGPT's split)", above=0, below=1
    )
    token_cache: str = option(
        "",
        "directory to encode the text into once and memory-map from (for corpora larger than RAM; empty: read into memory)",
    )


@dataclass(frozen=True)
class RunConfig:
    """Everything a charlm run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


Config = RunConfig
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU: for tests and --dry-run
    "tiny": {
        "model.embedding_size": 16,
        "model.hidden_size": 32,
        "model.num_layers": 1,
        "model.dropout": 0.0,
        "train.batch_size": 4,
        "train.seq_len": 16,
        "train.max_steps": 20,
        "train.eval_interval": 10,
        "train.eval_tokens": 2000,
    },
    # the README's first command: a few minutes on 2 CPU cores, already writes recognisable Shakespeare
    "cpu-demo": {
        "model.hidden_size": 256,
        "model.num_layers": 2,
        "model.dropout": 0.1,
        "train.batch_size": 32,
        "train.seq_len": 128,
        "train.max_steps": 1200,
        "train.eval_interval": 200,
        "train.sample_interval": 400,
        "train.learning_rate": 3e-3,
    },
    # the 10-minute, 2-core benchmark (bench/charlm_shakespeare.py)
    "cpu-10min": {
        "model.hidden_size": 256,
        "model.num_layers": 2,
        "model.dropout": 0.1,
        "train.batch_size": 32,
        "train.seq_len": 128,
        "train.max_steps": 2700,
        "train.eval_interval": 450,
        "train.learning_rate": 3e-3,
    },
    # one GPU, about 10 minutes
    "gpu": {
        "model.embedding_size": 128,
        "model.hidden_size": 512,
        "model.num_layers": 3,
        "model.dropout": 0.5,
        "train.batch_size": 128,
        "train.seq_len": 256,
        "train.max_steps": 6000,
        "train.eval_interval": 500,
        "train.device": "cuda",
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings.build_config(RunConfig, PRESETS, preset, overrides)


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> LMData:
    """Read the text (the file, or the bundled Tiny Shakespeare), build its vocabulary, split by position.

    With data.token_cache, the file is encoded once into a memory-mapped token array instead of being
    read into memory; the split is then two views of the mapped array.
    """
    data = config.data
    if data.token_cache and not tiny:
        if not data.path:
            raise RnnkitError("--data.token_cache needs --data FILE")
        ids, vocab = encode_file(data.path, data.token_cache, progress)  # (N,) memory-mapped
        train_ids, val_ids = split_text(ids, data.val_fraction)  # two views of the mapped array
        return LMData({"text": vocab}, train_ids, val_ids, data.path)
    if tiny:
        text, source = tiny_text(), "built-in tiny text"
    elif data.path:
        text, source = read_text(data.path), data.path
    else:
        text, source = bundled_text("shakespeare"), "bundled Tiny Shakespeare"
    vocab = Vocab.from_text(text)  # from the whole text, so validation has no unseen characters
    train_text, val_text = split_text(text, data.val_fraction)
    return LMData({"text": vocab}, vocab.encode(train_text), vocab.encode(val_text), source)


def build_model(config: RunConfig, vocabularies: dict) -> CharLM:
    model = CharLM(len(vocabularies["text"]), config.model)
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def batches(config: RunConfig, data: LMData):
    return lm.stream_batches(config, data, "characters")


def describe(metrics: dict) -> str:
    return (
        f"loss {metrics['loss']:.4f} nats/char, {metrics['bits']:.4f} bits/char, perplexity {metrics['perplexity']:.3f} "
        f"({metrics['tokens']:,} characters)"
    )


def summary(loss_value: float) -> str:
    return f"{loss_value:.4f} nats/char ({bits_per_char(loss_value):.3f} bits/char)"


def eval_data(path: str, vocabularies: dict, config=None) -> dict:
    text = read_text(path)
    return {path: lm.whole_text(vocabularies["text"].encode(text, what=path), path, "characters")}


def encode_text(vocabularies: dict, text: str, what: str = "text") -> torch.Tensor:
    return vocabularies["text"].encode(text, what=what)  # (N,)


def predict(model, vocabularies: dict, settings: SampleConfig, config=None):
    """The prime, then `length` sampled characters (checked before anything is generated)."""
    if not settings.prime:
        raise RnnkitError("--prime must have at least one character (the state is warmed up on it)")
    vocab = vocabularies["text"]
    prime_ids = vocab.encode(settings.prime, what="prime text")  # (P,)
    return lm.sample_text(model, vocab, prime_ids, settings, lambda ids, previous: vocab.decode(ids))


def preview(model, data: LMData, config, length: int, seed: int) -> str:
    """A short sample during and after training."""
    return "".join(predict(model, data.vocabularies, replace(Predict(), length=length, seed=seed))).rstrip("\n")

"""Configuration: one frozen dataclass per concern, named presets, and dotted, type-checked overrides.

    ModelConfig   what the network is (cell, sizes, dropout)
    DataConfig    where the text comes from and how it is split
    TrainConfig   how it is trained (batches, optimizer, schedule, clipping, intervals, seed, device)
    SampleConfig  how text is generated (prime, length, temperature, top-k)

Every field has a default and a help text (shown by `--help`). Overrides use dotted keys checked
against the field's type; unknown keys are errors:

    rnnkit charlm train --preset cpu-demo --train.learning_rate=3e-3 --model.cell=gru
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

from rnnkit.cells import ACTIVATIONS, CELLS
from rnnkit.errors import RnnkitError
from rnnkit.recurrent import IMPLEMENTATIONS


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and the help text the CLI shows for it."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ModelConfig:
    cell: str = option("lstm", "recurrent cell: rnn, lstm, gru, mut1, mut2 or mut3")
    nonlinearity: str = option("tanh", "g of the vanilla RNN: tanh, relu or identity")
    reset_after: bool = option(True, "GRU form: reset-after (cuDNN/torch, fused kernel) or reset-before (Cho et al., the notes)")
    forget_bias: float | None = option(None, "LSTM forget-gate bias at initialisation (None: torch's uniform init)")
    embedding_size: int = option(128, "size of the embedding table (one-hot × W is a lookup)")
    hidden_size: int = option(256, "hidden units per layer")
    num_layers: int = option(2, "stacked recurrent layers")
    dropout: float = option(0.1, "dropout on the embeddings, between layers and before the decoder")
    implementation: str = option("auto", "the recurrence's path: auto (rnnkit's Triton kernels on a GPU (standard cells up to batch 64), else torch's fused kernel, else the compiled loop, else the reference loop), triton, fused, compiled or reference")


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "UTF-8 text file to train on (empty: the bundled Tiny Shakespeare)")
    val_fraction: float = option(0.1, "the last fraction of the text held out for validation (nanoGPT's split)")
    token_cache: str = option("", "directory to encode the text into once and memory-map from (for corpora larger than RAM; empty: read into memory)")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = option(32, "B: contiguous streams the text is laid out as")
    seq_len: int = option(128, "T: steps of truncated backpropagation through time per chunk")
    carry_state: bool = option(True, "carry the hidden state into the next chunk (TBPTT); False resets it every chunk")
    max_steps: int = option(5000, "optimizer steps to train for")
    optimizer: str = option("adamw", "adam, adamw, sgd, rmsprop or adagrad")
    learning_rate: float = option(2e-3, "peak learning rate")
    weight_decay: float = option(0.01, "decoupled weight decay (adamw) or L2 penalty (the others)")
    momentum: float = option(0.0, "momentum for sgd and rmsprop")
    lr_schedule: str = option("cosine", "constant, cosine (to min_lr_fraction) or step (×0.1 at 50% and 75%)")
    warmup_steps: int = option(0, "steps of linear warm-up before the schedule")
    min_lr_fraction: float = option(0.1, "the cosine schedule ends at learning_rate × this")
    grad_clip: float = option(1.0, "τ: clip the gradient to this global norm (0 turns clipping off; the norm is still logged)")
    clip_mode: str = option("norm", "norm (τ·g/‖g‖ when ‖g‖ > τ, the notes' rule) or value (each element to ±τ, char-rnn's)")
    eval_interval: int = option(250, "evaluate on the validation text every this many steps (and at the end)")
    eval_tokens: int = option(0, "validation characters per evaluation (0: all of them)")
    checkpoint_interval: int = option(0, "also save last.pt every this many steps (0: at every evaluation)")
    checkpoint_minutes: float = option(10.0, "also save last.pt every this many minutes of wall time (0: off)")
    nan_policy: str = option("stop", "on a non-finite loss or gradient: stop (the last good checkpoint stays), or skip the update and halve the learning rate")
    sample_interval: int = option(0, "generate a short sample every this many steps (0: never)")
    seed: int = option(1337, "seed for initialisation, dropout and data order")
    device: str = option("cpu", "cpu, cuda, cuda:1, mps, ...")


@dataclass(frozen=True)
class SampleConfig:
    prime: str = option("\n", "text to warm the state up on before generating")
    length: int = option(500, "characters to generate")
    temperature: float = option(0.8, "divide the logits by this (0: argmax)")
    top_k: int = option(0, "draw only from the k most likely characters (0: all)")
    num_samples: int = option(1, "continuations to generate side by side")
    seed: int = option(0, "seed of the sampling generator: the same seed gives the same text")


@dataclass(frozen=True)
class RunConfig:
    """Everything a charlm run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU: for tests and --dry-run
    "tiny": {"model.embedding_size": 16, "model.hidden_size": 32, "model.num_layers": 1, "model.dropout": 0.0,
             "train.batch_size": 4, "train.seq_len": 16, "train.max_steps": 20, "train.eval_interval": 10, "train.eval_tokens": 2000},
    # the README's first command: a few minutes on 2 CPU cores, already writes recognisable Shakespeare
    "cpu-demo": {"model.hidden_size": 256, "model.num_layers": 2, "model.dropout": 0.1,
                 "train.batch_size": 32, "train.seq_len": 128, "train.max_steps": 1200, "train.eval_interval": 200, "train.sample_interval": 400,
                 "train.learning_rate": 3e-3},
    # the 10-minute, 2-core benchmark (bench/charlm_shakespeare.py)
    "cpu-10min": {"model.hidden_size": 256, "model.num_layers": 2, "model.dropout": 0.1,
                  "train.batch_size": 32, "train.seq_len": 128, "train.max_steps": 2700, "train.eval_interval": 450,
                  "train.learning_rate": 3e-3},
    # one GPU, about 10 minutes
    "gpu": {"model.embedding_size": 128, "model.hidden_size": 512, "model.num_layers": 3, "model.dropout": 0.5,
            "train.batch_size": 128, "train.seq_len": 256, "train.max_steps": 6000, "train.eval_interval": 500, "train.device": "cuda"},
}


def field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def parse_value(key: str, text: str, annotation: Any) -> Any:
    """'3e-3' -> 0.003 for a float field, and so on; a one-line error naming the key otherwise."""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if type(None) in allowed and text.lower() in ("none", "null", ""):
        return None
    for kind in (t for t in allowed if t is not type(None)):
        if kind is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            continue
        try:
            return kind(text)
        except ValueError:
            continue
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise RnnkitError(f"--{key}: expected {names}, got {text!r}")


def replace_fields(settings: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """A copy of the dataclass `settings` with `values` in place; strings are parsed by the field's type,
    and names the dataclass lacks are errors (`prefix` is how the CLI spells the key, e.g. 'train.')."""
    known = {f.name for f in fields(settings)}
    for name, value in values.items():
        if name not in known:
            raise RnnkitError(f"unknown setting --{prefix}{name} (see --help for the list)")
        annotation = field_type(type(settings), name)
        if isinstance(value, str) and annotation is not str:
            value = parse_value(prefix + name, value, annotation)
        settings = replace(settings, **{name: value})
    return settings


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """{'train.learning_rate': '3e-3', ...} -> a new RunConfig. Values may be strings (parsed) or typed."""
    sections = {f.name: getattr(config, f.name) for f in fields(config)}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in sections:
            raise RnnkitError(f"unknown setting --{key} (see --help for the list)")
        sections[section] = replace_fields(sections[section], {name: value}, f"{section}.")
    return replace(config, **sections)


CHOICES = {
    "model.cell": tuple(CELLS),
    "model.nonlinearity": tuple(ACTIVATIONS),
    "model.implementation": IMPLEMENTATIONS,
    "train.optimizer": ("adam", "adamw", "sgd", "rmsprop", "adagrad"),
    "train.lr_schedule": ("constant", "cosine", "step"),
    "train.clip_mode": ("norm", "value"),
    "train.nan_policy": ("stop", "skip"),
}
POSITIVE = ("model.embedding_size", "model.hidden_size", "model.num_layers", "train.batch_size", "train.seq_len", "train.eval_interval")
NON_NEGATIVE = ("train.max_steps", "train.learning_rate", "train.weight_decay", "train.momentum", "train.warmup_steps", "train.grad_clip",
                "train.eval_tokens", "train.checkpoint_interval", "train.checkpoint_minutes", "train.sample_interval", "train.min_lr_fraction")


def validate(config: RunConfig) -> RunConfig:
    """Check every named choice and range before anything runs or is written; return the config."""
    def value(key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(config, section), name)

    for key, allowed in CHOICES.items():
        if value(key) not in allowed:
            raise RnnkitError(f"--{key}: expected one of {', '.join(allowed)}, got {value(key)!r}")
    for key in POSITIVE:
        if value(key) < 1:
            raise RnnkitError(f"--{key}: must be at least 1, got {value(key)}")
    for key in NON_NEGATIVE:
        if value(key) < 0:
            raise RnnkitError(f"--{key}: must not be negative, got {value(key)}")
    if not 0.0 <= config.model.dropout < 1.0:
        raise RnnkitError(f"--model.dropout: must be in [0, 1), got {config.model.dropout}")
    if not 0.0 < config.data.val_fraction < 1.0:
        raise RnnkitError(f"--data.val_fraction: must be in (0, 1), got {config.data.val_fraction}")
    return config


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The defaults, then the preset, then the user's overrides; validated."""
    if preset is not None and preset not in PRESETS:
        raise RnnkitError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = apply_overrides(RunConfig(), PRESETS.get(preset, {}) if preset else {})
    return validate(apply_overrides(config, overrides or {}))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config from asdict output; keys this version does not know are errors."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise RnnkitError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    values = {}
    for name, value in data.items():
        annotation = field_type(cls, name)
        values[name] = from_dict(annotation, value) if dataclasses.is_dataclass(annotation) else value
    return cls(**values)

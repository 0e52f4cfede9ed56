"""The long-memory problems: which cells carry information across long gaps, on generated data.

    rnnkit memory train --data.problem=adding --data.seq_len=400 --model.cell=lstm --out runs/adding-lstm
    rnnkit memory train --data.problem=adding --data.seq_len=400 --model.cell=rnn  --out runs/adding-rnn
    rnnkit memory eval runs/adding-lstm/best.pt             # MSE beside the trivial baseline's 0.1667
    rnnkit diagnose runs/adding-lstm/best.pt                # the gradient through the 400 steps

The adding problem asks for the sum of two marked numbers among T (one answer per sequence, MSE); the
copy-memory problem asks to repeat 10 digits after T blanks (cross-entropy per step). Each result is
printed beside its trivial baseline (rnnkit/data/synthetic.py), so a cell that learned nothing shows it.
"""

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
from rnnkit.data.synthetic import MARKER, PROBLEMS, GeneratedBatches, baseline
from rnnkit.data.text import Progress
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.models.core import CoreConfig
from rnnkit.models.memory import MemoryModel

name = "memory"
description = "long-memory problems (adding, copy memory), each beside its trivial baseline: train, eval, predict"
unit, per = "sequences", "sequence"
predict_verb = "predict"
generates_data = True  # eval and diagnose draw the checkpoint's problem afresh; no --data
EVAL_CHUNK = 100  # sequences evaluated together


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    hidden_size: int = option(128, "hidden units per layer", at_least=1)
    num_layers: int = option(1, "stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(0.0, "dropout between layers", at_least=0, below=1)
    embedding_size: int = option(16, "copy: size of each symbol's embedding", at_least=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "not read: the problems are generated (a path given here is refused)")
    problem: str = option(
        "adding", "adding (sum of two marked numbers) or copy (repeat 10 digits after T blanks)", choices=PROBLEMS
    )
    seq_len: int = option(
        400,
        "T: adding's sequence length, or copy's blank gap (its sequences are T + 20 long)",
        at_least=2,
        at_most=10000,
    )
    val_size: int = option(1000, "generated validation sequences (one fixed draw)", at_least=1, at_most=10000)


@dataclass(frozen=True)
class RunConfig:
    """Everything a memory run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class PredictConfig:
    count: int = option(4, "generated sequences to answer, each printed with its target", at_least=1, at_most=10000)
    seed: int = option(0, "seed of the generated sequences", at_least=0, below=2**63)


Config, Predict = RunConfig, PredictConfig
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU: for tests and --dry-run
    "tiny": {
        "model.hidden_size": 16,
        "data.seq_len": 20,
        "data.val_size": 200,
        "train.batch_size": 16,
        "train.max_steps": 60,
        "train.eval_interval": 30,
        "train.learning_rate": 1e-2,
        "train.weight_decay": 0.0,
    },
    # adding at T = 400 on 2 CPU cores (`python bench/task_quality.py adding` runs it for each cell). Chrono
    # initialisation (LSTM, GRU) lets the gated cells hold the first marked number from the start; with a
    # forget bias of 1 instead the LSTM sat at the baseline for 8000 steps
    "adding-cpu": {
        "data.problem": "adding",
        "data.seq_len": 400,
        "model.hidden_size": 64,
        "model.chrono": 400,
        "train.batch_size": 32,
        "train.max_steps": 3000,
        "train.eval_interval": 250,
        "train.learning_rate": 3e-3,
        "train.weight_decay": 0.0,
        "train.max_minutes": 15.0,
    },
    "copy-cpu": {
        "data.problem": "copy",
        "data.seq_len": 100,
        "model.chrono": 120,
        "train.batch_size": 32,
        "train.max_steps": 3000,
        "train.eval_interval": 250,
        "train.learning_rate": 2e-3,
        "train.weight_decay": 0.0,
        "train.max_minutes": 15.0,
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class MemoryData:
    vocabularies: dict  # none: the symbols are the problem's
    problem: str
    seq_len: int
    source: str


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> MemoryData:
    data = config.data
    if data.path and not tiny:
        raise RnnkitError(f"--data: the {data.problem} problem is generated; drop --data {data.path}")
    return MemoryData({}, data.problem, data.seq_len, f"generated {data.problem} problem, T = {data.seq_len}")


def build_model(config: RunConfig, vocabularies: dict) -> MemoryModel:
    copy = config.data.problem == "copy"
    model = MemoryModel(config.model, MARKER + 1 if copy else 1, symbols=MARKER + 1 if copy else None)
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def validation(problem: str, size: int, seq_len: int, seed: int) -> GeneratedBatches:
    """`size` fixed sequences (rounded up to whole chunks of EVAL_CHUNK), for evaluation."""
    chunk = min(size, EVAL_CHUNK)
    return GeneratedBatches(problem, chunk, seq_len, seed, count=-(-size // chunk))


def batches(config: RunConfig, data: MemoryData) -> tuple[GeneratedBatches, GeneratedBatches]:
    train = GeneratedBatches(data.problem, config.train.batch_size, data.seq_len, config.train.seed)
    val = validation(data.problem, config.data.val_size, data.seq_len, seed=2**31 - 1)  # one fixed draw, seed apart
    return train, val


def problem_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Adding: MSE of the last step's answer (outputs (B, T, 1), targets (B,)). Copy: mean cross-entropy
    per step (outputs (B, T, 10), targets (B, T))."""
    if targets.dim() == 1:
        return F.mse_loss(outputs[:, -1, 0], targets)
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


def loss(model, batch, state) -> tuple[torch.Tensor, None, int]:
    return problem_loss(model(batch.inputs), batch.targets), None, len(batch.targets)


@torch.no_grad()
def evaluate(model, batches: GeneratedBatches, device="cpu", max_tokens: int = 0) -> dict:
    """The loss beside the trivial baseline; copy also the share of the 10 recalled digits that are right."""
    total, recalled, count = 0.0, 0.0, 0
    with evaluating(model):
        for k in range(len(batches)):  # a few sequences at a time: T may be long
            batch = batches[k]
            outputs, targets = model(batch.inputs.to(device)), batch.targets.to(device)  # (B, T, K), (B,) or (B, T)
            total += float(problem_loss(outputs, targets)) * len(targets)
            if batches.problem == "copy":
                recalled += float((outputs[:, -10:].argmax(-1) == targets[:, -10:]).double().mean()) * len(targets)
            count += len(targets)
    metrics = {"loss": total / count, "baseline": baseline(batches.problem, batches.seq_len), "sequences": count}
    if batches.problem == "copy":
        metrics["recall_accuracy"] = recalled / count
    return metrics


def describe(metrics: dict) -> str:
    what = "MSE" if "recall_accuracy" not in metrics else "cross-entropy"
    extra = f", digits recalled {metrics['recall_accuracy']:.1%}" if "recall_accuracy" in metrics else ""
    return f"{what} {metrics['loss']:.4f} (trivial baseline {metrics['baseline']:.4f}){extra} ({metrics['sequences']:,} sequences)"


def summary(loss_value: float) -> str:
    return f"{loss_value:.4f}"


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """A fresh draw of the checkpoint's problem (--data is not read: the problems are generated)."""
    config = config or RunConfig()
    return {
        f"generated {config.data.problem}, T = {config.data.seq_len}": validation(
            config.data.problem, config.data.val_size, config.data.seq_len, seed=2**31 - 2
        )
    }


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None):
    """Generated sequences' answers beside their targets."""
    config = config or RunConfig()
    batch = GeneratedBatches(config.data.problem, settings.count, config.data.seq_len, settings.seed, count=1)[0]
    with torch.no_grad(), evaluating(model):
        outputs = model(batch.inputs.to(next(model.parameters()).device)).cpu()  # (B, T, K)
    for b in range(settings.count):
        if config.data.problem == "adding":
            yield f"answer {float(outputs[b, -1, 0]):.4f}\ttarget {float(batch.targets[b]):.4f}\n"
        else:
            recalled = "".join(map(str, outputs[b, -10:].argmax(-1).tolist()))
            yield f"recalled {recalled}\ttarget {''.join(map(str, batch.targets[b, -10:].tolist()))}\n"


def dry_run(settings: PredictConfig) -> PredictConfig:
    return replace(settings, count=min(settings.count, 4))


def preview(model, data: MemoryData, config: RunConfig, length: int, seed: int) -> str:
    return "".join(predict(model, data.vocabularies, replace(PredictConfig(), count=2, seed=seed), config)).rstrip("\n")


def diagnosis(model, vocabularies: dict, config: RunConfig, seq_len: int | None = None):
    """For rnnkit diagnose: the core's inputs (B, T, D) on a generated batch, and the loss at its last step."""
    batch = GeneratedBatches(config.data.problem, 16, config.data.seq_len, seed=2**31 - 3, count=1)[0]
    model = model.cpu()
    x = model.features(batch.inputs).detach()  # (B, T, D)
    if config.data.problem == "adding":
        return x, lambda h: F.mse_loss(model.readout(h)[:, 0], batch.targets), "the answer at the last step"
    return x, lambda h: F.cross_entropy(model.readout(h), batch.targets[:, -1]), "the last recalled digit"

"""train(): the one training loop, truncated backpropagation through time as the notes describe it.

Each step takes chunk k of the B streams (rnnkit/data/batching.py), runs it forward from the state
the previous chunk ended in, backpropagates through those T steps only, clips the gradient by its
global norm (τ·∇/‖∇‖ when ‖∇‖ > τ), and steps the optimizer. The state's values cross the chunk
boundary; its graph does not.

The loop is task-agnostic: `model(inputs, state) -> (logits, state)` and a cross-entropy against
`targets`. It never checks the rank: under DDP the model comes wrapped and the batches sharded
(rnnkit/distributed.py), and `batches` gathers and scatters the carried state and averages the loss. It returns records and prints nothing; the CLI draws progress from `on_step`, and
`save(snapshot, is_best)` decides where checkpoints go. A snapshot holds everything resuming needs
(model, optimizer, step, RNG, carried state), and batch k is a pure function of k, so a resumed run
ends with the same weights as one that never stopped.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.errors import RnnkitError
from rnnkit.recurrent import detach, like, map_state, to_plain

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}


class TrainingDiverged(RnnkitError):
    """The loss or the gradient stopped being finite."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclass
class StepRecord:
    """What one optimizer step did; val_loss only on evaluation steps."""

    step: int  # steps done, this one included
    loss: float  # training loss of this chunk, nats per token
    grad_norm: float  # global gradient norm before clipping
    clipped: bool  # did clipping change the gradient?
    clip_fraction: float  # fraction of steps so far that clipped
    learning_rate: float
    tokens_per_second: float  # training tokens over training time so far (evaluation excluded)
    skipped: bool = False  # non-finite loss or gradient, update dropped (nan_policy="skip")
    val_loss: float | None = None
    is_best: bool = False


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer not in OPTIMIZERS:
        raise RnnkitError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    options = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if config.optimizer in ("sgd", "rmsprop"):
        options["momentum"] = config.momentum
    return OPTIMIZERS[config.optimizer](model.parameters(), **options)


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then constant, cosine (to min_lr_fraction) or step decay; a function of the step alone."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)  # 0 -> 1
    if config.lr_schedule == "constant":
        return peak
    if config.lr_schedule == "cosine":
        floor = peak * config.min_lr_fraction
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.lr_schedule == "step":
        return peak * (0.1 if progress >= 0.5 else 1.0) * (0.1 if progress >= 0.75 else 1.0)
    raise RnnkitError(f"unknown lr_schedule {config.lr_schedule!r}; choose constant, cosine or step")


def clip_gradients(parameters: list[nn.Parameter], config: TrainConfig) -> tuple[float, bool]:
    """Clip in place; return the pre-clip global norm and whether the gradient changed."""
    if config.clip_mode == "norm":
        norm = float(nn.utils.clip_grad_norm_(parameters, config.grad_clip or math.inf))  # τ·∇/‖∇‖ when ‖∇‖ > τ
        return norm, bool(config.grad_clip) and norm > config.grad_clip
    if config.clip_mode == "value":
        norm = float(nn.utils.clip_grad_norm_(parameters, math.inf))  # measure only
        largest = max(float(p.grad.abs().max()) for p in parameters if p.grad is not None)
        if config.grad_clip:
            nn.utils.clip_grad_value_(parameters, config.grad_clip)  # each element to ±τ: changes the direction
        return norm, bool(config.grad_clip) and largest > config.grad_clip
    raise RnnkitError(f"unknown clip_mode {config.clip_mode!r}; choose norm or value")


def train(model: nn.Module, batches, config: TrainConfig, evaluate: Callable[[nn.Module], float] | None = None,
          save: Callable[[dict, bool], None] | None = None, on_step: Callable[[StepRecord], None] | None = None,
          resume: dict | None = None) -> list[StepRecord]:
    """Train `model` on `batches` (batch k = batches[k], len(batches) per pass) for config.max_steps steps."""
    device = torch.device(config.device)
    optimizer = make_optimizer(model, config)
    parameters = [p for p in model.parameters() if p.requires_grad]
    step, state, best, clips, lr_scale = 0, None, math.inf, 0, 1.0
    if resume is None:
        torch.manual_seed(config.seed)  # dropout masks come from torch's RNG; snapshots save and restore it
    else:
        optimizer.load_state_dict(resume["optimizer"])
        saved = resume["train_state"]
        step, best, clips, lr_scale = resume["step"], saved["best_val_loss"], saved["clips"], saved.get("lr_scale", 1.0)
        restore_rng(saved["rng"])
        carried = saved["carried_state"]
        if carried is not None:  # saved for all B streams; this process takes its rows (all of them without DDP)
            template = getattr(model, "module", model).init_state(1)  # DDP keeps the model in .module
            state = batches.scatter_state(map_state(lambda t: t.to(device), like(template, carried)))
    records, tokens, train_seconds, last_save = [], 0, 0.0, time.monotonic()
    model.train()  # dropout on; evaluation and sampling restore this mode when they finish
    while step < config.max_steps:
        started = time.perf_counter()
        learning_rate = learning_rate_at(step, config) * lr_scale
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        inputs, targets = (t.to(device) for t in batches[step])  # each (B, T)
        if step % len(batches) == 0 or not config.carry_state:
            state = None  # a new pass over the streams (or the reset-state comparison) starts from zeros
        state = detach(state)  # TBPTT: keep the values, cut the graph, or backward runs to the data's start

        logits, state = model(inputs, state)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss_value = batches.mean(float(loss.detach()))  # the global batch's loss: every process sees the same value
        problem = None if math.isfinite(loss_value) else f"loss became {loss_value}"
        grad_norm, clipped = math.nan, False
        if problem is None:
            loss.backward()
            grad_norm, clipped = clip_gradients(parameters, config)
            problem = None if math.isfinite(grad_norm) else f"gradient norm became {grad_norm}"
        if problem is None:
            optimizer.step()
        elif config.nan_policy == "stop":
            raise TrainingDiverged(f"{problem} at step {step + 1}; stopping", step + 1)
        else:  # "skip": drop this update, halve the learning rate from now on, restart the state
            lr_scale, state = lr_scale * 0.5, None
        step += 1
        clips += clipped
        tokens += inputs.numel()
        train_seconds += time.perf_counter() - started

        record = StepRecord(step, loss_value, grad_norm, clipped, clips / step, learning_rate, tokens / train_seconds, skipped=problem is not None)
        if evaluate is not None and (step % config.eval_interval == 0 or step == config.max_steps):
            record.val_loss = evaluate(model)
            record.is_best = record.val_loss < best
            best = min(best, record.val_loss)
        records.append(record)
        # report before saving: a kill between the two leaves a log line the resumed run drops, never a gap
        stop = bool(on_step(record)) if on_step is not None else False  # on_step returns True to stop (e.g. on SIGTERM)
        due = (config.checkpoint_interval and step % config.checkpoint_interval == 0) or \
            (config.checkpoint_minutes and time.monotonic() - last_save >= 60 * config.checkpoint_minutes)
        if save is not None and (record.val_loss is not None or due or stop or step == config.max_steps):
            save(snapshot(model, optimizer, step, batches.gather_state(state), best, clips, lr_scale), record.is_best)
            last_save = time.monotonic()
        if stop:
            break
    return records


def rng_state() -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(saved: dict) -> None:
    torch.set_rng_state(saved["cpu"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer, step: int, state, best: float, clips: int, lr_scale: float) -> dict:
    """Everything resuming needs, as tensors and builtins only (loads with weights_only=True)."""
    carried = None if state is None else to_plain(detach(state))
    return {
        "model": getattr(model, "module", model).state_dict(),  # without DDP's "module." prefix
        "optimizer": optimizer.state_dict(),
        "step": step,
        "train_state": {"rng": rng_state(), "carried_state": carried, "best_val_loss": best, "clips": clips, "lr_scale": lr_scale},
    }

"""Optimisers, learning-rate schedules, gradient clipping and weight averaging, as train() uses them.

make_optimizer      adam, adamw, sgd, rmsprop, adagrad, and ntasgd (SGD that switches to averaging)
learning_rate_at    warm-up, then constant / cosine / step: a function of the step alone ("budget": of the
                    time budget used); "plateau"
                    is constant here and divided by plateau_factor whenever validation does not improve
                    (pytorch/examples' word LM divides by 4)
clip_gradients      by global norm (the notes' τ·∇/‖∇‖) or element-wise (char-rnn's)
WeightAverage       the running mean of the weights from some step on: averaged SGD (Polyak & Juditsky
                    1992), triggered non-monotonically as AWD-LSTM's NT-ASGD does (should_average)
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.errors import RnnkitError

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "ntasgd": torch.optim.SGD,
}


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer not in OPTIMIZERS:
        raise RnnkitError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    options = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if config.optimizer in ("sgd", "rmsprop", "ntasgd"):
        options["momentum"] = config.momentum
    return OPTIMIZERS[config.optimizer](model.parameters(), **options)


def learning_rate_at(step: int, config: TrainConfig, budget_used: float = 0.0) -> float:
    """Linear warm-up, then constant, cosine (to min_lr_fraction) or step decay, a function of the step alone;
    or, for "budget", cosine over the fraction of the max_minutes budget used so far (0 -> 1)."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)  # 0 -> 1
    if config.lr_schedule in ("constant", "plateau"):  # plateau: train() divides it on validation plateaus
        return peak
    if config.lr_schedule == "budget":  # planned on time: the run ends, annealed, when the budget does
        progress = min(1.0, budget_used)
    if config.lr_schedule in ("cosine", "budget"):
        floor = peak * config.min_lr_fraction
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.lr_schedule == "step":
        return peak * (0.1 if progress >= 0.5 else 1.0) * (0.1 if progress >= 0.75 else 1.0)
    raise RnnkitError(f"unknown lr_schedule {config.lr_schedule!r}; choose constant, cosine, step or plateau")


def clip_gradients(parameters: list[nn.Parameter], config: TrainConfig) -> tuple[float, bool]:
    """Clip in place; return the pre-clip global norm and whether the gradient changed."""
    if config.clip_mode == "norm":
        norm = float(nn.utils.clip_grad_norm_(parameters, config.grad_clip or math.inf))  # τ·∇/‖∇‖ when ‖∇‖ > τ
        return norm, bool(config.grad_clip) and norm > config.grad_clip
    if config.clip_mode == "value":
        norm = float(nn.utils.clip_grad_norm_(parameters, math.inf))  # measure only
        largest = max((float(p.grad.abs().max()) for p in parameters if p.grad is not None), default=0.0)
        if config.grad_clip:
            nn.utils.clip_grad_value_(parameters, config.grad_clip)  # each element to ±τ: changes the direction
        return norm, bool(config.grad_clip) and largest > config.grad_clip
    raise RnnkitError(f"unknown clip_mode {config.clip_mode!r}; choose norm or value")


def should_average(history: list[float], val_loss: float, patience: int) -> bool:
    """NT-ASGD's trigger: this validation loss is worse than the best of all evaluations but the last
    `patience` (non-monotone: a few bad evaluations in a row are allowed before averaging starts)."""
    return len(history) > patience and val_loss > min(history[:-patience])


class WeightAverage:
    """The mean of the parameters after every step since averaging began (mean_k = mean_{k-1} + (θ − mean_{k-1}) / k),
    or with `decay` d > 0 their exponential moving average (mean_k = mean_{k-1} + (1 − d_k)(θ − mean_{k-1}),
    d_k = min(d, (1 + k) / (10 + k)) so the first steps' weights do not linger, as TensorFlow's EMA).

    Evaluation and checkpoints use the mean (`applied`); the optimizer keeps stepping the raw weights.
    """

    def __init__(self, parameters: list[nn.Parameter], count: int = 0, decay: float = 0.0):
        self.parameters, self.decay = parameters, decay
        self.mean = [p.detach().clone() for p in parameters]  # starts at the current weights
        self.count = count

    @torch.no_grad()
    def update(self) -> None:
        self.count += 1
        weight = 1.0 - min(self.decay, (1 + self.count) / (10 + self.count)) if self.decay else 1.0 / self.count
        for mean, p in zip(self.mean, self.parameters):
            mean.add_(p.detach() - mean, alpha=weight)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model inside the block; the raw ones back after it."""
        raw = [p.detach().clone() for p in self.parameters]
        with torch.no_grad():
            for p, mean in zip(self.parameters, self.mean):
                p.copy_(mean)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.parameters, raw):
                    p.copy_(value)

    def state(self) -> dict:
        """For a checkpoint, whose model state_dict holds the mean: the raw weights and the count."""
        return {"count": self.count, "decay": self.decay, "raw": [p.detach().clone() for p in self.parameters]}

    @classmethod
    @torch.no_grad()
    def restore(cls, parameters: list[nn.Parameter], saved: dict) -> "WeightAverage":
        """The parameters hold the checkpoint's mean; put the raw weights back and keep the mean."""
        average = cls(parameters, saved["count"], float(saved.get("decay", 0.0)))
        for p, value in zip(parameters, saved["raw"]):
            p.copy_(value)
        return average

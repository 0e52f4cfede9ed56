"""train(): the one training loop for every task, truncated backpropagation through time as the notes describe it.

Each step takes batch k, runs the task's loss on it from the state the previous chunk ended in (for tasks
whose batches are contiguous streams, like the language models) or from zeros (batches of independent
sequences), backpropagates, clips the gradient by its global norm (τ·∇/‖∇‖ when ‖∇‖ > τ), and steps the
optimizer. Across a chunk boundary the state's values are carried; its graph is not.

The loop knows no task: `loss_fn(model, batch, state) -> (loss, state, count[, reported])` is the task's
(rnnkit/tasks/), loss a mean over the batch's `count` valid positions (padding excluded), and throughput is
counted in those units; a task whose objective adds penalties to its loss (the word LM's AR and TAR) returns
the plain loss as `reported`, which is what the records show. It never checks the rank either: under DDP
the model comes wrapped and the batches sharded (rnnkit/distributed.py), and `batches` gathers and scatters
the carried state and averages the loss. It returns records and prints nothing; the CLI draws progress from
`on_step`, and `save(snapshot, is_best)` decides where checkpoints go. A snapshot holds everything resuming
needs (model, optimizer, step, RNG, carried state, schedule and averaging state), and batch k is a pure
function of k, so a resumed run ends with the same weights as one that never stopped.
"""

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.data.batching import Listed, OneProcess
from rnnkit.distributed import ShardedBatches
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.optim import WeightAverage, clip_gradients, learning_rate_at, make_optimizer, should_average
from rnnkit.recurrent import detach, like, map_state, to_plain

LossFunction = Callable[[nn.Module, tuple, object], tuple[torch.Tensor, object, int]]


class TrainingDiverged(RnnkitError):
    """The loss or the gradient stopped being finite."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclass
class StepRecord:
    """What one optimizer step did; val_loss and val_metrics only on evaluation steps."""

    step: int  # steps done, this one included
    loss: float  # training loss of this batch, nats per unit (token, sentence, ...)
    grad_norm: float  # global gradient norm before clipping
    clipped: bool  # did clipping change the gradient?
    clip_fraction: float  # fraction of steps so far that clipped
    learning_rate: float
    units_per_second: float  # the task's units (tokens, sentences, ...) over training time so far (evaluation excluded)
    skipped: bool = False  # non-finite loss or gradient, update dropped (nan_policy="skip")
    val_loss: float | None = None
    val_metrics: dict | None = None  # the task's evaluation: loss and its own metrics
    is_best: bool = False
    averaging: bool = False  # NT-ASGD: are the weights being averaged (from this step on, or earlier)?


@dataclass
class Progress:
    """What the loop carries from step to step besides the model, optimizer and state; all of it in snapshots."""

    step: int = 0
    best_val_loss: float = math.inf
    best_score: float = -math.inf  # the best validation accuracy, when best_by="accuracy"
    clips: int = 0
    lr_scale: float = 1.0  # halved by nan_policy="skip", divided on plateaus by lr_schedule="plateau"
    val_history: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # seconds of training in the processes before this one (resumes), for lr_schedule="budget"


def carries_state(batches, config: TrainConfig) -> bool:
    """Does batch k+1 go on from batch k's state: streams (batches.carries_state) with carry_state on
    (StreamTrainConfig)? Any other batches are independent sequences, each from the zero state."""
    return batches.carries_state and getattr(config, "carry_state", False)


def check_arguments(model, batches, config, loss_fn, evaluate, save, on_step) -> None:
    """train()'s arguments, each named in rnnkit's own error before anything runs."""
    from rnnkit.config import check_field
    from rnnkit.devices import checked_device

    if not isinstance(model, nn.Module):
        raise ArgumentTypeError("model", f"expected a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ArgumentError("model", "has no trainable parameters")
    if not (hasattr(type(batches), "__len__") and hasattr(type(batches), "__getitem__")):
        raise ArgumentTypeError("batches", f"expected a sequence (len and batches[k]), got {type(batches).__name__}")
    if len(batches) == 0:
        raise ArgumentError("batches", "empty: there is nothing to train on")
    if not isinstance(config, TrainConfig):
        raise ArgumentTypeError("config", f"expected a TrainConfig, got {type(config).__name__}")
    for f in fields(config):
        check_field(f"config.{f.name}", getattr(config, f.name), f.metadata, flag=False)
    config.check()
    checked_device(config.device, "config.device")
    for name, function in (("loss_fn", loss_fn), ("evaluate", evaluate), ("save", save), ("on_step", on_step)):
        if function is not None and not callable(function):
            raise ArgumentTypeError(name, f"expected a function, got {type(function).__name__}")
    if loss_fn is None:
        raise ArgumentTypeError("loss_fn", "expected a function, got None")


def train(
    model: nn.Module,
    batches,
    config: TrainConfig,
    loss_fn: LossFunction,
    evaluate: Callable[[nn.Module], dict] | None = None,
    save: Callable[[dict, bool], None] | None = None,
    on_step: Callable[[StepRecord], bool | None] | None = None,
    resume: dict | None = None,
) -> list[StepRecord]:
    """Train `model` on `batches` (batch k = batches[k], len(batches) per pass: a task's batches, or any sequence,
    read as independent sequences) for config.max_steps steps
    (or config.max_minutes). `evaluate(model)` returns the task's metrics, "loss" among them."""
    check_arguments(model, batches, config, loss_fn, evaluate, save, on_step)
    if not isinstance(batches, (OneProcess, ShardedBatches)):  # a plain list: one process, independent sequences
        batches = Listed(batches)
    device = torch.device(config.device)
    optimizer = make_optimizer(model, config)
    parameters = [p for p in model.parameters() if p.requires_grad]
    run, state, average = Progress(), None, None
    if resume is None:
        torch.manual_seed(config.seed)  # dropout masks come from torch's RNG; snapshots save and restore it
    else:
        run, state, average = restore(resume, model, optimizer, parameters, batches, device)
    if average is None and config.ema_decay:
        average = WeightAverage(
            parameters, decay=config.ema_decay
        )  # from the first step: evaluation and checkpoints use it
    records, units, train_seconds, last_save, began = [], 0, 0.0, time.monotonic(), time.monotonic()
    model.train()  # dropout on; evaluation and sampling restore this mode when they finish
    while run.step < config.max_steps:
        started = time.perf_counter()
        learning_rate = learning_rate_at(run.step, config, budget_used(config, run, began, batches)) * run.lr_scale
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        batch = map_state(lambda t: t.to(device), batches[run.step])  # the task's record of tensors, each (B, ...)
        if not carries_state(batches, config) or run.step % len(batches) == 0:
            state = None  # independent sequences, a new pass over the streams, or the reset-state comparison: zeros
        state = detach(state)  # TBPTT: keep the values, cut the graph, or backward runs to the data's start

        loss, state, count, *reported = loss_fn(model, batch, state)
        share = batches.count_share(
            int(count)
        )  # 1 in one process; across processes, the weight that makes the global mean
        if share != 1.0:
            loss, reported = loss * share, [r * share for r in reported]
        optimizer.zero_grad(set_to_none=True)
        loss_value = batches.mean(
            float((reported[0] if reported else loss).detach())
        )  # the global batch's: every process sees the same
        problem = None if math.isfinite(loss_value) else f"loss became {loss_value}"
        grad_norm, clipped = math.nan, False
        if problem is None:
            loss.backward()
            grad_norm, clipped = clip_gradients(parameters, config)
            problem = None if math.isfinite(grad_norm) else f"gradient norm became {grad_norm}"
        if problem is None:
            optimizer.step()
            if average is not None:
                average.update()
        elif config.nan_policy == "stop":
            raise TrainingDiverged(f"{problem} at step {run.step + 1}; stopping", run.step + 1)
        else:  # "skip": drop this update, halve the learning rate from now on, restart the state
            run.lr_scale, state = run.lr_scale * 0.5, None
        run.step += 1
        run.clips += clipped
        units += int(count)
        train_seconds += time.perf_counter() - started

        final = run.step == config.max_steps or out_of_time(config, run, began, batches)
        record = StepRecord(
            run.step,
            loss_value,
            grad_norm,
            clipped,
            run.clips / run.step,
            learning_rate,
            units / train_seconds,
            skipped=problem is not None,
            averaging=average is not None,
        )
        if evaluate is not None and (run.step % config.eval_interval == 0 or final):
            with average.applied() if average is not None else nullcontext():
                record.val_metrics = evaluate(model)
            average = after_evaluation(record, run, config, parameters, average)
        records.append(record)
        # report before saving: a kill between the two leaves a log line the resumed run drops, never a gap
        stop = bool(on_step(record)) if on_step is not None else False  # on_step returns True to stop (e.g. on SIGTERM)
        due = (config.checkpoint_interval and run.step % config.checkpoint_interval == 0) or (
            config.checkpoint_minutes
            and batches.mean(float(time.monotonic() - last_save >= 60 * config.checkpoint_minutes)) > 0
        )  # all ranks agree
        if save is not None and (record.val_loss is not None or due or stop or final):
            save(
                snapshot(model, optimizer, run, batches, state, average, run.elapsed + time.monotonic() - began),
                record.is_best,
            )
            last_save = time.monotonic()
        if stop or final:
            break
    return records


def budget_used(config: TrainConfig, run: Progress, began: float, batches) -> float:
    """For lr_schedule="budget": the fraction of max_minutes spent, resumed processes' time included; under DDP
    the processes' mean, so that every one takes the same learning rate."""
    if config.lr_schedule != "budget":
        return 0.0
    return batches.mean((run.elapsed + time.monotonic() - began) / (60 * config.max_minutes))


def out_of_time(config: TrainConfig, run: Progress, began: float, batches) -> bool:
    """Has the max_minutes budget run out (for this process; for lr_schedule="budget", for the whole run)?
    Under DDP every process stops at the same step."""
    spent = time.monotonic() - began + (run.elapsed if config.lr_schedule == "budget" else 0.0)
    return bool(config.max_minutes) and batches.mean(float(spent >= 60 * config.max_minutes)) > 0


def after_evaluation(
    record: StepRecord, run: Progress, config: TrainConfig, parameters: list, average: WeightAverage | None
) -> WeightAverage | None:
    """Best so far, the plateau schedule's division, and NT-ASGD's trigger; returns the (maybe new) average."""
    record.val_loss = float(record.val_metrics["loss"])
    improved = record.val_loss < run.best_val_loss
    record.is_best = improved
    if config.best_by == "accuracy":
        if record.val_metrics.get("accuracy") is None:
            raise RnnkitError(
                "--train.best_by=accuracy: this task's evaluation reports no accuracy; pick best.pt by loss"
            )
        score = float(record.val_metrics["accuracy"])
        record.is_best, run.best_score = score > run.best_score, max(run.best_score, score)
    if config.lr_schedule == "plateau" and not improved and run.val_history:
        run.lr_scale /= config.plateau_factor  # pytorch/examples: no better than the best so far, divide
    if (
        config.optimizer == "ntasgd"
        and average is None
        and should_average(run.val_history, record.val_loss, config.averaging_patience)
    ):
        average = WeightAverage(parameters)  # from the next step on, evaluation and checkpoints use the mean
    run.best_val_loss = min(run.best_val_loss, record.val_loss)
    run.val_history.append(record.val_loss)
    return average


def rng_state() -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(saved: dict) -> None:
    torch.set_rng_state(saved["cpu"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def snapshot(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    run: Progress,
    batches,
    state,
    average: WeightAverage | None,
    elapsed: float = 0.0,
) -> dict:
    """Everything resuming needs, as tensors and builtins only (loads with weights_only=True). Under
    averaging, "model" holds the averaged weights (what eval and sampling use) and train_state the raw ones."""
    carried = None if state is None else to_plain(detach(batches.gather_state(state)))
    rngs = batches.gather_objects(rng_state())  # every process's RNG, so each resumes with its own masks
    plain = getattr(model, "module", model)  # without DDP's "module." prefix
    if average is None:
        weights = plain.state_dict()
    else:
        with average.applied():
            weights = {name: tensor.clone() for name, tensor in plain.state_dict().items()}
    return {
        "model": weights,
        "optimizer": optimizer.state_dict(),
        "step": run.step,
        "train_state": {
            "rng": rngs[0],
            "rng_per_process": rngs,
            "carried_state": carried,
            "best_val_loss": run.best_val_loss,
            "best_score": run.best_score,
            "clips": run.clips,
            "lr_scale": run.lr_scale,
            "val_history": list(run.val_history),
            "elapsed_seconds": float(elapsed),
            "averaging": None if average is None else average.state(),
        },
    }


def check_snapshot(resume: dict, model: nn.Module, config: TrainConfig, saved_config: TrainConfig, batches) -> None:
    """Raise RnnkitError if this run (its model, `config`, `batches`) cannot continue from `resume`, a snapshot
    trained with `saved_config`: called before a resumed run writes anything."""
    if config.optimizer != saved_config.optimizer:
        raise RnnkitError(
            f"it holds the state of --train.optimizer={saved_config.optimizer}; resume with that optimizer "
            f"(not {config.optimizer}): a resumed run continues the same one"
        )
    carried = (resume.get("train_state") or {}).get("carried_state")
    if carried is not None and carries_state(batches, config):
        expected, got = [], []
        map_state(lambda t: expected.append(tuple(t.shape)), model.init_state(config.batch_size))
        map_state(lambda t: got.append(tuple(t.shape) if isinstance(t, torch.Tensor) else None), carried)
        if got != expected:  # each of the B streams goes on from its own state: B must stay
            raise RnnkitError(
                f"it carries the state of {saved_config.batch_size} streams; resume with "
                f"--train.batch_size={saved_config.batch_size} (not {config.batch_size})"
            )
    parameters = [p for p in model.parameters() if p.requires_grad]
    rng, weights = (
        torch.get_rng_state(),
        [p.detach().to("cpu", copy=True) for p in parameters],
    )  # what the trial changes, put back
    # after it (kept on the CPU: a model that fills its GPU still resumes)
    try:  # a trial on a throwaway optimizer: a damaged snapshot fails here, before anything is written
        restore(resume, model, make_optimizer(model, config), parameters, batches, parameters[0].device)
    except RnnkitError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as error:
        raise RnnkitError(
            f"its training state does not fit this run ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        ) from None
    finally:
        torch.set_rng_state(rng)
        with torch.no_grad():
            for parameter, weight in zip(parameters, weights):
                parameter.copy_(weight)
    if resume["step"] >= config.max_steps:
        raise RnnkitError(
            f"it has trained {resume['step']} steps, as many as --train.max_steps={config.max_steps} asks; "
            "pass a larger --train.max_steps to train on"
        )


def restore(
    resume: dict, model: nn.Module, optimizer: torch.optim.Optimizer, parameters: list, batches, device
) -> tuple:
    """The loop's progress, carried state and average from a snapshot whose weights the model already holds."""
    optimizer.load_state_dict(resume["optimizer"])
    saved = resume["train_state"]
    for parameter in parameters:  # load_state_dict checks the groups, not the shapes of each parameter's moments
        for name, value in optimizer.state.get(parameter, {}).items():
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != parameter.shape:
                raise RnnkitError(
                    f"its optimizer's {name} has shape {tuple(value.shape)} "
                    f"where the parameter has {tuple(parameter.shape)}"
                )
    run = Progress(
        int(resume["step"]),
        float(saved["best_val_loss"]),
        float(saved.get("best_score", -math.inf)),
        int(saved["clips"]),
        float(saved.get("lr_scale", 1.0)),
        list(saved.get("val_history", [])),
        float(saved.get("elapsed_seconds", 0.0)),
    )
    mine = batches.this_process(saved.get("rng_per_process") or [])  # None when the number of processes changed
    restore_rng(mine if mine is not None else saved["rng"])
    state = None
    if (
        saved["carried_state"] is not None
    ):  # saved for all B streams; this process takes its rows (all of them without DDP)
        template = getattr(model, "module", model).init_state(1)  # DDP keeps the model in .module
        state = batches.scatter_state(map_state(lambda t: t.to(device), like(template, saved["carried_state"])))
    average = WeightAverage.restore(parameters, saved["averaging"]) if saved.get("averaging") else None
    return run, state, average

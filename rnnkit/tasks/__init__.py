"""The tasks rnnkit trains, one `Task` each (rnnkit/tasks/base.py says what a task owns), and loading them back.

TASKS maps each task's name to its one instance; the CLI, training, evaluation and `rnnkit.load` are built
from it and never name a task. A checkpoint names its task, so `from_checkpoint` rebuilds any of them.
"""

import torch
from torch import nn

from rnnkit.config import from_dict, validate
from rnnkit.data.vocab import vocab_from_dict
from rnnkit.errors import RnnkitError
from rnnkit.tasks import caption, charlm, classify, draw, frames, glimpse, memory, seq2seq, seqmnist, tagger, wordlm
from rnnkit.tasks.base import Task

TASKS: dict[str, Task] = {
    module.task.name: module.task
    for module in (charlm, wordlm, classify, seqmnist, memory, tagger, seq2seq, caption, frames, glimpse, draw)
}


def task_named(name: str) -> Task:
    if name not in TASKS:
        raise RnnkitError(f"unknown task {name!r}; rnnkit knows {', '.join(TASKS)}")
    return TASKS[name]


def load_weights(model: nn.Module, checkpoint: dict, where: str = "checkpoint") -> None:
    """The checkpoint's weights into `model`, or one line naming the first tensors that are missing,
    unexpected or of another shape (say, another --model.hidden_size), with both shapes."""
    expected, saved = model.state_dict(), checkpoint["model"]
    missing = [name for name in expected if name not in saved]
    unexpected = [name for name in saved if name not in expected]
    reshaped = [
        f"{name} {tuple(saved[name].shape)} where the model has {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in saved and saved[name].shape != tensor.shape
    ]
    problems = [
        f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
        for label, names in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped))
        if names
    ]
    if problems:
        raise RnnkitError(f"{where}: weights do not fit the model its config builds ({'; '.join(problems)})")
    try:
        model.load_state_dict(saved)
    except (RuntimeError, TypeError) as error:
        raise RnnkitError(
            f"{where}: weights do not fit the model's config: {str(error).strip().splitlines()[0][:300]}"
        ) from None


def check_finite(model: nn.Module, where: str) -> None:
    """Weights that are NaN or infinite can only produce nonsense: name the first such tensor."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise RnnkitError(f"{where}: weight {name} holds NaN or infinite values; use an earlier checkpoint")


STREAM_ONLY = ("seq_len", "carry_state", "eval_tokens")  # train settings every task had before only streams kept them


def saved_config(task: Task, saved: dict, where: str = "checkpoint"):
    """A checkpoint's (or config.json's) settings as the task's config; an older run's train section may hold
    the stream settings every task once had, which a task without streams reads as the nothing they were."""
    if not task.streams and isinstance(saved, dict) and isinstance(saved.get("train"), dict):
        saved = {**saved, "train": {k: v for k, v in saved["train"].items() if k not in STREAM_ONLY}}
    try:
        return validate(from_dict(task.Config, saved))
    except RnnkitError as error:
        raise RnnkitError(f"{where}: its config does not fit this rnnkit's {task.name} settings ({error})") from None


def check_vocabularies(task: Task, vocabularies: dict, where: str = "checkpoint") -> None:
    """The vocabularies a checkpoint holds against those its task declares (Task.vocabulary_kinds): one line
    naming the first that is missing, of another kind, or one the task never writes."""
    kinds = task.vocabulary_kinds
    for name, kind in kinds.items():
        if name not in vocabularies and name not in task.optional_vocabularies:
            held = ", ".join(map(repr, vocabularies)) or "none"
            raise RnnkitError(f"{where}: a {task.name} checkpoint must hold the vocabulary {name!r}; it holds {held}")
        if name in vocabularies and not isinstance(vocabularies[name], kind):
            expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise RnnkitError(
                f"{where}: vocabulary {name!r} should be a {expected}, got a {type(vocabularies[name]).__name__}"
            )
    unknown = [name for name in vocabularies if name not in kinds]
    if unknown:
        raise RnnkitError(f"{where}: a {task.name} checkpoint holds no vocabulary {unknown[0]!r} (another task's?)")


def from_checkpoint(
    checkpoint: dict, device: str = "cpu", where: str = "checkpoint"
) -> tuple[nn.Module, dict, object, Task]:
    """A checkpoint (rnnkit.checkpoint.load_checkpoint's) -> (model on `device`, vocabularies, config, task)."""
    if checkpoint["task"] not in TASKS:
        raise RnnkitError(f"{where}: a checkpoint of task {checkpoint['task']!r}, which this rnnkit does not know")
    task = TASKS[checkpoint["task"]]
    config = saved_config(task, checkpoint["config"], where)
    vocabularies = {}
    for name, data in checkpoint["vocabularies"].items():
        try:
            vocabularies[name] = vocab_from_dict(data)
        except RnnkitError as error:
            raise RnnkitError(f"{where}: vocabulary {name!r}: {error}") from None
    check_vocabularies(task, vocabularies, where)
    try:
        model = task.build_model(config, vocabularies)
    except (TypeError, ValueError, KeyError) as error:  # a config whose values are of the wrong type
        raise RnnkitError(f"{where}: its config cannot build a {task.name} model ({error})") from None
    load_weights(model, checkpoint, where)
    check_finite(model, where)
    return model.to(device), vocabularies, config, task

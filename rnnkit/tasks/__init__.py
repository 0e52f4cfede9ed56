"""The tasks rnnkit trains, one module each, and what every command needs from them.

A task module is about a page, like minGPT's projects/chargpt on its generic Trainer. It names

    name, description     the CLI's word for it and one line of help
    unit, per             what throughput counts ("tokens") and what the loss is per ("character")
    Config, presets       a frozen dataclass of sections (model, data, train), and named settings ("tiny" always)
    Predict, predict_verb the prediction command's settings and its name ("sample", "tag", ...)
    load_data(config, tiny, progress) -> data with .vocabularies, .source and the task's splits
    build_model(config, vocabularies) -> nn.Module, initialised from config.train.seed
    batches(config, data) -> (training batches, validation batches)   batch k a pure function of k
    loss(model, batch, state) -> (loss, state, count)                  a mean over count valid positions
    evaluate(model, batches, device, max_tokens) -> {"loss": ..., the task's metrics}
    describe(metrics) -> str                                           one line for people
    eval_data(path, vocabularies) -> {name: batches}                    what `eval --data PATH` scores
    predict(model, vocabularies, settings) -> Iterator[str]             text to write, as it is made
    encode_text(vocabularies, text) -> ids                               for diagnose (None: no text input)

and everything else — the loop (rnnkit/train.py), checkpoints, the CLI, DDP, resume, plots — is shared.
"""

from types import ModuleType

import torch
from torch import nn

from rnnkit.config import from_dict
from rnnkit.data.vocab import vocab_from_dict
from rnnkit.errors import RnnkitError
from rnnkit.tasks import charlm, wordlm

TASKS: dict[str, ModuleType] = {task.name: task for task in (charlm, wordlm)}


def task_named(name: str) -> ModuleType:
    if name not in TASKS:
        raise RnnkitError(f"unknown task {name!r}; rnnkit knows {', '.join(TASKS)}")
    return TASKS[name]


def load_weights(model: nn.Module, checkpoint: dict, where: str = "checkpoint") -> None:
    """The checkpoint's weights into `model`, or a one-line error when they do not fit (say, another --model.hidden_size)."""
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise RnnkitError(f"{where}: weights do not fit the model's config: {str(error).strip().splitlines()[0][:300]}") from None


def from_checkpoint(checkpoint: dict, device: str = "cpu", where: str = "checkpoint") -> tuple[nn.Module, dict, object, ModuleType]:
    """A checkpoint (rnnkit.checkpoint.load_checkpoint's) -> (model on `device`, vocabularies, config, task module)."""
    task = task_named(checkpoint["task"])
    try:
        config = from_dict(task.Config, checkpoint["config"])
    except RnnkitError as error:
        raise RnnkitError(f"{where}: its config does not fit this rnnkit's {task.name} settings ({error})") from None
    vocabularies = {name: vocab_from_dict(data) for name, data in checkpoint["vocabularies"].items()}
    model = task.build_model(config, vocabularies)
    load_weights(model, checkpoint, where)
    return model.to(device), vocabularies, config, task


def tiny_model(task: ModuleType) -> tuple[nn.Module, dict, object]:
    """An untrained model of the task's tiny preset on its built-in data, for --dry-run."""
    config = task.build_config("tiny")
    data = task.load_data(config, tiny=True)
    model = task.build_model(config, data.vocabularies)
    torch.manual_seed(0)
    return model, data.vocabularies, config

"""The tasks rnnkit trains, one module each, and what every command needs from them.

A task module is about a page, like minGPT's projects/chargpt on its generic Trainer. It names

    name, description     the CLI's word for it and one line of help
    unit, per             what throughput counts ("tokens") and what the loss is per ("character")
    Config, PRESETS       a frozen dataclass of sections (model, data, train), and named settings ("tiny" always)
    DataConfig            the data section (its `path` is the train command's --data)
    build_config(preset, overrides) -> Config                          defaults, then the preset, then the overrides
    Predict, predict_verb the prediction command's settings and its name ("sample", "tag", ...)
    load_data(config, tiny, progress) -> data with .vocabularies, .source and the task's splits
    build_model(config, vocabularies) -> nn.Module, initialised from config.train.seed
    batches(config, data) -> (training batches, validation batches)   batch k a pure function of k
    loss(model, batch, state) -> (loss, state, count[, reported])      a mean over count valid positions
    evaluate(model, batches, device, max_tokens) -> {"loss": ..., the task's metrics}
    describe(metrics) -> str                                           one line for people
    summary(loss) -> str                                               the best validation loss, for the final line
    eval_data(path, vocabularies, config) -> {name: batches}            what `eval --data PATH` scores
    predict(model, vocabularies, settings, config) -> Iterator[str]     text to write, as it is made
    dry_run(settings) -> settings                                       what `VERB --dry-run` predicts (a little)
    preview(model, data, config, length, seed) -> str                   shown during and after training
    encode_text(vocabularies, text) -> ids                              for diagnose (absent: no text input)
    details(metrics) -> str, figures(metrics) -> {name: PNG bytes}       optional: eval's table and plots
    Evaluate                                                            optional: eval's own settings (--beam_width),
                                                                        passed to evaluate(..., settings=)
    headline, generates_data, diagnosis(...)                            optional: the metric shown at the end of training
                                                                        ("accuracy"); no --data needed; diagnose's inputs
    headline_format                                                     optional: its format spec (".2%" unless said: "bleu"'s ".2f")

and everything else — the loop (rnnkit/train.py), checkpoints, the CLI, DDP, resume, plots — is shared.
"""

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from rnnkit.checkpoint import load_checkpoint
from rnnkit.config import check_field, from_dict, replace_fields, validate
from rnnkit.data.vocab import vocab_from_dict
from rnnkit.errors import RnnkitError
from rnnkit.tasks import caption, charlm, classify, draw, frames, glimpse, memory, seq2seq, seqmnist, tagger, wordlm

TASKS: dict[str, ModuleType] = {
    task.name: task
    for task in (charlm, wordlm, classify, seqmnist, memory, tagger, seq2seq, caption, frames, glimpse, draw)
}


def task_named(name: str) -> ModuleType:
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


def from_checkpoint(
    checkpoint: dict, device: str = "cpu", where: str = "checkpoint"
) -> tuple[nn.Module, dict, object, ModuleType]:
    """A checkpoint (rnnkit.checkpoint.load_checkpoint's) -> (model on `device`, vocabularies, config, task module)."""
    task = task_named(checkpoint["task"])
    try:
        config = validate(from_dict(task.Config, checkpoint["config"]))
    except RnnkitError as error:
        raise RnnkitError(f"{where}: its config does not fit this rnnkit's {task.name} settings ({error})") from None
    try:
        vocabularies = {name: vocab_from_dict(data) for name, data in checkpoint["vocabularies"].items()}
    except RnnkitError as error:
        raise RnnkitError(f"{where}: {error}") from None
    try:
        model = task.build_model(config, vocabularies)
    except (TypeError, ValueError, KeyError) as error:  # a config whose values are of the wrong type
        raise RnnkitError(f"{where}: its config cannot build a {task.name} model ({error})") from None
    load_weights(model, checkpoint, where)
    check_finite(model, where)
    return model.to(device), vocabularies, config, task


def tiny_model(task: ModuleType) -> tuple[nn.Module, dict, object]:
    """An untrained model of the task's tiny preset on its built-in data, for --dry-run."""
    config = task.build_config("tiny")
    data = task.load_data(config, tiny=True)
    return task.build_model(config, data.vocabularies), data.vocabularies, config


@dataclass
class Trained:
    """A checkpoint made ready to use from Python: its model (in eval mode), vocabularies, config and task."""

    model: nn.Module
    vocabularies: dict
    config: object
    task: ModuleType

    def predict(self, **settings) -> str:
        """The task's prediction as text, e.g. predict(prime="ROMEO:", length=200, temperature=0.8) for the
        language models; settings are the fields of task.Predict (checked as the CLI checks them)."""
        chosen = replace_fields(self.task.Predict(), settings)  # unknown names and wrong types are RnnkitErrors
        for name in settings:
            check_field(name, getattr(chosen, name), type(chosen).__dataclass_fields__[name].metadata)
        return "".join(self.task.predict(self.model, self.vocabularies, chosen, self.config))

    def evaluate(self, path: str | Path, device: str = "cpu") -> dict[str, dict]:
        """The task's metrics on the data at `path`, as `rnnkit TASK eval` computes them: {split: metrics}."""
        return {
            name: self.task.evaluate(self.model, batches, device)
            for name, batches in self.task.eval_data(str(path), self.vocabularies, self.config).items()
        }


def load(path: str | Path, device: str = "cpu") -> Trained:
    """Any task's checkpoint, safely loaded (weights_only), as a ready model with its vocabularies.

    trained = rnnkit.load("runs/mine/best.pt")
    print(trained.predict(prime="ROMEO:", length=200))
    """
    model, vocabularies, config, task = from_checkpoint(load_checkpoint(path), device, str(path))
    return Trained(model.eval(), vocabularies, config, task)

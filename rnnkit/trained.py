"""A trained model to use from Python: `rnnkit.load(path)` and what it returns.

    trained = rnnkit.load("runs/pos/best.pt")        # a checkpoint, a run directory or a bundle
    trained.tag(["the old man the boat ."])          # [Tagged(words=[...], tags=[...], probabilities=[...])]

Each task's `Trained` subclass (beside the task, in rnnkit/tasks/) names its methods for what the task does
(`sample`, `tag`, `classify`, `translate`, ...); each takes one item or a list and returns results as data,
one result for one item and a list for a list. Every argument is checked here, before the model runs, and a
bad one raises rnnkit's own ArgumentError (a ValueError) or ArgumentTypeError (a TypeError) naming it.
"""

import difflib
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.config import check_field, replace_fields
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError


def one_or_many(value: Any, argument: str, kind: type | tuple[type, ...], what: str) -> tuple[list, bool]:
    """(items, single): a lone item becomes a list of one; a list or tuple of items stays; anything else, or an
    empty list, is an error naming the argument."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, kinds):
        return [value], True
    if not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(argument, f"expected {what} or a list of them, got {type(value).__name__}")
    if not value:
        raise ArgumentError(argument, f"expected {what} or a list of them, got an empty list")
    for k, item in enumerate(value):
        if not isinstance(item, kinds):
            raise ArgumentTypeError(f"{argument}[{k}]", f"expected {what}, got {type(item).__name__}")
    return list(value), False


def one_or_stack(value: Any, argument: str, what: str, dims: int, empty: str) -> tuple[list, bool]:
    """one_or_many of `dims`-dimensional arrays or tensors, where a lone one of dims + 1 dimensions is a stack of
    them (its rows); an empty stack is the argument's error `empty`."""
    items, single = one_or_many(value, argument, (np.ndarray, torch.Tensor), what)
    if single and items[0].ndim == dims + 1:  # a stack: its items
        items, single = list(items[0]), False
        if not items:
            raise ArgumentError(argument, empty)
    return items, single


class Trained:
    """A trained model made ready to use: its model (in eval mode), vocabularies, config and task."""

    def __init__(self, model: nn.Module, vocabularies: dict, config, task, source: str = "", step: int | None = None):
        self.model, self.vocabularies, self.config, self.task, self.source = model, vocabularies, config, task, source
        self.step = step  # optimizer steps it was trained for, where known (a bundle's model card says it)

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<rnnkit {self.task.name} model{where}: {self.task.description}>"

    def settings(self, given: dict[str, Any], settings_class: type | None = None):
        """The task's prediction settings with `given` in place, each checked and named as Python spells it."""
        settings_class = settings_class or self.task.Predict
        known = {f.name: f for f in fields(settings_class)}
        for name in given:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {near[0]}? " if near else ""
                raise ArgumentTypeError(
                    name, f"not an argument here; {hint}the settings are {', '.join(known) or 'none'}"
                )
        chosen = replace_fields(settings_class(), given, spell=str, parse=False)  # a value of another type: named
        for name in given:
            check_field(name, getattr(chosen, name), known[name].metadata, flag=False)
        return chosen

    def predict_in_batches(self, inputs, settings, batch_size: int) -> list:
        """The task's predictions of `inputs` (a list or a tensor), `batch_size` items at a time, in order."""
        return [
            result
            for start in range(0, len(inputs), batch_size)
            for result in self.task.predict(self.model, self.vocabularies, inputs[start : start + batch_size], settings)
        ]

    def evaluate(self, path: str | Path, device: str = "cpu") -> dict[str, dict]:
        """The task's metrics on the data at `path`, as `rnnkit TASK eval` computes them: {split: metrics}.

        >>> trained.evaluate("held_out.txt")["held_out.txt"]["loss"]
        """
        from rnnkit.devices import checked_device

        device = checked_device(device, "device")
        self.model.to(device)
        splits = self.task.eval_data(str(path), self.vocabularies, self.config)
        return {name: self.task.evaluate(self.model, batches, device) for name, batches in splits.items()}

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """The model as a bundle to share: model.safetensors, config.json, the vocabularies and a model card.

        >>> trained.save("bundles/shakespeare")
        """
        from rnnkit.bundle import save_bundle

        return save_bundle(self, directory, overwrite=overwrite)


def load(path: str | Path, device: str = "cpu") -> Trained:
    """Any task's checkpoint, run directory (its best.pt) or bundle, safely loaded, as a ready model.

    trained = rnnkit.load("runs/mine")
    trained.sample("ROMEO:", length=200)
    """
    from rnnkit.checkpoint import load_any
    from rnnkit.devices import checked_device
    from rnnkit.tasks import from_checkpoint

    if not isinstance(path, (str, Path)):
        raise ArgumentTypeError("path", f"expected a file or directory name, got {type(path).__name__}")
    device = checked_device(device, "device")
    checkpoint, where = load_any(path)
    model, vocabularies, config, task = from_checkpoint(checkpoint, device, where)
    if not isinstance(task.trained, type) or not issubclass(task.trained, Trained):
        raise RnnkitError(f"{task.name} has no Python interface")
    return task.trained(model.eval(), vocabularies, config, task, where, checkpoint.get("step"))

"""The task contract: what a task owns, and the one default for everything else.

A task is a subclass of `Task` and one instance of it in rnnkit.tasks.TASKS. What it must say is what it
alone knows (minGPT's projects/chargpt on a Trainer that knows nothing of it):

    name, description, verb      the CLI's word for it, one line of help, its prediction command ("sample")
    unit, per                    what throughput counts ("tokens"), what the loss is per ("character")
    Model, Data                  frozen dataclasses: the model and data sections of its config
    Predict                      the prediction's settings (temperature, beam_width, ...)
    vocabulary_kinds             the vocabularies its data and checkpoints hold: {name: class (or classes)};
                                 optional_vocabularies names those a run may leave out. Loading checks them
                                 before anything is built from a checkpoint
    presets                      named settings, "tiny" always: rnnkit/presets/NAME.yaml, each preset in a
                                 --config file's format (or a dict set on the class)
    load_data(config, tiny)      -> data with .vocabularies, .source and the task's splits
    build_model(config, vocabularies) -> nn.Module, initialised from config.train.seed
    batches(config, data)        -> (training batches, validation batches); batch k a pure function of k
    loss(model, batch)           -> (loss, count[, reported]): a mean over count valid positions
                                    (a stream task: loss(model, batch, state) -> (loss, state, count))
    evaluate(model, batches, device) -> {"loss": ..., the task's metrics}
    eval_data(path, vocabularies, config) -> {name: batches}: what `eval --data PATH` scores
    predict(model, vocabularies, inputs, settings) -> Iterator[result]: typed results, batch by batch
    trained                      a rnnkit.trained.Trained subclass whose methods (tag, sample, ...) call predict

Optional capabilities are declared here with the answer "no" and turned on by a subclass, never looked
up with hasattr (a misspelt hook would turn its feature off without a word):

    streams = False              True: the training data are streams read by TBPTT; the train section then
                                 has seq_len, carry_state and eval_tokens (rnnkit.config.StreamTrainConfig),
                                 loss takes and returns the carried state, and load_data(config, tiny,
                                 progress) is told a callable to report the encoding of a long file to
    Evaluate = None              eval's own settings (beam_width, ...): evaluate then takes settings=None too
    headline = None              the metric shown beside the loss when training ends ("accuracy")
    draws_figures = False        figures(metrics) -> {file name: PNG bytes}, drawn by eval --out and training
    generates_data = False       eval needs no --data (the task draws its problem afresh), and
                                 diagnosis(model, vocabularies, config) -> (inputs, loss of the last step, what)
                                 gives diagnose the task's own data
    reads_text = False           the model reads text: encode_text(vocabularies, text) -> ids (N, ...), for
                                 diagnose and viz, and text_diagnosis(model, vocabularies, config, text, seq_len)
                                 -> rnnkit.diagnostics.Diagnosis, what diagnose measures on a text (by default a
                                 language model's: the loss of the token after each of a few windows of the ids)

Config building, describe/summary, the evaluation loop's skeleton, dry runs and previews have defaults
below; a task overrides one only where it has something of its own to say.

A base class rather than a typing.Protocol: the defaults need a home, and a capability is a class attribute
the base answers "no" to, so a misspelt override is a new name the contract test (tests/test_tasks.py) sees,
never a hook silently missing.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, make_dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import config as settings_module
from rnnkit.config import StreamTrainConfig, TrainConfig
from rnnkit.data.padded import IGNORE
from rnnkit.diagnostics import Diagnosis, next_token_diagnosis
from rnnkit.evaluate import evaluating
from rnnkit.recurrent import map_state
from rnnkit.trained import Trained


@dataclass(frozen=True)
class NoSettings:
    """The settings of a command that has none of its own."""


class PresetFile:
    """A task's presets, read from rnnkit/presets/NAME.yaml when first asked for (so `rnnkit --help` reads none)."""

    def __get__(self, task, cls) -> dict[str, dict[str, Any]]:
        return settings_module.read_presets(cls.name)


class Task:
    """One thing rnnkit learns; see the module's docstring for the contract."""

    name: ClassVar[str]
    description: ClassVar[str]
    verb: ClassVar[str] = "predict"
    unit: ClassVar[str] = "tokens"
    per: ClassVar[str] = "token"
    Model: ClassVar[type]
    Data: ClassVar[type]
    Predict: ClassVar[type] = NoSettings
    presets: ClassVar[dict[str, dict[str, Any]]] = PresetFile()  # rnnkit/presets/NAME.yaml, or a dict of its own
    Config: ClassVar[type]  # made from Model, Data and the train section when the class is defined
    vocabulary_kinds: ClassVar[dict[str, type | tuple[type, ...]]] = {}
    optional_vocabularies: ClassVar[frozenset[str]] = frozenset()
    trained: ClassVar[type] = Trained  # what rnnkit.load gives: the task's methods for Python (sample, tag, ...)

    streams: ClassVar[bool] = False
    Evaluate: ClassVar[type | None] = None
    headline: ClassVar[str | None] = None
    headline_format: ClassVar[str] = ".2%"
    draws_figures: ClassVar[bool] = False
    generates_data: ClassVar[bool] = False
    reads_text: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "Model" in cls.__dict__ or "Data" in cls.__dict__:  # a concrete task: its config is its sections
            train = StreamTrainConfig if cls.streams else TrainConfig
            cls.Config = make_dataclass(
                f"{cls.__name__}Config",
                [
                    (name, kind, field(default=kind()))
                    for name, kind in (("model", cls.Model), ("data", cls.Data), ("train", train))
                ],
                frozen=True,
            )
            cls.Config.__module__ = cls.__module__
            cls.Config.__doc__ = (
                f"Everything a {cls.name} run needs; its sections are what --section.key=value addresses."
            )

    def __repr__(self) -> str:
        return f"<rnnkit task {self.name}: {self.description}>"

    # --- configuration --------------------------------------------------------------------------
    def build_config(self, preset: str | None = None, overrides: dict[str, Any] | None = None):
        """The defaults, then the preset, then the overrides ({"train.learning_rate": 3e-3}); validated."""
        return settings_module.build_config(self.Config, self.presets, preset, overrides)

    # --- what every task must say -----------------------------------------------------------------
    def load_data(self, config, tiny: bool = False):
        raise NotImplementedError

    def build_model(self, config, vocabularies: dict) -> nn.Module:
        raise NotImplementedError

    def batches(self, config, data) -> tuple[Any, Any]:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch) -> tuple:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, batches, device="cpu") -> dict:
        raise NotImplementedError

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        raise NotImplementedError

    def predict(self, model: nn.Module, vocabularies: dict, inputs: list, settings) -> Iterator:
        raise NotImplementedError

    # --- shared defaults ----------------------------------------------------------------------------
    def step_loss(self, model: nn.Module, batch, state) -> tuple:
        """The training loop's view of loss(): (loss, state, count[, reported]) for every task."""
        if self.streams:
            return self.loss(model, batch, state)
        loss, count, *reported = self.loss(model, batch)
        return (loss, None, count, *reported)

    def describe(self, metrics: dict) -> str:
        """One line for people: the loss, and the headline metric where the task has one."""
        shown = "" if self.headline is None else f", {self.headline} {metrics[self.headline]:{self.headline_format}}"
        return f"loss {metrics['loss']:.4f} nats/{self.per}{shown}"

    def details(self, metrics: dict) -> str | None:
        """More than one line about the metrics (a per-class table), or None."""
        return None

    def figures(self, metrics: dict) -> dict[str, bytes]:
        """The metrics drawn ({"confusion.png": PNG bytes}); only where draws_figures."""
        return {}

    def summary(self, loss_value: float) -> str:
        """The best validation loss, for the final line of training."""
        return f"{loss_value:.4f} nats/{self.per}"

    def dry_run(self, settings):
        """What `VERB --dry-run` predicts with: by default the settings as given."""
        return settings

    def preview(self, model: nn.Module, data, config, length: int, seed: int) -> str:
        """Shown during and after training: by default nothing."""
        return ""

    def encode_text(self, vocabularies: dict, text: str, what: str = "text") -> torch.Tensor:
        """Where reads_text: the text as the ids the model reads, (N,) (a word's letters too: (N, 1 + L))."""
        raise NotImplementedError(f"{self.name} reads no text")

    def text_diagnosis(
        self, model: nn.Module, vocabularies: dict, config, text: str, seq_len: int, what: str = "text"
    ) -> Diagnosis:
        """Where reads_text, what rnnkit diagnose measures on a text (`what` names it in errors): by default a
        language model's (embedding -> core -> readout), the loss of the token after each of a few windows of
        seq_len of encode_text's ids."""
        return next_token_diagnosis(model, self.encode_text(vocabularies, text, what), seq_len, what)

    def diagnosis(self, model: nn.Module, vocabularies: dict, config) -> tuple:
        """Where generates_data: (the core's inputs (B, T, D), the loss at the last step as a function of h, what)."""
        raise NotImplementedError(f"{self.name} draws no data of its own")

    def tiny_model(self) -> tuple[nn.Module, dict, Any]:
        """An untrained model of the tiny preset on the built-in data, for --dry-run: (model, vocabularies, config)."""
        config = self.build_config("tiny")
        data = self.load_data(config, tiny=True)
        return self.build_model(config, data.vocabularies), data.vocabularies, config


def evaluation_batches(model: nn.Module, batches, device="cpu") -> Iterator:
    """The evaluation loop's skeleton: each batch on `device`, the model in eval mode, no gradients."""
    with torch.no_grad(), evaluating(model):
        for k in range(len(batches)):
            yield map_state(lambda field: field.to(device), batches[k])


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """−Σ_t log p(y_t) over the valid steps of (B, T, V) logits and (B, T) targets (IGNORE at padding): the sum a
    sequence task divides by its count of valid steps."""
    return F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum", label_smoothing=label_smoothing
    )


def search_name(beam_width: int) -> str:
    """How a decoder searched, as metrics lines say it: "greedy" or "beam 5"."""
    return "greedy" if beam_width == 1 else f"beam {beam_width}"

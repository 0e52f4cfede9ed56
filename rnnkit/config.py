"""Configuration: frozen dataclasses, named presets, and dotted, type-checked overrides, for every task.

A task's configuration is a frozen dataclass of sections (rnnkit/tasks/: `model`, `data`, `train`, ...),
each section a frozen dataclass whose fields carry a default, a help text and their own checks:

    learning_rate: float = option(2e-3, "peak learning rate", at_least=0)
    cell: str = option("lstm", "recurrent cell", choices=("rnn", "lstm", "gru"))

so `--help`, parsing and validation all come from the field itself, and this file knows no task. Overrides
use dotted keys checked against the field's type; unknown keys are errors:

    rnnkit charlm train --preset cpu-demo --train.learning_rate=3e-3 --model.cell=gru

TrainConfig lives here because the one training loop (rnnkit/train.py) reads it for every task.
"""

import dataclasses
import functools
import json
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError


def option(
    default: Any,
    help: str,
    choices: tuple | None = None,
    at_least: float | None = None,
    below: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
) -> Any:
    """A dataclass field with a default, the help text the CLI shows for it, and the checks validate() makes:
    one of `choices`, ≥ at_least, < below, > above, ≤ at_most."""
    checks = {"choices": choices, "at_least": at_least, "below": below, "above": above, "at_most": at_most}
    return field(default=default, metadata={"help": help, **{k: v for k, v in checks.items() if v is not None}})


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = option(32, "B: sequences (or contiguous streams) per batch", at_least=1)
    max_steps: int = option(5000, "optimizer steps to train for", at_least=0)
    max_minutes: float = option(
        0.0,
        "also stop after this many minutes of training (0: no limit); the last step is evaluated and saved",
        at_least=0,
    )
    optimizer: str = option(
        "adamw",
        "adam, adamw, sgd, rmsprop, adagrad, or ntasgd "
        "(SGD, then averaged once validation stops improving: AWD-LSTM's NT-ASGD)",
        choices=("adam", "adamw", "sgd", "rmsprop", "adagrad", "ntasgd"),
    )
    learning_rate: float = option(
        2e-3,
        "peak learning rate (at most 1e6: larger ones overflow the optimizers' float32 arithmetic)",
        at_least=0,
        at_most=1e6,
    )
    weight_decay: float = option(0.01, "decoupled weight decay (adamw) or L2 penalty (the others)", at_least=0)
    momentum: float = option(0.0, "momentum for sgd and rmsprop", at_least=0)
    lr_schedule: str = option(
        "cosine",
        "constant, cosine (to min_lr_fraction over max_steps), step (×0.1 at 50% and 75%), plateau (÷ plateau_factor "
        "whenever validation does not improve), or budget (cosine over the max_minutes budget, by elapsed time)",
        choices=("constant", "cosine", "step", "plateau", "budget"),
    )
    plateau_factor: float = option(
        4.0, "plateau schedule: divide the learning rate by this when validation does not improve", above=1
    )
    ema_decay: float = option(
        0.0,
        "keep an exponential moving average of the weights with this decay (0.999: about the last 1000 steps), "
        "which evaluation and the checkpoints use (0: off)",
        at_least=0,
        below=1,
    )
    averaging_patience: int = option(
        5,
        "ntasgd: start averaging when validation is worse than the best of all but the last this many evaluations",
        at_least=1,
    )
    warmup_steps: int = option(0, "steps of linear warm-up before the schedule", at_least=0)
    min_lr_fraction: float = option(0.1, "the cosine schedule ends at learning_rate × this", at_least=0, at_most=1)
    grad_clip: float = option(
        1.0, "τ: clip the gradient to this global norm (0 turns clipping off; the norm is still logged)", at_least=0
    )
    clip_mode: str = option(
        "norm",
        "norm (τ·g/‖g‖ when ‖g‖ > τ, the notes' rule) or value (each element to ±τ, char-rnn's)",
        choices=("norm", "value"),
    )
    eval_interval: int = option(
        250, "evaluate on the validation data every this many steps (and at the end)", at_least=1
    )
    best_by: str = option(
        "loss",
        "which validation figure picks best.pt: loss (the lowest) or accuracy (the highest; the classifiers "
        "and the tagger report it)",
        choices=("loss", "accuracy"),
    )
    checkpoint_interval: int = option(0, "also save last.pt every this many steps (0: at every evaluation)", at_least=0)
    checkpoint_minutes: float = option(
        10.0, "also save last.pt every this many minutes of wall time (0: off)", at_least=0
    )
    nan_policy: str = option(
        "stop",
        "on a non-finite loss or gradient: stop (the last good checkpoint stays), "
        "or skip the update and halve the learning rate",
        choices=("stop", "skip"),
    )
    sample_interval: int = option(0, "print a short prediction every this many steps (0: never)", at_least=0)
    seed: int = option(1337, "seed for initialisation, dropout and data order", at_least=0, below=2**63)
    device: str = option("cpu", "cpu, cuda, cuda:1, mps, ...")

    def check(self) -> None:
        """The checks that involve two fields."""
        if self.lr_schedule == "budget" and not self.max_minutes:
            raise RnnkitError("--train.lr_schedule=budget anneals over the time budget: give --train.max_minutes too")
        if self.ema_decay and self.optimizer == "ntasgd":
            raise RnnkitError("--train.ema_decay and --train.optimizer=ntasgd both average the weights: choose one")


@dataclass(frozen=True)
class StreamTrainConfig(TrainConfig):
    """The train section of a task whose data are streams read by truncated BPTT (the language models)."""

    seq_len: int = option(128, "T: steps of truncated backpropagation through time per chunk", at_least=1)
    carry_state: bool = option(True, "carry the hidden state into the next chunk (TBPTT); False resets it every chunk")
    eval_tokens: int = option(0, "validation tokens per evaluation during training (0: all of them)", at_least=0)


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


def replace_fields(settings: Any, values: dict[str, Any], prefix: str = "", spell=None, parse: bool = True) -> Any:
    """A copy of the dataclass `settings` with `values` in place; names the dataclass lacks are errors, and so is
    a value not of its field's type (an ArgumentTypeError), except that with `parse` a string is read by the
    field's type, as a command line gives it. `spell(name)` is how a message writes the key (default
    "--" + prefix + name, e.g. --train.learning_rate; Python's own name for a call's keyword)."""
    spell = spell or (lambda name: f"--{prefix}{name}")
    known = {f.name for f in fields(settings)}
    for name, value in values.items():
        if name not in known:
            raise RnnkitError(f"unknown setting {spell(name)} (see --help for the list)")
        annotation = field_type(type(settings), name)
        if parse and isinstance(value, str) and annotation is not str:
            value = parse_value(spell(name)[2:], value, annotation)
        elif not of_type(value, annotation):  # a typed value (a preset, a --config file, a notebook) of the wrong type
            expected = getattr(annotation, "__name__", annotation)
            raise ArgumentTypeError(spell(name), f"expected {expected}, got {type(value).__name__} {short(value)}")
        settings = replace(settings, **{name: float(value) if annotation is float else value})
    return settings


def apply_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """{'train.learning_rate': '3e-3', ...} -> a new config of the same class.

    Values may be strings (parsed) or typed.
    """
    sections = {f.name: getattr(config, f.name) for f in fields(config)}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in sections:
            raise RnnkitError(f"unknown setting --{key} (see --help for the list)")
        sections[section] = replace_fields(sections[section], {name: value}, f"{section}.")
    return replace(config, **sections)


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """A --config file (YAML or JSON, by its suffix; YAML reads JSON too) as {'section.key': value}: nested
    sections ({train: {learning_rate: 3e-3}}) or dotted keys ({"train.learning_rate": 3e-3})."""
    import yaml  # only when a file is given

    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(SETTINGS_FILE_BYTES + 1)
        if len(raw) > SETTINGS_FILE_BYTES:
            raise RnnkitError(f"{path}: larger than a settings file may be ({SETTINGS_FILE_BYTES:,} bytes)")
        text = raw.decode("utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as error:
        raise RnnkitError(f"{path}: cannot read ({error.strerror or error})") from None
    except RecursionError:
        raise RnnkitError(f"{path}: nested deeper than a settings file may be") from None
    except UnicodeDecodeError as error:
        raise RnnkitError(f"{path}: not UTF-8 at byte offset {error.start}") from None
    except json.JSONDecodeError as error:
        raise RnnkitError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno} ({error.msg})"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RnnkitError(
            f"{path}: not valid YAML{where} ({getattr(error, 'problem', None) or type(error).__name__})"
        ) from None
    if not isinstance(data, dict):
        raise RnnkitError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    check_size(data, path)
    return flattened(data)


SETTINGS_FILE_BYTES = 1 << 20  # a settings file is at most 1 MiB
SETTINGS_VALUES = 100_000  # and holds at most this many values, counted as if its YAML aliases were copied out


def check_size(data: Any, path: Path) -> None:
    """Refuse a settings file whose values, aliases expanded, number more than SETTINGS_VALUES (a "billion
    laughs" file is a few lines that name one list a billion times), counting no further than the limit."""
    count, pending = 0, [data]
    while pending:
        value = pending.pop()
        count += 1
        if count > SETTINGS_VALUES:
            raise RnnkitError(f"{path}: holds more than {SETTINGS_VALUES:,} values (its YAML aliases expanded)")
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def flattened(settings: dict[str, Any]) -> dict[str, Any]:
    """Nested sections ({train: {learning_rate: 3e-3}}) or dotted keys -> {'train.learning_rate': 3e-3}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{name}": inner for name, inner in value.items()})
        else:
            flat[str(key)] = value
    return flat


@functools.cache
def read_presets(task_name: str) -> dict[str, dict[str, Any]]:
    """A task's named presets, from rnnkit/presets/TASK.yaml (each a --config file's settings):
    {preset: {'section.key': value}}."""
    import yaml

    text = (resources.files("rnnkit") / "presets" / f"{task_name}.yaml").read_text(encoding="utf-8")
    return {name: flattened(settings) for name, settings in yaml.safe_load(text).items()}


def field_problem(value: Any, metadata: dict) -> str | None:
    """What is wrong with `value` by the checks option() attached to its field, or None."""
    if "choices" in metadata and value not in metadata["choices"]:
        return f"expected one of {', '.join(map(str, metadata['choices']))}, got {value!r}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if "at_least" in metadata and value < metadata["at_least"]:
        rule = f"must be at least {metadata['at_least']}" if metadata["at_least"] else "must not be negative"
        return f"{rule}, got {value}"
    for check, rule, holds in (
        ("below", "must be below", lambda limit: value < limit),
        ("at_most", "must be at most", lambda limit: value <= limit),
        ("above", "must be above", lambda limit: value > limit),
    ):
        if check in metadata and not holds(metadata[check]):
            return f"{rule} {metadata[check]}, got {value}"
    return None


def check_field(key: str, value: Any, metadata: dict, flag: bool = True) -> None:
    """The checks option() attached to a field, applied to its value; a one-line error naming --key (the CLI's
    spelling) or, with flag=False, the argument `key` as Python spells it."""
    problem = field_problem(value, metadata)
    if problem is not None:
        raise RnnkitError(f"--{key}: {problem}") if flag else ArgumentError(key, problem)


def validate(config: Any) -> Any:
    """Check every section's fields against their options' checks before anything runs or is written."""
    for section in fields(config):
        settings = getattr(config, section.name)
        for f in fields(settings):
            check_field(f"{section.name}.{f.name}", getattr(settings, f.name), f.metadata)
        if hasattr(settings, "check"):
            settings.check()
    return config


def build_config(
    config_class: type,
    presets: dict[str, dict[str, Any]],
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """The defaults, then the preset, then the user's overrides; validated."""
    if preset is not None and preset not in presets:
        raise RnnkitError(f"unknown preset {preset!r}; choose one of {', '.join(presets)}")
    config = apply_overrides(config_class(), presets.get(preset, {}) if preset else {})
    return validate(apply_overrides(config, overrides or {}))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config from asdict output; keys this version does not know are errors, keys it
    lacks take their defaults (a checkpoint from before a field existed)."""
    if not isinstance(data, dict):
        raise RnnkitError(f"{cls.__name__}: expected a dict of settings, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise RnnkitError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    values = {}
    for name, value in data.items():
        annotation = field_type(cls, name)
        if dataclasses.is_dataclass(annotation):
            values[name] = from_dict(annotation, value)
        elif not of_type(value, annotation):
            raise RnnkitError(
                f"{cls.__name__}.{name}: expected {getattr(annotation, '__name__', annotation)}, "
                f"got {type(value).__name__} {short(value)}"
            )
        else:
            values[name] = float(value) if annotation is float else value
    return cls(**values)


def short(value: Any) -> str:
    """A value as a message shows it: its repr cut to a line, never formatted whole (a YAML alias bomb's list
    holds billions of items by reference)."""
    shown = reprlib.Repr()
    shown.maxlist = shown.maxdict = shown.maxlevel = 3
    shown.maxstring = shown.maxother = 60
    text = shown.repr(value)  # each level cut to a few items, so this much is all that is ever formatted
    return text if len(text) <= 120 else text[:117] + "..."


def of_type(value: Any, annotation: Any) -> bool:
    """Is `value` what a field of type `annotation` holds? (an int is a float; a bool is not an int)"""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for kind in allowed:
        if kind is type(None) and value is None or kind is bool and isinstance(value, bool):
            return True
        if (
            kind in (int, float)
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (kind is float or isinstance(value, int))
        ):
            return True
        if kind is str and isinstance(value, str):
            return True
    return False

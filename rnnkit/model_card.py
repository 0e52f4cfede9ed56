"""The model card of a bundle (its README.md): what the model does, what it learned from, how well, and how.

Hugging Face's model cards (Mitchell et al. 2019, "Model Cards for Model Reporting") in miniature, written only
from what rnnkit knows for certain:

    the task         its name and one line of description; the model's settings and size; the vocabularies
    the data         config data.path, or the task's built-in data as its --data help names it
    evaluation       the validation figures of exactly these weights (the run's metrics.jsonl record at the
                     checkpoint's step), else the run's best validation loss by then (its train_state)
    training         `rnnkit TASK train` with the preset and flags that rebuild the config, and the steps done
    provenance       the date and rnnkit's version
"""

import datetime
import math
import re
import shlex
from dataclasses import asdict
from pathlib import Path

from torch import nn

from rnnkit.errors import RnnkitError
from rnnkit.runs import read_metrics


def flag_value(value) -> str:
    """A setting as its flag's value: true/false, none, a quoted string if the shell needs it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return shlex.quote(value) if isinstance(value, str) else repr(value)


def differences(base: dict, config: dict) -> list[str]:
    """The --section.key=value flags that turn the settings `base` into `config` (both asdict of a config)."""
    return [
        f"--{section}.{key}={flag_value(value)}"
        for section, values in config.items()
        for key, value in values.items()
        if base.get(section, {}).get(key) != value
    ]


def training_command(task, config) -> str:
    """`rnnkit TASK train` with whichever preset (or none) leaves the fewest flags to rebuild `config`."""
    settings = asdict(config)
    data_path = settings.get("data", {}).get("path")
    bases = {None: asdict(type(config)())}  # the defaults
    for preset in task.presets:
        try:
            bases[preset] = asdict(task.build_config(preset))
        except RnnkitError:  # a preset that does not validate here: not a candidate
            continue
    preset, base = min(bases.items(), key=lambda item: len(differences(item[1], settings)))
    flags = [] if preset is None else ["--preset", preset]
    if data_path:  # --data PATH rather than --data.path=PATH: how people write it
        flags += ["--data", shlex.quote(data_path)]
        base = {**base, "data": {**base["data"], "path": data_path}}
    return " ".join(["rnnkit", task.name, "train", *flags, *differences(base, settings)])


def vocabulary_line(name: str, data: dict) -> str:
    """- `text`: characters, 65 symbols"""
    kind = data.get("kind", "characters")
    size = {
        "characters": len(data.get("symbols", "")),
        "tokens": len(data.get("specials", [])) + len(data.get("tokens", [])),
    }
    return f"- `{name}`: {kind}" + (f", {size[kind]:,} symbols" if kind in size else "")


def data_line(task, config) -> str:
    path = asdict(config).get("data", {}).get("path")
    if path:
        return f"`{path}` (given to `--data`)."
    if task.generates_data:
        return "Problems the task generates afresh (no data file)."
    path_field = task.Data.__dataclass_fields__.get("path")
    help_text = path_field.metadata.get("help", "") if path_field is not None else ""
    built_in = re.search(r"empty: ([^)]*)\)", help_text)  # each task's --data help names what it reads without one
    return f"The task's built-in data: {built_in.group(1)}." if built_in else "The task's built-in data."


def evaluation_lines(task, step: int | None, train_state: dict | None, source: str | Path | None) -> list[str]:
    """The validation figures of these weights from the run's metrics.jsonl, else the run's best loss by then."""
    try:
        records = read_metrics(Path(source).parent / "metrics.jsonl") if source is not None and step is not None else []
    except (OSError, UnicodeDecodeError):  # an unreadable metrics file: the card goes without its figures
        records = []
    record = next((r for r in reversed(records) if r.get("step") == step and r.get("val_loss") is not None), None)
    history = (train_state or {}).get("val_history")
    if record is not None and history and history[-1] != record["val_loss"]:
        record = None  # a metrics.jsonl of another run beside a copied checkpoint: not these weights' figures
    if record is not None:
        metrics = {"loss": record["val_loss"]} | {
            key[len("val_") :]: value for key, value in record.items() if key.startswith("val_") and key != "val_loss"
        }
        rows = [
            f"| {name} | {value:.6g} |"
            for name, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        try:
            headline = [f"On the validation data, at step {step}: {task.describe(metrics)}.", ""]
        except (KeyError, TypeError, ValueError):  # a record from another version, without a metric describe names
            headline = [f"On the validation data, at step {step}:", ""]
        return [*headline, "| metric | value |", "| --- | --- |", *rows]
    best = (train_state or {}).get("best_val_loss")
    if isinstance(best, (int, float)) and math.isfinite(best):
        return [f"The run's best validation loss by step {step}: {task.summary(float(best))}."]
    return ["No validation figures were recorded with these weights."]


def model_card(task, config, vocabularies: dict, model: nn.Module, step: int | None, train_state, source) -> str:
    """README.md for a bundle of `model` (a `task` model built from `config`)."""
    from rnnkit import __version__

    parameters = sum(p.numel() for p in model.parameters())
    model_settings = [f"| {key} | {flag_value(value)} |" for key, value in asdict(config).get("model", {}).items()]
    trained_for = (
        f"{step:,} optimizer step{'' if step == 1 else 's'}" if step is not None else "an unrecorded number of steps"
    )
    lines = [
        f"# rnnkit {task.name} model",
        "",
        f"{task.description[:1].upper()}{task.description[1:]}.",
        "",
        f"Bundled by rnnkit {__version__} on {datetime.date.today().isoformat()}.",
        "",
        "## Use",
        "",
        "```python",
        "import rnnkit",
        "",
        'trained = rnnkit.load("THIS_DIRECTORY")',
        "```",
        "",
        f"or `rnnkit {task.name} {task.verb} THIS_DIRECTORY` and `rnnkit {task.name} eval THIS_DIRECTORY --data PATH`.",
        "",
        "## Model",
        "",
        f"{parameters:,} parameters, built from these settings (`--model.KEY=VALUE`):",
        "",
        "| setting | value |",
        "| --- | --- |",
        *model_settings,
        "",
        "Vocabularies:",
        "",
        *(vocabulary_line(name, vocabulary.to_dict()) for name, vocabulary in vocabularies.items()),
        "",
        "## Training data",
        "",
        data_line(task, config),
        "",
        "## Evaluation",
        "",
        *evaluation_lines(task, step, train_state, source),
        "",
        "## Training",
        "",
        f"Trained for {trained_for}, as",
        "",
        "```sh",
        training_command(task, config),
        "```",
        "",
        "## Files",
        "",
        "- `model.safetensors`: the weights (safetensors: no pickle, nothing in it can run)",
        "- `config.json`: the task, its settings, the step, and which tensor names are tied to which",
        "- `vocab-NAME.json`: each vocabulary (a byte-pair model's bytes in `vocab-NAME.model`)",
        "",
    ]
    return "\n".join(lines)

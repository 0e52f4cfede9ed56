"""`rnnkit memory predict`: fresh problems of the checkpoint's kind, each answer beside its target, a line each."""

from dataclasses import replace
from pathlib import Path
from typing import TextIO

from rnnkit.tasks.memory import DrawConfig as Options


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run answers at most 4 problems."""
    return replace(options, count=min(options.count, 4))


def run(trained, settings, options: Options, out: TextIO) -> None:
    task, model, vocabularies, config = trained.task, trained.model, trained.vocabularies, trained.config
    for solution in task.predict(model, vocabularies, task.problems(config, options.count, options.seed), settings):
        out.write(f"{solution}\n")
        out.flush()

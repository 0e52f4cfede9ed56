"""`rnnkit charlm sample` and `rnnkit wordlm sample`: text streamed as it is generated."""

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rnnkit.config import option


@dataclass(frozen=True)
class CharacterOptions:
    prime: str = option("\n", "text to warm the state up on before generating")


@dataclass(frozen=True)
class WordOptions:
    prime: str = option("", "words to warm the state up on (empty: the start of a line)")


def dry_run(options, scratch: Path):
    return options


def run(trained, settings, options, out: TextIO) -> None:
    """One continuation is streamed token by token; several come back whole, each under a header."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    if settings.num_samples == 1:
        for piece in task.stream(model, vocabularies, options.prime, settings):
            out.write(piece)
            out.flush()
        out.write("\n")
        return
    for b, generated in enumerate(task.predict(model, vocabularies, [options.prime], settings)):
        out.write(f"--- sample {b + 1} ---\n{generated.text}\n")

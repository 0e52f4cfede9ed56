"""`rnnkit charlm sample` and `rnnkit wordlm sample`: text streamed as it is generated; and the settings of the
language models' further commands (`next`, `score`, `pairs`: rnnkit/commands/lm.py runs them)."""

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rnnkit.config import option
from rnnkit.data.agreement import CONSTRUCTIONS


@dataclass(frozen=True)
class CharacterOptions:
    prime: str = option(
        "", "text to warm the state up on before generating (empty: a line break, or a character the text has)"
    )


@dataclass(frozen=True)
class WordOptions:
    prime: str = option("", "words to warm the state up on (empty: the start of a line)")


def dry_run(options, scratch: Path):
    return options


def run(trained, settings, options, out: TextIO) -> None:
    """One continuation is streamed token by token; several come back whole, each under a header."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    prime = options.prime or task.default_prime(vocabularies)
    if settings.num_samples == 1:
        for piece in task.stream(model, vocabularies, prime, settings):
            out.write(piece)
            out.flush()
        out.write("\n")
        return
    for b, generated in enumerate(task.predict(model, vocabularies, [prime], settings)):
        out.write(f"--- sample {b + 1} ---\n{generated.text}\n")


@dataclass(frozen=True)
class NextOptions:
    prime: str = option("", "the text before the token to predict (the whole of it is read; 'the' for --dry-run)")
    words: str = option(
        "",
        "comma-separated tokens to give the probability and rank of as the next one "
        "(words, or a character model's characters, where \\n, \\t and \\, are a line break, a tab and a comma)",
    )
    top: int = option(0, "list the N most likely next tokens (0: 10 when --words is not given, else none)", at_least=0)


@dataclass(frozen=True)
class ScoreOptions:
    pairs: str = option(
        "",
        "TSV file of minimal pairs: acceptable sentence, a tab, unacceptable sentence, optionally a tab and the "
        "construction; '-' reads standard input (--dry-run without it: a few generated pairs)",
    )
    out: str = option("", "also write pairs.tsv (each pair's scores and margin) and accuracy.png in this directory")


@dataclass(frozen=True)
class PairsOptions:
    constructions: str = option("all", f"comma-separated constructions to generate, or all: {', '.join(CONSTRUCTIONS)}")
    count: int = option(100, "pairs per construction", at_least=1, below=10**7)
    seed: int = option(0, "seed of the choice of words: the same seed gives the same pairs", at_least=0, below=2**63)
    out: str = option("", "the TSV file to write (without it: standard output)")

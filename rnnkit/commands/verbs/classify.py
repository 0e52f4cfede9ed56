"""`rnnkit classify predict`: one "label<TAB>probability" line per text, written batch by batch as the input comes."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from rnnkit.config import option
from rnnkit.data.datasets import tiny_sentiment
from rnnkit.data.text import check_input, input_batches
from rnnkit.errors import RnnkitError
from rnnkit.tasks.classify import words_of


@dataclass(frozen=True)
class Options:
    input: str = option("-", "file of texts to classify, one per line ('-': standard input, read as it comes)")
    text: str = option("", "one text to classify instead of --input")
    batch_size: int = option(64, "texts classified together", at_least=1)


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no input given classifies one generated text instead of waiting for stdin."""
    return options if options.text or options.input != "-" else replace(options, text=tiny_sentiment(1)[0][0])


def run(trained, settings, options: Options, out: TextIO) -> None:
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    check_input(options.input, options.text)
    for batch in input_batches(options.input, options.text, options.batch_size):
        for text, where in batch:
            if not text.strip():
                raise RnnkitError(f"{where}: an empty line (one text per line; there is nothing to classify)")
        texts = [words_of(text, trained.config.data) for text, _ in batch]  # each as training read its texts
        for result in task.predict(model, vocabularies, texts, settings):
            out.write(f"{result.label}\t{result.probability:.4f}\n")
        out.flush()

"""`rnnkit tagger tag`: sentences read line by line (a file, standard input as it comes, or --text), written as
word/TAG pairs or CoNLL-U, batch by batch."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from rnnkit.config import option
from rnnkit.data.conllu import to_conllu
from rnnkit.data.datasets import tiny_tagged
from rnnkit.data.text import check_input, input_batches
from rnnkit.errors import RnnkitError


@dataclass(frozen=True)
class Options:
    input: str = option(
        "-", "file of sentences to tag, one per line, words split on spaces ('-': standard input, read as it comes)"
    )
    text: str = option("", "one sentence to tag instead of --input")
    format: str = option(
        "pairs", "pairs (word/TAG ...) or conllu (10 columns, UD's format)", choices=("pairs", "conllu")
    )


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no input given tags one generated sentence instead of waiting for standard input."""
    if options.text or options.input != "-":
        return options
    return replace(options, text=" ".join(tiny_tagged(1)[0][0]))


def run(trained, settings, options: Options, out: TextIO) -> None:
    """One line of word/TAG pairs per input line (or a CoNLL-U sentence), written batch by batch as the input comes."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    check_input(options.input, options.text)
    done = 0
    for batch in input_batches(options.input, options.text, settings.batch_size):
        for line, where in batch:
            if not line.split():
                raise RnnkitError(
                    f"{where}: an empty line (one sentence per line, words split on spaces; there is nothing to tag)"
                )
        sentences = [line.split() for line, _ in batch]
        for k, tagged in enumerate(task.predict(model, vocabularies, sentences, settings)):
            if options.format == "conllu":
                out.write(to_conllu(tagged.words, tagged.tags, done + k + 1))
            else:
                out.write(" ".join(f"{w}/{t}" for w, t in zip(tagged.words, tagged.tags)) + "\n")
            out.flush()
        done += len(batch)

"""`rnnkit seq2seq translate` (also `rnnkit translate`): one translation per input line, batch by batch as the
input comes, and with --attention-png each sentence's attention drawn as DIR/sentence-N.png."""

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from rnnkit.config import option
from rnnkit.data.datasets import tiny_parallel
from rnnkit.data.text import check_input, input_batches
from rnnkit.data.vocab import END, UNK
from rnnkit.errors import ArgumentError, RnnkitError
from rnnkit.files import atomic_write, staged_output
from rnnkit.tasks.seq2seq import source_ids


@dataclass(frozen=True)
class Options:
    input: str = option("-", "file of source sentences, one per line ('-': standard input, read as it comes)")
    text: str = option("", "one sentence to translate instead of --input")
    batch_size: int = option(64, "sentences translated together", at_least=1)
    attention_png: str = option(
        "", "also draw each sentence's attention weights as DIR/sentence-N.png (DIR must hold none yet)"
    )


def dry_run(options: Options, scratch: Path) -> Options:
    """--dry-run with no input given translates one generated sentence instead of waiting for stdin."""
    return options if options.text or options.input != "-" else replace(options, text=tiny_parallel(1)[0][0])


def source_tokens(vocabularies: dict, sentence: str) -> list[str] | str:
    """The sentence's tokens as the model reads them (<unk> for unknown ones), or why it cannot be translated."""
    try:
        return vocabularies["source"].decode(source_ids(vocabularies, sentence).tolist())
    except ArgumentError as error:
        return error.problem


def run(trained, settings, options: Options, out: TextIO) -> None:
    """One output line for every input line: a line that cannot be translated (empty, or every token unknown)
    gets an empty line and a warning naming it; a sentence given by --text is refused instead. How many tokens
    the model did not know (read as <unk>) is said once at the end."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    check_input(options.input, options.text)
    if model.attention is None and options.attention_png:
        raise RnnkitError("--attention-png: this model has no attention (--model.attention=none) to draw")
    unknown, tokens = 0, 0
    # no pictures left behind by a failure
    with staged_output(options.attention_png, "sentence-*.png", "--attention-png") as stage:
        done = 0
        for batch in input_batches(options.input, options.text, options.batch_size):
            sources = [source_tokens(vocabularies, line) for line, _ in batch]  # each line checked first
            for (_, where), source in zip(batch, sources):
                if isinstance(source, str) and options.text:
                    raise RnnkitError(f"{where}: {source}")
                if isinstance(source, str):
                    print(f"rnnkit: warning: {where}: {source}; its output line is empty", file=sys.stderr)
                else:
                    unknown, tokens = unknown + source.count(UNK), tokens + len(source)
            good = [k for k, source in enumerate(sources) if not isinstance(source, str)]
            translations = dict(zip(good, task.predict(model, vocabularies, [batch[k][0] for k in good], settings)))
            for k in range(len(batch)):
                translation = translations.get(k)
                if stage is not None and translation is not None:
                    from rnnkit.plots import attention_png

                    picture = attention_png(
                        translation.attention, sources[k], [*translation.tokens, END], translation.text[:80]
                    )
                    atomic_write(
                        stage / f"sentence-{done + k + 1}.png", lambda handle, data=picture: handle.write(data)
                    )
                out.write(("" if translation is None else translation.text) + "\n")
                out.flush()
            done += len(batch)
    if unknown:
        name = "--text" if options.text else "standard input" if options.input == "-" else options.input
        print(
            f"rnnkit: note: {name}: {unknown} of {tokens} tokens unknown to the model, read as <unk>", file=sys.stderr
        )

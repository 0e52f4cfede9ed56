"""CoNLL-U, the Universal Dependencies format: sentences of tagged words, read strictly and written back.

    # sent_id = 1                     comments: skipped (a written file carries sent_id and text)
    # text = Don't go.
    1-2   Don't   _    _     _  ...   a multiword token's range: skipped, its words follow
    1     Do      do   AUX   VBP ...  a word: ten tab-separated columns, ID FORM LEMMA UPOS XPOS ...
    2     n't     not  PART  RB  ...
    3     go      go   VERB  VB  ...
    3.1   gone    _    _     _   ...  an empty node (enhanced graphs): skipped
                                      a blank line ends the sentence

The reader keeps FORM, UPOS and XPOS of the words. Every problem (a line without ten columns, an ID that
is not a number, range or decimal, words numbered out of order, an empty sentence, an empty field or a
FORM that begins or ends with whitespace) is an RnnkitError naming the file and line. A space inside FORM or
LEMMA ("New York") is read and written back as it is, as UD v2 allows. The `conllu` package was not used: it names
no line in its errors, reads lines of fewer than ten columns without complaint and also splits columns
on runs of spaces. A file whose name ends in .gz is read decompressed.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import text_lines
from rnnkit.errors import RnnkitError

COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
WORD_ID, RANGE_ID, EMPTY_ID = (
    re.compile(r"[1-9][0-9]*"),
    re.compile(r"[1-9][0-9]*-[1-9][0-9]*"),
    re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*"),
)


@dataclass(frozen=True)
class TaggedSentence:
    words: list[str]
    upos: list[str]
    xpos: list[str]
    where: str  # "file:line" of the sentence's first line, for messages
    lines: tuple[int, ...] = ()  # each word's line in the file (empty: not read from a file)

    def word_where(self, k: int) -> str:
        """ "file:line" of word k, for messages (the sentence's first line when the words' lines are not known)."""
        return f"{self.where.rsplit(':', 1)[0]}:{self.lines[k]}" if self.lines else self.where


def word_fields(line: str, where: str, expected_id: int) -> tuple[str, str, str] | None:
    """(FORM, UPOS, XPOS) of a word line; None for a range or an empty node; an error for anything else."""
    fields = line.split("\t")
    if len(fields) != len(COLUMNS):
        raise RnnkitError(
            f"{where}: {len(fields)} tab-separated column(s); a CoNLL-U word line has 10 ({' '.join(COLUMNS)})"
        )
    token_id = fields[0]
    if RANGE_ID.fullmatch(token_id) or EMPTY_ID.fullmatch(token_id):
        return None
    if not WORD_ID.fullmatch(token_id):
        raise RnnkitError(
            f"{where}: ID {token_id!r} is not a word number (1, 2, ...), a range (1-2) or a decimal (8.1)"
        )
    if int(token_id) != expected_id:
        raise RnnkitError(
            f"{where}: word ID {token_id} where {expected_id} comes next "
            "(words are numbered 1, 2, ... in each sentence)"
        )
    for name, value in zip(COLUMNS, fields):
        if value == "":
            raise RnnkitError(f"{where}: column {name} is empty (CoNLL-U writes _ for a missing value)")
    form = fields[1]
    if form.strip() != form:  # UD v2 allows a space inside FORM ("New York"), never at either end
        raise RnnkitError(f"{where}: FORM {form!r} begins or ends with whitespace, which CoNLL-U does not allow")
    return form, fields[3], fields[4]


def parse(lines: Iterable[str], name: str) -> Iterator[TaggedSentence]:
    """Sentences from CoNLL-U lines, as they are read; `name` is the file named in messages."""
    words, upos, xpos, numbers, start, line_number = [], [], [], [], 0, 0
    for line_number, line in enumerate(lines, start=1):
        where = f"{name}:{line_number}"
        if not line.strip():
            if start:
                if not words:
                    raise RnnkitError(
                        f"{name}:{start}: an empty sentence (comments or multiword ranges, but no word lines)"
                    )
                yield TaggedSentence(words, upos, xpos, f"{name}:{start}", tuple(numbers))
            words, upos, xpos, numbers, start = [], [], [], [], 0
            continue
        start = start or line_number
        if line.startswith("#"):
            continue
        fields = word_fields(line, where, len(words) + 1)
        if fields is not None:
            words.append(fields[0])
            upos.append(fields[1])
            xpos.append(fields[2])
            numbers.append(line_number)
    if start and words:
        yield TaggedSentence(words, upos, xpos, f"{name}:{start}", tuple(numbers))
    elif start:
        raise RnnkitError(f"{name}:{start}: an empty sentence (comments or multiword ranges, but no word lines)")


def read_conllu(path: str | Path) -> list[TaggedSentence]:
    """Every sentence of a CoNLL-U file; an empty file, or one without sentences, is an error."""
    path = Path(path)
    sentences = list(parse(text_lines(path), str(path)))
    if not sentences:
        raise RnnkitError(f"{path}: no CoNLL-U sentences in the file")
    return sentences


def to_conllu(words: list[str], tags: list[str], sent_id: str | int, xpos: list[str] | None = None) -> str:
    """One sentence as CoNLL-U: sent_id and text comments, ten columns per word (unknown ones _), a blank line."""
    if len(words) != len(tags) or (xpos is not None and len(xpos) != len(words)):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    rows = [f"# sent_id = {sent_id}", f"# text = {' '.join(words)}"]
    for k, (word, tag) in enumerate(zip(words, tags), start=1):
        rows.append("\t".join([str(k), word, "_", tag, xpos[k - 1] if xpos else "_", "_", "_", "_", "_", "_"]))
    return "\n".join(rows) + "\n\n"

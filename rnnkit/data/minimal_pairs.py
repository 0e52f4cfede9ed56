"""Minimal pairs: two sentences that differ where grammar decides, and a language model's verdict on them.

A language model prefers the acceptable sentence of a pair when it gives it the higher total log-probability
(Linzen et al. 2016, Marvin & Linzen 2018; the CS224n notes' "the writer of the books is / are"). A file of
pairs is tab-separated, one pair a line:

    acceptable sentence <TAB> unacceptable sentence [<TAB> construction]

A first line such as "good<TAB>bad<TAB>construction" or BLiMP's "sentence_good<TAB>sentence_bad" is a header
and is skipped; so are blank lines. Every other problem is an error naming the file and line.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rnnkit.data.text import input_lines
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError

UNNAMED = "unnamed"  # the construction of a pair whose line names none
HEADER_GOOD = ("good", "acceptable", "grammatical", "good_sentence", "sentence_good")
HEADER_BAD = ("bad", "unacceptable", "ungrammatical", "bad_sentence", "sentence_bad")


@dataclass(frozen=True)
class MinimalPair:
    """An acceptable sentence, the unacceptable one it is paired with, the construction they test, and where the
    pair came from (file:line, for messages)."""

    good: str
    bad: str
    construction: str = UNNAMED
    where: str = ""


def as_pairs(pairs) -> list[MinimalPair]:
    """A Python argument's pairs as MinimalPairs: one pair or a list of them, each a MinimalPair or a tuple
    (acceptable, unacceptable[, construction]); a pair that names no place is named by its index (pairs[3])."""
    if isinstance(pairs, MinimalPair) or (isinstance(pairs, tuple) and all(isinstance(p, str) for p in pairs)):
        pairs = [pairs]  # one pair
    if not isinstance(pairs, (list, tuple)):
        raise ArgumentTypeError("pairs", f"expected a pair or a list of them, got {type(pairs).__name__}")
    if not pairs:
        raise ArgumentError("pairs", "expected a pair or a list of them, got an empty list")
    checked = []
    for k, pair in enumerate(pairs):
        if isinstance(pair, tuple) and 2 <= len(pair) <= 3 and all(isinstance(part, str) for part in pair):
            pair = MinimalPair(pair[0], pair[1], pair[2] if len(pair) == 3 else UNNAMED)
        if not isinstance(pair, MinimalPair):
            raise ArgumentTypeError(f"pairs[{k}]", "expected (acceptable, unacceptable[, construction]) as strings")
        checked.append(pair if pair.where else replace(pair, where=f"pairs[{k}]"))
    return checked


def is_header(columns: list[str]) -> bool:
    """A first line naming its columns: good/bad, acceptable/unacceptable, sentence_good/sentence_bad, ..."""
    names = [column.strip().lower() for column in columns[:2]]
    return len(names) == 2 and names[0] in HEADER_GOOD and names[1] in HEADER_BAD


def parse_pair(line: str, where: str) -> MinimalPair:
    """One line's pair; a line of one column or more than three, or an empty sentence, is an error naming it."""
    columns = line.split("\t")
    if len(columns) < 2:
        raise RnnkitError(
            f"{where}: one column; a pair is two sentences separated by a tab "
            "(acceptable, unacceptable, then optionally the construction)"
        )
    if len(columns) > 3:
        raise RnnkitError(
            f"{where}: {len(columns)} columns; a pair has at most three "
            "(acceptable sentence, unacceptable sentence, construction)"
        )
    good, bad = columns[0].strip(), columns[1].strip()
    for name, sentence in (("acceptable", good), ("unacceptable", bad)):
        if not sentence:
            raise RnnkitError(f"{where}: the {name} sentence is empty")
    construction = columns[2].strip() if len(columns) == 3 else ""
    return MinimalPair(good, bad, construction or UNNAMED, where)


def read_pairs(path: str) -> list[MinimalPair]:
    """The pairs of a TSV file ('-': standard input), in order; non-UTF-8 bytes are an error naming the line and
    byte offset, and a file with no pair at all is an error too."""
    if path != "-" and not Path(path).is_file():
        raise RnnkitError(f"{path}: {'a directory, not a file' if Path(path).is_dir() else 'no such file'}")
    pairs = []
    for number, (line, where) in enumerate(input_lines(path), start=1):
        if not line.strip():
            continue  # blank lines separate nothing and hold nothing
        columns = line.split("\t")
        if number == 1 and is_header(columns):
            continue
        pairs.append(parse_pair(line, where))
    if not pairs:
        shown = "standard input" if path == "-" else path
        raise RnnkitError(f"{shown}: no pairs (one a line: acceptable sentence, a tab, unacceptable sentence)")
    return pairs


def pairs_tsv(pairs: Iterable[MinimalPair]) -> str:
    """Pairs as the TSV read_pairs reads, with its header line."""
    lines = ["good\tbad\tconstruction", *(f"{p.good}\t{p.bad}\t{p.construction}" for p in pairs)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ScoredPair:
    """A pair and the total log-probability (nats) of each sentence; `unknown` counts the words of either sentence
    that the model read as <unk> (always 0 for a character model, which refuses characters it never saw)."""

    pair: MinimalPair
    good: float
    bad: float
    unknown: int = 0

    @property
    def margin(self) -> float:
        """log p(acceptable) − log p(unacceptable): positive when the model prefers the acceptable sentence."""
        return self.good - self.bad

    @property
    def correct(self) -> bool:
        return self.margin > 0  # a tie prefers neither, and counts as a miss


@dataclass(frozen=True)
class Agreement:
    """How often the model preferred the acceptable sentence: `correct` of `total` pairs."""

    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")


@dataclass(frozen=True)
class PairScores:
    """Every scored pair in order, and the pairs left unscored because their two sentences are the same."""

    scored: list[ScoredPair]
    identical: list[MinimalPair] = field(default_factory=list)

    @property
    def overall(self) -> Agreement:
        return Agreement(sum(s.correct for s in self.scored), len(self.scored))

    @property
    def accuracy(self) -> float:
        """The share of scored pairs whose acceptable sentence the model found more likely."""
        return self.overall.accuracy

    def by_construction(self) -> dict[str, Agreement]:
        """Each construction's agreement, in the order the constructions first appear."""
        counts: dict[str, list[int]] = {}
        for s in self.scored:
            tally = counts.setdefault(s.pair.construction, [0, 0])
            tally[0] += s.correct
            tally[1] += 1
        return {name: Agreement(correct, total) for name, (correct, total) in counts.items()}

    @property
    def with_unknown(self) -> int:
        """How many scored pairs hold a word the model read as <unk>."""
        return sum(s.unknown > 0 for s in self.scored)

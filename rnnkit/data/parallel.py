"""Parallel text for translation: two files, one sentence per line, line n of one the translation of line n
of the other; and the padded batches a sequence-to-sequence model trains on.

    source          (B, S)   source token ids, padding_id after each sentence
    source_lengths  (B,)     tokens per source sentence
    target_in       (B, T)   <s> y_1 ... y_n: what the decoder reads (teacher forcing)
    target_out      (B, T)   y_1 ... y_n </s>: what it must write, IGNORE at padding
    index           (B,)     each pair's number in its corpus (for its reference translation)

Every field is (B, ...), so torch.distributed's ranks take their rows of a batch like any other; batches
hold sentences of similar source lengths (rnnkit/data/padded.py's LengthBuckets).
"""

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.padded import IGNORE, LengthBuckets
from rnnkit.data.text import text_lines
from rnnkit.errors import RnnkitError

__all__ = ["IGNORE", "EncodedPair", "Pair", "ParallelBuckets", "Seq2SeqBatch", "collate", "read_parallel", "read_lines"]


class Pair(NamedTuple):
    source: str
    target: str
    where: str  # "train.de.gz:12": the source file's line, for errors


def read_lines(path: str | Path) -> list[str]:
    """The file's lines (UTF-8, .gz read as it is), line breaks removed; bad bytes name line and offset."""
    path = Path(path)
    if path.is_dir() or not path.exists():  # a pipe or a device is read as a file is
        raise RnnkitError(f"{path}: {'a directory, not a file' if path.is_dir() else 'no such file'}")
    return list(text_lines(path))


def read_parallel(source_path: str | Path, target_path: str | Path) -> list[Pair]:
    """The sentence pairs of two parallel files. Files of different line counts, and empty lines, are errors
    naming the file (and line)."""
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
        raise RnnkitError(
            f"{source_path} has {len(sources):,} lines but {target_path} has {len(targets):,}; "
            "parallel files hold one sentence per line, line n of each the translation of the other"
        )
    if not sources:
        raise RnnkitError(f"{source_path}: the file is empty")
    for path, lines in ((source_path, sources), (target_path, targets)):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise RnnkitError(
                    f"{path}:{number}: an empty line (each line must hold a sentence, "
                    "and its translation the same line of the other file)"
                )
    return [Pair(s, t, f"{source_path}:{n}") for n, (s, t) in enumerate(zip(sources, targets), start=1)]


class Seq2SeqBatch(NamedTuple):
    source: Tensor
    source_lengths: Tensor
    target_in: Tensor
    target_out: Tensor
    index: Tensor


class EncodedPair(NamedTuple):
    source: Tensor  # (S,)
    target: Tensor  # (T + 1,): <s> y_1 ... y_n </s> minus one end (target_in drops the last, target_out the first)


def collate(pairs: list[EncodedPair], index: Tensor, padding_id: int) -> Seq2SeqBatch:
    """Pairs -> one batch, padded to the longest source and target in it."""
    source = pad_sequence([p.source for p in pairs], batch_first=True, padding_value=padding_id)  # (B, S)
    target_in = pad_sequence([p.target[:-1] for p in pairs], batch_first=True, padding_value=padding_id)  # (B, T)
    target_out = pad_sequence([p.target[1:] for p in pairs], batch_first=True, padding_value=IGNORE)  # (B, T)
    return Seq2SeqBatch(source, torch.tensor([len(p.source) for p in pairs]), target_in, target_out, index)


class ParallelBuckets(LengthBuckets):
    """LengthBuckets over encoded pairs (by source length), whose batches are Seq2SeqBatch. `references`
    are the target sentences as written, for BLEU."""

    def __init__(
        self,
        pairs: list[EncodedPair],
        references: list[str],
        batch_size: int,
        train: bool,
        seed: int,
        padding_id: int,
        what: str = "data",
    ):
        super().__init__(
            [p.source for p in pairs],
            torch.arange(len(pairs)),
            batch_size,
            train,
            seed,
            padding_id,
            what,
            "sentence pairs",
        )
        self.encoded, self.references, self.what = pairs, references, what

    def __getitem__(self, k: int) -> Seq2SeqBatch:
        chosen = self.indices(k)  # (B,)
        return collate([self.encoded[i] for i in chosen.tolist()], chosen, self.padding_id)

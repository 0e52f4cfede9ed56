"""A loader per task, plus the tiny built-in datasets that --dry-run and the tests use."""

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from rnnkit.config import DataConfig
from rnnkit.data.text import bundled_text, read_text, split_text
from rnnkit.data.text import Progress
from rnnkit.data.tokens import encode_file
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError

TINY_CHARS = 20_000  # the start of Tiny Shakespeare: enough for a few batches of the tiny preset


@dataclass
class CharData:
    """A character corpus ready for training: vocabulary, train and validation ids."""

    vocab: Vocab
    train_ids: Tensor | np.ndarray  # (N_train,): a tensor, or a view of a memory-mapped token file
    val_ids: Tensor | np.ndarray  # (N_val,)
    source: str  # where the text came from, for messages


def tiny_text() -> str:
    return bundled_text("shakespeare")[:TINY_CHARS]


def load_char_data(config: DataConfig, tiny: bool = False, progress: Progress | None = None) -> CharData:
    """Read the text (the file, or the bundled Tiny Shakespeare), build its vocabulary, split by position.

    With config.token_cache, the file is encoded once into a memory-mapped token array instead of being
    read into memory; the split is then two views of the mapped array.
    """
    if config.token_cache and not tiny:
        if not config.path:
            raise RnnkitError("--data.token_cache needs --data FILE")
        ids, vocab = encode_file(config.path, config.token_cache, progress)  # (N,) memory-mapped
        train_ids, val_ids = split_text(ids, config.val_fraction)  # two views of the mapped array
        return CharData(vocab, train_ids, val_ids, config.path)
    if tiny:
        text, source = tiny_text(), "built-in tiny text"
    elif config.path:
        text, source = read_text(config.path), config.path
    else:
        text, source = bundled_text("shakespeare"), "bundled Tiny Shakespeare"
    vocab = Vocab.from_text(text)  # from the whole text, so validation has no unseen characters
    train_text, val_text = split_text(text, config.val_fraction)
    return CharData(vocab, vocab.encode(train_text), vocab.encode(val_text), source)

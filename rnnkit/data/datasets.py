"""A loader per task, plus the tiny built-in datasets that --dry-run and the tests use."""

from dataclasses import dataclass

from torch import Tensor

from rnnkit.config import DataConfig
from rnnkit.data.text import bundled_text, read_text, split_text
from rnnkit.data.vocab import Vocab

TINY_CHARS = 20_000  # the start of Tiny Shakespeare: enough for a few batches of the tiny preset


@dataclass
class CharData:
    """A character corpus ready for training: vocabulary, train and validation ids."""

    vocab: Vocab
    train_ids: Tensor  # (N_train,)
    val_ids: Tensor  # (N_val,)
    source: str  # where the text came from, for messages


def tiny_text() -> str:
    return bundled_text("shakespeare")[:TINY_CHARS]


def load_char_data(config: DataConfig, tiny: bool = False) -> CharData:
    """Read the text (the file, or the bundled Tiny Shakespeare), build its vocabulary, split by position."""
    if tiny:
        text, source = tiny_text(), "built-in tiny text"
    elif config.path:
        text, source = read_text(config.path), config.path
    else:
        text, source = bundled_text("shakespeare"), "bundled Tiny Shakespeare"
    vocab = Vocab.from_text(text)  # from the whole text, so validation has no unseen characters
    train_text, val_text = split_text(text, config.val_fraction)
    return CharData(vocab, vocab.encode(train_text), vocab.encode(val_text), source)

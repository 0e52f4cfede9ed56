"""Tagged sentences as padded batches for the tagger: word ids, tag ids, each word's letters, in buckets of
similar lengths (rnnkit/data/padded.py's LengthBuckets chooses the sentences of each batch).

    words         (B, T)      word ids, padding_id after each sentence's length
    lengths       (B,)        words per sentence
    tags          (B, T)      tag ids, IGNORE at padding (and everywhere for untagged text)
    chars         (B, T, L)   each word's character ids (MAX_CHARS at most: its first and last halves)
    char_lengths  (B, T)      letters per word, 0 at padding
    unseen        (B, T)      True where the word is outside the training vocabulary

Every field is (B, ...), so torch.distributed's ranks take their rows of a batch like any other.
"""

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.padded import IGNORE, LengthBuckets
from rnnkit.data.vocab import PAD, UNK, TokenVocab

__all__ = ["IGNORE", "MAX_CHARS", "TagBatch", "TagBuckets", "char_vocab", "collate", "encode_sentence", "spelled"]
MAX_CHARS = 30  # letters read of a word: a longer one (a URL) keeps its first and last 15


class TagBatch(NamedTuple):
    words: Tensor
    lengths: Tensor
    tags: Tensor
    chars: Tensor
    char_lengths: Tensor
    unseen: Tensor


class EncodedSentence(NamedTuple):
    words: Tensor  # (T,)
    tags: Tensor  # (T,)
    chars: Tensor  # (T, L)
    char_lengths: Tensor  # (T,)
    unseen: Tensor  # (T,)


def clip_word(word: str) -> str:
    return word if len(word) <= MAX_CHARS else word[: MAX_CHARS // 2] + word[-(MAX_CHARS - MAX_CHARS // 2) :]


def char_vocab(words) -> TokenVocab:
    """Every character of the training words, beside <pad> and <unk>."""
    return TokenVocab(sorted({c for word in words for c in clip_word(word)}), [PAD, UNK])


def spelled(words: list[str], chars: TokenVocab) -> Tensor:
    """Each word's character ids, padded to MAX_CHARS: (T, MAX_CHARS), the same width for every sentence."""
    rows = torch.full((len(words), MAX_CHARS), chars.index[PAD], dtype=torch.long)  # (T, L)
    for t, word in enumerate(words):
        letters = chars.encode(clip_word(word))  # (L_w,)
        rows[t, : len(letters)] = letters
    return rows


def encode_sentence(words: list[str], tags: list[str] | None, vocabularies: dict, lowercase: bool) -> EncodedSentence:
    """One sentence's ids; tags None (untagged text) gives IGNORE everywhere."""
    word_vocab, chars = vocabularies["words"], vocabularies["chars"]
    ids = word_vocab.encode([w.lower() if lowercase else w for w in words])  # (T,): unknown words -> <unk>
    tag_ids = (
        torch.tensor([vocabularies["tags"].index[t] for t in tags])
        if tags is not None
        else torch.full((len(words),), IGNORE)
    )
    spelled = [chars.encode(clip_word(w)) for w in words]  # each (L_w,)
    return EncodedSentence(
        ids,
        tag_ids,
        pad_sequence(spelled, batch_first=True, padding_value=chars.index[PAD]),
        torch.tensor([len(s) for s in spelled]),
        ids == word_vocab.unk_id,
    )


def collate(sentences: list[EncodedSentence], padding_id: int, char_padding_id: int) -> TagBatch:
    """Sentences -> one batch, each field padded to the longest sentence (and word) in it."""
    B, T = len(sentences), max(len(s.words) for s in sentences)
    L = max(s.chars.shape[1] for s in sentences)
    chars = torch.full((B, T, L), char_padding_id, dtype=torch.long)
    for b, s in enumerate(sentences):
        chars[b, : s.chars.shape[0], : s.chars.shape[1]] = s.chars
    pad = lambda field, value: pad_sequence(
        [getattr(s, field) for s in sentences], batch_first=True, padding_value=value
    )  # noqa: E731
    return TagBatch(
        pad("words", padding_id),
        torch.tensor([len(s.words) for s in sentences]),
        pad("tags", IGNORE),
        chars,
        pad("char_lengths", 0),
        pad("unseen", False),
    )


class TagBuckets(LengthBuckets):
    """LengthBuckets over encoded sentences, whose batches are TagBatch."""

    def __init__(
        self,
        sentences: list[EncodedSentence],
        batch_size: int,
        train: bool,
        seed: int,
        padding_id: int,
        char_padding_id: int,
        what: str = "data",
    ):
        super().__init__(
            [s.words for s in sentences],
            torch.arange(len(sentences)),
            batch_size,
            train,
            seed,
            padding_id,
            what,
            "sentences",
        )
        self.encoded, self.char_padding_id = sentences, char_padding_id

    def __getitem__(self, k: int) -> TagBatch:
        return collate([self.encoded[i] for i in self.indices(k).tolist()], self.padding_id, self.char_padding_id)

"""Vocabularies: characters (Vocab) and tokens (TokenVocab), encoding and decoding between text and ids.

    Vocab        Unicode code points, sorted (`sorted(set(text))`)
    TokenVocab   special symbols first (<pad>, <unk>, <s>, </s>, <eos>, as a task asks), then the tokens
                 by descending count, ties in sorted order; a minimum count and a maximum size

Either way the same data always gives the same ids. A vocabulary travels inside every checkpoint
(`to_dict`, and `vocab_from_dict` for either kind) and is never rebuilt from data at prediction time.
"""

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import RnnkitError


def describe_symbols(symbols) -> str:
    """Unseen characters, shown so a user can find them: 'é' (U+00E9), '\\t' (U+0009)."""
    return ", ".join(f"{s!r} (U+{ord(s):04X})" for s in sorted(set(symbols)))


class Vocab:
    """A sorted list of symbols; id i is symbols[i]."""

    def __init__(self, symbols: list[str]):
        if not symbols:
            raise RnnkitError("vocabulary is empty")
        if list(symbols) != sorted(set(symbols)) or any(len(s) != 1 for s in symbols):
            raise RnnkitError("vocabulary must be sorted, distinct, single characters")
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.code_points = np.array(
            [ord(s) for s in self.symbols], dtype=np.int64
        )  # sorted: lets encode use searchsorted

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str, what: str = "text") -> Tensor:
        """Text -> ids (len,). Characters outside the vocabulary are an error that names them."""
        # one code point each; surrogatepass lets lone surrogates (undecodable command-line bytes) be named as unseen
        points = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32).astype(np.int64)
        ids = np.minimum(np.searchsorted(self.code_points, points), len(self.symbols) - 1)
        unseen = points != self.code_points[ids]
        if unseen.any():
            raise RnnkitError(
                f"{what} has characters the model never saw: {describe_symbols(chr(p) for p in points[unseen])}"
            )
        return torch.from_numpy(ids)

    def decode(self, ids) -> str:
        return "".join(self.symbols[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": "characters", "symbols": "".join(self.symbols)}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocab":
        if not isinstance(data.get("symbols"), str):
            raise RnnkitError("a character vocabulary's symbols must be one string")
        return cls(list(data["symbols"]))


PAD, UNK, START, END, EOS = "<pad>", "<unk>", "<s>", "</s>", "<eos>"


class TokenVocab:
    """Special symbols, then tokens; id i is symbols[i]. Tokens outside it become <unk> when the
    vocabulary has one, and are an error naming them otherwise."""

    def __init__(self, tokens: Sequence[str], specials: Sequence[str] = ()):
        symbols = [*specials, *tokens]
        if not symbols:
            raise RnnkitError("vocabulary is empty")
        if any(not isinstance(s, str) or not s for s in symbols) or len(set(symbols)) != len(symbols):
            raise RnnkitError("vocabulary symbols must be distinct, non-empty strings")
        self.specials, self.symbols = list(specials), symbols
        self.index = {s: i for i, s in enumerate(symbols)}
        self.unk_id = self.index.get(UNK)

    @classmethod
    def from_counts(
        cls, counts: Counter, specials: Sequence[str] = (), min_count: int = 1, max_size: int = 0
    ) -> "TokenVocab":
        """Tokens seen at least min_count times, most frequent first (ties sorted), at most max_size of them
        besides the specials (0: no limit)."""
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count and t not in specials), key=lambda t: (-counts[t], t)
        )
        return cls(kept[:max_size] if max_size else kept, specials)

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, tokens: Iterable[str], what: str = "text") -> Tensor:
        """Tokens -> ids (len,); unknown tokens -> <unk>, or an error naming the first few without one."""
        if self.unk_id is not None:
            return torch.tensor([self.index.get(t, self.unk_id) for t in tokens], dtype=torch.long)
        tokens = list(tokens)
        unseen = sorted({t for t in tokens if t not in self.index})
        if unseen:
            raise RnnkitError(
                f"{what} has tokens the model never saw: "
                f"{', '.join(map(repr, unseen[:10]))}{' ...' if len(unseen) > 10 else ''}"
            )
        return torch.tensor([self.index[t] for t in tokens], dtype=torch.long)

    def decode(self, ids) -> list[str]:
        return [self.symbols[i] for i in ids]

    def to_dict(self) -> dict:
        return {"kind": "tokens", "specials": list(self.specials), "tokens": self.symbols[len(self.specials) :]}


def vocab_from_dict(data: dict):
    """Either kind of vocabulary from its to_dict() (or a translation model's tokenizer, rnnkit/data/subword.py);
    a malformed dict is an RnnkitError."""
    if not isinstance(data, dict):
        raise RnnkitError(f"a vocabulary must be a dict, got {type(data).__name__}")
    kind = data.get("kind", "characters")  # format 1 wrote a character vocabulary without its kind
    if kind in ("words", "bpe"):
        from rnnkit.data.subword import tokenizer_from_dict

        return tokenizer_from_dict(data)
    if kind == "characters":
        return Vocab.from_dict(data)
    if kind != "tokens":
        raise RnnkitError(f"a vocabulary of unknown kind {kind!r} (characters, tokens, words or bpe)")
    for key in ("specials", "tokens"):
        if not isinstance(data.get(key), list):
            raise RnnkitError(
                f"a token vocabulary's {key} must be a list of strings, got {type(data.get(key)).__name__}"
            )
    return TokenVocab(data["tokens"], data["specials"])

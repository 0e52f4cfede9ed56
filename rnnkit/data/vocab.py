"""Vocab: the sorted symbols of a text, and encoding/decoding between text and ids.

Symbols are Unicode code points, sorted (`sorted(set(text))`), so the same text always gives the same
ids. The vocabulary travels inside every checkpoint (`to_dict`/`from_dict`) and is never rebuilt
from data at sampling time.
"""

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
        self.code_points = np.array([ord(s) for s in self.symbols], dtype=np.int64)  # sorted: lets encode use searchsorted

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
            raise RnnkitError(f"{what} has characters the model never saw: {describe_symbols(chr(p) for p in points[unseen])}")
        return torch.from_numpy(ids)

    def decode(self, ids) -> str:
        return "".join(self.symbols[i] for i in ids)

    def to_dict(self) -> dict:
        return {"symbols": "".join(self.symbols)}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocab":
        return cls(list(data["symbols"]))

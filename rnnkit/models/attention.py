"""Attention over a memory: what a decoder step reads of an encoding it can look back at (a source sentence's
RNN outputs, an image's CNN map), and the state of a decoder that feeds its attentional vector back in.

    a_t = softmax(score(s_t, m_j)) over the valid positions j (exactly 0 at padding)
    c_t = Σ_j a_tj m_j

score is additive vᵀ tanh(W_q s + W_k m) (Bahdanau et al. 2015), or multiplicative sᵀ m ("dot") or sᵀ W m
("general") (Luong et al. 2015).
"""

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.errors import RnnkitError

ATTENTION = ("additive", "dot", "general", "none")


class Attention(nn.Module):
    """score(s, m_j) over the source, softmax over its valid positions: (context, weights). Additive
    attention's hidden layer is `attention_size` wide, the query's size when 0."""

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int = 0):
        super().__init__()
        attention_size = attention_size or query_size
        if kind not in ATTENTION[:3]:
            raise RnnkitError(f"attention must be one of {', '.join(ATTENTION)}, got {kind!r}")
        if kind == "dot" and query_size != memory_size:
            raise RnnkitError(
                f"dot attention needs the decoder's size ({query_size}) to equal the encoder's output size "
                f"({memory_size}); use general or additive attention"
            )
        self.kind = kind
        if kind == "additive":
            self.W_q = nn.Linear(query_size, attention_size, bias=False)
            self.W_k = nn.Linear(memory_size, attention_size)
            self.v = nn.Linear(attention_size, 1, bias=False)
        elif kind == "general":
            self.W = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """What each step compares its query with, computed once per sentence: (B, S, ·)."""
        if self.kind == "additive":
            return self.W_k(memory)  # (B, S, A)
        if self.kind == "general":
            return self.W(memory)  # (B, S, H_d): W m_j, so the score is sᵀ (W m_j)
        return memory  # (B, S, H_e)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query s (N, H_d), keys (N, S, ·), memory m (N, S, H_e), mask (N, S) True at valid positions ->
        (context (N, H_e), weights (N, S))."""
        if self.kind == "additive":
            scores = self.v(torch.tanh(keys + self.W_q(query)[:, None])).squeeze(-1)  # (N, S)
        else:
            scores = torch.bmm(keys, query[:, :, None]).squeeze(-1)  # (N, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # (N, S): exactly 0 at padding
        context = torch.bmm(weights[:, None], memory).squeeze(1)  # (N, H_e)
        return context, weights


class Memory(NamedTuple):
    """The encoder's reading of a batch, the same at every decoder step."""

    outputs: Tensor  # (B, S, H_e)
    keys: Tensor  # (B, S, ·)
    mask: Tensor  # (B, S): True at valid source positions


class DecoderState(NamedTuple):
    layers: list  # one cell state per decoder layer
    feed: Tensor  # (B, H_d): the last attentional vector h̃_{t-1} (zeros at t = 0; (B, 0) without input feeding)

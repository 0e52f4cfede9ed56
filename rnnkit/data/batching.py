"""Laying a token sequence out for truncated backpropagation through time (the notes' TBPTT).

The text is cut into B contiguous streams, one per batch row, and read T steps at a time. Chunk k+1
of row b continues exactly where chunk k of row b stopped, which is what lets the hidden state be
carried from one chunk into the next:

    ids      a b c d e f g h i j k l m n o      (N = 15, B = 3: the last N mod B tokens are dropped)
    streams  row 0: a b c d e
             row 1: f g h i j
             row 2: k l m n o
    T = 2    chunk 0: inputs [a b | f g | k l], targets [b c | g h | l m]
             chunk 1: inputs [c d | h i | m n], targets [d e | i j | n o]

Batch k is a pure function of k, so resuming at step s needs only s. The ids may be a tensor or a
memory-mapped numpy array (rnnkit/data/tokens.py); then only each batch's window is read from disk.
"""

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import RnnkitError


class TokenBatch(NamedTuple):
    inputs: Tensor  # (B, T)
    targets: Tensor  # (B, T): the next token of each input


def batch_seed(seed: int, k: int) -> int:
    """Batch k's own seed, from the run's seed and k alone: batches drawn from it are a pure function of k, so a
    resumed run (or another rank) reads the same ones."""
    return (seed * 1_000_003 + k) % 2**63


class OneProcess:
    """Batches that one process reads whole. rnnkit/distributed.py's ShardedBatches does real work in these
    three; carries_state says whether batch k+1 continues batch k (streams) or is independent of it."""

    carries_state = False

    def gather_state(self, state):
        return state

    def scatter_state(self, state):
        return state

    def mean(self, value: float) -> float:
        return value

    def count_share(self, count: int) -> float:
        return 1.0

    def gather_objects(self, value) -> list:
        return [value]

    def this_process(self, values: list):
        return values[0] if len(values) == 1 else None


class Listed(OneProcess):
    """Any sequence of batches (a list of tensors, a user's own), read by one process as independent sequences,
    pass after pass: batch k is batches[k % len(batches)]."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int):
        return self.batches[k % len(self.batches)]


class Generated(OneProcess):
    """Batches made rather than read: batch k is make(batch_seed(seed, k)), never the same twice; `count`
    batches make a pass."""

    def __init__(self, make, seed: int, count: int):
        self.make, self.seed, self.count = make, seed, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int):
        return self.make(batch_seed(self.seed, k))


class StreamBatches(OneProcess):
    """Chunks of (inputs, targets), each (B, T), of B contiguous streams; len() chunks make one pass.

    carries_state: chunk k+1 continues chunk k row by row, so train() carries the state between them."""

    carries_state = True

    def __init__(
        self, ids: Tensor | np.ndarray, batch_size: int, seq_len: int, what: str = "text", unit: str = "characters"
    ):
        if batch_size < 1 or seq_len < 1:
            raise RnnkitError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
        needed = batch_size * (seq_len + 1)
        if len(ids) < needed:
            raise RnnkitError(
                f"{what} has {len(ids)} {unit}, fewer than one batch needs: batch_size × (seq_len + 1) = {needed}"
            )
        self.batch_size, self.seq_len = batch_size, seq_len
        stream_len = len(ids) // batch_size
        self.streams = ids[: stream_len * batch_size].reshape(
            batch_size, stream_len
        )  # (B, N // B): a view, also of a memory map
        self.num_chunks = (stream_len - 1) // seq_len  # every chunk has a full T of inputs and targets

    def __len__(self) -> int:
        return self.num_chunks

    def __getitem__(self, k: int) -> TokenBatch:
        start = (k % self.num_chunks) * self.seq_len
        window = self.streams[:, start : start + self.seq_len + 1]  # (B, T + 1)
        if isinstance(window, np.ndarray):  # a memory-mapped token file: read just this window
            window = torch.from_numpy(window.astype(np.int64))
        inputs = window[:, :-1]  # (B, T)
        targets = window[:, 1:]  # (B, T): the next token
        return TokenBatch(inputs, targets)

    def targets_in(self, chunks: int) -> int:
        """How many targets the first `chunks` chunks hold."""
        return chunks * self.batch_size * self.seq_len


class WholeText(OneProcess):
    """The whole sequence as one stream, read T steps at a time, the last chunk shorter: every token but the
    first is predicted from everything before it (for evaluation, where nothing may be dropped).

    ids      a b c d e f g      T = 3:  chunk 0 inputs [a b c] targets [b c d]; chunk 1 [d e f] -> [e f g]
    """

    carries_state = True
    batch_size = 1

    def __init__(self, ids: Tensor | np.ndarray, seq_len: int = 256, what: str = "text", unit: str = "tokens"):
        if len(ids) < 2:
            raise RnnkitError(f"{what} has {len(ids)} {unit}; at least 2 are needed to evaluate")
        self.ids, self.seq_len = ids, seq_len
        self.num_chunks = -(-(len(ids) - 1) // seq_len)  # ceil: the last chunk may be shorter

    def __len__(self) -> int:
        return self.num_chunks

    def __getitem__(self, k: int) -> TokenBatch:
        window = self.ids[k * self.seq_len : (k + 1) * self.seq_len + 1]  # (≤ T + 1,)
        if isinstance(window, np.ndarray):
            window = torch.from_numpy(window.astype(np.int64))
        return TokenBatch(window[None, :-1], window[None, 1:])  # each (1, ≤ T)

    def targets_in(self, chunks: int) -> int:
        return min(len(self.ids) - 1, chunks * self.seq_len)

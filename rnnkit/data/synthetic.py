"""Generated long-memory problems (definitions as in the locuslab/TCN READMEs), and their batches.

    adding (T steps, 2 features)   row 0: T values drawn from U(0, 1)
                                   row 1: 0 everywhere but two distinct random steps, which hold 1
                                   target: the sum of the two marked values (one number per sequence)
        trivial baseline: always answer 1, the target's mean; its MSE is Var(u1 + u2) = 2/12 ≈ 0.1667

    copy (T + 20 steps, symbols)   input:  10 digits from 1-8, T − 1 blanks (0), then 11 markers (9)
                                   target: T + 10 blanks, then the 10 digits again (one per step)
        trivial baseline: blanks, then a uniform guess among the 8 digits: 10·ln 8 / (T + 20) nats per step

    add1 (T steps, 1 feature)      T bits, each 1 with probability 1/2 (the notes' first example, ADD1)
                                   target: how many of them are 1 (one count in 0..T per sequence, regressed)
        trivial baseline: always answer T/2, the count's mean; its MSE is the count's variance T/4
        (a linear RNN with one unit counts exactly: h_t = h_{t-1} + x_t)

Batch k is drawn from a generator seeded by (seed, k), so it is a pure function of k (exact resume) and
training never sees a sequence twice; the validation set is one fixed draw from another seed.
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.data.batching import Generated
from rnnkit.errors import RnnkitError

PROBLEMS = ("adding", "copy", "add1")
DIGITS, MARKER = 8, 9  # copy's symbols: 0 blank, 1-8 digits, 9 marker


class MemoryBatch(NamedTuple):
    inputs: Tensor  # adding (B, T, 2) floats; copy (B, T + 20) symbols; add1 (B, T, 1) bits
    targets: Tensor  # adding (B,) sums; copy (B, T + 20) symbols; add1 (B,) counts


def adding_problem(batch_size: int, seq_len: int, generator: torch.Generator) -> MemoryBatch:
    values = torch.rand(batch_size, seq_len, generator=generator)  # (B, T)
    marks = torch.zeros(batch_size, seq_len)  # (B, T)
    positions = (
        torch.rand(batch_size, seq_len, generator=generator).topk(2, dim=1).indices
    )  # (B, 2): two distinct steps
    marks.scatter_(1, positions, 1.0)
    targets = (values * marks).sum(1)  # (B,): u1 + u2
    return MemoryBatch(torch.stack([values, marks], dim=-1), targets)  # (B, T, 2), (B,)


def copy_memory(batch_size: int, seq_len: int, generator: torch.Generator) -> MemoryBatch:
    digits = torch.randint(1, DIGITS + 1, (batch_size, 10), generator=generator)  # (B, 10)
    blanks = torch.zeros(batch_size, seq_len - 1, dtype=torch.long)  # (B, T − 1)
    markers = torch.full((batch_size, 11), MARKER)  # (B, 11)
    inputs = torch.cat([digits, blanks, markers], dim=1)  # (B, T + 20)
    targets = torch.cat([torch.zeros(batch_size, seq_len + 10, dtype=torch.long), digits], dim=1)  # (B, T + 20)
    return MemoryBatch(inputs, targets)


def count_ones(batch_size: int, seq_len: int, generator: torch.Generator) -> MemoryBatch:
    bits = torch.randint(0, 2, (batch_size, seq_len), generator=generator).float()  # (B, T)
    return MemoryBatch(bits[..., None], bits.sum(1))  # (B, T, 1), (B,): the count of 1s


def baseline(problem: str, seq_len: int) -> float:
    """The trivial answer's loss: MSE 1/6 for adding, 10·ln 8 / (T + 20) nats per step for copy, MSE T/4 for add1."""
    if problem == "add1":
        return seq_len / 4  # Var(count) of T fair bits: T · 1/2 · 1/2
    return 2 / 12 if problem == "adding" else 10 * math.log(DIGITS) / (seq_len + 20)


class GeneratedBatches(Generated):
    """Batch k of a problem, freshly drawn from seed (seed, k); `count` batches make one pass."""

    def __init__(self, problem: str, batch_size: int, seq_len: int, seed: int, count: int = 1_000_000):
        if problem not in PROBLEMS:
            raise RnnkitError(f"unknown problem {problem!r}; choose {', '.join(PROBLEMS)}")
        if seq_len < 2 or batch_size < 1:
            raise RnnkitError(f"seq_len must be at least 2 and batch_size positive, got {seq_len} and {batch_size}")
        self.problem, self.batch_size, self.seq_len = problem, batch_size, seq_len
        draw = {"adding": adding_problem, "copy": copy_memory, "add1": count_ones}[problem]
        super().__init__(lambda seed: draw(batch_size, seq_len, torch.Generator().manual_seed(seed)), seed, count)

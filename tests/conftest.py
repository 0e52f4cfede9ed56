"""Shared fixtures and helpers for rnnkit's tests: seeding, one CPU thread, cell factories, reference switching."""

import re

import pytest
import torch

import rnnkit

# The test machine is small and shared; one intra-op thread keeps tiny tensors fast and predictable.
torch.set_num_threads(1)

# Every cell type rnnkit ships, by a readable test id -> factory(input_size, hidden_size, **factory_kwargs).
CELL_FACTORIES = {
    "rnn-tanh": lambda D, H, **kw: rnnkit.RNNCell(D, H, "tanh", **kw),
    "rnn-relu": lambda D, H, **kw: rnnkit.RNNCell(D, H, "relu", **kw),
    "rnn-identity": lambda D, H, **kw: rnnkit.RNNCell(D, H, "identity", **kw),
    "lstm": lambda D, H, **kw: rnnkit.LSTMCell(D, H, **kw),
    "gru-reset-before": lambda D, H, **kw: rnnkit.GRUCell(D, H, reset_after=False, **kw),
    "gru-reset-after": lambda D, H, **kw: rnnkit.GRUCell(D, H, reset_after=True, **kw),
    "mut1": lambda D, H, **kw: rnnkit.MUT1Cell(D, H, **kw),
    "mut2": lambda D, H, **kw: rnnkit.MUT2Cell(D, H, **kw),
    "mut3": lambda D, H, **kw: rnnkit.MUT3Cell(D, H, **kw),
}

# The cells torch has a fused kernel for (rnnkit/kernels/aten.py), and those it has not.
FUSED_CELLS = ["rnn-tanh", "rnn-relu", "lstm", "gru-reset-after"]
UNFUSED_CELLS = ["rnn-identity", "gru-reset-before", "mut1", "mut2", "mut3"]


@pytest.fixture(autouse=True)
def seed() -> None:
    """Every test starts from the same global RNG state, so a failure reproduces."""
    torch.manual_seed(0)


def random_state(cell, batch_size: int, generator: torch.Generator | None = None):
    """A non-zero initial state for `cell`: zeros would hide a bug in how U or c_{t-1} enter."""
    shape = (batch_size, cell.hidden_size)
    return cell.State(*(torch.randn(shape, dtype=cell_dtype(cell), generator=generator) for _ in cell.State._fields))


def cell_dtype(cell) -> torch.dtype:
    return next(cell.parameters()).dtype


def use_reference(module: torch.nn.Module) -> torch.nn.Module:
    """Force the reference loop in every Recurrent inside `module` (no fused kernel)."""
    for submodule in module.modules():
        if isinstance(submodule, rnnkit.Recurrent):
            submodule.implementation = "reference"
    return module


def error_pattern(*parts: str) -> str:
    """A regex requiring every part (a shape such as "(*, 5)", a name) to appear in the message, in order."""
    return ".*".join(re.escape(part) for part in parts)

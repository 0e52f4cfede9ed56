"""Shared fixtures and helpers for rnnkit's tests: seeding, one CPU thread, cell factories, reference switching."""

import os
import re

import pytest
import torch
from torch.testing import assert_close

if not torch.cuda.is_available():  # run rnnkit's Triton kernels in Triton's interpreter, on the CPU (set before import)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import rnnkit  # noqa: E402

# The test machine is small and shared; one intra-op thread keeps tiny tensors fast and predictable.
torch.set_num_threads(1)

# Every cell type rnnkit ships, by a readable test id -> factory(input_size, hidden_size, **factory_kwargs).
CELL_FACTORIES = {
    "rnn-tanh": lambda D, H, **kw: rnnkit.RNNCell(D, H, "tanh", **kw),
    "rnn-relu": lambda D, H, **kw: rnnkit.RNNCell(D, H, "relu", **kw),
    "rnn-identity": lambda D, H, **kw: rnnkit.RNNCell(D, H, "identity", **kw),
    "rnn-sigmoid": lambda D, H, **kw: rnnkit.RNNCell(D, H, "sigmoid", **kw),
    "lstm": lambda D, H, **kw: rnnkit.LSTMCell(D, H, **kw),
    "gru-reset-before": lambda D, H, **kw: rnnkit.GRUCell(D, H, reset_after=False, **kw),
    "gru-reset-after": lambda D, H, **kw: rnnkit.GRUCell(D, H, reset_after=True, **kw),
    "mut1": lambda D, H, **kw: rnnkit.MUT1Cell(D, H, **kw),
    "mut2": lambda D, H, **kw: rnnkit.MUT2Cell(D, H, **kw),
    "mut3": lambda D, H, **kw: rnnkit.MUT3Cell(D, H, **kw),
    "conditioned": lambda D, H, **kw: rnnkit.ConditionedRNNCell(
        D - D // 2, D // 2, H, **kw
    ),  # the tagger's: half of x_t is the label's
}

# The cells torch has a fused kernel for (rnnkit/kernels/aten.py), and those it has not.
FUSED_CELLS = ["rnn-tanh", "rnn-relu", "lstm", "gru-reset-after", "conditioned"]
UNFUSED_CELLS = ["rnn-identity", "rnn-sigmoid", "gru-reset-before", "mut1", "mut2", "mut3"]


@pytest.fixture(autouse=True)
def seed() -> None:
    """Every test starts from the same global RNG state, so a failure reproduces."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def float32_products():
    """On a GPU, cuDNN's kernels (and rnnkit's Triton kernels, which follow the same switch) multiply in TF32
    by default, about 1e-3 relative error: off in tests, so paths are compared at float32 tolerance."""
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = allowed


def random_state(cell, batch_size: int, generator: torch.Generator | None = None):
    """A non-zero initial state for `cell`, on its parameters' device: zeros would hide a bug in how U or
    c_{t-1} enter. Drawn on the CPU, so a seed gives the same state on every device."""
    shape = (batch_size, cell.hidden_size)
    device = next(cell.parameters()).device
    return cell.State(
        *(torch.randn(shape, dtype=cell_dtype(cell), generator=generator).to(device) for _ in cell.State._fields)
    )


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


def outputs_and_gradients(layer, inputs, states, lengths, weights):
    """A layer's outputs, final states (one per direction), and the gradients of a weighted sum of both
    w.r.t. the inputs, the initial states and every parameter. `states` holds one initial state per
    direction; random weights make every element's gradient distinct."""
    inputs = inputs.detach().requires_grad_()
    states = [type(state)(*(field.detach().requires_grad_() for field in state)) for state in states]
    outputs, final = layer(inputs, states[0] if len(states) == 1 else tuple(states), lengths)
    finals = [final] if len(states) == 1 else list(final)
    loss = (outputs * weights["outputs"]).sum()
    for final_state, final_weights in zip(finals, weights["finals"], strict=True):
        loss = loss + sum((field * weight).sum() for field, weight in zip(final_state, final_weights, strict=True))
    initial_fields = [field for state in states for field in state]
    gradients = torch.autograd.grad(loss, [inputs, *initial_fields, *layer.parameters()])
    return outputs, finals, gradients


def random_weights(cells, batch_size: int, steps: int, outputs_width: int, device="cpu"):
    """Random weights for outputs_and_gradients' loss: one for the outputs, one per final-state field."""
    return {
        "outputs": torch.randn(batch_size, steps, outputs_width, device=device),
        "finals": [
            [torch.randn(batch_size, cell.hidden_size, device=device) for _ in cell.State._fields] for cell in cells
        ],
    }


def assert_same_results(fused, reference, **tolerance) -> None:
    """outputs_and_gradients of a fast path equal the reference's: outputs, final states, every gradient."""
    fused_outputs, fused_finals, fused_gradients = fused
    reference_outputs, reference_finals, reference_gradients = reference
    assert_close(fused_outputs, reference_outputs, **tolerance)
    for fused_final, reference_final in zip(fused_finals, reference_finals, strict=True):
        assert type(fused_final) is type(reference_final)
        for fused_field, reference_field in zip(fused_final, reference_final, strict=True):
            assert_close(fused_field, reference_field, **tolerance)
    for index, (fused_gradient, reference_gradient) in enumerate(
        zip(fused_gradients, reference_gradients, strict=True)
    ):
        assert_close(
            fused_gradient,
            reference_gradient,
            **tolerance,
            msg=lambda message, index=index: f"gradient {index}: {message}",
        )

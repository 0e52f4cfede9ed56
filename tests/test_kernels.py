"""Tests for rnnkit/kernels/aten.py: torch's fused kernels, fed our cells' parameters, equal the reference
loop (Recurrent(implementation="reference")) in values and gradients, with and without padding, alone
and inside Bidirectional; Recurrent dispatches to them exactly when they apply."""

import pytest
import torch
from conftest import (
    CELL_FACTORIES,
    FUSED_CELLS,
    UNFUSED_CELLS,
    assert_same_results,
    outputs_and_gradients,
    random_state,
    random_weights,
)
from torch.testing import assert_close

from rnnkit import Bidirectional, Recurrent
from rnnkit.kernels import aten

B, T, D, H = 4, 5, 3, 4
TOLERANCE = dict(atol=1e-5, rtol=1e-4)  # float32: the kernel sums gates in a different order
CUDNN_TOLERANCE = dict(atol=1e-4, rtol=1e-3)  # cuDNN's own summation order (seen: 6e-5 on one element of ∂L/∂U, H100)
LENGTHS = [3, 5, 1, 4]  # unsorted on purpose: the packed path must restore the batch order
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (cuDNN path)")),
]


@pytest.mark.parametrize("name", FUSED_CELLS)
def test_supported_cells_have_no_reason(name):
    """LSTM, reset-after GRU and tanh/relu RNN cells run on the fused kernel."""
    assert aten.unsupported_reason(CELL_FACTORIES[name](D, H)) is None


@pytest.mark.parametrize("name", UNFUSED_CELLS)
def test_unsupported_cells_say_why(name):
    """Cells torch has no kernel for (reset-before GRU, identity RNN, MUT) get a non-empty reason."""
    reason = aten.unsupported_reason(CELL_FACTORIES[name](D, H))
    assert isinstance(reason, str) and reason


def test_subclassed_cell_is_not_fused():
    """A user's subclass may change forward, so only the exact classes are fused."""

    class MyLSTMCell(type(CELL_FACTORIES["lstm"](D, H))):
        pass

    assert isinstance(aten.unsupported_reason(MyLSTMCell(D, H)), str)


@pytest.mark.parametrize("return_states", [False, True])
@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_auto_dispatches_to_fused_kernel_only_when_supported(name, return_states, monkeypatch):
    """Recurrent('auto') calls aten.run for supported cells without return_states, never otherwise,
    and Recurrent('reference') never does: so the equality tests below do compare two paths."""
    calls = []
    real_run = aten.run
    monkeypatch.setattr(aten, "run", lambda *args: calls.append(args) or real_run(*args))
    cell = CELL_FACTORIES[name](D, H)
    inputs = torch.randn(B, T, D)
    Recurrent(cell, "auto")(inputs, return_states=return_states)
    assert len(calls) == (name in FUSED_CELLS and not return_states)
    Recurrent(cell, "reference")(inputs)
    assert len(calls) == (name in FUSED_CELLS and not return_states)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("name", FUSED_CELLS)
def test_fused_equals_reference(name, bias, padded, device):
    """aten.run gives the reference loop's outputs, final state and gradients (inputs, initial state,
    every parameter), for full and padded batches; padded steps of the inputs get no gradient."""
    cell = CELL_FACTORIES[name](D, H, bias=bias).to(device)
    inputs = torch.randn(B, T, D, device=device)
    lengths = torch.tensor(LENGTHS, device=device) if padded else None
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, H, device)

    class Fused(torch.nn.Module):  # aten.run alone, called the way Recurrent calls it
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, inputs, state, lengths):
            return aten.run(self.cell, inputs, state, lengths)

    fused = outputs_and_gradients(Fused(), inputs, state, lengths, weights)
    reference = outputs_and_gradients(Recurrent(cell, "reference"), inputs, state, lengths, weights)
    assert_same_results(fused, reference, **(CUDNN_TOLERANCE if device == "cuda" else TOLERANCE))
    if padded:
        padding = torch.arange(T, device=device)[None, :] >= lengths[:, None]  # (B, T)
        assert torch.equal(fused[0][padding], torch.zeros_like(fused[0][padding]))
        assert torch.equal(fused[2][0][padding], torch.zeros_like(fused[2][0][padding]))


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("name", FUSED_CELLS)
def test_fused_equals_reference_inside_bidirectional(name, padded):
    """Bidirectional with fused directions equals it with reference directions, values and gradients."""
    forward_cell, backward_cell = CELL_FACTORIES[name](D, H), CELL_FACTORIES[name](D, H)
    inputs = torch.randn(B, T, D)
    lengths = torch.tensor(LENGTHS) if padded else None
    state = [random_state(forward_cell, B), random_state(backward_cell, B)]
    weights = random_weights([forward_cell, backward_cell], B, T, 2 * H, "cpu")

    fused_layer = Bidirectional(Recurrent(forward_cell, "auto"), Recurrent(backward_cell, "auto"))
    reference_layer = Bidirectional(Recurrent(forward_cell, "reference"), Recurrent(backward_cell, "reference"))
    fused = outputs_and_gradients(fused_layer, inputs, state, lengths, weights)
    reference = outputs_and_gradients(reference_layer, inputs, state, lengths, weights)
    assert_same_results(fused, reference, **TOLERANCE)


@pytest.mark.parametrize("name", FUSED_CELLS)
def test_fused_path_in_float64(name):
    """The fused path follows the parameters' dtype: in float64 it matches the reference to 1e-12."""
    cell = CELL_FACTORIES[name](D, H, dtype=torch.float64)
    inputs = torch.randn(B, T, D, dtype=torch.float64)
    state = random_state(cell, B)
    lengths = torch.tensor(LENGTHS)
    fused_outputs, fused_final = aten.run(cell, inputs, state, lengths)
    reference_outputs, reference_final = Recurrent(cell, "reference")(inputs, state, lengths)
    assert fused_outputs.dtype == torch.float64
    assert_close(fused_outputs, reference_outputs, atol=1e-12, rtol=1e-12)
    for fused_field, reference_field in zip(fused_final, reference_final):
        assert_close(fused_field, reference_field, atol=1e-12, rtol=1e-12)


def test_gru_weights_are_flipped_once_without_grad_and_again_after_a_change():
    """Without autograd the flipped GRU weights are reused while the weights stay the same; an in-place
    update (an optimizer step) makes a fresh copy; with autograd every call makes its own (it is in the graph)."""
    cell = CELL_FACTORIES["gru-reset-after"](D, H)
    with torch.no_grad():
        first, again = aten.torch_weights(cell), aten.torch_weights(cell)
        assert all(a is b for a, b in zip(first, again))
        cell.U.add_(1.0)
        changed = aten.torch_weights(cell)
    assert changed[1] is not first[1]
    assert_close(changed[1][:H], cell.U[:H].detach())
    assert_close(changed[1][H : 2 * H], -cell.U[H : 2 * H].detach())
    recorded = aten.torch_weights(cell)
    assert recorded[1].requires_grad and recorded[1] is not changed[1]

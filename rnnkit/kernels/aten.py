"""torch's own fused recurrent kernels (cuDNN on GPU, ATen/oneDNN on CPU), fed our cells' parameters.

torch.lstm / torch.gru / torch.rnn_tanh / torch.rnn_relu take a flat list of weights per layer in the
order (W, U, b, b_U), the same tensors our StackedGateCells hold, so no copy is made and gradients flow
straight back into the cell's parameters. The one translation is the GRU's sign convention: torch's
update gate is our 1 − z, i.e. our z rows negated (see GRUCell).

Variable lengths go through torch's packed-sequence format, which also gives each sequence's final state
at its true end. Tests compare every case here with Recurrent's reference loop.
"""

from __future__ import annotations

import warnings
import weakref
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import ConditionedRNNCell, GRUCell, LSTMCell, LSTMState, RNNCell, RNNState


def unsupported_reason(cell) -> str | None:
    """None when `cell` can run on torch's fused kernel, else why not (logged by Recurrent)."""
    if type(cell) is LSTMCell:
        return None
    if type(cell) is GRUCell:
        return None if cell.reset_after else "torch's GRU kernel is reset-after only"
    if type(cell) in (RNNCell, ConditionedRNNCell):
        return (
            None if cell.nonlinearity in ("tanh", "relu") else f"no fused kernel for nonlinearity {cell.nonlinearity!r}"
        )
    return f"{type(cell).__name__} has no fused torch kernel"


_flipped: weakref.WeakKeyDictionary[GRUCell, tuple] = weakref.WeakKeyDictionary()


def torch_weights(cell) -> list[Tensor]:
    """The cell's parameters in torch's flat order (W, U[, b, b_U]), in torch's GRU convention. The
    conditioned cell is the vanilla RNN over [x_t; y_{t-1}]: W = [W_x W_y] (one copy, gradients flow
    back through it), U = W_h, no recurrent bias."""
    if type(cell) is ConditionedRNNCell:
        W = torch.cat([cell.W_x, cell.W_y], dim=1)
        return [W, cell.W_h] + ([cell.b, torch.zeros_like(cell.b)] if cell.bias else [])
    weights = [cell.W, cell.U] + ([cell.b, cell.b_U] if cell.bias else [])
    if not isinstance(cell, GRUCell):
        return weights
    # torch's z is our 1 − z: the z rows negated, a copy of the weights. Without autograd (evaluation,
    # sampling) the copy is kept until a weight changes, so generating text does not copy them every step.
    key = tuple((w.data_ptr(), w._version) for w in weights)
    recording = torch.is_grad_enabled() and any(w.requires_grad for w in weights)
    if not recording and cell in _flipped and _flipped[cell][0] == key:
        return _flipped[cell][1]
    H = cell.hidden_size
    flipped = [torch.cat([w[:H], -w[H : 2 * H], w[2 * H :]]) for w in weights]
    if not recording:
        _flipped[cell] = (key, flipped)
    return flipped


def run(cell, inputs: Tensor, state: NamedTuple, lengths: Tensor | None) -> tuple[Tensor, NamedTuple]:
    """One layer, one direction: (B, T, D) inputs -> ((B, T, H) outputs, final state).

    cuDNN wants a layer's weights in one flat buffer and warns, at every call, when they are not; a cell's
    parameters are separate tensors, so cuDNN copies them into one (8 MB for a 512-unit LSTM layer, a few
    microseconds on a GPU) and the warning, which says nothing the user can act on, is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="RNN module weights are not part of single contiguous chunk of memory"
        )
        return run_kernel(cell, inputs, state, lengths)


def run_kernel(cell, inputs: Tensor, state: NamedTuple, lengths: Tensor | None) -> tuple[Tensor, NamedTuple]:
    T = inputs.shape[1]
    weights = torch_weights(cell)
    hx = [field.unsqueeze(0) for field in state]  # each (1, B, H): torch wants (layers·directions, B, H)
    kernel = {LSTMCell: torch.lstm, GRUCell: torch.gru}.get(type(cell)) or {
        "tanh": torch.rnn_tanh,
        "relu": torch.rnn_relu,
    }[cell.nonlinearity]
    hx_arg = hx if isinstance(cell, LSTMCell) else hx[0]  # torch.lstm takes [h, c]; the others take h

    if lengths is None:
        outputs, *final = kernel(inputs, hx_arg, weights, cell.bias, 1, 0.0, cell.training, False, True)  # (B, T, H)
    else:
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        order, restore = packed.sorted_indices, packed.unsorted_indices
        hx_sorted = [h.index_select(1, order) for h in hx]  # packed rows are sorted by length, longest first
        hx_arg = hx_sorted if isinstance(cell, LSTMCell) else hx_sorted[0]
        data, *final = kernel(packed.data, packed.batch_sizes, hx_arg, weights, cell.bias, 1, 0.0, cell.training, False)
        outputs, _ = pad_packed_sequence(
            PackedSequence(data, packed.batch_sizes, order, restore), batch_first=True, total_length=T
        )  # (B, T, H)
        final = [h.index_select(1, restore) for h in final]  # back to the caller's batch order
    State = LSTMState if isinstance(cell, LSTMCell) else RNNState
    return outputs, State(*(h.squeeze(0) for h in final))

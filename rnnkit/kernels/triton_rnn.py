"""GPU kernels written in Triton, forward and backward, for every built-in cell but the user's own.

Two families of cells, two sets of kernels. p = cell.project(x) holds every term that reads x_t alone,
computed for all T steps as one matrix product before the loop (its gradient flows back through autograd
as usual); the kernels run what is left, the recurrence.

Stacked-gate cells (RNN with tanh, relu, identity or sigmoid; LSTM; reset-after GRU): U h_{t-1} is one product
for all gates, so a step is ONE kernel each way:
  forward   every gate's pre-activation for a tile of units, the product fused in, then the state update
  backward  ∂L/∂h_t from the output and from step t+1's gate gradients (the product Σ δ U fused in), then
            the gates' gradients

Reset-gate cells (reset-before GRU, MUT1-3) share one shape (`reset_family` maps each cell onto it; φ is
the identity except for MUT3's z, which reads tanh(h)):

    z = σ(p_z + U_z φ(h_{t-1}) + b_z)          MUT1 has no U_z
    r = σ(p_r + U_r h_{t-1} + b_r)
    n = tanh(p_n + U_n (r ⊙ h_{t-1}) + b_n)
    h_t = (1 − z) ⊙ h_{t-1} + z ⊙ n

r must be known in full before U_n (r ⊙ h), so a step is two kernels each way:
  forward   1. z, r and r ⊙ h_{t-1}          2. n and h_t
  backward  A. ∂L/∂h_t, then n's and z's pre-activation gradients
            B. the gradient through U_n (r ⊙ h) to r and h_{t-1}

Each kernel computes a (BLOCK_B × BLOCK_H) tile of batch × hidden units and runs the whole reduction over
H itself: one launch per kernel and step. The weight gradients are summed over all T·B rows afterwards in
one matrix product each (δᵀ h, not T small ones).

On a GPU the launches of a time loop cost more than their work at these sizes, so each layer's loop is
captured once per shape as a CUDA graph and replayed (rnnkit/kernels/triton_graphs.py), its inputs copied
into the graph's own buffers and its results copied out. The buffers and launches of each family are in
rnnkit/kernels/triton_launch.py; this file decides which cells run here and wraps the loops for autograd.

Products run in float32, or in TF32 on the tensor cores when torch.backends.cudnn.allow_tf32 is set (its
default): the switch that lets cuDNN's recurrent kernels, which this path stands beside, do the same.
Tests turn it off to compare with the reference loop at float32 tolerance.

The kernels themselves are in rnnkit/kernels/triton_kernels.py, imported (with Triton) at the path's first
use: importing this module needs neither Triton nor a GPU, and without them `unsupported_reason` says why
and Recurrent falls back. Under Triton's interpreter (TRITON_INTERPRET=1 set before that import) the same
kernels run on the CPU, which is how the tests check them on machines without a GPU.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from types import SimpleNamespace
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.cells import (
    ConditionedRNNCell,
    GRUCell,
    LSTMCell,
    LSTMState,
    MUT1Cell,
    MUT2Cell,
    MUT3Cell,
    RNNCell,
    RNNState,
)
from rnnkit.errors import RnnkitError
from rnnkit.kernels.triton_graphs import graphs_for, use_graphs
from rnnkit.kernels.triton_launch import (
    ACTIVATION,
    GRU,
    LSTM,
    RNN,
    Reset,
    ResetKernels,
    ResetWeights,
    Stacked,
    StackedKernels,
    final_state,
    set_initial,
    set_output_gradients,
)

TRITON_INSTALLED = importlib.util.find_spec("triton") is not None  # found, not imported: see triton_launch.jit()


def kernel_spec(cell) -> tuple[Stacked | Reset, tuple] | None:
    """The cell's family spec and the recurrent weights its kernels read, or None if no kernel runs it."""
    if type(cell) is RNNCell:
        return Stacked(RNN, ACTIVATION[cell.nonlinearity], 1), (cell.U, cell.b_U)
    if type(cell) is LSTMCell:
        return Stacked(LSTM, 0, 4), (cell.U, cell.b_U)
    if type(cell) is GRUCell and cell.reset_after:
        return Stacked(GRU, 0, 3), (cell.U, cell.b_U)
    if type(cell) is GRUCell:
        H = cell.hidden_size
        U_r, U_z, U_n = cell.U.split(H)
        b_r, b_z, b_n = (None, None, None) if cell.b_U is None else cell.b_U.split(H)
        return Reset(z_at=1, r_at=0, n_at=2, z_tanh=False), ResetWeights(U_z, U_r, U_n, b_z, b_r, b_n)
    if type(cell) is ConditionedRNNCell:  # the vanilla RNN's step over [x_t; y_{t-1}]'s projection, no recurrent bias
        return Stacked(RNN, ACTIVATION[cell.nonlinearity], 1), (cell.W_h, None)
    if type(cell) is MUT1Cell:  # b_z is in p_z
        return Reset(0, 1, 2, False), ResetWeights(None, cell.W_hr, cell.W_hh, None, cell.b_r, cell.b_h)
    if type(cell) is MUT2Cell:  # b_h is in p_n
        return Reset(0, 1, 2, False), ResetWeights(cell.W_hz, cell.W_hr, cell.W_hh, cell.b_z, cell.b_r, None)
    if type(cell) is MUT3Cell:  # b_h is in p_n
        return Reset(0, 1, 2, True), ResetWeights(cell.W_hz, cell.W_hr, cell.W_hh, cell.b_z, cell.b_r, None)
    return None


CUDNN_FASTER_ABOVE_BATCH = 64  # for the cells cuDNN also runs, these kernels were faster up to this batch size and
# slower above it (docs/speed-notes.md), so above it auto leaves those cells to cuDNN


def beats_cudnn(batch_size: int) -> bool:
    """Should auto take these kernels over torch's fused (cuDNN) kernel, for a cell both run, at this batch size?"""
    return batch_size <= CUDNN_FASTER_ABOVE_BATCH


def interpreting() -> bool:
    """Is Triton's interpreter on (TRITON_INTERPRET=1 before import)? It runs these kernels on the CPU, slowly."""
    return TRITON_INSTALLED and os.environ.get("TRITON_INTERPRET") == "1"


def unsupported_reason(cell, inputs: Tensor, forced: bool = False) -> str | None:
    """None when this path can run the cell on these inputs, else why not (logged by Recurrent).
    On the CPU it runs only under the interpreter and only when asked for by name (forced)."""
    if not TRITON_INSTALLED:
        return "Triton is not installed"
    if inputs.device.type != "cuda" and not (forced and interpreting() and inputs.device.type == "cpu"):
        return f"the Triton kernels run on CUDA GPUs, the inputs are on {inputs.device.type!r}"
    found = kernel_spec(cell)
    if found is None:
        return f"{type(cell).__name__} has no Triton kernel"
    if inputs.dtype != torch.float32:
        return f"the Triton kernels are float32 only, the inputs are {inputs.dtype}"
    if any(parameter.dtype != torch.float32 for parameter in cell.parameters()):
        return "the Triton kernels are float32 only, the cell's parameters are not"
    if torch.is_autocast_enabled(inputs.device.type):
        return "autocast is on and the Triton kernels are float32 only"
    if any(w is not None and not w.is_contiguous() for w in found[1]):
        return "the Triton kernels read row-major weights, and a recurrent weight is not contiguous"
    if torch._C._are_functorch_transforms_active():
        return "inside a torch.func transform (the kernels have autograd's backward only)"
    return None


class Recurrence(torch.autograd.Function):
    """(p, initial state, weights) -> (y, final state) through the kernels; differentiable in all three."""

    @staticmethod
    def forward(ctx, cell, kernels, spec, lengths, p, n_state: int, *tensors):
        state, weights = tensors[:n_state], tensors[n_state:]
        weights = ResetWeights(*weights) if isinstance(spec, Reset) else weights
        B, T, H = p.shape[0], p.shape[1], state[0].shape[1]
        if use_graphs(p.device):
            graphs = graphs_for(cell, kernels, spec, weights, B, T, H, lengths is not None, p.device)
            y, saved = graphs.forward(p, lengths, state)
        else:
            graphs, y, saved = None, p.new_empty(B, T, H), kernels.saved(spec, B, T, H, p.device)  # y (B, T, H)
            set_initial(saved, state)
            kernels.forward_loop(spec, weights, p, lengths, saved, y)
        final = tuple(field.clone() for field in final_state(saved))  # each (B, H)
        ctx.names = list(vars(saved))  # the saved states go through save_for_backward: freed after backward
        ctx.save_for_backward(
            *(t for t in vars(saved).values() if t is not None), *(w for w in weights if w is not None)
        )
        ctx.has_saved = [t is not None for t in vars(saved).values()]
        ctx.graphs, ctx.lengths, ctx.kernels, ctx.spec = graphs, lengths, kernels, spec
        ctx.has_weight = [w is not None for w in weights]
        return (y, *final)  # (B, T, H), each final field (B, H)

    @staticmethod
    # no second derivatives: asking for one is an error, not a wrong answer
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, *d_final):
        kernels, spec, lengths = ctx.kernels, ctx.spec, ctx.lengths
        tensors = iter(ctx.saved_tensors)
        saved = SimpleNamespace(**{name: next(tensors) if has else None for name, has in zip(ctx.names, ctx.has_saved)})
        weights = tuple(next(tensors) if has else None for has in ctx.has_weight)
        weights = ResetWeights(*weights) if isinstance(spec, Reset) else weights
        T, B, H = saved.hs.shape[0] - 1, saved.hs.shape[1], saved.hs.shape[2]
        if ctx.graphs is not None:
            grads = ctx.graphs.backward(saved, lengths, dy, d_final)
        else:
            grads = kernels.gradient_buffers(spec, B, T, H, saved.hs.device)
            set_output_gradients(grads, dy, d_final)
            kernels.backward_loop(spec, weights, saved, lengths, grads)
        dp, *rest = kernels.gradients(spec, weights, saved, grads)
        return (None, None, None, None, dp, None, *rest)


def family(cell) -> tuple:
    spec, weights = kernel_spec(cell)
    return (ResetKernels if isinstance(spec, Reset) else StackedKernels), spec, weights


def run(cell, inputs: Tensor, state: NamedTuple, lengths: Tensor | None) -> tuple[Tensor, NamedTuple]:
    """One layer, one direction: (B, T, D) inputs (padding zeroed) -> ((B, T, H) outputs, final state)."""
    for name, field in zip(state._fields, state):
        if field.dtype != torch.float32:
            raise RnnkitError(
                f"{type(cell).__name__} state.{name}: expected float32 (the Triton kernels' only dtype), "
                f"got {field.dtype}"
            )
    kernels, spec, weights = family(cell)
    with (
        torch.cuda.device(inputs.device) if inputs.device.type == "cuda" else contextlib.nullcontext()
    ):  # graphs and launches on the inputs' GPU
        p = cell.project(inputs).contiguous()  # (B, T, ·): every step's input terms in one product
        lengths = None if lengths is None else lengths.to(device=inputs.device, dtype=torch.int64)  # (B,)
        fields = tuple(field.contiguous() for field in state)  # each (B, H)
        outputs, *final = Recurrence.apply(cell, kernels, spec, lengths, p, len(fields), *fields, *weights)
    return outputs, (LSTMState if isinstance(cell, LSTMCell) else RNNState)(*final)

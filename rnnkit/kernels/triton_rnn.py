"""GPU kernels written in Triton, forward and backward, for every built-in cell but the user's own.

Two families of cells, two sets of kernels. p = cell.project(x) holds every term that reads x_t alone,
computed for all T steps as one matrix product before the loop (its gradient flows back through autograd
as usual); the kernels run what is left, the recurrence.

Stacked-gate cells (RNN with tanh, relu or identity; LSTM; reset-after GRU): U h_{t-1} is one product
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
captured once per shape as a CUDA graph and replayed (`GRAPHS`), its inputs copied into the graph's own
buffers and its results copied out.

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
import functools
import importlib
import importlib.util
import os
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.cells import GRUCell, LSTMCell, LSTMState, MUT1Cell, MUT2Cell, MUT3Cell, RNNCell, RNNState
from rnnkit.errors import RnnkitError

TRITON_INSTALLED = importlib.util.find_spec("triton") is not None  # found, not imported: see jit()

GRAPHS = True  # replay each layer's time loop as a CUDA graph (False: launch every kernel from Python)
BLOCK_B = 16  # batch rows per tile (tl.dot needs at least 16)
BLOCK_K = 32  # reduction slice per inner product step

RNN, LSTM, GRU = 0, 1, 2  # stacked-gate cells, as the kernels' CELL constant
ACTIVATION = {"tanh": 0, "relu": 1, "identity": 2}


@dataclass(frozen=True)
class Stacked:
    """A stacked-gate cell: which one, its RNN activation, its number of gates."""

    cell: int
    activation: int
    gates: int


@dataclass(frozen=True)
class Reset:
    """A reset-gate cell: where its three input terms sit in cell.project(x) (in units of H), and whether z reads tanh(h)."""

    z_at: int
    r_at: int
    n_at: int
    z_tanh: bool


class ResetWeights(NamedTuple):
    U_z: Tensor | None
    U_r: Tensor
    U_n: Tensor
    b_z: Tensor | None
    b_r: Tensor | None
    b_n: Tensor | None


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
    if type(cell) is MUT1Cell:  # b_z is in p_z
        return Reset(0, 1, 2, False), ResetWeights(None, cell.W_hr, cell.W_hh, None, cell.b_r, cell.b_h)
    if type(cell) is MUT2Cell:  # b_h is in p_n
        return Reset(0, 1, 2, False), ResetWeights(cell.W_hz, cell.W_hr, cell.W_hh, cell.b_z, cell.b_r, None)
    if type(cell) is MUT3Cell:  # b_h is in p_n
        return Reset(0, 1, 2, True), ResetWeights(cell.W_hz, cell.W_hr, cell.W_hh, cell.b_z, cell.b_r, None)
    return None


CUDNN_FASTER_ABOVE_BATCH = 64  # measured on an H100 (bench/speed.py): for the cells cuDNN also runs, these kernels
# were faster at B ≤ 64 (LSTM 1.40-1.63× cuDNN's throughput) but slower at B = 128 (0.84× on the 3×512 char-LM step;
# tiles of 32 or 64 batch rows were slower still), so above that batch size auto leaves those cells to cuDNN


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


@functools.lru_cache(maxsize=None)
def jit():
    """The kernels (rnnkit/kernels/triton_kernels.py), imported, with Triton, at the path's first use."""
    return importlib.import_module("rnnkit.kernels.triton_kernels")


def precision() -> str:
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


@functools.lru_cache(maxsize=None)
def multiprocessors() -> int:
    """The GPU's multiprocessor count (132 on an H100); under the interpreter, that of an H100."""
    return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count if torch.cuda.is_available() else 132


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def launch_settings(B: int, H: int) -> tuple[tuple[int, int], dict]:
    """The grid and block sizes for a (B, H) step. A step is too small to fill a GPU, so tiles are made
    narrow (16 units) unless 32-unit tiles already give one per multiprocessor."""
    block_h = 32 if ceil_div(B, BLOCK_B) * ceil_div(H, 32) >= multiprocessors() else 16
    return (ceil_div(B, BLOCK_B), ceil_div(H, block_h)), dict(BLOCK_B=BLOCK_B, BLOCK_H=block_h, BLOCK_K=BLOCK_K, PRECISION=precision())


def _empty(device, *shape) -> Tensor:
    return torch.empty(*shape, device=device, dtype=torch.float32)


def set_initial(saved: SimpleNamespace, state: tuple[Tensor, ...]) -> None:
    """h0 (and the LSTM's c0) into the first slot of the saved states, where the loop starts."""
    for states, field in zip((saved.hs, saved.cs), state):
        states[0].copy_(field)


def final_state(saved: SimpleNamespace) -> tuple[Tensor, ...]:
    return tuple(states[-1] for states in (saved.hs, saved.cs) if states is not None)  # each (B, H)


def set_output_gradients(grads: SimpleNamespace, dy: Tensor | None, d_final: tuple) -> None:
    """∂L/∂outputs and ∂L/∂ of the final state into the buffers the backward loop starts from (0 where None)."""
    for buffer, gradient in zip((grads.dy, grads.carry, grads.carry_c), (dy, *d_final)):
        buffer.copy_(gradient) if gradient is not None else buffer.zero_()


class StackedKernels:
    """Buffers and launches for the stacked-gate cells. Saved per run, time-major: hs (T+1, B, H) holds
    h_{-1} = h0 ... h_{T-1}; cs likewise (LSTM); acts (T, B, slots·H) the gates' activations."""

    @staticmethod
    def width(spec: Stacked) -> int:
        return spec.gates

    @staticmethod
    def saved(spec: Stacked, B: int, T: int, H: int, device) -> SimpleNamespace:
        slots = spec.gates + (spec.cell == GRU)  # the GRU also keeps U_n h + b_Un
        return SimpleNamespace(hs=_empty(device, T + 1, B, H), cs=_empty(device, T + 1, B, H) if spec.cell == LSTM else None,
                               acts=_empty(device, T, B, slots * H) if spec.cell != RNN else None)

    @staticmethod
    def forward_loop(spec: Stacked, weights: tuple, p: Tensor, lengths: Tensor | None, saved: SimpleNamespace, y: Tensor) -> None:
        B, T, H = y.shape
        grid, blocks = launch_settings(B, H)
        U, b_U = weights
        dummy = y.new_empty(1)
        for s in range(T):
            jit().stacked_forward[grid](p, saved.hs, dummy if saved.cs is None else saved.cs, U, dummy if b_U is None else b_U,
                                   dummy if saved.acts is None else saved.acts, y, dummy if lengths is None else lengths, s, B, T, H,
                                   CELL=spec.cell, ACT=spec.activation, G=spec.gates, HAS_BIAS=b_U is not None, HAS_LENGTHS=lengths is not None, **blocks)

    @staticmethod
    def gradient_buffers(spec: Stacked, B: int, T: int, H: int, device) -> SimpleNamespace:
        return SimpleNamespace(dy=_empty(device, B, T, H), carry=_empty(device, B, H), carry_c=_empty(device, B, H) if spec.cell == LSTM else None,
                               da=_empty(device, T, B, spec.gates * H), dpn=_empty(device, T, B, H) if spec.cell == GRU else None)

    @staticmethod
    def backward_loop(spec: Stacked, weights: tuple, saved: SimpleNamespace, lengths: Tensor | None, grads: SimpleNamespace) -> None:
        B, T, H = grads.dy.shape
        grid, blocks = launch_settings(B, H)
        dummy = grads.dy.new_empty(1)
        for s in reversed(range(T)):
            jit().stacked_backward[grid](grads.dy, grads.carry, dummy if grads.carry_c is None else grads.carry_c, grads.da, dummy if grads.dpn is None else grads.dpn,
                                    weights[0], saved.hs, dummy if saved.cs is None else saved.cs, dummy if saved.acts is None else saved.acts,
                                    dummy if lengths is None else lengths, s, B, T, H,
                                    CELL=spec.cell, ACT=spec.activation, G=spec.gates, HAS_NEXT=s < T - 1, HAS_LENGTHS=lengths is not None, **blocks)

    @staticmethod
    def gradients(spec: Stacked, weights: tuple, saved: SimpleNamespace, grads: SimpleNamespace) -> tuple:
        """∂L/∂p, ∂L/∂ of each initial state field, ∂L/∂U and ∂L/∂b_U: one product each over all T·B rows."""
        U, b_U = weights
        T, B, GH = grads.da.shape
        H = GH // spec.gates
        da = grads.da.reshape(T * B, GH)  # (T·B, G·H)
        # every result is a new tensor: the buffers belong to a CUDA graph that the next call replays
        d_state = (grads.carry + grads.da[0] @ U,) + (() if grads.carry_c is None else (grads.carry_c.clone(),))  # each (B, H)
        dp = grads.da
        if grads.dpn is not None:  # the GRU's n: the input side misses the factor r
            dp = torch.cat([grads.da[:, :, : 2 * H], grads.dpn], dim=2)  # (T, B, 3H)
        d_weights = (da.T @ saved.hs[:T].reshape(T * B, H), None if b_U is None else da.sum(0))  # (G·H, H), (G·H,)
        return (dp.transpose(0, 1).clone(memory_format=torch.contiguous_format), *d_state, *d_weights)  # dp (B, T, G·H)


class ResetKernels:
    """Buffers and launches for the reset-gate cells. Saved per run, time-major: hs (T+1, B, H) holds
    h_{-1} = h0 ... h_{T-1}; z, r, n, r ⊙ h_{t-1} (T, B, H)."""

    @staticmethod
    def width(spec: Reset) -> int:
        return 3

    @staticmethod
    def saved(spec: Reset, B: int, T: int, H: int, device) -> SimpleNamespace:
        return SimpleNamespace(hs=_empty(device, T + 1, B, H), cs=None, z=_empty(device, T, B, H), r=_empty(device, T, B, H), n=_empty(device, T, B, H), rh=_empty(device, T, B, H))

    @staticmethod
    def forward_loop(spec: Reset, weights: ResetWeights, p: Tensor, lengths: Tensor | None, saved: SimpleNamespace, y: Tensor) -> None:
        B, T, H = y.shape
        grid, blocks = launch_settings(B, H)
        dummy = y.new_empty(1)
        U_z, U_r, U_n, b_z, b_r, b_n = (dummy if w is None else w for w in weights)
        for s in range(T):
            jit().reset_gates_forward[grid](p, saved.hs, U_z, U_r, b_z, b_r, saved.z, saved.r, saved.rh, s, B, T, H,
                                       Z_AT=spec.z_at, R_AT=spec.r_at, HAS_UZ=weights.U_z is not None, Z_TANH=spec.z_tanh,
                                       HAS_BZ=weights.b_z is not None, HAS_BR=weights.b_r is not None, **blocks)
            jit().reset_candidate_forward[grid](p, saved.hs, U_n, b_n, saved.z, saved.rh, saved.n, y, dummy if lengths is None else lengths, s, B, T, H,
                                           N_AT=spec.n_at, HAS_BN=weights.b_n is not None, HAS_LENGTHS=lengths is not None, **blocks)

    @staticmethod
    def gradient_buffers(spec: Reset, B: int, T: int, H: int, device) -> SimpleNamespace:
        return SimpleNamespace(dy=_empty(device, B, T, H), carry=_empty(device, B, H), carry_c=None,
                               da_z=_empty(device, T, B, H), da_r=_empty(device, T, B, H), da_n=_empty(device, T, B, H))

    @staticmethod
    def backward_loop(spec: Reset, weights: ResetWeights, saved: SimpleNamespace, lengths: Tensor | None, grads: SimpleNamespace) -> None:
        B, T, H = grads.dy.shape
        grid, blocks = launch_settings(B, H)
        dummy = grads.dy.new_empty(1)
        U_z = dummy if weights.U_z is None else weights.U_z
        for s in reversed(range(T)):
            jit().reset_candidate_backward[grid](grads.dy, grads.carry, grads.da_r, grads.da_z, weights.U_r, U_z, saved.hs, saved.z, saved.n, grads.da_n,
                                            dummy if lengths is None else lengths, s, B, T, H,
                                            HAS_NEXT=s < T - 1, HAS_UZ=weights.U_z is not None, Z_TANH=spec.z_tanh, HAS_LENGTHS=lengths is not None, **blocks)
            jit().reset_backward[grid](grads.da_n, weights.U_n, saved.hs, saved.r, grads.carry, grads.da_r, s, B, H, **blocks)

    @staticmethod
    def gradients(spec: Reset, weights: ResetWeights, saved: SimpleNamespace, grads: SimpleNamespace) -> tuple:
        """∂L/∂p, ∂L/∂h0 and each weight's gradient: one product each over all T·B rows."""
        T, B, H = saved.z.shape
        h_prev = saved.hs[:T].reshape(T * B, H)  # (T·B, H): h_{s-1} of every step
        h0 = saved.hs[0]
        da_z, da_r, da_n = (d.reshape(T * B, H) for d in (grads.da_z, grads.da_r, grads.da_n))  # each (T·B, H)
        dh0 = grads.carry + grads.da_r[0] @ weights.U_r  # (B, H)
        if weights.U_z is not None:
            through_z = grads.da_z[0] @ weights.U_z  # (B, H)
            dh0 = dh0 + (through_z * (1 - torch.tanh(h0) ** 2) if spec.z_tanh else through_z)
        dp = torch.empty(T, B, 3, H, device=h0.device)  # (T, B, 3, H)
        for at, d in ((spec.z_at, grads.da_z), (spec.r_at, grads.da_r), (spec.n_at, grads.da_n)):
            dp[:, :, at] = d
        d_weights = ResetWeights(
            None if weights.U_z is None else da_z.T @ (torch.tanh(h_prev) if spec.z_tanh else h_prev),
            da_r.T @ h_prev,
            da_n.T @ saved.rh.reshape(T * B, H),
            None if weights.b_z is None else da_z.sum(0),
            None if weights.b_r is None else da_r.sum(0),
            None if weights.b_n is None else da_n.sum(0),
        )
        return (dp.reshape(T, B, 3 * H).transpose(0, 1).contiguous(), dh0, *d_weights)  # dp (B, T, 3H)


def clone(buffers: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(**{name: None if t is None else t.clone() for name, t in vars(buffers).items()})


def copy_into(target: SimpleNamespace, source: SimpleNamespace) -> None:
    for name, tensor in vars(source).items():
        if tensor is not None:
            getattr(target, name).copy_(tensor)


def capture(launch) -> "torch.cuda.CUDAGraph":
    """Run `launch` once on a side stream (Triton compiles its kernels there), then capture it as a graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        launch()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        launch()
    return graph


class Graphs:
    """The forward and backward loops of one layer for one shape, captured as CUDA graphs over fixed buffers.

    A replay re-runs the same launches on the same memory, so the caller's inputs are copied into the
    graph's buffers first and the results copied out (the next call overwrites them). Weights are read in
    place: optimizers update them where they are.
    """

    def __init__(self, kernels, spec, weights: tuple, B: int, T: int, H: int, padded: bool, device):
        self.kernels, self.spec, self.weights, self.shape, self.device = kernels, spec, weights, (B, T, H), device
        self.p = torch.zeros(B, T, kernels.width(spec) * H, device=device, dtype=torch.float32)  # (B, T, ·)
        self.lengths = torch.full((B,), T, dtype=torch.int64, device=device) if padded else None  # (B,)
        self.y = torch.zeros(B, T, H, device=device, dtype=torch.float32)  # (B, T, H)
        self.saved = zeroed(kernels.saved(spec, B, T, H, device))
        self.forward_graph = capture(lambda: kernels.forward_loop(spec, weights, self.p, self.lengths, self.saved, self.y))
        self.grads = self.backward_graph = None  # made at the first backward (inference never needs them)

    def forward(self, p: Tensor, lengths: Tensor | None, state: tuple) -> tuple[Tensor, SimpleNamespace]:
        self.p.copy_(p)
        if lengths is not None:
            self.lengths.copy_(lengths)
        set_initial(self.saved, state)
        self.forward_graph.replay()
        return self.y.clone(), clone(self.saved)  # (B, T, H), the states

    def backward(self, saved: SimpleNamespace, lengths: Tensor | None, dy: Tensor | None, d_final: tuple) -> SimpleNamespace:
        """The gradient buffers after a replay: valid until the next replay (callers copy what they keep)."""
        if self.backward_graph is None:  # before the inputs are copied in: capturing runs the loop once, and the
            # loop updates its carries in place, so a replay right after it would start from their final values
            with torch.inference_mode(False):
                self.grads = zeroed(self.kernels.gradient_buffers(self.spec, *self.shape, self.device))
            self.backward_graph = capture(lambda: self.kernels.backward_loop(self.spec, self.weights, self.saved, self.lengths, self.grads))
        copy_into(self.saved, saved)
        if lengths is not None:
            self.lengths.copy_(lengths)
        set_output_gradients(self.grads, dy, d_final)
        self.backward_graph.replay()
        return self.grads


def zeroed(buffers: SimpleNamespace) -> SimpleNamespace:
    for tensor in vars(buffers).values():
        if tensor is not None:
            tensor.zero_()
    return buffers


GRAPHS_PER_CELL = 8  # shapes kept per cell (training, evaluation, a last short batch...); the oldest goes first
_graphs: "weakref.WeakKeyDictionary[torch.nn.Module, OrderedDict[tuple, Graphs]]" = weakref.WeakKeyDictionary()


def graphs_for(cell, kernels, spec, weights: tuple, B: int, T: int, H: int, padded: bool, device) -> Graphs:
    """This cell's graphs for this shape, kept while the cell lives, at most GRAPHS_PER_CELL of them."""
    key = (B, T, padded, precision(), device, tuple(None if w is None else w.data_ptr() for w in weights))
    per_cell = _graphs.setdefault(cell, OrderedDict())
    if key in per_cell:
        per_cell.move_to_end(key)
        return per_cell[key]
    if len(per_cell) >= GRAPHS_PER_CELL:
        per_cell.popitem(last=False)
    with torch.inference_mode(False):  # buffers made under inference mode could not be written by a later training call
        per_cell[key] = Graphs(kernels, spec, weights, B, T, H, padded, device)
    return per_cell[key]


def use_graphs(device: torch.device) -> bool:
    return GRAPHS and device.type == "cuda" and not torch.cuda.is_current_stream_capturing()


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
        ctx.save_for_backward(*(t for t in vars(saved).values() if t is not None), *(w for w in weights if w is not None))
        ctx.has_saved = [t is not None for t in vars(saved).values()]
        ctx.graphs, ctx.lengths, ctx.kernels, ctx.spec = graphs, lengths, kernels, spec
        ctx.has_weight = [w is not None for w in weights]
        return (y, *final)  # (B, T, H), each final field (B, H)

    @staticmethod
    @torch.autograd.function.once_differentiable  # no second derivatives: asking for one is an error, not a wrong answer
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
            raise RnnkitError(f"{type(cell).__name__} state.{name}: expected float32 (the Triton kernels' only dtype), got {field.dtype}")
    kernels, spec, weights = family(cell)
    with torch.cuda.device(inputs.device) if inputs.device.type == "cuda" else contextlib.nullcontext():  # graphs and launches on the inputs' GPU
        p = cell.project(inputs).contiguous()  # (B, T, ·): every step's input terms in one product
        lengths = None if lengths is None else lengths.to(device=inputs.device, dtype=torch.int64)  # (B,)
        fields = tuple(field.contiguous() for field in state)  # each (B, H)
        outputs, *final = Recurrence.apply(cell, kernels, spec, lengths, p, len(fields), *fields, *weights)
    return outputs, (LSTMState if isinstance(cell, LSTMCell) else RNNState)(*final)

"""The Triton path's buffers and launches: one class per family of cells (rnnkit/kernels/triton_rnn.py
explains the families), each saying how wide its input terms are, which states it saves for backward,
and how its forward and backward loops launch the kernels of rnnkit/kernels/triton_kernels.py step by step.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple

import torch
from torch import Tensor

BLOCK_B = 16  # batch rows per tile (tl.dot needs at least 16)
BLOCK_K = 32  # reduction slice per inner product step

RNN, LSTM, GRU = 0, 1, 2  # stacked-gate cells, as the kernels' CELL constant
ACTIVATION = {"tanh": 0, "relu": 1, "identity": 2, "sigmoid": 3}  # the RNN's g, as the kernels' ACT constant


@dataclass(frozen=True)
class Stacked:
    """A stacked-gate cell: which one, its RNN activation, its number of gates."""

    cell: int
    activation: int
    gates: int


@dataclass(frozen=True)
class Reset:
    """A reset-gate cell: where its three input terms sit in cell.project(x) (in units of H), and whether
    z reads tanh(h)."""

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


@functools.cache
def jit():
    """The kernels (rnnkit/kernels/triton_kernels.py), imported, with Triton, at the path's first use."""
    return importlib.import_module("rnnkit.kernels.triton_kernels")


def precision() -> str:
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


@functools.cache
def multiprocessors() -> int:
    """The GPU's multiprocessor count (132 on an H100); under the interpreter, that of an H100."""
    return (
        torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
        if torch.cuda.is_available()
        else 132
    )


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def launch_settings(B: int, H: int) -> tuple[tuple[int, int], dict]:
    """The grid and block sizes for a (B, H) step. A step is too small to fill a GPU, so tiles are made
    narrow (16 units) unless 32-unit tiles already give one per multiprocessor."""
    block_h = 32 if ceil_div(B, BLOCK_B) * ceil_div(H, 32) >= multiprocessors() else 16
    return (ceil_div(B, BLOCK_B), ceil_div(H, block_h)), dict(
        BLOCK_B=BLOCK_B, BLOCK_H=block_h, BLOCK_K=BLOCK_K, PRECISION=precision()
    )


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
        return SimpleNamespace(
            hs=_empty(device, T + 1, B, H),
            cs=_empty(device, T + 1, B, H) if spec.cell == LSTM else None,
            acts=_empty(device, T, B, slots * H) if spec.cell != RNN else None,
        )

    @staticmethod
    def forward_loop(
        spec: Stacked, weights: tuple, p: Tensor, lengths: Tensor | None, saved: SimpleNamespace, y: Tensor
    ) -> None:
        B, T, H = y.shape
        grid, blocks = launch_settings(B, H)
        U, b_U = weights
        dummy = y.new_empty(1)
        for s in range(T):
            jit().stacked_forward[grid](
                p,
                saved.hs,
                dummy if saved.cs is None else saved.cs,
                U,
                dummy if b_U is None else b_U,
                dummy if saved.acts is None else saved.acts,
                y,
                dummy if lengths is None else lengths,
                s,
                B,
                T,
                H,
                CELL=spec.cell,
                ACT=spec.activation,
                G=spec.gates,
                HAS_BIAS=b_U is not None,
                HAS_LENGTHS=lengths is not None,
                **blocks,
            )

    @staticmethod
    def gradient_buffers(spec: Stacked, B: int, T: int, H: int, device) -> SimpleNamespace:
        return SimpleNamespace(
            dy=_empty(device, B, T, H),
            carry=_empty(device, B, H),
            carry_c=_empty(device, B, H) if spec.cell == LSTM else None,
            da=_empty(device, T, B, spec.gates * H),
            dpn=_empty(device, T, B, H) if spec.cell == GRU else None,
        )

    @staticmethod
    def backward_loop(
        spec: Stacked, weights: tuple, saved: SimpleNamespace, lengths: Tensor | None, grads: SimpleNamespace
    ) -> None:
        B, T, H = grads.dy.shape
        grid, blocks = launch_settings(B, H)
        dummy = grads.dy.new_empty(1)
        for s in reversed(range(T)):
            jit().stacked_backward[grid](
                grads.dy,
                grads.carry,
                dummy if grads.carry_c is None else grads.carry_c,
                grads.da,
                dummy if grads.dpn is None else grads.dpn,
                weights[0],
                saved.hs,
                dummy if saved.cs is None else saved.cs,
                dummy if saved.acts is None else saved.acts,
                dummy if lengths is None else lengths,
                s,
                B,
                T,
                H,
                CELL=spec.cell,
                ACT=spec.activation,
                G=spec.gates,
                HAS_NEXT=s < T - 1,
                HAS_LENGTHS=lengths is not None,
                **blocks,
            )

    @staticmethod
    def gradients(spec: Stacked, weights: tuple, saved: SimpleNamespace, grads: SimpleNamespace) -> tuple:
        """∂L/∂p, ∂L/∂ of each initial state field, ∂L/∂U and ∂L/∂b_U: one product each over all T·B rows."""
        U, b_U = weights
        T, B, GH = grads.da.shape
        H = GH // spec.gates
        da = grads.da.reshape(T * B, GH)  # (T·B, G·H)
        # every result is a new tensor: the buffers belong to a CUDA graph that the next call replays
        d_state = (grads.carry + grads.da[0] @ U,) + (
            () if grads.carry_c is None else (grads.carry_c.clone(),)
        )  # each (B, H)
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
        return SimpleNamespace(
            hs=_empty(device, T + 1, B, H),
            cs=None,
            z=_empty(device, T, B, H),
            r=_empty(device, T, B, H),
            n=_empty(device, T, B, H),
            rh=_empty(device, T, B, H),
        )

    @staticmethod
    def forward_loop(
        spec: Reset, weights: ResetWeights, p: Tensor, lengths: Tensor | None, saved: SimpleNamespace, y: Tensor
    ) -> None:
        B, T, H = y.shape
        grid, blocks = launch_settings(B, H)
        dummy = y.new_empty(1)
        U_z, U_r, U_n, b_z, b_r, b_n = (dummy if w is None else w for w in weights)
        for s in range(T):
            jit().reset_gates_forward[grid](
                p,
                saved.hs,
                U_z,
                U_r,
                b_z,
                b_r,
                saved.z,
                saved.r,
                saved.rh,
                s,
                B,
                T,
                H,
                Z_AT=spec.z_at,
                R_AT=spec.r_at,
                HAS_UZ=weights.U_z is not None,
                Z_TANH=spec.z_tanh,
                HAS_BZ=weights.b_z is not None,
                HAS_BR=weights.b_r is not None,
                **blocks,
            )
            jit().reset_candidate_forward[grid](
                p,
                saved.hs,
                U_n,
                b_n,
                saved.z,
                saved.rh,
                saved.n,
                y,
                dummy if lengths is None else lengths,
                s,
                B,
                T,
                H,
                N_AT=spec.n_at,
                HAS_BN=weights.b_n is not None,
                HAS_LENGTHS=lengths is not None,
                **blocks,
            )

    @staticmethod
    def gradient_buffers(spec: Reset, B: int, T: int, H: int, device) -> SimpleNamespace:
        return SimpleNamespace(
            dy=_empty(device, B, T, H),
            carry=_empty(device, B, H),
            carry_c=None,
            da_z=_empty(device, T, B, H),
            da_r=_empty(device, T, B, H),
            da_n=_empty(device, T, B, H),
        )

    @staticmethod
    def backward_loop(
        spec: Reset, weights: ResetWeights, saved: SimpleNamespace, lengths: Tensor | None, grads: SimpleNamespace
    ) -> None:
        B, T, H = grads.dy.shape
        grid, blocks = launch_settings(B, H)
        dummy = grads.dy.new_empty(1)
        U_z = dummy if weights.U_z is None else weights.U_z
        for s in reversed(range(T)):
            jit().reset_candidate_backward[grid](
                grads.dy,
                grads.carry,
                grads.da_r,
                grads.da_z,
                weights.U_r,
                U_z,
                saved.hs,
                saved.z,
                saved.n,
                grads.da_n,
                dummy if lengths is None else lengths,
                s,
                B,
                T,
                H,
                HAS_NEXT=s < T - 1,
                HAS_UZ=weights.U_z is not None,
                Z_TANH=spec.z_tanh,
                HAS_LENGTHS=lengths is not None,
                **blocks,
            )
            jit().reset_backward[grid](
                grads.da_n, weights.U_n, saved.hs, saved.r, grads.carry, grads.da_r, s, B, H, **blocks
            )

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

"""CUDA graphs for the Triton path: each layer's forward and backward loops captured once per shape and
replayed, because on a GPU the launches of a time loop cost more than their work at these sizes.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from types import SimpleNamespace

import torch
from torch import Tensor

from rnnkit.kernels.triton_launch import precision, set_initial, set_output_gradients

GRAPHS = True  # replay each layer's time loop as a CUDA graph (False: launch every kernel from Python)


def clone(buffers: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(**{name: None if t is None else t.clone() for name, t in vars(buffers).items()})


def copy_into(target: SimpleNamespace, source: SimpleNamespace) -> None:
    for name, tensor in vars(source).items():
        if tensor is not None:
            getattr(target, name).copy_(tensor)


def capture(launch) -> torch.cuda.CUDAGraph:
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
        self.forward_graph = capture(
            lambda: kernels.forward_loop(spec, weights, self.p, self.lengths, self.saved, self.y)
        )
        self.grads = self.backward_graph = None  # made at the first backward (inference never needs them)

    def forward(self, p: Tensor, lengths: Tensor | None, state: tuple) -> tuple[Tensor, SimpleNamespace]:
        self.p.copy_(p)
        if lengths is not None:
            self.lengths.copy_(lengths)
        set_initial(self.saved, state)
        self.forward_graph.replay()
        return self.y.clone(), clone(self.saved)  # (B, T, H), the states

    def backward(
        self, saved: SimpleNamespace, lengths: Tensor | None, dy: Tensor | None, d_final: tuple
    ) -> SimpleNamespace:
        """The gradient buffers after a replay: valid until the next replay (callers copy what they keep)."""
        if self.backward_graph is None:  # before the inputs are copied in: capturing runs the loop once, and the
            # loop updates its carries in place, so a replay right after it would start from their final values
            with torch.inference_mode(False):
                self.grads = zeroed(self.kernels.gradient_buffers(self.spec, *self.shape, self.device))
            self.backward_graph = capture(
                lambda: self.kernels.backward_loop(self.spec, self.weights, self.saved, self.lengths, self.grads)
            )
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
_graphs: weakref.WeakKeyDictionary[torch.nn.Module, OrderedDict[tuple, Graphs]] = weakref.WeakKeyDictionary()


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

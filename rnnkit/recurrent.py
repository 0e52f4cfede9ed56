"""Running a cell over time: Recurrent (the time loop), Bidirectional, Stacked (with skip connections),
reverse_padded, detach.

Every layer here has the same call:

    outputs, state = layer(inputs, state=None, lengths=None)                      # (B, T, H_out), final state
    outputs, state, states = layer(inputs, state, lengths, return_states=True)    # + every step's state

Everything is batch-first. A batch of sequences of different lengths is padded to T and comes with a
`lengths` tensor (B,): padded steps leave the state unchanged (the final state is the one at each
sequence's true end), their outputs are 0, and the backward direction of a bidirectional layer starts at
each sequence's true end, never on padding:

    inputs          [a b c 0]      reverse_padded ->   [c b a 0]
    lengths          3                                  3

Recurrent's loop is the reference. Three fast paths run the same parameters, and tests prove each equal
to the loop (values and gradients):
  triton    on CUDA GPUs, every built-in cell: rnnkit's own Triton kernels, forward and backward, replayed
            as CUDA graphs (rnnkit/kernels/triton_rnn.py); float32 only;
  fused     the cells torch has a kernel for (LSTM, reset-after GRU, tanh/relu RNN):
            rnnkit/kernels/aten.py, cuDNN on GPU, ATen/oneDNN on CPU;
  compiled  any cell, custom ones included: this module's time_loop compiled by torch.compile, in chunks,
            with the cell's input terms computed for all steps at once (rnnkit/kernels/compiled.py).
implementation="auto" takes the first that can run, in that order (rnnkit/kernels/dispatch.py), and logs why the
others could not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell
from rnnkit.errors import RnnkitError, check_shape, format_shape
from rnnkit.kernels import aten, compiled, triton_rnn
from rnnkit.kernels.dispatch import IMPLEMENTATIONS, choose_path
from rnnkit.regularization import locked_dropout

logger = logging.getLogger(__name__)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each row's first lengths[b] steps along dim 1 and leave its padding in place.

    [[1, 2, 0]] with lengths [2] -> [[2, 1, 0]]. Without lengths, a plain flip over time.
    """
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    lengths = check_lengths(lengths, B, T)
    steps = torch.arange(T, device=x.device)  # (T,)
    source = lengths.to(x.device)[:, None] - 1 - steps  # (B, T): where step t's value comes from
    source = torch.where(source >= 0, source, steps)  # padded steps stay where they are
    index = source.view(B, T, *([1] * (x.dim() - 2))).expand_as(x)  # (B, T, ...)
    return x.gather(1, index)


def map_state(function: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply `function` to every tensor of a (nested) state, keeping its structure and NamedTuple types."""
    if isinstance(state, Tensor):
        return function(state)
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a NamedTuple state
        return type(state)(*(map_state(function, s) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(function, s) for s in state)
    return state


def detach(state: Any) -> Any:
    """Detach every tensor in a (nested) state: keep the values, cut the graph (TBPTT)."""
    return map_state(Tensor.detach, state)


def to_plain(state: Any) -> Any:
    """NamedTuple states -> plain lists, so a checkpoint holds only tensors and builtins."""
    if isinstance(state, (tuple, list)):
        return [to_plain(s) for s in state]
    return state


def like(template: Any, plain: Any) -> Any:
    """Inverse of to_plain: rebuild `plain` with the structure (and NamedTuple types) of `template`."""
    if isinstance(template, Tensor):
        return plain
    if len(template) != len(plain):
        raise RnnkitError(f"saved state has {len(plain)} parts where the model has {len(template)}")
    parts = [like(t, p) for t, p in zip(template, plain)]
    return type(template)(*parts) if hasattr(template, "_fields") else type(template)(parts)


def check_lengths(lengths: Tensor | Sequence[int] | None, batch_size: int, seq_len: int) -> Tensor | None:
    """lengths must be (B,) integers in [1, T]: a ValueError naming what was received otherwise."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise RnnkitError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
    check_shape("lengths", lengths, (batch_size,))
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > seq_len:
        raise RnnkitError(f"lengths: every length must be in [1, T={seq_len}], got min {low} and max {high}")
    return lengths.long()


def time_loop(
    cell: Cell,
    xs: Tensor,
    state: NamedTuple,
    alive: Tensor | None,
    projected: bool = False,
    return_states: bool = False,
):
    """The time loop: for t in range(T): state = cell(x_t, state). Recurrent's reference path, and, compiled
    a chunk at a time, the compiled path's (rnnkit/kernels/compiled.py).

    xs (B, T, D) are the inputs, or with `projected` the cell's project(inputs), each step then running
    cell.step. alive (B, T) marks real steps: padded steps keep the old state and output 0.
    Returns ((B, T, H) outputs, final state), and every step's state when return_states.
    """
    outputs, states = [], []
    for t, x in enumerate(xs.unbind(1)):  # unbind, not xs[:, t]: its backward is one stack, not T zero-fills
        new_state = cell.step(x, state) if projected else cell(x, state)
        if alive is not None:  # padded steps keep the old state and output 0
            keep = alive[:, t, None]  # (B, 1)
            new_state = type(state)(*(torch.where(keep, new, old) for new, old in zip(new_state, state)))
            outputs.append(torch.where(keep, new_state.h, 0.0))  # (B, H)
        else:
            outputs.append(new_state.h)  # (B, H)
        state = new_state
        if return_states:
            states.append(state)
    outputs = torch.stack(outputs, dim=1)  # (B, T, H)
    if not return_states:
        return outputs, state
    stacked = type(state)(*(torch.stack(field, dim=1) for field in zip(*states)))  # each field (B, T, H)
    return outputs, state, stacked


class Recurrent(nn.Module):
    """Runs a cell over the time axis: the only time loop in rnnkit.

        for t in range(T): state_t = cell(x_t, state_{t-1});  output_t = state_t.h

    implementation: "auto" takes rnnkit's Triton kernels on a GPU (built-in cells, float32; for the cells
    cuDNN also runs, only up to batch 64, above which cuDNN was faster), else torch's fused kernel when the
    cell has one, else the compiled loop when T fills at least its shortest chunk (compiled.CHUNKS) and the
    cell has run on this shape before (the first call runs eagerly, so a one-off call never waits for the
    compiler), else the loop below; "fused", "triton" and "compiled" ask for one path and are an error
    where it cannot run; "reference" always runs the loop below. return_states=True always runs the loop
    below (the fast paths keep no per-step states).
    """

    def __init__(self, cell: Cell, implementation: str = "auto"):
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise RnnkitError(f"Recurrent: implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        self.cell = cell
        self.implementation = implementation
        self.output_size = cell.hidden_size
        self.logged: set[str] = set()  # reasons already logged, so a training run logs each once

    def init_state(self, batch_size: int) -> NamedTuple:
        return self.cell.init_state(batch_size)

    def extra_repr(self) -> str:
        return f"implementation={self.implementation!r}"

    def step(self, x: Tensor, state: NamedTuple | None = None) -> NamedTuple:
        """One time step, (B, D) -> the new state (its h the output), through the cell's own equations and none of
        forward's checks or choice of path: the step a sampler or a decoder takes, a token at a time. It equals
        forward on a (B, 1, D) input on the reference path bit for bit; torch's fused kernels sum the same terms
        in another order (and on a CPU cost more to set up than a step of a small model costs to run)."""
        return self.cell.one_step(x, self.cell.init_state(x.shape[0]) if state is None else state)

    def forward(
        self,
        inputs: Tensor,
        state: NamedTuple | None = None,
        lengths: Tensor | None = None,
        return_states: bool = False,
    ):
        """inputs (B, T, D), state (zeros when None), lengths (B,) for a padded batch -> (outputs (B, T, H),
        final state[, every step's state when return_states, each field (B, T, H)])."""
        check_shape(f"{type(self.cell).__name__} layer inputs (B, T, D)", inputs, (None, None, self.cell.input_size))
        B, T, _ = inputs.shape
        if T == 0:
            raise RnnkitError(f"inputs: expected at least one time step, got shape {format_shape(inputs.shape)}")
        lengths = check_lengths(lengths, B, T)
        state = self.cell.init_state(B) if state is None else state
        self.cell.check_step(inputs[:, 0], state)
        for field, value in zip(state._fields, state):  # every path would fail later, each with its own message
            if value.device != inputs.device:
                raise RnnkitError(
                    f"{type(self.cell).__name__} state.{field} is on {value.device}, the inputs on {inputs.device}"
                )

        path, why_not = choose_path(self.cell, self.implementation, inputs, return_states)
        if path == "fused":  # packed sequences: torch's kernel never reads the padding
            return aten.run(self.cell, inputs, state, lengths)
        alive = (
            None if lengths is None else torch.arange(T, device=inputs.device) < lengths.to(inputs.device)[:, None]
        )  # (B, T)
        if alive is not None:  # zero the padding: its values must not reach even the discarded steps (inf · 0 = nan)
            inputs = inputs.masked_fill(~alive[:, :, None], 0.0)  # (B, T, D)
        if path == "triton":
            return triton_rnn.run(self.cell, inputs, state, lengths)
        if path == "compiled":
            return compiled.run(self.cell, inputs, state, alive, time_loop)
        if self.implementation == "auto" and why_not not in self.logged:
            self.logged.add(why_not)
            logger.info("reference loop for %s: %s", type(self.cell).__name__, why_not)
        return time_loop(self.cell, inputs, state, alive, return_states=return_states)


class Bidirectional(nn.Module):
    """Two layers over the same inputs, one forward and one backward in time; outputs concatenated.

    The backward layer reads reverse_padded(inputs), so it starts at each sequence's true end.
    Its state is the pair (forward_state, backward_state).
    """

    def __init__(self, forward_rnn: nn.Module, backward_rnn: nn.Module):
        super().__init__()
        self.forward_rnn = forward_rnn
        self.backward_rnn = backward_rnn
        self.output_size = forward_rnn.output_size + backward_rnn.output_size

    def step(self, x: Tensor, state=None):
        raise RnnkitError("a bidirectional layer reads the whole sequence both ways: it has no single step")

    def init_state(self, batch_size: int) -> tuple:
        return (self.forward_rnn.init_state(batch_size), self.backward_rnn.init_state(batch_size))

    def forward(
        self, inputs: Tensor, state: tuple | None = None, lengths: Tensor | None = None, return_states: bool = False
    ):
        """inputs (B, T, D) -> (outputs (B, T, H_forward + H_backward), (forward state, backward state)[, states]);
        the backward layer reads each sequence from its true end."""
        forward_state, backward_state = (None, None) if state is None else state
        lengths = check_lengths(lengths, inputs.shape[0], inputs.shape[1])
        forward_result = self.forward_rnn(inputs, forward_state, lengths, return_states)
        backward_result = self.backward_rnn(reverse_padded(inputs, lengths), backward_state, lengths, return_states)
        outputs = torch.cat([forward_result[0], reverse_padded(backward_result[0], lengths)], dim=-1)  # (B, T, 2H)
        final = (forward_result[1], backward_result[1])
        if not return_states:
            return outputs, final
        backward_states = type(backward_result[2])(*(reverse_padded(field, lengths) for field in backward_result[2]))
        return outputs, final, (forward_result[2], backward_states)


SKIPS = ("none", "residual", "dense")  # how Stacked connects its layers besides each reading the one below


class Shortcut(nn.Module):
    """A residual connection's learned linear map P (no bias) between two widths, for a layer whose output width
    differs from its input's. It starts as the identity on the first min(D, H) features (the rest zero or dropped),
    so a residual stack starts with a clean identity path, with no random draw."""

    def __init__(self, input_size: int, output_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(output_size, input_size))  # (H, D)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.eye(*self.weight.shape))  # (H, D): rectangular identity

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}"

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight)  # (..., D) -> (..., H)


class Stacked(nn.Module):
    """Layers run one after another, with dropout on what every layer but the first reads, as torch.nn.LSTM's
    `dropout` does (with `locked`, AWD-LSTM's variational dropout). Its state is the list of the layers' states.

    skip connects the layers besides each reading the one below (the notes' remedy when the gradient does not
    reach the lower layers of a deep RNN); with y_k layer k's output, x the stack's input:

        none      layer k reads y_{k-1} (y_{-1} = x)                    out = y_{L-1}
        residual  layer k ≥ 1 outputs y_k = layer_k(y_{k-1}) + P_k y_{k-1}, P_k the identity, or a learned
                  Shortcut where the widths differ; layer 0 none (its input, embeddings or features, is
                  another kind of vector)                                out = y_{L-1}
        dense     layer k reads [x; y_0; ...; y_{k-1}]: k + 1 pieces     out = y_{L-1}, the last layer's alone

    Dropout drops what a layer reads (with dense, the whole concatenation); residual's identity path adds
    y_{k-1} undropped. Skip sits between layers, so every layer still runs on its own path (fused, compiled,
    triton, reference), and padded steps still output 0 (P has no bias). Dense layers must be built for their
    wider inputs (stack_layers does). One layer has nothing to connect: it runs as with none. Code that steps a
    stack's cells by hand calls reads() and joins() to follow the same connections.
    """

    def __init__(self, layers: Sequence[nn.Module], dropout: float = 0.0, locked: bool = False, skip: str = "none"):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise RnnkitError(f"Stacked: dropout must be in [0, 1), got {dropout}")
        if skip not in SKIPS:
            raise RnnkitError(f"Stacked: skip must be one of {', '.join(SKIPS)}, got {skip!r}")
        self.layers = nn.ModuleList(layers)
        self.dropout = dropout
        self.locked = locked  # one mask per sequence for all steps (variational dropout) instead of one per step
        self.skip = skip
        self.output_size = self.layers[-1].output_size
        if skip == "residual":  # shortcuts[k] is P_k; layer 0 has none, its placeholder keeps k the layer's index
            widths = [(below.output_size, layer.output_size) for below, layer in zip(self.layers, self.layers[1:])]
            self.shortcuts = nn.ModuleList(
                [nn.Identity()] + [nn.Identity() if D == H else Shortcut(D, H) for D, H in widths]
            )

    def extra_repr(self) -> str:
        return "" if self.skip == "none" else f"skip={self.skip!r}"

    def step(self, x: Tensor, state: Sequence | None = None) -> tuple[Tensor, list]:
        """One time step of every layer, (B, D) -> (the last layer's output (B, H), each layer's new state), with
        forward's dropout and skip connections: forward on a (B, 1, D) input, one token at a time (Recurrent.step)."""
        below, states = [x], []
        for index, layer in enumerate(self.layers):
            read = self.reads(index, below)  # (B, D_index)
            dropped = read if index == 0 or not self.training else F.dropout(read, self.dropout, True)
            states.append(layer.step(dropped, None if state is None else state[index]))
            below.append(self.joins(index, read, states[-1].h))  # (B, H)
            if self.skip != "dense":
                below = below[-1:]
        return below[-1], states

    def init_state(self, batch_size: int) -> list:
        return [layer.init_state(batch_size) for layer in self.layers]

    def reads(self, index: int, below: Sequence[Tensor]) -> Tensor:
        """What layer `index` reads, before dropout, from `below`: the stack's input and the outputs of layers
        0 .. index − 1, each (..., width); the last of them, or with dense all of them side by side."""
        return torch.cat(list(below), dim=-1) if self.skip == "dense" else below[-1]  # (..., D_index)

    def joins(self, index: int, read: Tensor, output: Tensor) -> Tensor:
        """Layer `index`'s output (..., H) as the layers above see it: with residual (from layer 1) plus its
        input `read` (..., D), mapped by P_k where the widths differ."""
        if self.skip != "residual" or index == 0:
            return output
        return output + self.shortcuts[index](read)  # (..., H): the identity path

    def forward(
        self, inputs: Tensor, state: Sequence | None = None, lengths: Tensor | None = None, return_states: bool = False
    ):
        """inputs (B, T, D) -> (the last layer's outputs (B, T, H),
        [each layer's final state][, each layer's states])."""
        if state is not None and len(state) != len(self.layers):
            raise RnnkitError(f"Stacked: expected a state for each of {len(self.layers)} layers, got {len(state)}")
        drop = locked_dropout if self.locked else F.dropout
        below, finals, all_states = [inputs], [], []  # below: the stack's input, then each layer's output
        for index, layer in enumerate(self.layers):
            read = self.reads(index, below)  # (B, T, D_index)
            x = read if index == 0 else drop(read, self.dropout, self.training)  # (B, T, D_index)
            result = layer(x, None if state is None else state[index], lengths, return_states)
            below.append(self.joins(index, read, result[0]))  # (B, T, H)
            if self.skip != "dense":
                below = below[-1:]  # only dense reads further down than the layer below
            finals.append(result[1])
            if return_states:
                all_states.append(result[2])
        return (below[-1], finals, all_states) if return_states else (below[-1], finals)


def stack_layers(
    make_layer: Callable[[int, int], nn.Module],
    input_size: int,
    num_layers: int,
    bidirectional: bool = False,
    dropout: float = 0.0,
    locked: bool = False,
    skip: str = "none",
) -> Stacked:
    """num_layers layers, each make_layer(index, its input size) (twice, for the two directions, when
    bidirectional), each reading the one below, or with skip="dense" all below: the one way rnnkit stacks
    layers."""
    layers: list[nn.Module] = []
    widths = [input_size]  # the stack's input, then each layer's output: what a dense layer reads side by side
    for index in range(num_layers):
        layer_input = sum(widths) if skip == "dense" else widths[-1]
        if bidirectional:
            layers.append(Bidirectional(make_layer(index, layer_input), make_layer(index, layer_input)))
        else:
            layers.append(make_layer(index, layer_input))
        widths.append(layers[-1].output_size)
    return Stacked(layers, dropout, locked, skip)

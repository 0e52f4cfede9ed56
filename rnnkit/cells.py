"""Recurrent cells, one time step each, written as the notes' equations.

A cell maps (x_t, state_{t-1}) -> state_t for one (B, D) input. It knows nothing about time
(`Recurrent` owns the loop) and keeps no state between calls: states are NamedTuples passed in and
returned. Parameter names follow the notes' letters:

    W    input weights,     (G·H, D)   the G gates' rows stacked, in torch's gate order
    U    recurrent weights, (G·H, H)
    b    input-side bias,   (G·H,)
    b_U  recurrent bias,    (G·H,)     torch/cuDNN keep two biases; the notes' b is b + b_U

Keeping both biases and torch's gate order lets torch.nn weights load unchanged and lets the same
parameters run through torch's fused kernels (rnnkit/kernels/aten.py). Only for the reset-after GRU do
the two biases differ in effect, because b_U sits inside r ⊙ (·) there.

Initialisation matches torch: every parameter ~ U(-1/√H, 1/√H).

References: the lecture notes (vanilla RNN, LSTM, GRU); Cho et al. 2014 (GRU, reset-before);
Jozefowicz, Zaremba & Sutskever 2015, "An Empirical Exploration of Recurrent Network Architectures" (MUT1-3).
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import RnnkitError, check_shape


class RNNState(NamedTuple):
    """State of the vanilla RNN, the GRU and the MUT cells."""

    h: Tensor  # (B, H)


class LSTMState(NamedTuple):
    """State of the LSTM: hidden state h and cell state c."""

    h: Tensor  # (B, H)
    c: Tensor  # (B, H)


ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,  # the notes' "why not rectifiers?": ‖h_t‖ can grow without bound
    "identity": lambda a: a,  # the linear RNN: h_t = U^t h_0 + ..., the case the gradient analysis solves exactly
    "sigmoid": torch.sigmoid,  # the notes' logistic unit: h in (0, 1), σ' ≤ 1/4, so gradients shrink faster than tanh's
}


class Cell(nn.Module):
    """What every cell shares: its sizes, a zero initial state, input checks and initialisation.

    A subclass sets `State`, creates its parameters and writes `forward(x, state) -> state`.
    Cells users write themselves work with `Recurrent` if they follow the same contract.

    A cell may also split its step in two, as every cell here does, so that fast paths compute the part
    that reads x_t alone for all time steps in one matrix product (rnnkit/kernels/compiled.py):
        project(x) -> p          the terms of the equations that depend on x_t only; x may be (B, T, D)
        step(p_t, state) -> state
    with forward(x, state) == step(project(x), state).
    """

    State: type = RNNState

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise RnnkitError(
                f"{type(self).__name__}: sizes must be positive, got input_size={input_size}, hidden_size={hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size

    def extra_repr(self) -> str:
        """Sizes and the options that differ from the defaults, as torch.nn's cells show them: LSTMCell(32, 64)."""
        options = [
            f"{name}={getattr(self, name)!r}"
            for name, default in (("nonlinearity", "tanh"), ("bias", True))
            if hasattr(self, name) and getattr(self, name) != default
        ]
        options += [f"reset_after={self.reset_after}"] if hasattr(self, "reset_after") else []
        return ", ".join([str(self.input_size), str(self.hidden_size), *options])

    def init_state(self, batch_size: int) -> NamedTuple:
        """All-zero state for a batch, on the parameters' device and dtype."""
        parameter = next(self.parameters())
        return self.State(
            *(parameter.new_zeros(batch_size, self.hidden_size) for _ in self.State._fields)
        )  # each (B, H)

    def check_step(self, x: Tensor, state: NamedTuple) -> None:
        """x must be (B, D) and every state field (B, H): a ValueError naming both shapes otherwise."""
        name = type(self).__name__
        check_shape(f"{name} input x_t", x, (None, self.input_size))
        if not isinstance(state, self.State):
            raise RnnkitError(f"{name}: state must be a {self.State.__name__}, got {type(state).__name__}")
        for field, value in zip(state._fields, state):
            check_shape(f"{name} state.{field}", value, (x.shape[0], self.hidden_size))

    def forward(self, x: Tensor, state: NamedTuple) -> NamedTuple:
        """One step, for the cells that split it into project and step (a cell that doesn't overrides this)."""
        self.check_step(x, state)
        return self.step(self.project(x), state)

    def one_step(self, x: Tensor, state: NamedTuple) -> NamedTuple:
        """forward without its checks: what a sampler or decoder calls a token at a time, where the checks would
        cost as much as the step. A cell with one of torch's own cell kernels runs it instead where that kernel
        computes the same terms in the same order (tests/test_fast_sampling.py holds them equal bit for bit)."""
        if type(self).forward is Cell.forward:
            return self.step(self.project(x), state)
        return self(x, state)  # a cell that writes its own forward (a user's)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every parameter ~ U(-1/√H, 1/√H), as torch.nn's cells do."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound, generator=generator)


def check_chrono(name: str, chrono: int, bias: bool) -> None:
    if chrono and (chrono < 2 or not bias):
        raise RnnkitError(
            f"{name}: chrono initialisation needs bias=True and T_max ≥ 2 (the longest gap to remember), got {chrono}"
        )


def chrono_biases(hidden_size: int, t_max: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """log u with u ~ U(1, T_max − 1) per unit: the forget-gate biases of chrono initialisation, (H,)."""
    u = torch.rand(hidden_size, generator=generator, dtype=torch.float64) * max(t_max - 2, 0) + 1
    return u.log().to(like)


def _parameter(*shape: int, device=None, dtype=None) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape, device=device, dtype=dtype))


class StackedGateCell(Cell):
    """A cell whose G gates share one stacked W (G·H, D), U (G·H, H), b and b_U, as torch and cuDNN store them."""

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        rows = self.num_gates * hidden_size
        self.W = _parameter(rows, input_size, device=device, dtype=dtype)
        self.U = _parameter(rows, hidden_size, device=device, dtype=dtype)
        self.b = _parameter(rows, device=device, dtype=dtype) if bias else None
        self.b_U = _parameter(rows, device=device, dtype=dtype) if bias else None
        self.bias = bias
        self.reset_parameters()

    def project(self, x: Tensor) -> Tensor:
        """W x_t + b for every gate: the part of the step that reads x_t alone."""
        return F.linear(x, self.W, self.b)  # (..., G·H)


class RNNCell(StackedGateCell):
    """The vanilla RNN of the notes:

        h_t = g(W x_t + U h_{t-1} + b)

    with g = tanh (default), relu, identity or sigmoid. b is stored as b + b_U (see the module docstring).
    """

    def __init__(
        self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", bias: bool = True, device=None, dtype=None
    ):
        if nonlinearity not in ACTIVATIONS:
            raise RnnkitError(f"RNNCell: nonlinearity must be one of {sorted(ACTIVATIONS)}, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity
        self.g = ACTIVATIONS[nonlinearity]

    def step(self, wx: Tensor, state: RNNState) -> RNNState:
        h = self.g(wx + F.linear(state.h, self.U, self.b_U))  # (B, H); wx = W x_t + b
        return RNNState(h)

    def one_step(self, x: Tensor, state: RNNState) -> RNNState:
        kernel = {"tanh": torch._VF.rnn_tanh_cell, "relu": torch._VF.rnn_relu_cell}.get(self.nonlinearity)
        if kernel is None or type(self).step is not RNNCell.step:  # a subclass's own step: its equations
            return super().one_step(x, state)
        return RNNState(kernel(x, state.h, self.W, self.U, self.b, self.b_U))  # g(W x + b + U h + b_U)


class LSTMCell(StackedGateCell):
    """The LSTM of the notes (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):

        i_t = σ(W_i x_t + U_i h_{t-1} + b_i)        input gate
        f_t = σ(W_f x_t + U_f h_{t-1} + b_f)        forget gate
        g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)     candidate cell state
        o_t = σ(W_o x_t + U_o h_{t-1} + b_o)        output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t             the additive update that lets gradients survive
        h_t = o_t ⊙ tanh(c_t)

    W, U, b stack the gates' rows in the order i, f, g, o (torch's). `forget_bias`, when given, sets
    b_f to that value and b_U's forget rows to 0 (Jozefowicz et al. 2015 recommend 1.0), so the cell
    starts by remembering. `chrono` = T_max > 1 instead draws b_f ~ log U(1, T_max − 1) and sets b_i = −b_f
    (chrono initialisation, Tallec & Ollivier 2018): unit j then starts out forgetting over about e^{b_f}
    steps, so the cell holds information across gaps of up to T_max steps from the first update.
    """

    State = LSTMState
    num_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float | None = None,
        chrono: int = 0,
        device=None,
        dtype=None,
    ):
        check_chrono(type(self).__name__, chrono, bias)
        if forget_bias is not None and (not bias or chrono):
            raise RnnkitError(
                "LSTMCell: forget_bias needs bias=True and no chrono initialisation "
                "(chrono sets the forget bias itself)"
            )
        self.forget_bias, self.chrono = forget_bias, chrono
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        super().reset_parameters(generator)
        H = self.hidden_size
        with torch.no_grad():
            if self.forget_bias is not None:
                self.b[H : 2 * H].fill_(self.forget_bias)
                self.b_U[H : 2 * H].zero_()
            if self.chrono:
                b_f = chrono_biases(H, self.chrono, self.b, generator)
                self.b[H : 2 * H].copy_(b_f)
                self.b[:H].copy_(-b_f)
                self.b_U[: 2 * H].zero_()

    def step(self, wx: Tensor, state: LSTMState) -> LSTMState:
        h, c = state
        a_i, a_f, a_g, a_o = (wx + F.linear(h, self.U, self.b_U)).chunk(4, dim=1)  # each (B, H); wx = W x_t + b
        i = torch.sigmoid(a_i)  # input gate: how much of the candidate to write
        f = torch.sigmoid(a_f)  # forget gate: how much of the old cell state to keep
        g = torch.tanh(a_g)  # candidate values
        o = torch.sigmoid(a_o)  # output gate: how much of the cell state to show
        c = f * c + i * g  # (B, H)
        h = o * torch.tanh(c)  # (B, H)
        return LSTMState(h, c)

    def one_step(self, x: Tensor, state: LSTMState) -> LSTMState:
        if type(self).step is not LSTMCell.step:  # a subclass's own step (peepholes, ...): its equations
            return super().one_step(x, state)
        return LSTMState(*torch._VF.lstm_cell(x, state, self.W, self.U, self.b, self.b_U))  # step's equations


class GRUCell(StackedGateCell):
    """The gated recurrent unit (Cho et al. 2014), in the notes' sign convention:

        r_t = σ(W_r x_t + U_r h_{t-1} + b_r)                 reset gate
        z_t = σ(W_z x_t + U_z h_{t-1} + b_z)                 update gate: how much to renew
        h̃_t = tanh(W_n x_t + U_n (r_t ⊙ h_{t-1}) + b_n)      candidate (reset-before, Cho et al. and the notes)
        h̃_t = tanh(W_n x_t + r_t ⊙ (U_n h_{t-1} + b_Un) + b_n)   candidate (reset_after=True, cuDNN and torch.nn.GRU)
        h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

    The notes' other convention, used by torch, cuDNN and Chung et al. 2014, writes
    h_t = z_t ⊙ h_{t-1} + (1 − z_t) ⊙ h̃_t: the same cell with z ↔ 1 − z, i.e. with the z rows of
    W, U, b, b_U negated. `rnnkit.GRU` does that negation when it loads or saves a torch state_dict.
    W, U, b, b_U stack the rows in the order r, z, n (torch's). `chrono` = T_max > 1 draws the update gate's
    bias b_z = −log U(1, T_max − 1) (chrono initialisation, Tallec & Ollivier 2018; 1 − z_t is the LSTM's
    forget gate here), so unit j starts out keeping its state for about e^{−b_z} steps.
    """

    num_gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset_after: bool = False,
        chrono: int = 0,
        device=None,
        dtype=None,
    ):
        check_chrono(type(self).__name__, chrono, bias)
        self.chrono = chrono
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.reset_after = reset_after

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        super().reset_parameters(generator)
        if self.chrono:
            H = self.hidden_size
            with torch.no_grad():
                self.b[H : 2 * H].copy_(-chrono_biases(H, self.chrono, self.b, generator))
                self.b_U[H : 2 * H].zero_()

    def step(self, wx: Tensor, state: RNNState) -> RNNState:
        h, H = state.h, self.hidden_size
        a_xr, a_xz, a_xn = wx.chunk(3, dim=1)  # each (B, H); wx = W x_t + b
        b_U = (None, None) if self.b_U is None else (self.b_U[: 2 * H], self.b_U[2 * H :])
        a_hr, a_hz = F.linear(h, self.U[: 2 * H], b_U[0]).chunk(2, dim=1)  # each (B, H): U h_{t-1} + b_U
        r = torch.sigmoid(a_xr + a_hr)  # reset gate
        z = torch.sigmoid(a_xz + a_hz)  # update gate
        if self.reset_after:
            h_tilde = torch.tanh(a_xn + r * F.linear(h, self.U[2 * H :], b_U[1]))  # (B, H)
        else:
            h_tilde = torch.tanh(a_xn + F.linear(r * h, self.U[2 * H :], b_U[1]))  # (B, H)
        h = (1 - z) * h + z * h_tilde  # (B, H)
        return RNNState(h)


class ConditionedRNNCell(Cell):
    """The notes' tagger that conditions on its previous output (4.1.4), written from its equation:

        h_t = g(W_x φ_x(x_t) + W_y φ_y(y_{t-1}) + W_h h_{t-1} + b)

    Its input at step t is [φ_x(x_t); φ_y(y_{t-1})], (B, D_x + D_y): what it reads of the word and the
    embedding of the previous label. Under teacher forcing every y_{t-1} is known in advance, so `project`
    covers the whole sequence in one product and the time loop takes the compiled path like any cell's;
    decoding feeds back the model's own y_{t-1} one step at a time (rnnkit/decoding.py). g as RNNCell's.
    It is the vanilla RNN's step over [x_t; y_{t-1}] with W = [W_x W_y] and no recurrent bias, so torch's
    fused kernel (tanh, relu) and the Triton RNN kernel (every g) run it too.
    """

    def __init__(
        self,
        feature_size: int,
        label_size: int,
        hidden_size: int,
        nonlinearity: str = "tanh",
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ACTIVATIONS:
            raise RnnkitError(
                f"ConditionedRNNCell: nonlinearity must be one of {sorted(ACTIVATIONS)}, got {nonlinearity!r}"
            )
        if feature_size < 1 or label_size < 1:
            raise RnnkitError(
                f"ConditionedRNNCell: sizes must be positive, got feature_size={feature_size}, label_size={label_size}"
            )
        super().__init__(feature_size + label_size, hidden_size)
        self.feature_size, self.label_size, self.nonlinearity = feature_size, label_size, nonlinearity
        self.g = ACTIVATIONS[nonlinearity]
        self.W_x = _parameter(hidden_size, feature_size, device=device, dtype=dtype)
        self.W_y = _parameter(hidden_size, label_size, device=device, dtype=dtype)
        self.W_h = _parameter(hidden_size, hidden_size, device=device, dtype=dtype)
        self.b = _parameter(hidden_size, device=device, dtype=dtype) if bias else None
        self.bias = bias
        self.reset_parameters()

    def extra_repr(self) -> str:
        options = [f"nonlinearity={self.nonlinearity!r}"] * (self.nonlinearity != "tanh") + ["bias=False"] * (
            not self.bias
        )
        return ", ".join([str(self.feature_size), str(self.label_size), str(self.hidden_size), *options])

    def project(self, x: Tensor) -> Tensor:
        """W_x φ_x(x_t) + W_y φ_y(y_{t-1}) + b: everything but the recurrence."""
        features, label = x[..., : self.feature_size], x[..., self.feature_size :]  # (..., D_x), (..., D_y)
        return F.linear(features, self.W_x, self.b) + F.linear(label, self.W_y)  # (..., H)

    def step(self, wx: Tensor, state: RNNState) -> RNNState:
        return RNNState(self.g(wx + F.linear(state.h, self.W_h)))  # (B, H)


class MUTCell(Cell):
    """Shared set-up of the three cells Jozefowicz et al. (2015) found by architecture search.

    Their equations add x_t (MUT2) or tanh(x_t) (MUT1) to an H-sized pre-activation, which only works
    when D = H. When D ≠ H we use a learned input projection P x_t (P: (H, D), no bias) in place of x_t;
    when D = H, P is absent and x_t is used as the paper has it. MUT3 never adds x_t, so it has no P.
    """

    adds_raw_input = True  # does an equation add x_t (or tanh(x_t)) to an H-sized sum?

    def __init__(self, input_size: int, hidden_size: int, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        D, H = input_size, hidden_size
        self.factory = dict(device=device, dtype=dtype)
        needs_projection = self.adds_raw_input and D != H
        self.register_parameter("P", _parameter(H, D, **self.factory) if needs_projection else None)

    def add_parameters(self, **shapes: tuple[int, ...]) -> None:
        for name, shape in shapes.items():
            setattr(self, name, _parameter(*shape, **self.factory))
        self.reset_parameters()

    def x_hat(self, x: Tensor) -> Tensor:
        """x_t itself when D = H, else the learned projection P x_t."""
        return x if self.P is None else F.linear(x, self.P)  # (..., H)


class MUT1Cell(MUTCell):
    """MUT1 (Jozefowicz et al. 2015):

        z_t = σ(W_xz x_t + b_z)
        r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)
        h_t = tanh(W_hh (r_t ⊙ h_{t-1}) + tanh(x_t) + b_h) ⊙ z_t + h_{t-1} ⊙ (1 − z_t)

    with x_t replaced by P x_t when D ≠ H (see MUTCell).
    """

    def __init__(self, input_size: int, hidden_size: int, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        D, H = input_size, hidden_size
        self.add_parameters(W_xz=(H, D), b_z=(H,), W_xr=(H, D), W_hr=(H, H), b_r=(H,), W_hh=(H, H), b_h=(H,))

    def project(self, x: Tensor) -> Tensor:
        """The terms that read x_t alone: [W_xz x_t + b_z, W_xr x_t, tanh(x_t)]."""
        return torch.cat(
            [F.linear(x, self.W_xz, self.b_z), F.linear(x, self.W_xr), torch.tanh(self.x_hat(x))], dim=-1
        )  # (..., 3H)

    def step(self, projected: Tensor, state: RNNState) -> RNNState:
        h = state.h
        xz, xr, tanh_x = projected.chunk(3, dim=1)  # each (B, H)
        z = torch.sigmoid(xz)  # (B, H)
        r = torch.sigmoid(xr + F.linear(h, self.W_hr, self.b_r))  # (B, H)
        h_tilde = torch.tanh(F.linear(r * h, self.W_hh) + tanh_x + self.b_h)  # (B, H)
        h = h_tilde * z + h * (1 - z)  # (B, H)
        return RNNState(h)


class MUT2Cell(MUTCell):
    """MUT2 (Jozefowicz et al. 2015):

        z_t = σ(W_xz x_t + W_hz h_{t-1} + b_z)
        r_t = σ(x_t + W_hr h_{t-1} + b_r)
        h_t = tanh(W_hh (r_t ⊙ h_{t-1}) + W_xh x_t + b_h) ⊙ z_t + h_{t-1} ⊙ (1 − z_t)

    with x_t in r_t replaced by P x_t when D ≠ H (see MUTCell).
    """

    def __init__(self, input_size: int, hidden_size: int, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        D, H = input_size, hidden_size
        self.add_parameters(
            W_xz=(H, D), W_hz=(H, H), b_z=(H,), W_hr=(H, H), b_r=(H,), W_hh=(H, H), W_xh=(H, D), b_h=(H,)
        )

    def project(self, x: Tensor) -> Tensor:
        """The terms that read x_t alone: [W_xz x_t, x_t, W_xh x_t + b_h]."""
        return torch.cat([F.linear(x, self.W_xz), self.x_hat(x), F.linear(x, self.W_xh, self.b_h)], dim=-1)  # (..., 3H)

    def step(self, projected: Tensor, state: RNNState) -> RNNState:
        h = state.h
        xz, x, xh = projected.chunk(3, dim=1)  # each (B, H)
        z = torch.sigmoid(xz + F.linear(h, self.W_hz, self.b_z))  # (B, H)
        r = torch.sigmoid(x + F.linear(h, self.W_hr, self.b_r))  # (B, H)
        h_tilde = torch.tanh(F.linear(r * h, self.W_hh) + xh)  # (B, H)
        h = h_tilde * z + h * (1 - z)  # (B, H)
        return RNNState(h)


class MUT3Cell(MUTCell):
    """MUT3 (Jozefowicz et al. 2015):

        z_t = σ(W_xz x_t + W_hz tanh(h_{t-1}) + b_z)
        r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)
        h_t = tanh(W_hh (r_t ⊙ h_{t-1}) + W_xh x_t + b_h) ⊙ z_t + h_{t-1} ⊙ (1 − z_t)

    MUT3 never adds x_t directly, so it works for any D and H as the paper wrote it.
    """

    adds_raw_input = False

    def __init__(self, input_size: int, hidden_size: int, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        D, H = input_size, hidden_size
        self.add_parameters(
            W_xz=(H, D), W_hz=(H, H), b_z=(H,), W_xr=(H, D), W_hr=(H, H), b_r=(H,), W_hh=(H, H), W_xh=(H, D), b_h=(H,)
        )

    def project(self, x: Tensor) -> Tensor:
        """The terms that read x_t alone: [W_xz x_t, W_xr x_t, W_xh x_t + b_h]."""
        return torch.cat(
            [F.linear(x, self.W_xz), F.linear(x, self.W_xr), F.linear(x, self.W_xh, self.b_h)], dim=-1
        )  # (..., 3H)

    def step(self, projected: Tensor, state: RNNState) -> RNNState:
        h = state.h
        xz, xr, xh = projected.chunk(3, dim=1)  # each (B, H)
        z = torch.sigmoid(xz + F.linear(torch.tanh(h), self.W_hz, self.b_z))  # (B, H)
        r = torch.sigmoid(xr + F.linear(h, self.W_hr, self.b_r))  # (B, H)
        h_tilde = torch.tanh(F.linear(r * h, self.W_hh) + xh)  # (B, H)
        h = h_tilde * z + h * (1 - z)  # (B, H)
        return RNNState(h)


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell, "mut1": MUT1Cell, "mut2": MUT2Cell, "mut3": MUT3Cell}

"""Tests for rnnkit/diagnostics.py: gradient through time against the analytic product of U's powers for
a linear RNN, ∂L/∂c_t against a hand-unrolled LSTM, each direction's steps in its own order, spectra of known
matrices, hidden-state norms (the rectifier blow-up) and the notes' spectral-radius toy."""

import math

import pytest
import torch
from torch.testing import assert_close

from rnnkit.cells import LSTMCell, RNNCell
from rnnkit.diagnostics import (
    GAMMA,
    Diagnosis,
    gradient_norms,
    gradient_through_time,
    hidden_norms,
    jacobian_norms,
    orthogonal,
    radius_toy,
    recurrent_matrices,
    spectra,
    spectral_radius,
    state_gradients,
    vanishing_certain,
)
from rnnkit.errors import RnnkitError
from rnnkit.recurrent import Bidirectional, Recurrent, Stacked


def linear_rnn(U: torch.Tensor, input_size: int = 2) -> RNNCell:
    cell = RNNCell(input_size, U.shape[0], nonlinearity="identity", dtype=torch.float64)
    with torch.no_grad():
        cell.U.copy_(U)
    return cell


def test_gradient_through_time_of_a_linear_rnn_is_the_product_of_u_powers():
    """h_t = U h_{t-1} + W x_t + b and L = v·h_T give ∂L/∂h_t = (Uᵀ)^(T−t) v, exactly."""
    torch.manual_seed(0)
    H, T = 4, 7
    U = torch.randn(H, H, dtype=torch.float64) * 0.6
    v = torch.randn(H, dtype=torch.float64)
    core = Recurrent(linear_rnn(U))
    gradients = gradient_through_time(core, torch.randn(1, T, 2, dtype=torch.float64), lambda h: (h * v).sum())
    assert len(gradients) == 1 and gradients[0].shape == (1, T, H)
    for t in range(T):
        expected = torch.linalg.matrix_power(U.T, T - 1 - t) @ v
        assert_close(gradients[0][0, t], expected)


def test_gradient_vanishes_or_explodes_with_the_spectral_radius():
    """Scaling U to radius 0.5 or 1.5 makes the gradient norm fall or grow geometrically with the distance."""
    H, T = 3, 20
    for radius in (0.5, 1.5):
        U = torch.eye(H, dtype=torch.float64) * radius  # every eigenvalue is `radius`
        norms = gradient_norms(
            gradient_through_time(
                Recurrent(linear_rnn(U)), torch.zeros(2, T, 2, dtype=torch.float64), lambda h: h.sum()
            )
        )
        ratio = (norms[0, 0] / norms[0, -1]).item()
        assert math.isclose(ratio, radius ** (T - 1), rel_tol=1e-9)


def test_every_layer_gets_its_gradient():
    core = Stacked([Recurrent(LSTMCell(3, 5)), Recurrent(LSTMCell(5, 5))])
    gradients = gradient_through_time(core, torch.randn(2, 6, 3), lambda h: h.pow(2).sum())
    norms = gradient_norms(gradients)
    assert norms.shape == (2, 6) and (norms > 0).all()


def test_spectral_radius_of_known_matrices():
    rotation = torch.tensor([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues ±2i
    assert math.isclose(spectral_radius(rotation), 2.0, rel_tol=1e-9)
    assert math.isclose(spectral_radius(torch.diag(torch.tensor([0.5, -3.0, 1.0]))), 3.0, rel_tol=1e-9)


def test_mut_recurrent_matrices_are_the_ones_on_h_even_when_d_equals_h():
    from rnnkit.cells import MUT2Cell

    assert list(recurrent_matrices(MUT2Cell(4, 4))) == ["W_hz", "W_hr", "W_hh"]


def test_spectra_name_each_gate_matrix():
    cell = LSTMCell(3, 4)
    assert list(recurrent_matrices(cell)) == ["U_i", "U_f", "U_g", "U_o"]
    report = spectra(Recurrent(cell))
    assert set(report) == {"layer0.U_i", "layer0.U_f", "layer0.U_g", "layer0.U_o"}
    U_f = cell.U[4:8].detach().double()
    assert math.isclose(report["layer0.U_f"]["spectral_radius"], spectral_radius(U_f))
    assert report["layer0.U_f"]["singular_values"][0] == torch.linalg.svdvals(U_f)[0].item()


def test_rectifier_hidden_norm_blows_up_where_tanh_stays_bounded():
    """The notes' warning: with ρ(U) > 1, ‖h_t‖ grows without bound for relu, while tanh keeps |h| ≤ 1."""
    H, T = 4, 40
    inputs = torch.ones(1, T, 2)
    norms = {}
    for g in ("relu", "tanh"):
        cell = RNNCell(2, H, nonlinearity=g)
        with torch.no_grad():
            cell.U.copy_(torch.eye(H) * 1.3)
            cell.W.fill_(0.5)
            cell.b.zero_(), cell.b_U.zero_()
        norms[g] = hidden_norms(Recurrent(cell), inputs)[0]
    assert norms["relu"][-1] > 1e3 * norms["relu"][0]
    assert norms["tanh"].max() <= math.sqrt(H)


def test_cell_state_gradient_of_a_three_step_lstm_by_hand():
    """∂L/∂c_t and ∂L/∂h_t of Recurrent(LSTMCell) equal autograd's on the same three steps written out, each c_t a
    node upstream of h_t = o_t ⊙ tanh(c_t): the total derivative, the path through h_t included."""
    generator = torch.Generator().manual_seed(0)
    B, T, D, H = 2, 3, 2, 3
    cell = LSTMCell(D, H, dtype=torch.float64)
    cell.reset_parameters(generator)
    x = torch.randn(B, T, D, generator=generator, dtype=torch.float64)
    v = torch.randn(H, generator=generator, dtype=torch.float64)
    loss_of_last = lambda h: torch.tanh(h @ v).sum()  # noqa: E731  any nonlinear function of h_T
    core = Recurrent(cell)
    gradients, states = state_gradients(Diagnosis(core, core, lambda: loss_of_last(core(x)[0][:, -1]), "h_T"))
    h = c = torch.zeros(B, H, dtype=torch.float64)
    hs, cs = [], []
    for t in range(T):
        a = x[:, t] @ cell.W.T + cell.b + h @ cell.U.T + cell.b_U  # (B, 4H), the gates in the order i, f, g, o
        i, f, g, o = a[:, :H].sigmoid(), a[:, H : 2 * H].sigmoid(), a[:, 2 * H : 3 * H].tanh(), a[:, 3 * H :].sigmoid()
        c = f * c + i * g
        h = o * torch.tanh(c)
        cs.append(c), hs.append(h)
    expected = torch.autograd.grad(loss_of_last(hs[-1]), cs + hs)
    assert list(gradients) == ["layer0"] and gradients["layer0"].c.shape == (B, T, H)
    for t in range(T):
        assert_close(gradients["layer0"].c[:, t], expected[t])
        assert_close(gradients["layer0"].h[:, t], expected[T + t])
        assert_close(states["layer0"].c[:, t], cs[t].detach())
    assert (gradients["layer0"].c.abs().sum(dim=(0, 2)) > 0).all()  # c_T too: the loss reaches it through h_T


def test_each_direction_counts_its_own_steps():
    """A loss on the outputs at the first position reads the forward direction's step 1 and the backward one's
    step T (its last): the forward gradient is 0 after step 1, the backward one reaches every step."""
    cell = lambda: LSTMCell(3, 4, dtype=torch.float64)  # noqa: E731
    core = Stacked([Bidirectional(Recurrent(cell()), Recurrent(cell()))])
    x = torch.randn(2, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gradients, _ = state_gradients(Diagnosis(core, core, lambda: core(x)[0][:, 0].pow(2).sum(), "position 0"))
    forward, backward = (gradients[f"layer0.{d}"].h.norm(dim=-1).sum(dim=0) for d in ("forward", "backward"))  # (T,)
    assert forward[0] > 0 and (forward[1:] == 0).all()
    assert (backward > 0).all()


def test_a_loss_that_skips_the_core_is_refused():
    core = Recurrent(RNNCell(2, 3))
    with pytest.raises(RnnkitError, match="run the core once"):
        state_gradients(Diagnosis(core, core, lambda: core.cell.U.sum(), "nothing"))


def test_recording_leaves_the_layers_as_they_were():
    layer = Recurrent(LSTMCell(2, 3), implementation="auto")
    state_gradients(Diagnosis(layer, layer, lambda: layer(torch.randn(1, 4, 2))[0].sum(), "all"))
    assert layer.implementation == "auto" and not layer.cell._forward_hooks


def test_toy_gradient_is_r_to_the_distance_where_tanh_is_linear():
    """Zero inputs and biases keep every a_t at 0, where tanh' = 1: ∂h_T/∂h_t = U^(T−t) exactly, and U = r · Q with
    Q orthogonal has ‖U^k‖ = r^k, falling with the distance for r = 0.2, growing for r = 3."""
    H, T = 6, 12
    Q = orthogonal(H, torch.Generator().manual_seed(0))  # (H, H)
    assert_close(Q @ Q.T, torch.eye(H, dtype=torch.float64))
    for radius in (0.2, 3.0):
        cell = RNNCell(2, H, dtype=torch.float64)
        with torch.no_grad():
            cell.U.copy_(radius * Q)
            cell.b.zero_(), cell.b_U.zero_()
        norms, hidden = jacobian_norms(cell, torch.zeros(1, T, 2, dtype=torch.float64))
        expected = torch.tensor([radius ** (T - 1 - t) for t in range(T)], dtype=torch.float64)
        assert_close(norms, expected, rtol=1e-9, atol=0)
        farther, nearer = norms[:-1], norms[1:]  # step t and step t + 1: t is the farther from h_T
        assert (farther < nearer).all() if radius < 1 else (farther > nearer).all()
        assert (hidden == 0).all()


def test_toy_gradient_must_vanish_below_one_over_gamma():
    """With inputs, tanh' ≤ 1 = γ: each step back multiplies ‖∂h_T/∂h_t‖ by at most ρ(U) = 0.2, whatever the inputs."""
    measured = radius_toy([0.2, 3.0], seq_len=30, hidden_size=8, input_size=3)
    assert math.isclose(measured[0.2]["spectral_radius"], 0.2, rel_tol=1e-9)
    assert math.isclose(measured[3.0]["spectral_radius"], 3.0, rel_tol=1e-9)
    norms = measured[0.2]["jacobian_norm"]
    assert norms[-1] == pytest.approx(1.0)  # ∂h_T/∂h_T = I
    assert all(farther <= 0.2 * nearer * (1 + 1e-9) for farther, nearer in zip(norms[:-1], norms[1:]))
    assert GAMMA == {"tanh": 1.0, "sigmoid": 0.25}
    assert vanishing_certain(0.99) and not vanishing_certain(1.0) and vanishing_certain(3.9, "sigmoid")


def test_the_gradient_follows_a_residual_connection():
    """The core's own forward is measured, skip connections included: with residual, layer 1 outputs
    h1_t + h0_t, so at the last step ∂L/∂h0_T gains exactly ∂L/∂y_T = 1 over the plain stack with the same weights."""
    generator = torch.Generator().manual_seed(2)
    cells = [RNNCell(3, 4, dtype=torch.float64), RNNCell(4, 4, dtype=torch.float64)]
    for cell in cells:
        cell.reset_parameters(generator)
    x = torch.randn(2, 6, 3, dtype=torch.float64, generator=generator)
    last = {}
    for skip in ("none", "residual"):
        core = Stacked([Recurrent(cell) for cell in cells], skip=skip)
        gradients, _ = state_gradients(Diagnosis(core, core, lambda core=core: core(x)[0][:, -1].sum(), "y_T"))
        last[skip] = gradients["layer0"].h[:, -1]  # (B, H)
    assert_close(last["residual"] - last["none"], torch.ones(2, 4, dtype=torch.float64))

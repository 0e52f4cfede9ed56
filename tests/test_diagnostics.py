"""Tests for rnnkit/diagnostics.py: gradient through time against the analytic product of U's powers for
a linear RNN, spectra of known matrices, and hidden-state norms (the rectifier blow-up)."""

import math

import torch
from torch.testing import assert_close

from rnnkit.cells import LSTMCell, RNNCell
from rnnkit.diagnostics import (
    gradient_norms,
    gradient_through_time,
    hidden_norms,
    recurrent_matrices,
    spectra,
    spectral_radius,
)
from rnnkit.recurrent import Recurrent, Stacked


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

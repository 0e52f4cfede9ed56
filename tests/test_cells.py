"""Tests for rnnkit/cells.py: every cell against torch.nn's cell (weights copied) or a hand-written
formula of its paper, gradcheck in float64, pinned parameter names, and shape errors."""

import math

import pytest
import torch
from conftest import CELL_FACTORIES, error_pattern, random_state
from torch import nn
from torch.testing import assert_close

import rnnkit
from rnnkit import GRUCell, LSTMCell, LSTMState, MUT1Cell, MUT2Cell, MUT3Cell, RNNCell, RNNState

B, D, H = 3, 5, 4  # batch, input and hidden sizes for the float32 comparisons
TOLERANCE = dict(atol=1e-6, rtol=1e-5)  # float32, one step


def negate_z_rows(tensor: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """Our GRU's z is torch's 1 − z: the same cell with the z rows (H:2H) of every weight negated."""
    H = hidden_size
    return torch.cat([tensor[:H], -tensor[H : 2 * H], tensor[2 * H :]])


def copy_from_torch(ours, theirs, convert=lambda tensor: tensor) -> None:
    """ours.{W, U, b, b_U} <- theirs.{weight_ih, weight_hh, bias_ih, bias_hh}, through `convert`."""
    names = {"W": "weight_ih", "U": "weight_hh", "b": "bias_ih", "b_U": "bias_hh"}
    with torch.no_grad():
        for our_name, their_name in names.items():
            if getattr(theirs, their_name) is not None:
                getattr(ours, our_name).copy_(convert(getattr(theirs, their_name)))


# --- against torch.nn's cells ------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_equals_torch(nonlinearity, bias):
    """RNNCell(tanh/relu) with torch's weights gives torch.nn.RNNCell's next hidden state."""
    theirs = nn.RNNCell(D, H, bias=bias, nonlinearity=nonlinearity)
    ours = RNNCell(D, H, nonlinearity, bias=bias)
    copy_from_torch(ours, theirs)
    x, h = torch.randn(B, D), torch.randn(B, H)
    assert_close(ours(x, RNNState(h)).h, theirs(x, h), **TOLERANCE)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("nonlinearity, g", [("identity", lambda a: a), ("sigmoid", lambda a: 1 / (1 + math.exp(-a)))])
def test_rnn_cell_identity_and_sigmoid_equal_their_formula(nonlinearity, g, bias):
    """RNNCell('identity') is the linear RNN h_t = W x_t + U h_{t-1} + b + b_U; RNNCell('sigmoid') is the same sum
    through the logistic function 1 / (1 + e^(−a)), element by element."""
    cell = RNNCell(D, H, nonlinearity, bias=bias)
    x, h = torch.randn(B, D), torch.randn(B, H)
    a = x @ cell.W.T + h @ cell.U.T  # (B, H)
    if bias:
        a = a + cell.b + cell.b_U
    expected = torch.tensor([[g(float(value)) for value in row] for row in a])  # (B, H)
    assert_close(cell(x, RNNState(h)).h, expected, **TOLERANCE)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_equals_torch(bias):
    """LSTMCell with torch's weights gives torch.nn.LSTMCell's (h, c)."""
    theirs = nn.LSTMCell(D, H, bias=bias)
    ours = LSTMCell(D, H, bias=bias)
    copy_from_torch(ours, theirs)
    x, h, c = torch.randn(B, D), torch.randn(B, H), torch.randn(B, H)
    their_h, their_c = theirs(x, (h, c))
    state = ours(x, LSTMState(h, c))
    assert isinstance(state, LSTMState)
    assert_close(state.h, their_h, **TOLERANCE)
    assert_close(state.c, their_c, **TOLERANCE)


@pytest.mark.parametrize("bias", [True, False])
def test_reset_after_gru_cell_equals_torch_with_z_rows_negated(bias):
    """GRUCell(reset_after=True) is torch.nn.GRUCell once the z rows are negated (z <-> 1 − z)."""
    theirs = nn.GRUCell(D, H, bias=bias)
    ours = GRUCell(D, H, bias=bias, reset_after=True)
    copy_from_torch(ours, theirs, lambda tensor: negate_z_rows(tensor, H))
    x, h = torch.randn(B, D), torch.randn(B, H)
    assert_close(ours(x, RNNState(h)).h, theirs(x, h), **TOLERANCE)


def test_reset_after_gru_cell_differs_from_torch_without_negation():
    """The z-row negation is needed: copying torch's weights unchanged gives a different cell."""
    theirs = nn.GRUCell(D, H)
    ours = GRUCell(D, H, reset_after=True)
    copy_from_torch(ours, theirs)
    x, h = torch.randn(B, D), torch.randn(B, H)
    assert not torch.allclose(ours(x, RNNState(h)).h, theirs(x, h), atol=1e-3)


@pytest.mark.parametrize("bias", [True, False])
def test_reset_before_gru_cell_equals_cho_formula(bias):
    """GRUCell(reset_after=False) is Cho et al.'s GRU: the reset gate scales h_{t-1} before U_n."""
    cell = GRUCell(D, H, bias=bias, reset_after=False)
    x, h = torch.randn(B, D), torch.randn(B, H)
    W_r, W_z, W_n = cell.W.split(H)
    U_r, U_z, U_n = cell.U.split(H)
    b_r, b_z, b_n = (cell.b + cell.b_U).split(H) if bias else (0.0, 0.0, 0.0)  # every bias sits outside r ⊙ (·)
    r = torch.sigmoid(x @ W_r.T + h @ U_r.T + b_r)
    z = torch.sigmoid(x @ W_z.T + h @ U_z.T + b_z)
    h_tilde = torch.tanh(x @ W_n.T + (r * h) @ U_n.T + b_n)
    expected = (1 - z) * h + z * h_tilde
    assert_close(cell(x, RNNState(h)).h, expected, **TOLERANCE)


def test_gru_reset_forms_differ():
    """reset_after is a real switch: the same parameters give different states in the two forms."""
    before = GRUCell(D, H, reset_after=False)
    after = GRUCell(D, H, reset_after=True)
    after.load_state_dict(before.state_dict())
    x, h = torch.randn(B, D), torch.randn(B, H)
    assert not torch.allclose(before(x, RNNState(h)).h, after(x, RNNState(h)).h, atol=1e-4)


# --- MUT cells against Jozefowicz et al. 2015 --------------------------------------------------


def mut1_step(cell, x, h):
    x_hat = x if cell.P is None else x @ cell.P.T  # the paper's x_t, projected when D ≠ H
    z = torch.sigmoid(x @ cell.W_xz.T + cell.b_z)
    r = torch.sigmoid(x @ cell.W_xr.T + h @ cell.W_hr.T + cell.b_r)
    return torch.tanh((r * h) @ cell.W_hh.T + torch.tanh(x_hat) + cell.b_h) * z + h * (1 - z)


def mut2_step(cell, x, h):
    x_hat = x if cell.P is None else x @ cell.P.T
    z = torch.sigmoid(x @ cell.W_xz.T + h @ cell.W_hz.T + cell.b_z)
    r = torch.sigmoid(x_hat + h @ cell.W_hr.T + cell.b_r)
    return torch.tanh((r * h) @ cell.W_hh.T + x @ cell.W_xh.T + cell.b_h) * z + h * (1 - z)


def mut3_step(cell, x, h):
    z = torch.sigmoid(x @ cell.W_xz.T + torch.tanh(h) @ cell.W_hz.T + cell.b_z)
    r = torch.sigmoid(x @ cell.W_xr.T + h @ cell.W_hr.T + cell.b_r)
    return torch.tanh((r * h) @ cell.W_hh.T + x @ cell.W_xh.T + cell.b_h) * z + h * (1 - z)


@pytest.mark.parametrize("input_size", [H, D], ids=["D==H", "D!=H"])
@pytest.mark.parametrize(
    "Cell, step", [(MUT1Cell, mut1_step), (MUT2Cell, mut2_step), (MUT3Cell, mut3_step)], ids=["mut1", "mut2", "mut3"]
)
def test_mut_cell_equals_paper_equations(Cell, step, input_size):
    """Each MUT cell computes the equations of Jozefowicz et al. 2015 (x_t -> P x_t when D ≠ H)."""
    cell = Cell(input_size, H)
    x, h = torch.randn(B, input_size), torch.randn(B, H)
    assert_close(cell(x, RNNState(h)).h, step(cell, x, h), **TOLERANCE)


@pytest.mark.parametrize("Cell", [MUT1Cell, MUT2Cell])
def test_mut_cell_projection_only_when_sizes_differ(Cell):
    """MUT1/MUT2 get a projection P (H, D) exactly when D ≠ H; MUT3 never adds x_t, so never has one."""
    assert Cell(H, H).P is None
    assert Cell(D, H).P.shape == (H, D)
    assert MUT3Cell(D, H).P is None


# --- parameter names and options ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make_cell, expected",
    [
        (lambda: RNNCell(3, 4), ["U", "W", "b", "b_U"]),
        (lambda: LSTMCell(3, 4), ["U", "W", "b", "b_U"]),
        (lambda: GRUCell(3, 4), ["U", "W", "b", "b_U"]),
        (lambda: LSTMCell(3, 4, bias=False), ["U", "W"]),
        (lambda: GRUCell(3, 4, bias=False, reset_after=True), ["U", "W"]),
        (lambda: MUT1Cell(4, 4), ["W_hh", "W_hr", "W_xr", "W_xz", "b_h", "b_r", "b_z"]),
        (lambda: MUT1Cell(3, 4), ["P", "W_hh", "W_hr", "W_xr", "W_xz", "b_h", "b_r", "b_z"]),
        (lambda: MUT2Cell(4, 4), ["W_hh", "W_hr", "W_hz", "W_xh", "W_xz", "b_h", "b_r", "b_z"]),
        (lambda: MUT2Cell(3, 4), ["P", "W_hh", "W_hr", "W_hz", "W_xh", "W_xz", "b_h", "b_r", "b_z"]),
        (lambda: MUT3Cell(4, 4), ["W_hh", "W_hr", "W_hz", "W_xh", "W_xr", "W_xz", "b_h", "b_r", "b_z"]),
        (lambda: MUT3Cell(3, 4), ["W_hh", "W_hr", "W_hz", "W_xh", "W_xr", "W_xz", "b_h", "b_r", "b_z"]),
    ],
    ids=[
        "rnn",
        "lstm",
        "gru",
        "lstm-no-bias",
        "gru-no-bias",
        "mut1-square",
        "mut1-proj",
        "mut2-square",
        "mut2-proj",
        "mut3-square",
        "mut3-rect",
    ],
)
def test_parameter_names_follow_the_notes(make_cell, expected):
    """Parameter names are pinned: checkpoints and the torch-name mapping depend on them."""
    assert sorted(dict(make_cell().named_parameters())) == expected


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru-reset-before", "gru-reset-after", "mut1", "mut3"])
def test_init_state_is_zero_of_batch_shape(name):
    """init_state(B) is all zeros, (B, H) in every field, in the parameters' dtype."""
    cell = CELL_FACTORIES[name](D, H, dtype=torch.float64)
    state = cell.init_state(B)
    assert isinstance(state, cell.State)
    for field in state:
        assert field.shape == (B, H) and field.dtype == torch.float64
        assert not field.any()


def test_initialisation_is_uniform_in_torch_bound():
    """Every parameter lies in [-1/√H, 1/√H], as torch.nn's cells initialise."""
    hidden_size = 16
    for cell in (LSTMCell(D, hidden_size), MUT2Cell(D, hidden_size)):
        for parameter in cell.parameters():
            assert parameter.abs().max() <= hidden_size**-0.5
            assert parameter.std() > 0.05  # not all zeros / one constant


def test_reset_parameters_with_generator_is_reproducible():
    """reset_parameters(generator) draws from that generator only, so one seed gives one model."""
    first, second = LSTMCell(D, H), LSTMCell(D, H)
    first.reset_parameters(torch.Generator().manual_seed(7))
    second.reset_parameters(torch.Generator().manual_seed(7))
    for (name, a), (_, b) in zip(first.named_parameters(), second.named_parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("forget_bias", [1.0, 0.0, -2.5])
def test_lstm_forget_bias_sets_forget_rows(forget_bias):
    """forget_bias=v sets b's forget rows (H:2H) to v and b_U's to 0; other rows keep their init."""
    cell = LSTMCell(D, H, forget_bias=forget_bias)
    assert torch.equal(cell.b[H : 2 * H], torch.full((H,), forget_bias))
    assert torch.equal(cell.b_U[H : 2 * H], torch.zeros(H))
    others = torch.cat([cell.b[:H], cell.b[2 * H :]])
    assert (others != forget_bias).all()
    cell.reset_parameters()  # re-initialising keeps the option
    assert torch.equal(cell.b[H : 2 * H], torch.full((H,), forget_bias))


def test_lstm_forget_bias_needs_bias():
    """forget_bias without biases is a configuration error, not silently ignored."""
    with pytest.raises(ValueError, match="forget_bias"):
        LSTMCell(D, H, bias=False, forget_bias=1.0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_conditioned_cell_is_the_notes_equation(nonlinearity):
    """h_t = g(W_x φ_x(x_t) + W_y φ_y(y_{t-1}) + W_h h_{t-1} + b), its input [φ_x(x_t); φ_y(y_{t-1})]."""
    cell = rnnkit.ConditionedRNNCell(3, 2, H, nonlinearity)
    features, label, h = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5, H)
    g = torch.tanh if nonlinearity == "tanh" else torch.relu
    expected = g(features @ cell.W_x.T + label @ cell.W_y.T + h @ cell.W_h.T + cell.b)
    assert_close(cell(torch.cat([features, label], dim=1), RNNState(h)).h, expected)
    assert [name for name, _ in cell.named_parameters()] == ["W_x", "W_y", "W_h", "b"]
    with pytest.raises(ValueError, match="label_size=0"):
        rnnkit.ConditionedRNNCell(3, 0, H)


def test_chrono_initialisation_sets_gate_biases():
    """chrono=T: the LSTM's b_f ~ log U(1, T-1) with b_i = -b_f, the GRU's b_z = -log U(1, T-1) (1 - z is
    its forget gate), b_U's rows of those gates 0; the draw follows the generator."""
    T, H = 400, 64  # enough units for the spread of the draw to show
    lstm = LSTMCell(D, H, chrono=T)
    lstm.reset_parameters(torch.Generator().manual_seed(3))
    b_f = lstm.b[H : 2 * H]
    assert (b_f >= 0).all() and (b_f <= math.log(T - 1)).all() and b_f.std() > 0.5
    assert torch.equal(lstm.b[:H], -b_f)
    assert torch.equal(lstm.b_U[: 2 * H], torch.zeros(2 * H))
    again = LSTMCell(D, H, chrono=T)
    again.reset_parameters(torch.Generator().manual_seed(3))
    assert torch.equal(again.b, lstm.b)
    gru = GRUCell(D, H, chrono=T)
    b_z = gru.b[H : 2 * H]
    assert (b_z <= 0).all() and (b_z >= -math.log(T - 1)).all()
    assert torch.equal(gru.b_U[H : 2 * H], torch.zeros(H))
    assert torch.sigmoid(b_z).mean() < 0.05  # from the first step, units renew slowly: they remember


@pytest.mark.parametrize(
    "make",
    [
        lambda: LSTMCell(D, H, chrono=1),
        lambda: GRUCell(D, H, bias=False, chrono=10),
        lambda: LSTMCell(D, H, forget_bias=1.0, chrono=10),
    ],
)
def test_chrono_needs_biases_and_a_gap(make):
    with pytest.raises(ValueError, match="chrono"):
        make()


def test_bad_constructor_arguments_raise():
    """Unknown nonlinearities and non-positive sizes are RnnkitErrors (ValueErrors)."""
    with pytest.raises(rnnkit.RnnkitError, match="'softsign'"):
        RNNCell(D, H, "softsign")
    with pytest.raises(ValueError, match="hidden_size=0"):
        LSTMCell(D, 0)
    assert issubclass(rnnkit.RnnkitError, ValueError)


# --- gradcheck ---------------------------------------------------------------------------------


@pytest.mark.parametrize("input_size", [2, 3], ids=["D==H", "D!=H"])
@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_cell_gradcheck(name, input_size):
    """Analytic gradients w.r.t. input, state and every parameter match finite differences (float64)."""
    batch_size, hidden_size = 2, 2
    cell = CELL_FACTORIES[name](input_size, hidden_size, dtype=torch.float64)
    names = [n for n, _ in cell.named_parameters()]
    x = torch.randn(batch_size, input_size, dtype=torch.float64, requires_grad=True)
    state = [field.requires_grad_() for field in random_state(cell, batch_size)]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    n_fields = len(state)

    def step(x, *tensors):
        parameters = dict(zip(names, tensors[n_fields:]))
        return tuple(torch.func.functional_call(cell, parameters, (x, cell.State(*tensors[:n_fields]))))

    assert torch.autograd.gradcheck(step, (x, *state, *params))


# --- shape errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru-reset-after", "mut1"])
def test_cell_rejects_3d_input(name):
    """A (B, T, D) tensor given to a cell is an error naming (*, D) and the received shape."""
    cell = CELL_FACTORIES[name](D, H)
    with pytest.raises(ValueError, match=error_pattern(f"(*, {D})", f"(2, 3, {D})")):
        cell(torch.randn(2, 3, D), cell.init_state(2))


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru-reset-before", "mut2"])
def test_cell_rejects_wrong_feature_size(name):
    """x_t with the wrong number of features names the expected (*, 5) and the received (3, 4)."""
    cell = CELL_FACTORIES[name](5, H)
    with pytest.raises(ValueError, match=error_pattern("(*, 5)", "(3, 4)")):
        cell(torch.randn(3, 4), cell.init_state(3))


@pytest.mark.parametrize("bad_shape", [(B, 1), (1, H), (B + 1, H), (H,), (1, B, H)])
@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru-reset-after", "mut3"])
def test_cell_rejects_wrong_state_shape(name, bad_shape):
    """A state field that would broadcast (e.g. (B, 1) for (B, H)) is an error, never silently used."""
    cell = CELL_FACTORIES[name](D, H)
    good = cell.init_state(B)
    bad = good._replace(h=torch.zeros(bad_shape))
    expected = str(tuple(bad_shape))  # Python's own spelling: (4,) for one dimension
    with pytest.raises(ValueError, match=error_pattern(f"({B}, {H})", expected)):
        cell(torch.randn(B, D), bad)


def test_lstm_cell_rejects_wrong_cell_state_shape():
    """The LSTM's c is checked as well as h."""
    cell = LSTMCell(D, H)
    with pytest.raises(ValueError, match=error_pattern("state.c", f"({B}, {H})", f"({B}, 1)")):
        cell(torch.randn(B, D), LSTMState(torch.zeros(B, H), torch.zeros(B, 1)))


def test_cell_rejects_wrong_state_type():
    """An LSTM given a bare tensor or an RNNState is told which state type it needs."""
    cell = LSTMCell(D, H)
    with pytest.raises(ValueError, match="LSTMState"):
        cell(torch.randn(B, D), RNNState(torch.zeros(B, H)))
    with pytest.raises(ValueError, match="LSTMState"):
        cell(torch.randn(B, D), torch.zeros(B, H))

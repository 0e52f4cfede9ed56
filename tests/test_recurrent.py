"""Tests for rnnkit/recurrent.py: Recurrent against a hand-written loop over its cell, reverse_padded by
hand-written cases, variable lengths against each sequence run alone, Bidirectional, Stacked (with its
dropout), detach, and the shape errors."""

import re

import pytest
import torch
from conftest import CELL_FACTORIES, error_pattern, random_state
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

import rnnkit
import rnnkit.kernels.aten
from rnnkit import Bidirectional, LSTMCell, LSTMState, Recurrent, RNNState, Stacked, detach, reverse_padded
from rnnkit.recurrent import like, map_state, to_plain

B, T, D, H = 3, 5, 4, 3
TOLERANCE = dict(atol=1e-5, rtol=1e-5)  # float32 over a few steps; the fused path sums in another order
IMPLEMENTATIONS = ["reference", "auto"]
FEW_EXAMPLES = settings(max_examples=8, deadline=None)


def loop(cell, inputs, state):
    """The recurrence written out: every step's state for inputs (B, T, D), starting from `state`."""
    states = []
    for t in range(inputs.shape[1]):
        state = cell(inputs[:, t], state)
        states.append(state)
    return states


def stack_field(states, field: str) -> torch.Tensor:
    return torch.stack([getattr(state, field) for state in states], dim=1)  # (B, T, H)


def assert_states_close(actual, expected, **tolerance) -> None:
    assert type(actual) is type(expected)
    for field in expected._fields:
        assert_close(getattr(actual, field), getattr(expected, field), **(tolerance or TOLERANCE))


def select(state, rows):
    """The batch rows `rows` (a slice) of every field of a state."""
    return type(state)(*(field[rows] for field in state))


def padded_batch(lengths: list[int], generator: torch.Generator, input_size: int = D, pad_value: float = 1e3):
    """(B, T, D) inputs whose padded steps hold large random numbers, which must not matter."""
    seq_len = max(lengths)
    inputs = torch.randn(len(lengths), seq_len, input_size, generator=generator)
    valid = torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    padding = pad_value * torch.randn(inputs.shape, generator=generator)
    return torch.where(valid[..., None], inputs, padding), valid


# --- Recurrent is the loop ----------------------------------------------------------------------


@pytest.mark.parametrize("given_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_recurrent_equals_loop(name, implementation, given_state):
    """Recurrent's outputs are each step's h and its final state is the loop's last state."""
    cell = CELL_FACTORIES[name](D, H)
    inputs = torch.randn(B, T, D)
    state = random_state(cell, B) if given_state else None
    outputs, final = Recurrent(cell, implementation)(inputs, state)
    expected = loop(cell, inputs, cell.init_state(B) if state is None else state)
    assert outputs.shape == (B, T, H)
    assert_close(outputs, stack_field(expected, "h"), **TOLERANCE)
    assert_states_close(final, expected[-1])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_return_states_gives_every_step(name, implementation):
    """return_states=True returns every step's full state (h and c for the LSTM), each field (B, T, H)."""
    cell = CELL_FACTORIES[name](D, H)
    inputs, state = torch.randn(B, T, D), random_state(cell, B)
    outputs, final, states = Recurrent(cell, implementation)(inputs, state, return_states=True)
    expected = loop(cell, inputs, state)
    assert type(states) is cell.State
    for field in cell.State._fields:
        assert getattr(states, field).shape == (B, T, H)
        assert_close(getattr(states, field), stack_field(expected, field), **TOLERANCE)
    assert_close(outputs, states.h, atol=0, rtol=0)
    assert_states_close(final, expected[-1])


def test_recurrent_rejects_unknown_implementation():
    """implementation is 'auto' or 'reference'; a typo is an error."""
    with pytest.raises(ValueError, match="'fast'"):
        Recurrent(LSTMCell(D, H), implementation="fast")


# --- reverse_padded -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, lengths, expected",
    [
        ([[1, 2, 0]], [2], [[2, 1, 0]]),
        ([[1, 2, 3]], [3], [[3, 2, 1]]),
        ([[1, 2, 9]], [1], [[1, 2, 9]]),
        ([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]], [4, 2, 1], [[4, 3, 2, 1], [6, 5, 0, 0], [7, 0, 0, 0]]),
        ([[1, 2, 3, -1], [4, 5, -2, -3]], [3, 2], [[3, 2, 1, -1], [5, 4, -2, -3]]),  # padding stays in place
    ],
)
def test_reverse_padded_hand_written_cases(x, lengths, expected):
    """Only each row's valid prefix is reversed; its padding stays where it was."""
    result = reverse_padded(torch.tensor(x), torch.tensor(lengths))
    assert result.tolist() == expected


def test_reverse_padded_3d():
    """With a feature axis, whole feature vectors move together."""
    x = torch.tensor([[[1, 10], [2, 20], [0, 0]], [[3, 30], [4, 40], [5, 50]]])  # (B=2, T=3, 2)
    expected = [[[2, 20], [1, 10], [0, 0]], [[5, 50], [4, 40], [3, 30]]]
    assert reverse_padded(x, torch.tensor([2, 3])).tolist() == expected


@pytest.mark.parametrize("shape", [(2, 4), (2, 4, 3), (2, 4, 3, 2)])
def test_reverse_padded_without_lengths_is_flip(shape):
    """lengths=None reverses the whole time axis."""
    x = torch.randn(shape)
    assert torch.equal(reverse_padded(x, None), x.flip(1))


@FEW_EXAMPLES
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_reverse_padded_is_an_involution_keeping_padding(lengths, seed):
    """Reversing twice is the identity, padding never moves, and the valid prefix is the flipped prefix."""
    x = torch.randn(len(lengths), max(lengths), 2, generator=torch.Generator().manual_seed(seed))
    lengths_tensor = torch.tensor(lengths)
    reversed_x = reverse_padded(x, lengths_tensor)
    assert torch.equal(reverse_padded(reversed_x, lengths_tensor), x)
    for b, length in enumerate(lengths):
        assert torch.equal(reversed_x[b, :length], x[b, :length].flip(0))
        assert torch.equal(reversed_x[b, length:], x[b, length:])


# --- variable lengths ---------------------------------------------------------------------------


@FEW_EXAMPLES
@given(lengths=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_lengths_equal_each_sequence_alone(name, implementation, lengths, seed):
    """With lengths, each row's final state and outputs are those of its unpadded sequence run alone,
    padded outputs are exactly 0, and the padding's values have no effect on values or gradients."""
    generator = torch.Generator().manual_seed(seed)
    cell = CELL_FACTORIES[name](D, H)
    cell.reset_parameters(generator)
    inputs, valid = padded_batch(lengths, generator)
    inputs.requires_grad_()
    state = random_state(cell, len(lengths), generator)
    outputs, final = Recurrent(cell, implementation)(inputs, state, torch.tensor(lengths))

    for b, length in enumerate(lengths):
        alone = loop(cell, inputs[b : b + 1, :length].detach(), select(state, slice(b, b + 1)))
        assert_close(outputs[b : b + 1, :length], stack_field(alone, "h"), **TOLERANCE)
        assert_states_close(select(final, slice(b, b + 1)), alone[-1])
    assert torch.equal(outputs[~valid], torch.zeros_like(outputs[~valid]))

    # Other padding values: same results, and no gradient reaches the padding.
    other_inputs = torch.where(valid[..., None], inputs.detach(), -inputs.detach())
    other_outputs, other_final = Recurrent(cell, implementation)(other_inputs, state, torch.tensor(lengths))
    assert_close(other_outputs, outputs, atol=0, rtol=0)
    assert_states_close(other_final, final, atol=0, rtol=0)
    (outputs.sum() + sum(field.sum() for field in final)).backward()
    assert torch.equal(inputs.grad[~valid], torch.zeros_like(inputs.grad[~valid]))


@pytest.mark.parametrize(
    "name, implementation",
    [
        ("lstm", "auto"),
        ("gru-reset-after", "auto"),
        ("lstm", "reference"),
        ("gru-reset-before", "auto"),
        ("mut1", "auto"),
    ],
)
@pytest.mark.parametrize("pad_value", [float("inf"), float("nan")])
def test_non_finite_padding_does_not_reach_gradients(name, implementation, pad_value):
    """Whatever the padding holds (even inf or nan), outputs, states and gradients stay finite."""
    cell = CELL_FACTORIES[name](D, H)
    inputs = torch.randn(2, T, D)
    inputs[0, 2:] = pad_value  # row 0 has length 2
    inputs.requires_grad_()
    outputs, final = Recurrent(cell, implementation)(inputs, lengths=torch.tensor([2, T]))
    assert outputs.isfinite().all() and final.h.isfinite().all()
    (outputs.sum() + final.h.sum()).backward()
    assert inputs.grad.isfinite().all()
    assert inputs.grad[0, 2:].eq(0).all()
    for parameter_name, parameter in cell.named_parameters():
        assert parameter.grad.isfinite().all(), parameter_name


BIDIRECTIONAL_CELLS = ["rnn-tanh", "lstm", "gru-reset-before", "gru-reset-after", "mut1", "mut2", "mut3"]


@FEW_EXAMPLES
@given(lengths=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", BIDIRECTIONAL_CELLS)
def test_bidirectional_lengths_equal_each_sequence_alone(name, implementation, lengths, seed):
    """Bidirectional on a padded batch: valid outputs are [forward h_t, backward h_t] of the sequence
    alone (the backward pass starting at its true end), padded outputs 0, both final states equal."""
    generator = torch.Generator().manual_seed(seed)
    forward_cell, backward_cell = CELL_FACTORIES[name](D, H), CELL_FACTORIES[name](D, H)
    forward_cell.reset_parameters(generator)
    backward_cell.reset_parameters(generator)
    layer = Bidirectional(Recurrent(forward_cell, implementation), Recurrent(backward_cell, implementation))
    inputs, valid = padded_batch(lengths, generator)
    state = (random_state(forward_cell, len(lengths), generator), random_state(backward_cell, len(lengths), generator))
    outputs, (forward_final, backward_final) = layer(inputs, state, torch.tensor(lengths))

    assert outputs.shape == (len(lengths), max(lengths), 2 * H)
    for b, length in enumerate(lengths):
        sequence = inputs[b : b + 1, :length]  # (1, length, D), no padding
        forward = loop(forward_cell, sequence, select(state[0], slice(b, b + 1)))
        backward = loop(backward_cell, sequence.flip(1), select(state[1], slice(b, b + 1)))
        expected = torch.cat([stack_field(forward, "h"), stack_field(backward, "h").flip(1)], dim=-1)  # (1, length, 2H)
        assert_close(outputs[b : b + 1, :length], expected, **TOLERANCE)
        assert_states_close(select(forward_final, slice(b, b + 1)), forward[-1])
        assert_states_close(select(backward_final, slice(b, b + 1)), backward[-1])
    assert torch.equal(outputs[~valid], torch.zeros_like(outputs[~valid]))


@pytest.mark.parametrize("name", ["lstm", "gru-reset-before"])
def test_bidirectional_return_states_are_in_input_order(name):
    """Bidirectional's returned backward states are re-reversed: step t holds the state after reading x_t."""
    forward_cell, backward_cell = CELL_FACTORIES[name](D, H), CELL_FACTORIES[name](D, H)
    layer = Bidirectional(Recurrent(forward_cell), Recurrent(backward_cell))
    inputs = torch.randn(B, T, D)
    outputs, final, (forward_states, backward_states) = layer(inputs, return_states=True)
    forward = loop(forward_cell, inputs, forward_cell.init_state(B))
    backward = loop(backward_cell, inputs.flip(1), backward_cell.init_state(B))
    for field in forward_cell.State._fields:
        assert_close(getattr(forward_states, field), stack_field(forward, field), **TOLERANCE)
        assert_close(getattr(backward_states, field), stack_field(backward, field).flip(1), **TOLERANCE)
    assert_close(outputs, torch.cat([forward_states.h, backward_states.h], dim=-1), atol=0, rtol=0)


def make_bidirectional_stack(name: str, implementation: str, num_layers: int = 2, dropout: float = 0.0) -> Stacked:
    def direction(input_size):
        return Recurrent(CELL_FACTORIES[name](input_size, H), implementation)

    layers = [
        Bidirectional(direction(D if k == 0 else 2 * H), direction(D if k == 0 else 2 * H)) for k in range(num_layers)
    ]
    return Stacked(layers, dropout=dropout)


@FEW_EXAMPLES
@given(lengths=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", ["lstm", "gru-reset-before", "mut2"])
def test_stacked_bidirectional_lengths_equal_each_sequence_alone(name, implementation, lengths, seed):
    """A 2-layer stack of bidirectional layers on a padded batch equals the stack on each sequence alone."""
    generator = torch.Generator().manual_seed(seed)
    stack = make_bidirectional_stack(name, implementation)
    for parameter in stack.parameters():  # hypothesis may replay an example: draw everything from its seed
        torch.nn.init.uniform_(parameter, -0.5, 0.5, generator=generator)
    inputs, valid = padded_batch(lengths, generator)
    outputs, finals = stack(inputs, lengths=torch.tensor(lengths))
    assert len(finals) == 2
    for b, length in enumerate(lengths):
        alone_outputs, alone_finals = stack(inputs[b : b + 1, :length])
        assert_close(outputs[b : b + 1, :length], alone_outputs, **TOLERANCE)
        for layer_final, alone_final in zip(finals, alone_finals):
            for direction_final, alone_direction in zip(layer_final, alone_final):
                assert_states_close(select(direction_final, slice(b, b + 1)), alone_direction)
    assert torch.equal(outputs[~valid], torch.zeros_like(outputs[~valid]))


# --- Stacked ------------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_stacked_equals_layers_composed_by_hand(implementation):
    """Stacked feeds each layer's outputs to the next, passes each layer its own initial state, and
    returns the list of final states (and, with return_states, each layer's states)."""
    first, second = LSTMCell(D, H), CELL_FACTORIES["gru-reset-before"](H, H)
    stack = Stacked([Recurrent(first, implementation), Recurrent(second, implementation)])
    inputs = torch.randn(B, T, D)
    states = [random_state(first, B), random_state(second, B)]
    outputs, finals, all_states = stack(inputs, states, return_states=True)
    first_loop = loop(first, inputs, states[0])
    second_loop = loop(second, stack_field(first_loop, "h"), states[1])
    assert_close(outputs, stack_field(second_loop, "h"), **TOLERANCE)
    assert_states_close(finals[0], first_loop[-1])
    assert_states_close(finals[1], second_loop[-1])
    assert_close(all_states[0].c, stack_field(first_loop, "c"), **TOLERANCE)
    assert_close(all_states[1].h, stack_field(second_loop, "h"), **TOLERANCE)


def test_stacked_dropout_in_training_is_random():
    """dropout=0.5 in training mode drops between layers: two calls give different outputs."""
    stack = make_bidirectional_stack("lstm", "auto", dropout=0.5).train()
    inputs = torch.randn(B, T, D)
    first, _ = stack(inputs)
    second, _ = stack(inputs)
    assert not torch.allclose(first, second)


def test_stacked_dropout_off_in_eval_and_at_zero():
    """In eval mode dropout does nothing (calls agree, and equal the same layers with dropout=0), and
    dropout=0 in training equals no dropout at all."""
    with_dropout = make_bidirectional_stack("gru-reset-after", "auto", dropout=0.5)
    without_dropout = Stacked(with_dropout.layers, dropout=0.0).train()
    inputs = torch.randn(B, T, D)
    with_dropout.eval()
    first, _ = with_dropout(inputs)
    second, _ = with_dropout(inputs)
    reference, _ = without_dropout(inputs)
    assert_close(first, second, atol=0, rtol=0)
    assert_close(first, reference, atol=0, rtol=0)

    x = inputs
    for layer in with_dropout.layers:  # no dropout: just the layers in turn
        x, _ = layer(x)
    assert_close(reference, x, atol=0, rtol=0)


def test_stacked_dropout_not_after_last_layer():
    """Dropout sits between layers only: a one-layer stack is deterministic even in training."""
    stack = Stacked([Recurrent(LSTMCell(D, H))], dropout=0.5).train()
    inputs = torch.randn(B, T, D)
    assert_close(stack(inputs)[0], stack(inputs)[0], atol=0, rtol=0)


def test_stacked_rejects_bad_dropout_and_state_count():
    """dropout outside [0, 1) and a state list of the wrong length are errors."""
    with pytest.raises(ValueError, match="dropout"):
        Stacked([Recurrent(LSTMCell(D, H))], dropout=1.0)
    stack = make_bidirectional_stack("lstm", "auto")
    with pytest.raises(ValueError, match="2 layers, got 1"):
        stack(torch.randn(B, T, D), [None])


# --- detach -------------------------------------------------------------------------------------


def test_detach_cuts_the_graph_of_a_nested_state():
    """detach keeps a list of tuples of NamedTuples' structure and values, and no gradient flows
    through it back to what produced the state (the TBPTT cut)."""
    cell = LSTMCell(D, H)
    source = torch.randn(B, H, requires_grad=True)
    state = [(LSTMState(source * 2, source + 1), RNNState(source.tanh())), (None, 3)]
    cut = detach(state)

    assert type(cut) is list and type(cut[0]) is tuple and type(cut[0][0]) is LSTMState and type(cut[0][1]) is RNNState
    assert cut[1] == (None, 3)
    assert_close(cut[0][0].c, state[0][0].c, atol=0, rtol=0)
    assert all(not field.requires_grad for field in (*cut[0][0], *cut[0][1]))

    outputs, _ = Recurrent(cell)(torch.randn(B, T, D), cut[0][0])
    (outputs.sum() + cut[0][1].h.sum()).backward()
    assert source.grad is None  # nothing reached the source through the cut
    assert cell.W.grad is not None and cell.W.grad.abs().sum() > 0

    outputs, _ = Recurrent(cell)(torch.randn(B, T, D), state[0][0])  # without the cut, it does
    outputs.sum().backward()
    assert source.grad is not None and source.grad.abs().sum() > 0


def test_init_state_of_wrappers_mirrors_their_structure():
    """Recurrent, Bidirectional and Stacked build zero states shaped like their final states, and passing
    that state equals passing None."""
    stack = Stacked(
        [
            Bidirectional(Recurrent(LSTMCell(D, H)), Recurrent(LSTMCell(D, H))),
            Recurrent(CELL_FACTORIES["mut3"](2 * H, H)),
        ]
    )
    state = stack.init_state(B)
    assert (
        type(state) is list
        and type(state[0]) is tuple
        and type(state[0][0]) is LSTMState
        and type(state[1]) is RNNState
    )
    assert all(not field.any() and field.shape == (B, H) for field in (*state[0][0], *state[0][1], *state[1]))
    inputs = torch.randn(B, T, D)
    assert_close(stack(inputs, state)[0], stack(inputs)[0], atol=0, rtol=0)


def test_to_plain_and_like_round_trip():
    """to_plain keeps only lists and tensors (checkpoint-safe); like(template, plain) restores the
    NamedTuple types and nesting; map_state applies a function to every tensor."""
    stack = Stacked(
        [Bidirectional(Recurrent(LSTMCell(D, H)), Recurrent(LSTMCell(D, H))), Recurrent(LSTMCell(2 * H, H))]
    )
    _, final = stack(torch.randn(B, T, D))
    plain = to_plain(final)
    assert type(plain) is list and type(plain[0]) is list and type(plain[0][0]) is list and type(plain[1]) is list
    rebuilt = like(stack.init_state(B), plain)
    assert type(rebuilt[0][0]) is LSTMState and type(rebuilt[1]) is LSTMState
    assert torch.equal(rebuilt[0][1].c, final[0][1].c) and torch.equal(rebuilt[1].h, final[1].h)
    doubled = map_state(lambda tensor: 2 * tensor, final)
    assert type(doubled[1]) is LSTMState and torch.equal(doubled[1].c, 2 * final[1].c)
    with pytest.raises(ValueError, match="1 parts where the model has 2"):
        like(stack.init_state(B), plain[:1])


# --- shape errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_recurrent_rejects_wrong_rank_and_features(implementation):
    """Recurrent wants (B, T, D): a 2-D or 4-D tensor, or the wrong D, names (*, *, D) and what it got."""
    layer = Recurrent(LSTMCell(5, H), implementation)
    with pytest.raises(ValueError, match=error_pattern("(*, *, 5)", "(3, 5)")):
        layer(torch.randn(3, 5))
    with pytest.raises(ValueError, match=error_pattern("(*, *, 5)", "(3, 2, 1, 5)")):
        layer(torch.randn(3, 2, 1, 5))
    with pytest.raises(ValueError, match=error_pattern("(*, *, 5)", "(3, 2, 4)")):
        layer(torch.randn(3, 2, 4))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_recurrent_rejects_wrong_initial_state(implementation):
    """An initial state of shape (B, 1) (or another batch size) is an error before any step runs."""
    cell = LSTMCell(D, H)
    layer = Recurrent(cell, implementation)
    with pytest.raises(ValueError, match=error_pattern(f"({B}, {H})", f"({B}, 1)")):
        layer(torch.randn(B, T, D), LSTMState(torch.zeros(B, H), torch.zeros(B, 1)))
    with pytest.raises(ValueError, match=error_pattern(f"({B}, {H})", f"({B + 1}, {H})")):
        layer(torch.randn(B, T, D), LSTMState(torch.zeros(B + 1, H), torch.zeros(B + 1, H)))


@pytest.mark.parametrize(
    "lengths, pattern",
    [
        ([1, T + 2, 2], error_pattern(f"T={T}", f"max {T + 2}")),  # longer than the sequence
        ([0, 2, 2], error_pattern("min 0")),  # an empty sequence
        ([2, 2], rf"\({B},?\).*\(2,?\)"),  # one length per row: (B,) expected, (2,) received
        ([[2], [2], [2]], error_pattern(f"({B},)", f"({B}, 1)")),
        ([2.0, 2.0, 2.0], "integer"),
    ],
    ids=["too-long", "zero", "too-few", "2d", "float"],
)
@pytest.mark.parametrize("layer_kind", ["recurrent", "bidirectional"])
def test_bad_lengths_raise(layer_kind, lengths, pattern):
    """lengths must be (B,) integers in [1, T]: anything else is a ValueError saying what was received."""
    if layer_kind == "recurrent":
        layer = Recurrent(LSTMCell(D, H))
    else:
        layer = Bidirectional(Recurrent(LSTMCell(D, H)), Recurrent(LSTMCell(D, H)))
    with pytest.raises(ValueError, match=pattern):
        layer(torch.randn(B, T, D), lengths=torch.tensor(lengths))


def test_empty_sequence_raises():
    """T = 0 has no final state to return: an error naming the shape."""
    with pytest.raises(ValueError, match=re.escape(f"({B}, 0, {D})")):
        Recurrent(LSTMCell(D, H))(torch.randn(B, 0, D))


# --- a cell a user writes --------------------------------------------------------------------------


class DiagonalRNNCell(rnnkit.cells.Cell):
    """A cell written by a user, not by rnnkit: h_t = tanh(W x_t + u ⊙ h_{t-1} + b), a diagonal U (IndRNN-like).

    Subclassing Cell gives it init_state, the shape checks and initialisation; forward is the equation.
    """

    def __init__(self, input_size: int, hidden_size: int, dtype=None):
        super().__init__(input_size, hidden_size)
        self.W = torch.nn.Parameter(torch.randn(hidden_size, input_size, dtype=dtype) * 0.5)
        self.u = torch.nn.Parameter(torch.rand(hidden_size, dtype=dtype))
        self.b = torch.nn.Parameter(torch.zeros(hidden_size, dtype=dtype))

    def forward(self, x, state):
        self.check_step(x, state)
        return RNNState(torch.tanh(torch.nn.functional.linear(x, self.W, self.b) + self.u * state.h))


def test_user_written_cell_runs_like_the_built_in_ones():
    """Recurrent runs a user's cell on the reference path, equal to the hand loop, with the user's initial state."""
    cell = DiagonalRNNCell(D, H)
    assert rnnkit.kernels.aten.unsupported_reason(cell) is not None  # no fused kernel: the loop is used
    inputs, state = torch.randn(B, T, D), random_state(cell, B)
    outputs, final, states = Recurrent(cell)(inputs, state, return_states=True)
    expected = loop(cell, inputs, state)
    assert_states_close(final, expected[-1])
    assert_close(outputs, stack_field(expected, "h"), **TOLERANCE)
    assert_close(states.h, outputs, **TOLERANCE)


def test_user_written_cell_bidirectional_with_padding_equals_each_sequence_alone():
    """Bidirectional(Recurrent(user cell), ...) with lengths equals running every sequence alone, both ways."""
    layer = Bidirectional(Recurrent(DiagonalRNNCell(D, H)), Recurrent(DiagonalRNNCell(D, H)))
    inputs, lengths = torch.randn(B, T, D), torch.tensor([T, 2, 4])
    outputs, (forward_final, backward_final) = layer(inputs, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, (forward_alone, backward_alone) = layer(inputs[b : b + 1, :n])
        assert_close(outputs[b : b + 1, :n], alone, **TOLERANCE)
        assert_close(forward_final.h[b : b + 1], forward_alone.h, **TOLERANCE)
        assert_close(backward_final.h[b : b + 1], backward_alone.h, **TOLERANCE)


def test_user_written_cell_gradcheck():
    """The loop over a user's cell has correct gradients (float64 gradcheck)."""
    cell = DiagonalRNNCell(2, 3, dtype=torch.float64)
    inputs = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: Recurrent(cell)(x, lengths=torch.tensor([4, 2]))[0], (inputs,))


@pytest.mark.parametrize("implementation", ["auto", "reference"])
def test_state_on_another_device_is_one_error_for_every_path(implementation):
    """A state on another device than the inputs: one RnnkitError naming the field and both devices, before any
    path runs."""
    cell = LSTMCell(3, 4)
    state = LSTMState(torch.zeros(2, 4, device="meta"), torch.zeros(2, 4))
    with pytest.raises(rnnkit.RnnkitError, match=re.escape("LSTMCell state.h is on meta, the inputs on cpu")):
        Recurrent(cell, implementation)(torch.randn(2, 5, 3), state)

"""Tests for rnnkit/layers.py: rnnkit.RNN/LSTM/GRU are drop-in replacements for torch.nn.RNN/LSTM/GRU.
Loaded with torch's state_dict they give torch's outputs, final states and gradients, for every layout
and option, on the fused path and the reference path; state_dicts round-trip both ways."""

import pytest
import torch
from conftest import error_pattern, use_reference
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.testing import assert_close

import rnnkit

B, T, D, H = 3, 4, 5, 4
TOLERANCE = dict(atol=1e-5, rtol=1e-5)  # float32, up to 3 layers deep

# test id -> (torch class, our class, extra constructor arguments)
KINDS = {
    "rnn-tanh": (nn.RNN, rnnkit.RNN, dict(nonlinearity="tanh")),
    "rnn-relu": (nn.RNN, rnnkit.RNN, dict(nonlinearity="relu")),
    "lstm": (nn.LSTM, rnnkit.LSTM, {}),
    "gru": (nn.GRU, rnnkit.GRU, {}),
}


def make_pair(kind: str, implementation: str = "auto", **options):
    """A torch layer and ours with the same options, ours loaded from torch's state_dict."""
    torch_class, our_class, extra = KINDS[kind]
    theirs = torch_class(D, H, **extra, **options)
    ours = our_class(D, H, **extra, **options)
    ours.load_state_dict(theirs.state_dict())
    if implementation == "reference":
        use_reference(ours)
    return ours, theirs


def random_hx(kind: str, num_slots: int, batch_size: int | None = B):
    """torch's initial state: (L·directions, B, H), a pair of them for the LSTM; no B when unbatched."""
    shape = (num_slots, H) if batch_size is None else (num_slots, batch_size, H)
    return (torch.randn(shape), torch.randn(shape)) if kind == "lstm" else torch.randn(shape)


def as_fields(state) -> tuple:
    """h, or (h, c), as a tuple of tensors."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def run_with_gradients(layer, inputs, hx, weights):
    """Outputs, final state, and gradients of a weighted sum of both w.r.t. input, hx and every parameter."""
    for parameter in layer.parameters():
        parameter.grad = None
    inputs = inputs.clone().requires_grad_()
    hx_fields = None if hx is None else [field.clone().requires_grad_() for field in as_fields(hx)]
    hx = None if hx is None else (tuple(hx_fields) if len(hx_fields) == 2 else hx_fields[0])
    outputs, final = layer(inputs, hx)
    loss = (outputs * weights[0]).sum() + sum(
        (field * weight).sum() for field, weight in zip(as_fields(final), weights[1:], strict=True)
    )
    loss.backward()
    hx_gradients = [] if hx_fields is None else [field.grad for field in hx_fields]
    return outputs, as_fields(final), inputs.grad, hx_gradients


def loss_weights(kind: str, outputs_shape, num_slots: int):
    """Random weights for the loss, so every element's gradient is distinct."""
    return [torch.randn(outputs_shape)] + [torch.randn(num_slots, B, H) for _ in range(2 if kind == "lstm" else 1)]


@pytest.mark.parametrize("implementation", ["auto", "reference"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-first", "batch-first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_equals_torch(kind, num_layers, bidirectional, batch_first, with_hx, bias, implementation):
    """Outputs, final states and the gradients w.r.t. input, hx and every parameter equal torch's."""
    ours, theirs = make_pair(
        kind, implementation, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias
    )
    num_slots = num_layers * (2 if bidirectional else 1)
    inputs = torch.randn((B, T, D) if batch_first else (T, B, D))
    hx = random_hx(kind, num_slots) if with_hx else None
    outputs_shape = (B, T, num_slots // num_layers * H) if batch_first else (T, B, num_slots // num_layers * H)
    weights = loss_weights(kind, outputs_shape, num_slots)

    our_outputs, our_final, our_input_gradient, our_hx_gradients = run_with_gradients(ours, inputs, hx, weights)
    their_outputs, their_final, their_input_gradient, their_hx_gradients = run_with_gradients(
        theirs, inputs, hx, weights
    )

    assert our_outputs.shape == their_outputs.shape == outputs_shape
    assert_close(our_outputs, their_outputs, **TOLERANCE)
    for our_field, their_field in zip(our_final, their_final, strict=True):
        assert_close(our_field, their_field, **TOLERANCE)
    assert_close(our_input_gradient, their_input_gradient, **TOLERANCE)
    for our_gradient, their_gradient in zip(our_hx_gradients, their_hx_gradients, strict=True):
        assert_close(our_gradient, their_gradient, **TOLERANCE)

    our_parameter_gradients = ours.to_torch_layout(
        {name: parameter.grad for name, parameter in ours.named_parameters()}
    )
    their_parameter_gradients = {name: parameter.grad for name, parameter in theirs.named_parameters()}
    assert set(our_parameter_gradients) == set(their_parameter_gradients)
    for name, their_gradient in their_parameter_gradients.items():
        assert_close(
            our_parameter_gradients[name],
            their_gradient,
            **TOLERANCE,
            msg=lambda message, name=name: f"{name}: {message}",
        )


# --- state_dict ---------------------------------------------------------------------------------

STATE_DICT_CASES = [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=3, bias=False),
    dict(num_layers=2, bidirectional=True, bias=False),
]


@pytest.mark.parametrize(
    "options", STATE_DICT_CASES, ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items())
)
@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_has_torch_keys_and_values(kind, options):
    """Our state_dict has exactly torch's keys, and after loading torch's, exactly torch's values."""
    ours, theirs = make_pair(kind, **options)
    ours_state, their_state = ours.state_dict(), theirs.state_dict()
    assert set(ours_state) == set(their_state)
    for key, value in their_state.items():
        assert torch.equal(ours_state[key], value), key


@pytest.mark.parametrize(
    "options", STATE_DICT_CASES, ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items())
)
@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_round_trips_into_torch(kind, options):
    """A fresh torch layer loaded from our state_dict (strictly) holds the original torch weights,
    so the GRU's z-row negation is undone on the way out, and gives the same outputs."""
    ours, theirs = make_pair(kind, **options)
    fresh = KINDS[kind][0](D, H, **KINDS[kind][2], **options)
    fresh.load_state_dict(ours.state_dict())
    for name, parameter in theirs.named_parameters():
        assert torch.equal(dict(fresh.named_parameters())[name], parameter), name
    inputs = torch.randn(T, B, D)
    assert_close(fresh(inputs)[0], ours(inputs)[0], **TOLERANCE)


@pytest.mark.parametrize("kind", list(KINDS))
def test_to_torch_layout_of_parameters_is_torch_parameters(kind):
    """to_torch_layout maps our parameters to torch's names and layout (GRU z rows negated, once)."""
    ours, theirs = make_pair(kind, num_layers=2, bidirectional=True)
    converted = ours.to_torch_layout(dict(ours.named_parameters()))
    assert set(converted) == set(dict(theirs.named_parameters()))
    for name, parameter in theirs.named_parameters():
        assert torch.equal(converted[name], parameter), name


def test_gru_stores_z_rows_in_our_convention():
    """Inside rnnkit.GRU the cells hold the z rows negated relative to torch (our z is torch's 1 − z)."""
    ours, theirs = make_pair("gru")
    cell = ours.stack.layers[0].cell
    assert torch.equal(cell.U[H : 2 * H], -theirs.weight_hh_l0[H : 2 * H])
    assert torch.equal(cell.U[:H], theirs.weight_hh_l0[:H])
    assert torch.equal(cell.b[2 * H :], theirs.bias_ih_l0[2 * H :])


# --- other input forms --------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["auto", "reference"])
@pytest.mark.parametrize("enforce_sorted", [False, True], ids=["unsorted", "sorted"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_packed_sequence_equals_torch(kind, bidirectional, with_hx, enforce_sorted, implementation):
    """A PackedSequence in gives torch's PackedSequence out (data, batch sizes, order) and final states."""
    ours, theirs = make_pair(kind, implementation, num_layers=2, bidirectional=bidirectional)
    lengths = torch.tensor([4, 3, 1] if enforce_sorted else [2, 4, 1])
    packed = pack_padded_sequence(torch.randn(T, B, D), lengths, enforce_sorted=enforce_sorted)
    hx = random_hx(kind, 2 * (2 if bidirectional else 1)) if with_hx else None
    our_outputs, our_final = ours(packed, hx)
    their_outputs, their_final = theirs(packed, hx)
    assert isinstance(our_outputs, nn.utils.rnn.PackedSequence)
    assert_close(our_outputs.data, their_outputs.data, **TOLERANCE)
    assert torch.equal(our_outputs.batch_sizes, their_outputs.batch_sizes)
    for ours_index, theirs_index in [
        (our_outputs.sorted_indices, their_outputs.sorted_indices),
        (our_outputs.unsorted_indices, their_outputs.unsorted_indices),
    ]:
        assert (ours_index is None and theirs_index is None) or torch.equal(ours_index, theirs_index)
    for our_field, their_field in zip(as_fields(our_final), as_fields(their_final), strict=True):
        assert_close(our_field, their_field, **TOLERANCE)


@pytest.mark.parametrize("implementation", ["auto", "reference"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-first", "batch-first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input_equals_torch(kind, bidirectional, batch_first, with_hx, implementation):
    """A 2-D (T, D) input with a 2-D (L·directions, H) hx gives torch's 2-D outputs and states."""
    ours, theirs = make_pair(kind, implementation, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    inputs = torch.randn(T, D)
    hx = random_hx(kind, 2 * (2 if bidirectional else 1), batch_size=None) if with_hx else None
    our_outputs, our_final = ours(inputs, hx)
    their_outputs, their_final = theirs(inputs, hx)
    assert our_outputs.shape == their_outputs.shape == (T, H * (2 if bidirectional else 1))
    assert_close(our_outputs, their_outputs, **TOLERANCE)
    for our_field, their_field in zip(as_fields(our_final), as_fields(their_final), strict=True):
        assert our_field.dim() == 2
        assert_close(our_field, their_field, **TOLERANCE)


@pytest.mark.parametrize("implementation", ["auto", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_dropout_layer_equals_torch_in_eval(kind, bidirectional, implementation):
    """With dropout > 0, eval mode switches it off in both, and the outputs agree; in training ours drops."""
    ours, theirs = make_pair(kind, implementation, num_layers=3, bidirectional=bidirectional, dropout=0.4)
    inputs = torch.randn(T, B, D)
    ours.eval()
    theirs.eval()
    our_outputs, our_final = ours(inputs)
    their_outputs, their_final = theirs(inputs)
    assert_close(our_outputs, their_outputs, **TOLERANCE)
    for our_field, their_field in zip(as_fields(our_final), as_fields(their_final), strict=True):
        assert_close(our_field, their_field, **TOLERANCE)
    ours.train()
    assert not torch.allclose(ours(inputs)[0], ours(inputs)[0])


@pytest.mark.parametrize("kind", list(KINDS))
def test_dtype_argument_builds_float64_layer(kind):
    """dtype=torch.float64 makes every parameter float64, and the layer then matches torch in float64."""
    torch_class, our_class, extra = KINDS[kind]
    theirs = torch_class(D, H, **extra, num_layers=2, bidirectional=True, dtype=torch.float64)
    ours = our_class(D, H, **extra, num_layers=2, bidirectional=True, dtype=torch.float64)
    assert all(parameter.dtype == torch.float64 for parameter in ours.parameters())
    ours.load_state_dict(theirs.state_dict())
    inputs = torch.randn(T, B, D, dtype=torch.float64)
    assert_close(ours(inputs)[0], theirs(inputs)[0], atol=1e-12, rtol=1e-12)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first, layout", [(False, "(T, B, D)"), (True, "(B, T, D)")])
@pytest.mark.parametrize("kind", list(KINDS))
def test_wrong_input_rank_raises(kind, batch_first, layout):
    """A 4-D (or 1-D) input names the expected layout and the received shape."""
    ours, _ = make_pair(kind, batch_first=batch_first)
    with pytest.raises(ValueError, match=error_pattern(layout, f"(2, 3, 4, {D})")):
        ours(torch.randn(2, 3, 4, D))
    with pytest.raises(ValueError, match=error_pattern(layout, f"({D},)")):
        ours(torch.randn(D))


@pytest.mark.parametrize("kind", list(KINDS))
def test_wrong_feature_size_raises(kind):
    """The wrong D names (*, *, D) and the received (B, T, D') shape."""
    ours, _ = make_pair(kind, batch_first=True)
    with pytest.raises(ValueError, match=error_pattern(f"(*, *, {D})", f"({B}, {T}, {D + 1})")):
        ours(torch.randn(B, T, D + 1))


@pytest.mark.parametrize("shape", [(T, B, D + 1), (T, D + 1)], ids=["time-first", "unbatched"])
def test_wrong_feature_size_names_the_shape_received(shape):
    """With the default time-first layout, the error names the shape the caller passed, not a transposed one."""
    ours, _ = make_pair("lstm")
    received = "(" + ", ".join(str(size) for size in shape) + ")"
    with pytest.raises(ValueError, match=error_pattern(f"{D}", received)):
        ours(torch.randn(shape))


@pytest.mark.parametrize(
    "bad_shape",
    [(2, B, 1), (2, 1, H), (1, B, H), (2, B + 1, H), (B, H)],
    ids=["hidden-1", "batch-1", "too-few-layers", "wrong-batch", "2d"],
)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_wrong_hx_shape_raises(kind, bad_shape):
    """An hx that is not (L·directions, B, H) names the expected and the received shape (no broadcast)."""
    ours, _ = make_pair(kind, num_layers=2)
    bad = torch.zeros(bad_shape)
    hx = (bad, torch.zeros(2, B, H)) if kind == "lstm" else bad
    received = "(" + ", ".join(str(size) for size in bad_shape) + ")"
    with pytest.raises(ValueError, match=error_pattern(f"(2, {B}, {H})", received)):
        ours(torch.randn(T, B, D), hx)


def test_lstm_wrong_cell_state_shape_raises():
    """The LSTM's c_0 is checked as well as its h_0."""
    ours, _ = make_pair("lstm", num_layers=2)
    with pytest.raises(ValueError, match=error_pattern("c", f"(2, {B}, {H})", f"(2, {B}, 1)")):
        ours(torch.randn(T, B, D), (torch.zeros(2, B, H), torch.zeros(2, B, 1)))


def test_lstm_hx_needs_two_tensors():
    """An LSTM given only h_0 is told it needs (h_0, c_0)."""
    ours, _ = make_pair("lstm")
    with pytest.raises(ValueError, match="2 tensors, got 1"):
        ours(torch.randn(T, B, D), (torch.zeros(1, B, H),))


def test_unbatched_input_with_batched_hx_raises():
    """Unbatched input wants a 2-D hx; a 3-D one is an error naming both shapes."""
    ours, _ = make_pair("gru", num_layers=2)
    with pytest.raises(ValueError, match=error_pattern(f"(2, {H})", f"(2, 1, {H})")):
        ours(torch.randn(T, D), torch.zeros(2, 1, H))


def test_unsupported_options_raise():
    """proj_size and num_layers < 1 are refused, not silently ignored."""
    with pytest.raises(ValueError, match="proj_size"):
        rnnkit.LSTM(D, H, proj_size=2)
    with pytest.raises(ValueError, match="num_layers"):
        rnnkit.GRU(D, H, num_layers=0)

"""Tests for rnnkit/kernels/triton_rnn.py: the Triton kernels of every built-in cell equal the reference loop
(outputs, final state, gradients of inputs, initial state and every parameter), full and padded, alone and
inside Bidirectional, with and without autograd.

On a machine with a CUDA GPU they run there, as users get them (CUDA graphs included), with TF32 off so
float32 tolerances hold. Without one, conftest.py sets TRITON_INTERPRET=1 and the same kernels run in
Triton's interpreter on the CPU (Recurrent takes that path only when asked for by name); where Triton is
not installed at all these tests skip.
"""

import pytest
import torch
from conftest import CELL_FACTORIES, assert_same_results, outputs_and_gradients, random_state, random_weights
from test_compiled import PlainLSTMCell

from rnnkit import Bidirectional, GRUCell, LSTMCell, Recurrent, RnnkitError
from rnnkit.kernels import triton_graphs, triton_rnn
from rnnkit.kernels.dispatch import choose_path

FACTORIES = {
    **CELL_FACTORIES,
    "gru-reset-before-no-bias": lambda D, H: GRUCell(D, H, bias=False),
    "lstm-no-bias": lambda D, H: LSTMCell(D, H, bias=False),
    "gru-reset-after-no-bias": lambda D, H: GRUCell(D, H, bias=False, reset_after=True),
}
B, T, D, H = 3, 6, 5, 20  # H not a multiple of the tiles: the kernels' edge masks are exercised
LENGTHS = [6, 2, 4]
TOLERANCE = dict(atol=2e-5, rtol=1e-4)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.skipif(
    not triton_rnn.TRITON_INSTALLED or not (DEVICE == "cuda" or triton_rnn.interpreting()),
    reason="needs Triton (on a CUDA GPU, or in its interpreter on the CPU)",
)


def results(cell, path: str, inputs, state, lengths, weights):
    return outputs_and_gradients(Recurrent(cell, path), inputs, state, lengths, weights)


CASES = [(name, padded) for name in FACTORIES for padded in (False, True)]


@pytest.mark.parametrize("name, padded", CASES, ids=[f"{n}-{'padded' if p else 'full'}" for n, p in CASES])
def test_triton_equals_reference(name, padded):
    """Values and gradients equal the reference loop's; padded steps output 0 and get no input gradient."""
    cell = FACTORIES[name](D, H).to(DEVICE)
    inputs = torch.randn(B, T, D, device=DEVICE)
    lengths = torch.tensor(LENGTHS, device=DEVICE) if padded else None
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, H, DEVICE)
    fast = results(cell, "triton", inputs, state, lengths, weights)
    assert_same_results(fast, results(cell, "reference", inputs, state, lengths, weights), **TOLERANCE)
    if padded:
        padding = torch.arange(T, device=DEVICE)[None, :] >= lengths[:, None]  # (B, T)
        assert torch.equal(fast[0][padding], torch.zeros_like(fast[0][padding]))
        assert torch.equal(fast[2][0][padding], torch.zeros_like(fast[2][0][padding]))


@pytest.mark.parametrize("name", ["lstm", "gru-reset-before", "mut3"])
def test_triton_equals_reference_inside_bidirectional(name):
    """Both directions on the kernels, padded batch: equal to both directions on the reference loop."""
    forward_cell, backward_cell = FACTORIES[name](D, H).to(DEVICE), FACTORIES[name](D, H).to(DEVICE)
    inputs = torch.randn(B, T, D, device=DEVICE)
    lengths = torch.tensor(LENGTHS, device=DEVICE)
    state = [random_state(forward_cell, B), random_state(backward_cell, B)]
    weights = random_weights([forward_cell, backward_cell], B, T, 2 * H, DEVICE)
    fast = Bidirectional(Recurrent(forward_cell, "triton"), Recurrent(backward_cell, "triton"))
    reference = Bidirectional(Recurrent(forward_cell, "reference"), Recurrent(backward_cell, "reference"))
    assert_same_results(
        outputs_and_gradients(fast, inputs, state, lengths, weights),
        outputs_and_gradients(reference, inputs, state, lengths, weights),
        **TOLERANCE,
    )


def test_triton_without_grad_equals_reference():
    """Under no_grad (evaluation, sampling), batch 1: the reference's outputs and final state."""
    cell = FACTORIES["mut2"](D, H).to(DEVICE)
    inputs = torch.randn(1, T, D, device=DEVICE)
    with torch.no_grad():
        fast, fast_final = Recurrent(cell, "triton")(inputs)
        reference, reference_final = Recurrent(cell, "reference")(inputs)
    torch.testing.assert_close(fast, reference, **TOLERANCE)
    torch.testing.assert_close(fast_final.h, reference_final.h, **TOLERANCE)


@pytest.mark.skipif(DEVICE != "cuda", reason="needs a GPU (CUDA graphs)")
def test_graphs_and_plain_launches_agree(monkeypatch):
    """The CUDA-graph replay and launching every kernel from Python give the same outputs and gradients."""
    cell = FACTORIES["mut3"](D, H).to(DEVICE)
    inputs = torch.randn(B, T, D, device=DEVICE)
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, H, DEVICE)
    lengths = torch.tensor(LENGTHS, device=DEVICE)
    graphed = results(cell, "triton", inputs, state, lengths, weights)
    monkeypatch.setattr(triton_graphs, "GRAPHS", False)
    assert_same_results(graphed, results(cell, "triton", inputs, state, lengths, weights), atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(DEVICE != "cuda", reason="needs a GPU: on the CPU, auto never takes the interpreter")
@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_auto_takes_the_kernels_on_a_gpu(name, monkeypatch):
    """Every built-in cell, float32: the Triton kernels (ahead of cuDNN, which they beat on an H100)."""
    calls = []
    real = triton_rnn.run
    monkeypatch.setattr(triton_rnn, "run", lambda *args: calls.append(args) or real(*args))
    Recurrent(CELL_FACTORIES[name](D, H).to(DEVICE), "auto")(torch.randn(B, T, D, device=DEVICE))
    assert len(calls) == 1


@pytest.mark.skipif(DEVICE != "cuda", reason="needs a GPU (autocast on CUDA)")
def test_autocast_falls_back_to_cudnn(monkeypatch):
    """Under autocast the input terms would be half precision: auto takes cuDNN instead, and says why."""
    monkeypatch.setattr(triton_rnn, "run", lambda *args: pytest.fail("the float32-only kernels ran under autocast"))
    cell = CELL_FACTORIES["lstm"](D, H).to(DEVICE)
    inputs = torch.randn(B, T, D, device=DEVICE)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert triton_rnn.unsupported_reason(cell, inputs) == "autocast is on and the Triton kernels are float32 only"
        outputs, _ = Recurrent(cell, "auto")(inputs)
    assert outputs.dtype in (torch.bfloat16, torch.float16)  # autocast ran cuDNN's RNN in float16 (seen on an H100)


def test_forced_triton_on_a_cell_without_kernels_is_an_error():
    with pytest.raises(
        RnnkitError, match="implementation='triton' cannot run PlainLSTMCell: PlainLSTMCell has no Triton kernel"
    ):
        Recurrent(PlainLSTMCell(D, H).to(DEVICE), "triton")(torch.randn(B, T, D, device=DEVICE))
    with pytest.raises(
        RnnkitError, match="implementation='triton' cannot run MUT1Cell: the Triton kernels are float32 only"
    ):
        Recurrent(CELL_FACTORIES["mut1"](D, H, dtype=torch.float64).to(DEVICE), "triton")(
            torch.randn(B, T, D, device=DEVICE, dtype=torch.float64)
        )


@pytest.mark.parametrize(
    "name, batch_size, expected",
    [("lstm", 64, "triton"), ("lstm", 65, "fused"), ("mut1", 65, "triton"), ("rnn-identity", 65, "triton")],
)
def test_auto_leaves_large_batches_of_standard_cells_to_cudnn(name, batch_size, expected, monkeypatch):
    """Where the kernels can run, auto takes them, except for a cell cuDNN also runs above batch 64 (cuDNN was
    faster there on an H100). The choice alone is checked, on any machine, with the kernels declared available."""
    monkeypatch.setattr(triton_rnn, "unsupported_reason", lambda cell, inputs, forced=False: None)
    layer = Recurrent(CELL_FACTORIES[name](D, H), "auto")
    assert (
        choose_path(layer.cell, layer.implementation, torch.zeros(batch_size, T, D), return_states=False)[0] == expected
    )


def test_second_derivatives_are_refused():
    """The kernels' backward is not itself differentiable: asking for a second derivative is an error, not a
    wrong answer."""
    cell = CELL_FACTORIES["lstm"](D, H).to(DEVICE)
    inputs = torch.randn(B, T, D, device=DEVICE, requires_grad=True)
    outputs, _ = Recurrent(cell, "triton")(inputs)
    (gradient,) = torch.autograd.grad((outputs * outputs).sum(), inputs, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|differentiate twice"):
        gradient.sum().backward()


def test_states_of_another_dtype_are_refused():
    """The kernels read float32 states: a float64 state is an error naming the field (the reference loop also
    refuses it)."""
    cell = CELL_FACTORIES["mut2"](D, H).to(DEVICE)
    state = cell.State(torch.zeros(B, H, device=DEVICE, dtype=torch.float64))
    with pytest.raises(RnnkitError, match="MUT2Cell state.h: expected float32"):
        Recurrent(cell, "triton")(torch.randn(B, T, D, device=DEVICE), state)


def test_non_contiguous_weights_are_not_taken():
    """The kernels read weights row by row: a transposed view is declined with the reason, and auto runs
    another path."""
    cell = CELL_FACTORIES["lstm"](D, H).to(DEVICE)
    cell.U = torch.nn.Parameter(cell.U.detach().t().contiguous().t())  # same values, column-major
    reason = triton_rnn.unsupported_reason(cell, torch.randn(B, T, D, device=DEVICE), forced=True)
    assert reason == "the Triton kernels read row-major weights, and a recurrent weight is not contiguous"


class ReplayedLaunches:
    """A CUDA graph's stand-in on the CPU: capturing runs the launches once, as the real capture's warm-up does,
    and each replay runs them again on the same buffers."""

    def __init__(self, launch):
        launch()
        self.replay = launch


@pytest.mark.parametrize("name, padded", [("mut1", False), ("lstm", True), ("gru-reset-after", True), ("mut3", True)])
def test_two_forwards_then_one_backward(name, padded, monkeypatch):
    """Two calls before one backward (gradient accumulation, a loss over two chunks), twice: each call keeps its
    own saved states although the graph's buffers are reused by the next call, the carries are reset before each
    backward replay, and the second time through the cached graph is replayed. On a GPU with real CUDA graphs;
    on the CPU with replayed launches standing in for them."""
    if DEVICE != "cuda":
        monkeypatch.setattr(triton_graphs, "capture", ReplayedLaunches)
        monkeypatch.setattr(triton_rnn, "use_graphs", lambda device: True)
    cell = CELL_FACTORIES[name](D, H).to(DEVICE)
    first, second = torch.randn(B, T, D, device=DEVICE), torch.randn(B, T, D, device=DEVICE)
    lengths = torch.tensor(LENGTHS, device=DEVICE) if padded else None

    def gradients(path):
        layer = Recurrent(cell, path)
        out1, state = layer(first, lengths=lengths)
        out2, final = layer(second, state, lengths)
        loss = (out1 * out1).sum() + (out2 * torch.arange(H, device=DEVICE)).sum() + (final.h**2).sum()
        return torch.autograd.grad(loss, list(cell.parameters()))

    for _ in range(2):
        for fast, reference in zip(gradients("triton"), gradients("reference"), strict=True):
            torch.testing.assert_close(fast, reference, **TOLERANCE)
    assert len(triton_graphs._graphs[cell]) == 1


def test_importing_rnnkit_does_not_import_triton():
    """Triton's import (~0.1 s) is paid at the Triton path's first use, not by every `import rnnkit` and CLI call."""
    import subprocess
    import sys

    code = "import sys, rnnkit, rnnkit.kernels.triton_rnn; print('triton' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )

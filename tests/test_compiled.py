"""Tests for rnnkit/kernels/compiled.py: the compiled loop equals the reference loop (values and gradients)
for every cell, a user-written cell included, full and padded, alone and inside Bidirectional; Recurrent
chooses it automatically, falls back with the reason logged, and refuses a forced path that cannot run.

Chunks are 3 steps here (T = 7: two compiled chunks and an uncompiled remainder step) so the graphs stay
small; one test cuts T = 7 into chunks of 4 and 2 and a remainder step, as 32 and 16 cut longer sequences.
Generating C++ for a graph takes ~10 s on a clean 2-core machine, so the equality test runs every cell
through torch.compile's "aot_eager" backend (the same captured graph and the same compiled autograd,
executed by ATen: what rnnkit's code decides is all there) and three cells through the real inductor
code generator that users get.
"""

import logging

import pytest
import torch
from conftest import (
    CELL_FACTORIES,
    FUSED_CELLS,
    UNFUSED_CELLS,
    assert_same_results,
    outputs_and_gradients,
    random_state,
    random_weights,
)
from torch import Tensor

from rnnkit import Bidirectional, Cell, Recurrent, RnnkitError
from rnnkit.cells import LSTMState
from rnnkit.kernels import compiled, products
from rnnkit.recurrent import time_loop

B, T, D, H = 3, 7, 3, 4
TOLERANCE = dict(atol=1e-5, rtol=1e-4)  # float32: generated kernels may sum in another order
LENGTHS = [7, 2, 5]
CHUNK = 3


class PlainLSTMCell(Cell):
    """An LSTM written the way a user would: forward only, nn.Linear layers, no project/step split."""

    State = LSTMState

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.input_gates = torch.nn.Linear(input_size, 4 * hidden_size)
        self.hidden_gates = torch.nn.Linear(hidden_size, 4 * hidden_size, bias=False)

    def forward(self, x: Tensor, state: LSTMState) -> LSTMState:
        i, f, g, o = (self.input_gates(x) + self.hidden_gates(state.h)).chunk(4, dim=1)  # each (B, H)
        c = torch.sigmoid(f) * state.c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
        return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)


FACTORIES = {**CELL_FACTORIES, "user-lstm": lambda D, H: PlainLSTMCell(D, H)}
needs_compiler = pytest.mark.skipif(
    compiled.compiler_missing("cpu") is not None, reason=f"{compiled.compiler_missing('cpu')}"
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(compiled, "CHUNKS", (CHUNK,))


def spy_on_compiled_steps(monkeypatch) -> list:
    """Record every call of a compiled chunk of the loop (and still run it)."""
    calls = []
    real = compiled.compile_for

    def spy(cell, function, device_type="cpu"):
        call = real(cell, function, device_type)
        return (lambda *args: calls.append(args) or call(*args)) if function is time_loop else call

    monkeypatch.setattr(compiled, "compile_for", spy)
    return calls


CASES = [(name, padded, "aot_eager") for name in FACTORIES for padded in (False, True)]
CASES += [("lstm", True, "inductor"), ("mut3", False, "inductor"), ("user-lstm", True, "inductor")]


@needs_compiler
@pytest.mark.parametrize(
    "name, padded, backend", CASES, ids=[f"{n}-{'padded' if p else 'full'}-{b}" for n, p, b in CASES]
)
def test_compiled_equals_reference(name, padded, backend, monkeypatch):
    """outputs, final state and gradients (inputs, initial state, every parameter) equal the reference's;
    padded steps output 0 and send no gradient to their inputs; the compiled graph really ran."""
    monkeypatch.setattr(compiled, "BACKEND", backend)
    cell = FACTORIES[name](D, H)
    calls = spy_on_compiled_steps(monkeypatch)
    inputs = torch.randn(B, T, D)
    lengths = torch.tensor(LENGTHS) if padded else None
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, H)
    fast = outputs_and_gradients(Recurrent(cell, "compiled"), inputs, state, lengths, weights)
    reference = outputs_and_gradients(Recurrent(cell, "reference"), inputs, state, lengths, weights)
    assert_same_results(fast, reference, **TOLERANCE)
    assert len(calls) == T // CHUNK
    if padded:
        padding = torch.arange(T)[None, :] >= lengths[:, None]  # (B, T)
        assert torch.equal(fast[0][padding], torch.zeros_like(fast[0][padding]))
        assert torch.equal(fast[2][0][padding], torch.zeros_like(fast[2][0][padding]))


@pytest.mark.parametrize(
    "chunks, steps, lengths",
    [
        ((32, 16), 128, [32, 32, 32, 32]),
        ((32, 16), 100, [32, 32, 32, 4]),  # the remainder runs uncompiled
        ((32, 16), 50, [32, 16, 2]),
        ((32, 16), 20, [16, 4]),
        ((32, 16), 5, [5]),
        ((4, 2), 7, [4, 2, 1]),
    ],
)
def test_chunk_lengths_take_the_longest_chunks_first(chunks, steps, lengths, monkeypatch):
    monkeypatch.setattr(compiled, "CHUNKS", chunks)
    assert compiled.chunk_lengths(steps) == lengths


@needs_compiler
def test_chunks_of_two_lengths_equal_the_reference(monkeypatch):
    """T = 7 with chunks (4, 2): a 4-step graph, a 2-step graph and one uncompiled step; padded batch."""
    monkeypatch.setattr(compiled, "CHUNKS", (4, 2))
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    cell = FACTORIES["user-lstm"](D, H)
    calls = spy_on_compiled_steps(monkeypatch)
    inputs, lengths = torch.randn(B, T, D), torch.tensor(LENGTHS)
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, H)
    fast = outputs_and_gradients(Recurrent(cell, "compiled"), inputs, state, lengths, weights)
    reference = outputs_and_gradients(Recurrent(cell, "reference"), inputs, state, lengths, weights)
    assert_same_results(fast, reference, **TOLERANCE)
    assert [args[1].shape[1] for args in calls] == [4, 2]  # each call's (B, n, D) piece of the inputs


@needs_compiler
@pytest.mark.parametrize("name", ["mut2", "user-lstm"])
def test_compiled_equals_reference_inside_bidirectional(name):
    """Both directions compiled, padded batch: equal to both directions on the reference loop."""
    forward_cell, backward_cell = FACTORIES[name](D, H), FACTORIES[name](D, H)
    inputs = torch.randn(B, T, D)
    lengths = torch.tensor(LENGTHS)
    state = [random_state(forward_cell, B), random_state(backward_cell, B)]
    weights = random_weights([forward_cell, backward_cell], B, T, 2 * H)
    fast = Bidirectional(Recurrent(forward_cell, "compiled"), Recurrent(backward_cell, "compiled"))
    reference = Bidirectional(Recurrent(forward_cell, "reference"), Recurrent(backward_cell, "reference"))
    assert_same_results(
        outputs_and_gradients(fast, inputs, state, lengths, weights),
        outputs_and_gradients(reference, inputs, state, lengths, weights),
        **TOLERANCE,
    )


@needs_compiler
def test_inductor_gives_each_chunk_few_large_products(monkeypatch):
    """With Inductor, rnnkit/kernels/products.py's pass rewrites every chunk: the plain LSTM's CHUNK input
    products become one (it has no project(x) to hoist them), its two weight gradients one product each
    instead of CHUNK, and each step's sum of products a product and an add; outputs and gradients still
    equal the reference loop's."""
    import torch._inductor.config

    monkeypatch.setattr(compiled, "BACKEND", "inductor")
    made = {
        "batch_independent_products": [],
        "merge_gradient_sums": [],
        "unfuse_step_sums": [],
    }  # what each rewrite returned, graph by graph

    def recording(rewrite):
        def run(graph):
            made[rewrite.__name__].append(rewrite(graph))
            return made[rewrite.__name__][-1]

        return run

    for name in made:
        monkeypatch.setattr(products, name, recording(getattr(products, name)))
    cell = PlainLSTMCell(8, 16)  # large enough for the cost rule: the weights' gradients outweigh the copies
    inputs = torch.randn(B, T, 8)
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, 16)
    with torch._inductor.config.patch(fx_graph_cache=False):  # a graph read from the cache skips the pass
        fast = outputs_and_gradients(Recurrent(cell, "compiled"), inputs, state, None, weights)
    reference = outputs_and_gradients(Recurrent(cell, "reference"), inputs, state, None, weights)
    assert_same_results(fast, reference, **TOLERANCE)
    assert [CHUNK] in made["batch_independent_products"]  # forward: x_t W + b; backward: δ_t W for ∂L/∂x_t
    assert [CHUNK, CHUNK] in made["merge_gradient_sums"]  # backward: ∂L/∂U and ∂L/∂W
    assert CHUNK in made["unfuse_step_sums"]  # forward: each step's hoisted x_t Wᵀ + b, added to h_{t-1} Uᵀ


@needs_compiler
def test_compiled_inference_without_grad_equals_reference(monkeypatch):
    """Under no_grad (evaluation, sampling) the compiled path gives the reference's outputs."""
    cell = FACTORIES["mut3"](D, H)
    inputs = torch.randn(B, T, D)
    with torch.no_grad():
        fast, fast_final = Recurrent(cell, "compiled")(inputs)
        reference, reference_final = Recurrent(cell, "reference")(inputs)
    torch.testing.assert_close(fast, reference, **TOLERANCE)
    torch.testing.assert_close(fast_final.h, reference_final.h, **TOLERANCE)


@pytest.mark.parametrize("name", list(CELL_FACTORIES))
def test_every_builtin_cell_splits_its_step(name):
    """forward(x) == step(project(x)), and project accepts a whole (B, T, D) sequence at once."""
    cell = CELL_FACTORIES[name](D, H)
    state = random_state(cell, B)
    x = torch.randn(B, T, D)
    assert compiled.splits_step(cell)
    projected = cell.project(x)  # (B, T, ·)
    for t in range(T):
        stepped = cell.step(projected[:, t], state)
        for a, b in zip(stepped, cell(x[:, t], state)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert not compiled.splits_step(PlainLSTMCell(D, H))


@pytest.mark.parametrize("name", UNFUSED_CELLS + ["user-lstm"])
def test_auto_compiles_unfused_cells_on_long_sequences(name, monkeypatch):
    """'auto' takes the compiled path for cells without a fused kernel once T fills a chunk, from the second
    call with a shape on (the first runs eagerly); shorter sequences and return_states run the reference
    loop; cells with a fused kernel never compile."""
    calls = []
    monkeypatch.setattr(compiled, "run", lambda *args: calls.append(args) or ("ran", None))
    cell = FACTORIES[name](D, H)
    layer = Recurrent(cell, "auto")
    assert layer(torch.randn(B, T, D))[0] != "ran"  # the first call with this shape: eager
    assert layer(torch.randn(B, T, D))[0] == "ran"
    layer(torch.randn(B, CHUNK - 1, D))
    layer(torch.randn(B, T, D), return_states=True)
    assert len(calls) == 1
    assert layer(torch.randn(B + 1, T, D))[0] != "ran" and layer(torch.randn(B + 1, T, D))[0] == "ran"  # per shape


@pytest.mark.parametrize("name", FUSED_CELLS)
def test_auto_prefers_the_fused_kernel(name, monkeypatch):
    calls = []
    monkeypatch.setattr(compiled, "run", lambda *args: calls.append(args))
    Recurrent(CELL_FACTORIES[name](D, H), "auto")(torch.randn(B, T, D))
    assert calls == []


def test_fallback_logs_the_reason_once(monkeypatch, caplog):
    """Without a compiler, 'auto' runs the reference loop and logs why each fast path was not taken, once."""
    monkeypatch.setattr(compiled, "compiler_missing", lambda device_type: "no C++ compiler on PATH for torch.compile")
    layer = Recurrent(CELL_FACTORIES["mut1"](D, H), "auto")
    with caplog.at_level(logging.INFO, logger="rnnkit.recurrent"):
        expected, _ = Recurrent(layer.cell, "reference")(torch.ones(B, T, D))
        outputs, _ = layer(torch.ones(B, T, D))
        layer(torch.ones(B, T, D))
    torch.testing.assert_close(outputs, expected)
    messages = [record.getMessage() for record in caplog.records if "MUT1Cell" in record.getMessage()]
    assert len(messages) == 1
    assert "no C++ compiler" in messages[0] and "no fused torch kernel" in messages[0]


def test_forced_paths_that_cannot_run_are_errors(monkeypatch):
    """implementation='fused' on a cell torch has no kernel for, or 'compiled' with no compiler: an error naming why."""
    with pytest.raises(
        RnnkitError, match="implementation='fused' cannot run MUT2Cell: MUT2Cell has no fused torch kernel"
    ):
        Recurrent(CELL_FACTORIES["mut2"](D, H), "fused")(torch.randn(B, T, D))
    monkeypatch.setattr(compiled, "compiler_missing", lambda device_type: "no C++ compiler on PATH for torch.compile")
    with pytest.raises(RnnkitError, match="implementation='compiled' cannot run LSTMCell: no C\\+\\+ compiler"):
        Recurrent(CELL_FACTORIES["lstm"](D, H), "compiled")(torch.randn(B, T, D))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (torch.compile generates Triton kernels there)")
@pytest.mark.parametrize("name", ["lstm", "mut1", "user-lstm"])
def test_compiled_equals_reference_on_gpu(name):
    """On CUDA the compiled path (Triton kernels from inductor) equals the reference loop, padded batch."""
    cell = FACTORIES[name](D, H).cuda()
    inputs = torch.randn(B, T, D, device="cuda")
    lengths = torch.tensor(LENGTHS, device="cuda")
    state = [random_state(cell, B)]
    weights = random_weights([cell], B, T, H, "cuda")
    fast = outputs_and_gradients(Recurrent(cell, "compiled"), inputs, state, lengths, weights)
    reference = outputs_and_gradients(Recurrent(cell, "reference"), inputs, state, lengths, weights)
    assert_same_results(fast, reference, **TOLERANCE)


def test_compiling_is_announced_once_at_warning(monkeypatch, caplog):
    """The first compilation of a cell for a shape says what it compiles and about how long, once."""
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    layer = Recurrent(CELL_FACTORIES["mut1"](D, H), "auto")
    with caplog.at_level(logging.WARNING, logger="rnnkit.kernels.compiled"):
        for _ in range(3):
            layer(torch.randn(B, T, D))
    messages = [r.getMessage() for r in caplog.records if r.name == "rnnkit.kernels.compiled"]
    assert len(messages) == 1 and "compiling MUT1Cell's time loop" in messages[0] and "minute" in messages[0]

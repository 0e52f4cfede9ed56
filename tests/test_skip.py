"""Tests for the skip connections between stacked layers (rnnkit/recurrent.py's Stacked, --model.skip): each
skip against a stack written out by hand, residual's identity path, what a dense layer reads, padding, both
directions, the fast paths against the reference, the carried state, one layer (as none), every task's core,
the command line, the layer-by-layer walkers (diagnose, viz, the captioner's decoding), ONNX export and old
checkpoints."""

import dataclasses
import json

import pytest
import torch
from test_cli import CORPUS, run_main
from torch.testing import assert_close

import rnnkit
from rnnkit import diagnostics
from rnnkit.cells import Cell
from rnnkit.config import from_dict
from rnnkit.kernels import compiled
from rnnkit.models.core import CoreConfig, make_core, reset_weights
from rnnkit.recurrent import Recurrent, Shortcut, Stacked, map_state
from rnnkit.tasks import TASKS, from_checkpoint
from rnnkit.viz import record_activations

B, T, D, H = 3, 7, 4, 5
LENGTHS = [7, 2, 5]
TOLERANCE = dict(atol=1e-5, rtol=1e-4)  # float32: the fused kernel sums in another order
SKIPS = ["residual", "dense"]


def core(skip: str, cell: str = "lstm", layers: int = 3, bidirectional: bool = False, **settings) -> Stacked:
    """A core of `layers` layers on the reference loop, every weight from one seed."""
    output_size = settings.pop("output_size", None)
    settings = {"dropout": 0.0, "implementation": "reference"} | settings
    config = CoreConfig(cell=cell, hidden_size=H, num_layers=layers, skip=skip, **settings)
    stack = make_core(config, D, bidirectional=bidirectional, output_size=output_size)
    reset_weights(stack, torch.Generator().manual_seed(0))
    return stack


def recurrent_layers(stack: Stacked) -> list[Recurrent]:
    return [module for module in stack.modules() if isinstance(module, Recurrent)]


def by_hand(stack: Stacked, inputs: torch.Tensor) -> torch.Tensor:
    """The stack written out: none and residual read the layer below, dense everything below side by side;
    residual adds a layer's input (projected where the widths differ) to its output from layer 1 on."""
    below = [inputs]
    for index, layer in enumerate(stack.layers):
        read = torch.cat(below, dim=-1) if stack.skip == "dense" else below[-1]  # (B, T, D_k)
        output, _ = layer(read)  # (B, T, H)
        if stack.skip == "residual" and index > 0:
            shortcut = stack.shortcuts[index]
            output = output + (read if isinstance(shortcut, torch.nn.Identity) else read @ shortcut.weight.T)
        below.append(output)
    return below[-1]


# --- what each skip computes -----------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("skip", ["none", *SKIPS])
def test_each_skip_equals_the_stack_written_out(skip, cell, bidirectional):
    stack = core(skip, cell, bidirectional=bidirectional)
    inputs = torch.randn(B, T, D)
    outputs, finals = stack(inputs)
    assert_close(outputs, by_hand(stack, inputs))
    assert outputs.shape == (B, T, stack.output_size) and len(finals) == 3


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
def test_dense_layer_k_reads_k_plus_1_pieces(bidirectional):
    """Layer k's cells read D + k·H features (D + k·2H when bidirectional): the core's input and every layer
    below; the core's output is the last layer's alone."""
    stack = core("dense", layers=4, bidirectional=bidirectional)
    width = 2 * H if bidirectional else H
    for index, layer in enumerate(stack.layers):
        cells = [layer.forward_rnn.cell, layer.backward_rnn.cell] if bidirectional else [layer.cell]
        assert all(cell.input_size == D + index * width for cell in cells)
        pieces = [torch.randn(B, T, D)] + [torch.randn(B, T, width) for _ in range(index)]
        assert torch.equal(stack.reads(index, pieces), torch.cat(pieces, dim=-1))
    assert stack.output_size == width
    plain = core("none", layers=4, bidirectional=bidirectional)
    assert all(
        cell.input_size == (D if index == 0 else width)
        for index, layer in enumerate(plain.layers)
        for cell in ([layer.forward_rnn.cell] if bidirectional else [layer.cell])
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_residual_with_the_upper_layers_zeroed_is_the_identity_path(cell, bidirectional):
    """With every weight above the first layer 0 those layers output 0, and the core outputs the first layer's
    output exactly, in training with dropout too: dropout drops what a layer reads, never the identity path."""
    stack = core("residual", cell, layers=4, bidirectional=bidirectional, dropout=0.5)
    with torch.no_grad():
        for layer in list(stack.layers)[1:]:
            for parameter in layer.parameters():
                parameter.zero_()
    inputs = torch.randn(B, T, D)
    first, _ = stack.layers[0](inputs)  # (B, T, H)
    stack.train()
    assert torch.equal(stack(inputs)[0], first)
    assert first.abs().sum() > 0
    assert all(isinstance(shortcut, torch.nn.Identity) for shortcut in stack.shortcuts)  # H in, H out (2H, 2H)


def test_residual_meets_another_width_through_a_learned_projection():
    """AWD-LSTM's last layer of another width (E = 3 < H): its shortcut is a learned P that starts as the identity
    on the first 3 features, so with that layer zeroed the core outputs the layer below's first 3 features; P
    has no bias, learns (it has a gradient), and reset_weights puts it back to the identity."""
    stack = core("residual", layers=3, output_size=3)
    assert isinstance(stack.shortcuts[2], Shortcut) and isinstance(stack.shortcuts[1], torch.nn.Identity)
    assert stack.output_size == 3 and [name for name, _ in stack.shortcuts.named_parameters()] == ["2.weight"]
    with torch.no_grad():
        for parameter in stack.layers[2].parameters():
            parameter.zero_()
    inputs = torch.randn(B, T, D)
    below = stack.layers[1](stack.layers[0](inputs)[0])[0] + stack.layers[0](inputs)[0]  # (B, T, H)
    outputs, _ = stack(inputs)
    assert_close(outputs, below[..., :3])
    outputs.pow(2).sum().backward()
    assert stack.shortcuts[2].weight.grad.abs().sum() > 0
    with torch.no_grad():
        stack.shortcuts[2].weight.add_(1.0)
    reset_weights(stack, torch.Generator().manual_seed(1))
    assert torch.equal(stack.shortcuts[2].weight, torch.eye(3, H))


def test_skip_none_keeps_the_plain_stack_and_its_parameters():
    """skip=none adds no parameter and no state_dict key: a core of before the option is the same module."""
    plain = core("none")
    assert not hasattr(plain, "shortcuts") and all(name.startswith("layers.") for name in plain.state_dict())
    assert "skip" not in repr(plain) and "skip='dense'" in repr(core("dense"))


# --- padding, both directions, fast paths, carried state ----------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("skip", SKIPS)
def test_a_padded_batch_equals_each_sequence_run_alone(skip, bidirectional):
    """Outputs at each sequence's valid steps and its final states equal that sequence run alone; padded steps
    output 0 (the padding holds large numbers, which must not leak through a skip connection)."""
    stack = core(skip, bidirectional=bidirectional)
    lengths = torch.tensor(LENGTHS)
    valid = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    inputs = torch.where(valid[..., None], torch.randn(B, T, D), 1e3 * torch.randn(B, T, D))  # (B, T, D)
    outputs, finals = stack(inputs, None, lengths)
    assert torch.equal(outputs[~valid], torch.zeros_like(outputs[~valid]))
    for row, length in enumerate(LENGTHS):
        alone, alone_finals = stack(inputs[row : row + 1, :length])
        assert_close(outputs[row : row + 1, :length], alone, **TOLERANCE)
        picked = map_state(lambda field, row=row: field[row : row + 1], finals)
        for got, expected in zip(flat(picked), flat(alone_finals), strict=True):
            assert_close(got, expected, **TOLERANCE)


def flat(state) -> list[torch.Tensor]:
    """Every tensor of a (nested) state, in order."""
    if isinstance(state, torch.Tensor):
        return [state]
    return [tensor for part in state for tensor in flat(part)]


def outputs_and_gradients(stack: Stacked, inputs: torch.Tensor, lengths, generator: torch.Generator) -> list:
    """Outputs, final states, and the gradients of a random weighted sum of both w.r.t. the inputs and every
    parameter."""
    inputs = inputs.detach().requires_grad_()
    outputs, finals = stack(inputs, None, lengths)
    results = [outputs, *flat(finals)]
    loss = sum((tensor * torch.randn(tensor.shape, generator=generator)).sum() for tensor in results)
    return results + list(torch.autograd.grad(loss, [inputs, *stack.parameters()]))


def on_path(stack: Stacked, implementation: str) -> Stacked:
    for layer in recurrent_layers(stack):
        layer.implementation = implementation
    return stack


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("skip", SKIPS)
def test_the_fused_path_equals_the_reference_for_skip_models(skip, bidirectional, padded):
    """Every layer on torch's fused kernel (ATen on the CPU): outputs, final states and gradients equal the
    reference loop's; the skip connections between them are the same code on both."""
    stack = core(skip, "gru", bidirectional=bidirectional, output_size=None if bidirectional else 3)
    lengths = torch.tensor(LENGTHS) if padded else None
    inputs = torch.randn(B, T, D)
    reference = outputs_and_gradients(on_path(stack, "reference"), inputs, lengths, torch.Generator().manual_seed(1))
    fused = outputs_and_gradients(on_path(stack, "fused"), inputs, lengths, torch.Generator().manual_seed(1))
    for got, expected in zip(fused, reference, strict=True):
        assert_close(got, expected, **TOLERANCE)


@pytest.mark.skipif(compiled.compiler_missing("cpu") is not None, reason=f"{compiled.compiler_missing('cpu')}")
def test_the_compiled_path_equals_the_reference_for_skip_models(monkeypatch):
    """Every layer on the compiled loop (3-step chunks through torch.compile's aot_eager backend, as
    tests/test_compiled.py runs it), dense (its layers' inputs widen), bidirectional and padded: the reference's
    outputs and gradients. (Compiling takes seconds a graph: residual, the same code between layers, is left to
    the fused test.)"""
    monkeypatch.setattr(compiled, "CHUNKS", (3,))
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    stack = core("dense", "mut1", layers=2, bidirectional=True)
    lengths, inputs = torch.tensor(LENGTHS), torch.randn(B, T, D)
    reference = outputs_and_gradients(on_path(stack, "reference"), inputs, lengths, torch.Generator().manual_seed(1))
    fast = outputs_and_gradients(on_path(stack, "compiled"), inputs, lengths, torch.Generator().manual_seed(1))
    for got, expected in zip(fast, reference, strict=True):
        assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize("skip", SKIPS)
def test_the_state_carried_across_two_chunks_equals_one_pass(skip):
    """TBPTT: the first 3 steps, then the last 4 from the carried state, give one pass's outputs and state."""
    stack = core(skip, "lstm")
    inputs = torch.randn(B, T, D)
    whole, whole_finals = stack(inputs)
    first, carried = stack(inputs[:, :3])
    second, finals = stack(inputs[:, 3:], carried)
    assert_close(torch.cat([first, second], dim=1), whole, **TOLERANCE)
    for got, expected in zip(flat(finals), flat(whole_finals), strict=True):
        assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize("locked", [False, True], ids=["dropout", "locked-dropout"])
@pytest.mark.parametrize("skip", SKIPS)
def test_dropout_between_layers_still_drops_in_training_only(skip, locked):
    stack = core(skip, layers=3, dropout=0.5, locked_dropout=locked)
    inputs = torch.randn(B, T, D)
    evaluated = stack.eval()(inputs)[0]
    trained = stack.train()(inputs)[0]
    assert not torch.allclose(trained, evaluated)
    assert_close(stack.eval()(inputs)[0], by_hand(stack, inputs))


# --- one layer -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skip", SKIPS)
def test_one_layer_has_nothing_to_connect_and_runs_as_none(skip, tmp_path, monkeypatch, capsys):
    """One layer: the same parameters and outputs as without skip (padded and bidirectional too); the command
    line takes it, so --dry-run (whose tiny model has one layer) checks a skip run's flags."""
    for bidirectional in (False, True):
        one, plain = (
            core(skip, layers=1, bidirectional=bidirectional),
            core("none", layers=1, bidirectional=bidirectional),
        )
        assert one.state_dict().keys() == plain.state_dict().keys()
        inputs, lengths = torch.randn(B, T, D), torch.tensor(LENGTHS)
        assert torch.equal(one(inputs, None, lengths)[0], plain(inputs, None, lengths)[0])
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run_main(["charlm", "train", "--dry-run", f"--model.skip={skip}"], capsys)
    assert code == 0, stderr
    code, _, stderr = run_main(["charlm", "train", "--dry-run", "--model.skip=highway"], capsys)
    assert code == 2 and "--model.skip" in stderr and "residual" in stderr


# --- every task's core, the CLI, decoding, export, checkpoints, diagnostics ------------------------------


CORE_TASKS = ["charlm", "wordlm", "classify", "tagger", "seq2seq", "caption", "frames", "memory", "seqmnist"]


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("name", CORE_TASKS)
def test_every_task_with_a_recurrent_core_trains_a_step_with_skip(name, skip):
    """The tiny preset with two layers of each skip: the core is connected so, its sizes follow, and a training
    step's loss is finite with a gradient at the bottom layer."""
    task = TASKS[name]
    overrides = {"model.skip": skip, "model.num_layers": 2}
    config = task.build_config("tiny", overrides)
    data = task.load_data(config, tiny=True)
    model = task.build_model(config, data.vocabularies)
    stack = model.encoder if name == "seq2seq" else model.core
    assert isinstance(stack, Stacked) and stack.skip == skip
    train_batches, _ = task.batches(config, data)
    state = model.init_state(config.train.batch_size) if task.streams else None
    loss = task.step_loss(model.train(), train_batches[0], state)[0]
    loss.backward()
    assert torch.isfinite(loss)
    bottom = recurrent_layers(stack)[0].cell
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in bottom.parameters())


def test_a_tiny_charlm_with_three_dense_layers_trains_from_the_command_line(tmp_path, monkeypatch, capsys):
    """--model.skip=dense --model.num_layers=3 on the tiny preset (--dry-run would put its own one layer in
    place): the run trains, and its checkpoint holds the connected core and comes back with it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    flags = ["--model.skip=dense", "--model.num_layers=3", "--train.max_steps=4", "--train.eval_interval=2"]
    command = ["charlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "out", "--quiet", *flags]
    code, stdout, stderr = run_main(command, capsys)
    assert code == 0, stderr
    assert "trained 4 steps" in stdout
    trained = rnnkit.load(tmp_path / "out" / "last.pt")
    E, H_tiny = trained.config.model.embedding_size, trained.config.model.hidden_size
    assert trained.config.model.skip == "dense" and trained.model.core.skip == "dense"
    assert [layer.cell.input_size for layer in trained.model.core.layers] == [E, E + H_tiny, E + 2 * H_tiny]
    code, stdout, stderr = run_main(
        ["diagnose", "out/last.pt", "--data", "corpus.txt", "--seq-len", "20", "--out", "diagnosis"], capsys
    )
    assert code == 0, stderr
    summary = json.loads((tmp_path / "diagnosis" / "summary.json").read_text())
    assert list(summary["gradient_through_time"]) == ["layer0", "layer1", "layer2"]


@pytest.mark.parametrize("skip", SKIPS)
def test_viz_records_each_layer_as_the_core_runs_it(skip):
    """record_activations steps the core's layers one by one through the same connections: the top layer's h
    (plus its input, with residual) is the core's output."""
    charlm = TASKS["charlm"]
    config = charlm.build_config("tiny", {"model.skip": skip, "model.num_layers": 3})
    vocabularies = charlm.load_data(config, tiny=True).vocabularies
    model = charlm.build_model(config, vocabularies).eval()
    text = CORPUS[:60]
    activations = record_activations(model, vocabularies["text"], text)
    with torch.no_grad():
        outputs, _ = model.core(model.embedding(vocabularies["text"].encode(text)[None]))  # (1, N, H)
    top = torch.from_numpy(activations["layer2.h"])  # (N, H)
    if skip == "residual":
        top = top + torch.from_numpy(activations["layer1.h"]) + torch.from_numpy(activations["layer0.h"])
    assert_close(top, outputs[0], **TOLERANCE)


@pytest.mark.parametrize("skip", SKIPS)
def test_the_captioner_decodes_step_by_step_through_the_same_connections(skip):
    """Without attention the caption RNN trains on one call of the core and decodes one step at a time through
    its cells: both follow the skip connections, so the step-by-step log-probabilities equal the forward's."""
    captioner = TASKS["caption"]
    config = captioner.build_config("tiny", {"model.skip": skip, "model.num_layers": 3, "model.attention": "none"})
    data = captioner.load_data(config, tiny=True)
    model = captioner.build_model(config, data.vocabularies).eval()
    batch = captioner.batches(config, data)[1][0]
    with torch.no_grad():
        logits = model(batch.images[:2], batch.captions_in[:2])  # (2, T, V)
        step, state = model.step_function(*model.look(batch.images[:2])), None
        for t in range(batch.captions_in.shape[1]):
            log_probs, state = step(batch.captions_in[:2, t], state, t)
            assert_close(log_probs, logits[:, t].log_softmax(-1), **TOLERANCE)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("charlm", {"model.skip": "dense", "model.num_layers": 3}),
        ("wordlm", {"model.skip": "residual", "model.tie_mode": "last_layer", "model.num_layers": 3}),
    ],
    ids=["charlm-dense", "wordlm-residual-projected"],
)
def test_skip_language_models_export_to_onnx(name, overrides, tmp_path):
    """The skip connections are plain tensor operations between the fused layers: the ONNX graph gives
    PyTorch's logits and states."""
    ort = pytest.importorskip("onnxruntime")
    from rnnkit.export import export_onnx

    task = TASKS[name]
    config = task.build_config("tiny", overrides)
    model = task.build_model(config, task.load_data(config, tiny=True).vocabularies).eval()
    names = export_onnx(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.embedding.num_embeddings, (2, 5), generator=generator)  # (B, T)
    state = [type(s)(*(torch.randn(2, t.shape[-1], generator=generator) for t in s)) for s in model.init_state(1)]
    outputs = session.run(None, {"ids": ids.numpy()} | {n: t.numpy() for n, t in zip(names, flat(state))})
    with torch.no_grad():
        logits, new_state = model(ids, state)  # (B, T, V)
    for got, expected in zip(outputs, [logits, *flat(new_state)], strict=True):
        assert_close(torch.from_numpy(got), expected, **TOLERANCE)


@pytest.mark.parametrize("skip", SKIPS)
def test_a_translator_with_a_skip_encoder_exports_its_encoder_to_onnx(skip, tmp_path):
    """The encoder graph gives the memory and the decoder's first state model.encode gives."""
    ort = pytest.importorskip("onnxruntime")
    from rnnkit.export import export_seq2seq

    seq2seq = TASKS["seq2seq"]
    config = seq2seq.build_config("tiny", {"model.skip": skip, "model.num_layers": 3})
    data = seq2seq.load_data(config, tiny=True)
    model = seq2seq.build_model(config, data.vocabularies).eval()
    encoder_path, _ = export_seq2seq(model, tmp_path / "model.onnx")
    source = torch.randint(4, len(data.vocabularies["source"]), (2, 6), generator=torch.Generator().manual_seed(1))
    got = ort.InferenceSession(str(encoder_path)).run(None, {"source": source.numpy()})
    with torch.no_grad():
        memory, state = model.encode(source, None)
    expected = [memory.outputs, memory.keys, state.feed, *flat(state.layers)]
    for got_tensor, expected_tensor in zip(got, expected, strict=True):
        assert_close(torch.from_numpy(got_tensor), expected_tensor, **TOLERANCE)


def test_a_checkpoint_from_before_the_option_loads_as_none_with_the_same_outputs():
    """A saved config without model.skip takes skip=none and the saved weights give the same logits; a skip
    model's checkpoint comes back with its connections."""
    charlm = TASKS["charlm"]
    for overrides in ({"model.num_layers": 2}, {"model.num_layers": 2, "model.skip": "residual"}):
        config = charlm.build_config("tiny", overrides)
        vocabularies = charlm.load_data(config, tiny=True).vocabularies
        model = charlm.build_model(config, vocabularies).eval()
        saved = dataclasses.asdict(config)
        if config.model.skip == "none":
            del saved["model"]["skip"]  # what a checkpoint of before the option holds
        checkpoint = {
            "task": "charlm",
            "model": model.state_dict(),
            "config": saved,
            "vocabularies": {name: vocab.to_dict() for name, vocab in vocabularies.items()},
            "step": 1,
        }
        loaded, _, loaded_config, _ = from_checkpoint(checkpoint)
        assert loaded_config.model.skip == config.model.skip
        ids = torch.randint(0, len(vocabularies["text"]), (2, 9))
        with torch.no_grad():
            assert torch.equal(loaded.eval()(ids)[0], model(ids)[0])
    assert from_dict(type(config), saved).model.skip == "residual"


def nudged_gradients(stack: Stacked, inputs: torch.Tensor, loss_of_last) -> list[torch.Tensor]:
    """∂L/∂h_t of every layer through the core's own forward: each cell's h_t gets a zero δ_t added, and
    ∂L/∂δ_t is ∂L/∂h_t (the reference for diagnostics.gradient_through_time)."""
    layers = recurrent_layers(stack)
    deltas = [torch.zeros(B, T, H, requires_grad=True) for _ in layers]
    originals = [layer.cell for layer in layers]
    for layer, delta in zip(layers, deltas):
        layer.cell = Nudged(layer.cell, delta)
    try:
        outputs, _ = stack(inputs)
    finally:
        for layer, cell in zip(layers, originals):
            layer.cell = cell
    return list(torch.autograd.grad(loss_of_last(outputs[:, -1]), deltas))


class Nudged(Cell):
    """A cell whose h_t is h_t + δ_t, counting its steps."""

    def __init__(self, cell: Cell, delta: torch.Tensor):
        super().__init__(cell.input_size, cell.hidden_size)
        self.inner, self.delta, self.t = cell, delta, 0
        self.State = cell.State

    def init_state(self, batch_size: int):
        return self.inner.init_state(batch_size)

    def forward(self, x, state):
        new = self.inner(x, state)
        self.t += 1
        return new._replace(h=new.h + self.delta[:, self.t - 1])


@pytest.mark.parametrize("skip", SKIPS)
def test_diagnose_measures_the_gradient_through_the_skip_connections(skip):
    """gradient_through_time on a skip core gives each layer's ∂L/∂h_t as the core's own forward has it."""
    stack = core(skip, "rnn", layers=3).eval()
    inputs = torch.randn(B, T, D)
    head = torch.randn(H)
    loss_of_last = lambda h: (h * head).sum()  # noqa: E731
    measured = diagnostics.gradient_through_time(stack, inputs, loss_of_last)
    expected = nudged_gradients(stack, inputs, loss_of_last)
    assert len(measured) == 3
    for got, want in zip(measured, expected, strict=True):
        assert_close(got, want, **TOLERANCE)
    hidden = diagnostics.hidden_norms(stack, inputs)  # (L, T)
    assert hidden.shape == (3, T) and torch.isfinite(hidden).all()

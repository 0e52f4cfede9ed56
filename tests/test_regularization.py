"""Tests for rnnkit/regularization.py: AWD-LSTM's regularisers keep their promises — one mask per
sequence across time, identity in eval mode, the expected keep rate, whole words dropped, and weight
drop that leaves the raw parameter untouched and trainable while every path runs the masked weight."""

import pytest
import torch
from conftest import use_reference
from torch.testing import assert_close

from rnnkit import LSTMCell, Recurrent, RnnkitError
from rnnkit.regularization import (
    LockedDropout,
    WeightDrop,
    activation_regularization,
    embedding_dropout,
    locked_dropout,
    temporal_activation_regularization,
    unknown_dropout,
    word_dropout,
)


def test_locked_dropout_uses_one_mask_for_every_step():
    """On constant inputs every step of a row comes out the same: the mask is drawn once per sequence."""
    x = torch.ones(8, 20, 32)  # (B, T, D)
    y = locked_dropout(x, 0.5, training=True)
    assert torch.equal(y, y[:, :1].expand_as(y))  # constant over time
    assert not torch.equal(y[0], y[1])  # but not over the batch: one mask per sequence
    assert set(y.unique().tolist()) <= {0.0, 2.0}  # kept values scaled by 1 / (1 − p)


def test_locked_dropout_keeps_the_expected_fraction_and_the_mean():
    x = torch.ones(400, 3, 500)
    y = LockedDropout(0.3).train()(x)
    assert (y[:, 0] != 0).float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)  # E[y] = x


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_locked_dropout_is_the_identity_in_eval_mode(p):
    x = torch.randn(4, 6, 5)
    assert torch.equal(LockedDropout(p).eval()(x), x)
    assert torch.equal(locked_dropout(x, 0.0, training=True), x)


def test_embedding_dropout_drops_whole_words():
    """Every occurrence of a word in the batch is dropped or kept together, and kept rows are scaled."""
    embedding = torch.nn.Embedding(50, 8)
    ids = torch.randint(0, 50, (16, 30))  # (B, T): each word occurs many times
    out = embedding_dropout(embedding, ids, 0.5, training=True)  # (B, T, E)
    for word in ids.unique().tolist():
        rows = out[ids == word]  # (occurrences, E)
        assert torch.equal(rows, rows[:1].expand_as(rows))
        assert torch.equal(rows[0], torch.zeros(8)) or torch.allclose(rows[0], 2.0 * embedding.weight[word])
    dropped = sum(bool((out[ids == w] == 0).all()) for w in ids.unique().tolist())
    assert 0 < dropped < len(ids.unique())


def test_embedding_dropout_keep_rate_and_eval_mode():
    embedding = torch.nn.Embedding(20000, 4)
    ids = torch.arange(20000)[None]
    kept = (embedding_dropout(embedding, ids, 0.1, training=True)[0] != 0).any(-1).float().mean().item()
    assert kept == pytest.approx(0.9, abs=0.01)
    assert torch.equal(embedding_dropout(embedding, ids, 0.1, training=False), embedding(ids))


def test_word_dropout_zeroes_whole_steps_at_the_rate_asked_and_only_in_training():
    """Each (row, step) vector is kept as it is or zeroed whole, about p of them zeroed; eval mode and p = 0 pass x."""
    x = torch.randn(200, 50, 6) + 10.0  # (B, T, E): no zero entries of its own
    y = word_dropout(x, 0.3, training=True)
    dropped = (y == 0).all(-1)  # (B, T)
    assert torch.equal(y[~dropped], x[~dropped])  # kept steps unscaled
    assert ((y == 0).any(-1) == dropped).all()  # nothing partly dropped
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert torch.equal(word_dropout(x, 0.3, training=False), x) and torch.equal(word_dropout(x, 0.0, training=True), x)


def test_unknown_dropout_reads_about_p_of_the_ids_as_unk_in_training_only():
    ids = torch.randint(2, 100, (200, 50))  # (B, T): no id is <unk> (1) of its own
    read = unknown_dropout(ids, 0.2, 1, training=True)
    changed = read != ids  # (B, T)
    assert (read[changed] == 1).all() and changed.float().mean().item() == pytest.approx(0.2, abs=0.02)
    assert torch.equal(unknown_dropout(ids, 0.2, 1, training=False), ids) and torch.equal(
        unknown_dropout(ids, 0.0, 1, training=True), ids
    )


def lstm_layer(implementation: str, seed: int = 0) -> Recurrent:
    cell = LSTMCell(6, 8)
    cell.reset_parameters(torch.Generator().manual_seed(seed))
    return Recurrent(cell, implementation)


def test_weight_drop_leaves_the_raw_parameter_untouched_and_trainable():
    """After a training forward and backward, U is the same registered Parameter with the same values,
    and it has a gradient (through the mask); the layer's state_dict names it where it always was."""
    layer = lstm_layer("reference")
    dropped = WeightDrop(layer, 0.5).train()
    raw = dropped.cell.U
    before = raw.detach().clone()
    outputs, _ = dropped(torch.randn(3, 5, 6))
    outputs.sum().backward()
    assert dropped.cell.U is raw and isinstance(raw, torch.nn.Parameter) and raw.requires_grad
    assert torch.equal(raw.detach(), before)
    assert raw.grad is not None and raw.grad.abs().sum() > 0
    assert list(dropped.state_dict()) == list(layer.state_dict())  # the keys of a plain layer: cell.W, cell.U, ...
    assert sum(1 for name, _ in dropped.named_parameters() if name.endswith(".U")) == 1  # registered once


def test_weight_drop_masks_u_once_per_forward():
    """The output equals a plain layer run on U ⊙ mask / (1 − p), with the mask drawn as weight drop draws it,
    and the masked U has zeros (about p of them)."""
    dropped = WeightDrop(lstm_layer("reference"), 0.5).train()
    x = torch.randn(3, 5, 6)
    torch.manual_seed(7)
    outputs, _ = dropped(x)
    torch.manual_seed(7)
    masked = torch.nn.functional.dropout(dropped.cell.U, 0.5, True)  # (4H, H)
    assert 0.4 < (masked == 0).float().mean().item() < 0.6
    plain = lstm_layer("reference")
    with torch.no_grad():
        plain.cell.U.copy_(masked)
    assert_close(outputs, plain(x)[0])


def test_weight_drop_fused_path_equals_the_reference_under_the_same_mask():
    """torch's fused LSTM kernel runs on the masked weight: same outputs and gradient of U as the reference loop."""
    x = torch.randn(3, 7, 6)
    results = []
    for implementation in ("fused", "reference"):
        dropped = WeightDrop(lstm_layer(implementation), 0.4).train()
        torch.manual_seed(3)
        outputs, final = dropped(x)
        (outputs.sum() + final.c.sum()).backward()
        results.append((outputs, dropped.cell.U.grad))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])


def test_weight_drop_is_the_identity_in_eval_mode():
    dropped, plain = WeightDrop(lstm_layer("auto"), 0.5).eval(), use_reference(lstm_layer("auto"))
    x = torch.randn(2, 4, 6)
    assert_close(dropped(x)[0], plain(x)[0])


def test_activation_regularizers_match_their_formulas():
    h = torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])  # (B=1, T=2, H=2)
    assert activation_regularization(h, 2.0).item() == pytest.approx(2.0 * (1 + 4 + 9 + 25) / 4)
    assert temporal_activation_regularization(h, 3.0).item() == pytest.approx(3.0 * ((3 - 1) ** 2 + (5 - 2) ** 2) / 2)
    assert temporal_activation_regularization(h[:, :1], 3.0).item() == 0.0


class ConstantLayer(torch.nn.Module):
    """A stand-in layer whose outputs are all ones, so what the next layer receives is the dropout mask itself."""

    output_size = 6

    def init_state(self, batch_size):
        return None

    def forward(self, inputs, state=None, lengths=None, return_states=False):
        return torch.ones(inputs.shape[0], inputs.shape[1], 6), None


class RecordingLayer(ConstantLayer):
    def forward(self, inputs, state=None, lengths=None, return_states=False):
        self.seen = inputs
        return inputs, None


@pytest.mark.parametrize("locked", [True, False])
def test_stacked_locked_dropout_reuses_one_mask_between_layers(locked):
    """Stacked(locked=True) drops the same units of a sequence at every step between layers; without it, each
    step its own."""
    from rnnkit.recurrent import Stacked

    recorder = RecordingLayer()
    Stacked([ConstantLayer(), recorder], dropout=0.5, locked=locked).train()(torch.zeros(4, 30, 3))
    seen = recorder.seen  # (B, T, 6): the mask, scaled
    constant_over_time = torch.equal(seen, seen[:, :1].expand_as(seen))
    assert constant_over_time == locked


def test_weight_drop_on_a_mut_cell_drops_its_recurrent_weights():
    """MUT1-3 have no U: weight drop masks their W_h* (the weights that read h_{t-1}), and nothing else."""
    from rnnkit import MUT2Cell

    cell = MUT2Cell(6, 8)
    dropped = WeightDrop(Recurrent(cell, "reference"), 0.5).train()
    assert dropped.names == ("W_hz", "W_hr", "W_hh")
    outputs, _ = dropped(torch.randn(2, 4, 6))
    outputs.sum().backward()
    assert all(getattr(cell, name).grad is not None for name in dropped.names)


def test_weight_drop_needs_a_recurrent_weight():
    cell = LSTMCell(3, 4)
    del cell.U
    with pytest.raises(RnnkitError, match="has no recurrent weight"):
        WeightDrop(Recurrent(cell, "reference"), 0.5)


def test_weight_drop_on_the_compiled_path_compiles_once(monkeypatch):
    """A new mask every call does not make torch.compile recompile: the masked U enters the graph as an input."""
    from rnnkit import GRUCell
    from rnnkit.kernels import compiled

    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    monkeypatch.setattr(compiled, "CHUNKS", (4,))
    torch._dynamo.utils.counters.clear()
    dropped = WeightDrop(Recurrent(GRUCell(3, 5, reset_after=False), "compiled"), 0.3).train()
    graphs = []
    for _ in range(4):
        outputs, _ = dropped(torch.randn(2, 8, 3))
        outputs.sum().backward()
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1 and graphs == [graphs[0]] * 4

"""Tests for rnnkit/export.py: both language models exported to ONNX give PyTorch's logits and states in
onnxruntime, for a prompt and for single steps, at two batch sizes."""

import numpy as np
import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.export import export_onnx
from rnnkit.recurrent import Recurrent
from rnnkit.tasks import TASKS

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize(
    "task, implementation",
    [("charlm", "auto"), ("wordlm", "auto"), ("charlm", "reference")],
    ids=["charlm", "wordlm", "trained-on-the-reference-loop"],
)
def test_onnx_round_trip_gives_the_same_logits_and_state(task, implementation, tmp_path):
    """The graph equals PyTorch for other T and B than it was traced with, even for a model that ran the
    reference loop (export puts every layer on the fused kernel)."""
    model, vocabularies, _ = TASKS[task].tiny_model()
    for module in model.modules():
        if isinstance(module, Recurrent):
            module.implementation = implementation
    model.eval()
    names = export_onnx(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    generator = torch.Generator().manual_seed(0)
    for batch, steps in ((1, 1), (3, 7)):
        ids = torch.randint(0, len(vocabularies["text"]), (batch, steps), generator=generator)  # (B, T)
        state = [
            type(layer)(*(torch.randn(batch, t.shape[-1], generator=generator) for t in layer))
            for layer in model.init_state(1)
        ]
        feeds = {"ids": ids.numpy()} | {
            name: t.numpy() for name, t in zip(names, (t for layer in state for t in layer))
        }
        outputs = session.run(None, feeds)
        with torch.no_grad():
            logits, new_state = model(ids, state)  # (B, T, V)
        np.testing.assert_allclose(outputs[0], logits.numpy(), atol=1e-5, rtol=1e-4)
        for got, expected in zip(outputs[1:], (t for layer in new_state for t in layer), strict=True):
            np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=1e-4)


def test_a_cell_without_a_fused_kernel_is_refused(tmp_path):
    charlm = TASKS["charlm"]
    config = charlm.build_config("tiny", {"model.cell": "mut1"})
    model = charlm.build_model(config, charlm.tiny_model()[1])
    with pytest.raises(RnnkitError, match="cannot export to ONNX: MUT1Cell has no fused torch kernel"):
        export_onnx(model, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize(
    "overrides",
    [{}, {"model.cell": "gru", "model.decoder_layers": 2, "model.attention": "general"}],
    ids=["lstm-additive", "gru-2-layer-decoder-general"],
)
def test_seq2seq_encoder_and_decoder_step_decode_greedily_in_onnxruntime(tmp_path, overrides):
    """A greedy loop over the two graphs in onnxruntime writes what model.translate writes."""
    from rnnkit.export import export_seq2seq

    seq2seq = TASKS["seq2seq"]
    config = seq2seq.build_config("tiny", overrides)
    data = seq2seq.load_data(config, tiny=True)
    model = seq2seq.build_model(config, data.vocabularies).eval()
    encoder_path, decoder_path = export_seq2seq(model, tmp_path / "model.onnx")
    encoder, decoder = ort.InferenceSession(str(encoder_path)), ort.InferenceSession(str(decoder_path))
    source = torch.randint(
        4, len(data.vocabularies["source"]), (3, 6), generator=torch.Generator().manual_seed(1)
    )  # (B, S)
    memory, keys, feed, *state = encoder.run(None, {"source": source.numpy()})
    previous, written = np.full(3, model.start_id), []
    names = [i.name for i in decoder.get_inputs()]
    for _ in range(6 * 3 // 2 + 10):  # translate's limit: 1.5 · |x| + 10
        log_probs, weights, feed, *state = decoder.run(
            None, dict(zip(names, [previous, memory, keys, np.ones((3, 6), bool), feed, *state]))
        )
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        previous = log_probs.argmax(-1)
        written.append(previous)
    expected = model.translate(source, torch.full((3,), 6))
    for b, ids in enumerate(expected):
        got = [int(step[b]) for step in written]
        assert got[: len(ids)] == ids and (len(ids) == len(got) or got[len(ids)] == model.end_id)

"""Exporting a language model (charlm, wordlm) or a translation model (seq2seq) to ONNX, for serving it
without rnnkit or Python.

The graph is one call of the model with its state made explicit, so a runtime can feed it a prompt
and then one token at a time, as rnnkit's sampler does:

    inputs   ids (B, T) int64,  h0, c0, h1, c1, ...  each (B, H): layer k's state fields, zeros to start
    outputs  logits (B, T, V),  h0_out, c0_out, ...  the state to feed back in

B and T are dynamic. A translation model becomes two graphs, the encoder and one decoder step, for a
runtime to loop over as rnnkit's greedy and beam search do (rnnkit/decoding.py):

    FILE-encoder.onnx  source (B, S) int64 (one sentence, or sentences of one length: no padding)
                       -> memory (B, S, H_e), keys (B, S, A), feed (B, H_d), h0, c0, ... each (B, H_d)
    FILE-decoder.onnx  previous (B,) int64, memory, keys, mask (B, S) bool, feed, h0, c0, ...
                       -> log_probs (B, V), weights (B, S), feed_out, h0_out, c0_out, ...

The recurrence is exported through torch's fused kernel (an ONNX LSTM/GRU/RNN op), whatever
implementation the model trained with, so a cell without one (MUT1-3, the reset-before GRU) is refused here
with the reason.
"""

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write
from rnnkit.kernels import aten
from rnnkit.recurrent import Recurrent


class ExplicitState(nn.Module):
    """model(ids, state) with the state as flat tensors in and out: what an ONNX graph can carry."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.template = model.init_state(1)  # one NamedTuple per layer

    def state_names(self) -> list[str]:
        return [f"{field}{k}" for k, layer in enumerate(self.template) for field in layer._fields]

    def forward(self, ids: Tensor, *flat: Tensor) -> tuple[Tensor, ...]:
        fields = iter(flat)
        state = [type(layer)(*(next(fields) for _ in layer._fields)) for layer in self.template]
        logits, new_state = self.model(ids, state)  # (B, T, V), one state per layer
        return (logits, *(tensor for layer in new_state for tensor in layer))


def on_fused_kernels(model: nn.Module) -> nn.Module:
    """A copy of `model` whose every layer runs torch's fused kernel (what becomes an ONNX LSTM/GRU/RNN op),
    whatever implementation it trained with; a cell without one is refused with the reason."""
    model = copy.deepcopy(model)
    for module in model.modules():
        layer = getattr(module, "layer", module)  # a WeightDrop's layer is not a child module
        if isinstance(layer, Recurrent):
            reason = aten.unsupported_reason(layer.cell)
            if reason is not None:
                raise RnnkitError(
                    f"cannot export to ONNX: {reason} (export needs an LSTM, a reset-after GRU or a tanh/relu RNN)"
                )
            layer.implementation = "fused"
    return model


def export_onnx(model: nn.Module, path: str | Path) -> list[str]:
    """Write `model` as an ONNX graph to `path` (atomically); returns the state's input names."""
    wrapper = ExplicitState(on_fused_kernels(model)).eval()
    names = wrapper.state_names()
    batch = 2
    example = (
        torch.zeros(batch, 3, dtype=torch.long),
        *(torch.zeros(batch, t.shape[-1]) for layer in wrapper.template for t in layer),
    )
    axes = (
        {"ids": {0: "B", 1: "T"}, "logits": {0: "B", 1: "T"}}
        | {name: {0: "B"} for name in names}
        | {f"{n}_out": {0: "B"} for n in names}
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch's exporter warns about its own deprecations
        torch.onnx.export(
            wrapper,
            example,
            buffer,
            input_names=["ids", *names],
            output_names=["logits", *(f"{n}_out" for n in names)],
            dynamic_axes=axes,
            dynamo=False,
        )
    atomic_write(path, lambda file: file.write(buffer.getvalue()))
    return names


class EncoderGraph(nn.Module):
    """The seq2seq encoder with its outputs flat: memory, keys, the decoder's first state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, source: Tensor) -> tuple[Tensor, ...]:
        memory, state = self.model.encode(source, None)
        return (memory.outputs, memory.keys, state.feed, *(tensor for layer in state.layers for tensor in layer))


class DecoderStepGraph(nn.Module):
    """One seq2seq decoder step with its state flat."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self, previous: Tensor, outputs: Tensor, keys: Tensor, mask: Tensor, feed: Tensor, *flat: Tensor
    ) -> tuple[Tensor, ...]:
        from rnnkit.models.attention import DecoderState, Memory

        fields = iter(flat)
        layers = [type(layer)(*(next(fields) for _ in layer._fields)) for layer in self.model.template]
        logits, state, weights = self.model.step(previous, DecoderState(layers, feed), Memory(outputs, keys, mask))
        return (logits.log_softmax(-1), weights, state.feed, *(tensor for layer in state.layers for tensor in layer))


def onnx_bytes(module: nn.Module, example: tuple, inputs: list[str], outputs: list[str], axes: dict) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch's exporter warns about its own deprecations
        torch.onnx.export(
            module, example, buffer, input_names=inputs, output_names=outputs, dynamic_axes=axes, dynamo=False
        )
    return buffer.getvalue()


def seq2seq_paths(path: str | Path) -> tuple[Path, Path]:
    """FILE.onnx -> (FILE-encoder.onnx, FILE-decoder.onnx)."""
    path = Path(path)
    stem = path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.name
    return path.with_name(f"{stem}-encoder.onnx"), path.with_name(f"{stem}-decoder.onnx")


def export_seq2seq(model: nn.Module, path: str | Path) -> tuple[Path, Path]:
    """A translation model's encoder and decoder step as two ONNX graphs beside `path` (atomically);
    returns their paths."""
    model = on_fused_kernels(model).eval()
    if model.attention is None:
        raise RnnkitError(
            "cannot export to ONNX: the decoder step graph reads attention "
            "(train with --model.attention other than none)"
        )
    names = [f"{field}{k}" for k, layer in enumerate(model.template) for field in layer._fields]
    source = torch.full((2, 3), model.start_id + 1, dtype=torch.long)  # (B, S)
    encoder = onnx_bytes(
        EncoderGraph(model),
        (source,),
        ["source"],
        ["memory", "keys", "feed", *names],
        {"source": {0: "B", 1: "S"}, "memory": {0: "B", 1: "S"}, "keys": {0: "B", 1: "S"}, "feed": {0: "B"}}
        | {name: {0: "B"} for name in names},
    )
    with torch.no_grad():
        memory, state = model.encode(source, None)
    flat = [tensor for layer in state.layers for tensor in layer]
    example = (
        torch.full((2,), model.start_id, dtype=torch.long),
        memory.outputs,
        memory.keys,
        memory.mask,
        state.feed,
        *flat,
    )
    step_axes = {
        "previous": {0: "B"},
        "memory": {0: "B", 1: "S"},
        "keys": {0: "B", 1: "S"},
        "mask": {0: "B", 1: "S"},
        "feed": {0: "B"},
        "log_probs": {0: "B"},
        "weights": {0: "B", 1: "S"},
        "feed_out": {0: "B"},
    }
    step_axes |= {name: {0: "B"} for name in names} | {f"{name}_out": {0: "B"} for name in names}
    decoder = onnx_bytes(
        DecoderStepGraph(model),
        example,
        ["previous", "memory", "keys", "mask", "feed", *names],
        ["log_probs", "weights", "feed_out", *(f"{n}_out" for n in names)],
        step_axes,
    )
    paths = seq2seq_paths(path)
    for target, graph in zip(paths, (encoder, decoder)):
        atomic_write(target, lambda file, data=graph: file.write(data))
    return paths

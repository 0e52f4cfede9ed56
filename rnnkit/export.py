"""Exporting a language model (charlm, wordlm) to ONNX, for serving it without rnnkit or Python.

The graph is one call of the model with its state made explicit, so a runtime can feed it a prompt
and then one token at a time, as rnnkit's sampler does:

    inputs   ids (B, T) int64,  h0, c0, h1, c1, ...  each (B, H): layer k's state fields, zeros to start
    outputs  logits (B, T, V),  h0_out, c0_out, ...  the state to feed back in

B and T are dynamic. The recurrence is exported through torch's fused kernel (an ONNX LSTM/GRU/RNN op), whatever
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
                raise RnnkitError(f"cannot export to ONNX: {reason} (export needs an LSTM, a reset-after GRU or a tanh/relu RNN)")
            layer.implementation = "fused"
    return model


def export_onnx(model: nn.Module, path: str | Path) -> list[str]:
    """Write `model` as an ONNX graph to `path` (atomically); returns the state's input names."""
    wrapper = ExplicitState(on_fused_kernels(model)).eval()
    names = wrapper.state_names()
    batch = 2
    example = (torch.zeros(batch, 3, dtype=torch.long), *(torch.zeros(batch, t.shape[-1]) for layer in wrapper.template for t in layer))
    axes = {"ids": {0: "B", 1: "T"}, "logits": {0: "B", 1: "T"}} | {name: {0: "B"} for name in names} | {f"{n}_out": {0: "B"} for n in names}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch's exporter warns about its own deprecations
        torch.onnx.export(wrapper, example, buffer, input_names=["ids", *names], output_names=["logits", *(f"{n}_out" for n in names)],
                          dynamic_axes=axes, dynamo=False)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))
    return names

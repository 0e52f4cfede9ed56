"""The recurrent core every task model shares, and its config, built from a CoreConfig.

    cell name --make_cell--> Cell --Recurrent--> one layer (--WeightDrop-->) --Stacked (skip)--> the core

A task's model config extends CoreConfig with what sits around the core (embeddings, decoders, heads).
`skip` connects the core's layers besides each reading the one below (rnnkit.recurrent.Stacked): residual
adds each layer's input to its output from the second layer on, dense feeds each layer the core's input and
every earlier layer's output side by side; the core's output is the last layer's either way.
"""

from dataclasses import dataclass, replace

import torch
from torch import nn

from rnnkit.cells import ACTIVATIONS, CELLS, Cell, GRUCell, LSTMCell, RNNCell
from rnnkit.config import option
from rnnkit.errors import RnnkitError
from rnnkit.kernels.dispatch import IMPLEMENTATIONS
from rnnkit.recurrent import SKIPS, Recurrent, Shortcut, Stacked, stack_layers
from rnnkit.regularization import WeightDrop


@dataclass(frozen=True)
class CoreConfig:
    cell: str = option("lstm", "recurrent cell: " + ", ".join(CELLS), choices=tuple(CELLS))
    nonlinearity: str = option("tanh", "g of the vanilla RNN: " + ", ".join(ACTIVATIONS), choices=tuple(ACTIVATIONS))
    reset_after: bool = option(
        True, "GRU form: reset-after (cuDNN/torch, fused kernel) or reset-before (Cho et al., the notes)"
    )
    forget_bias: float | None = option(
        None, "LSTM forget-gate bias at initialisation (None: torch's uniform init)", at_least=-1e4, at_most=1e4
    )
    chrono: int = option(
        0,
        "LSTM/GRU: chrono initialisation of the gate biases for gaps up to this many steps "
        "(Tallec & Ollivier 2018; 0: off)",
        at_least=0,
        at_most=10**9,
    )
    hidden_size: int = option(256, "hidden units per layer", at_least=1)
    num_layers: int = option(2, "stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(
        0.1,
        "dropout between layers (the char LM also drops its embeddings and the decoder's input by this)",
        at_least=0,
        below=1,
    )
    locked_dropout: bool = option(
        False,
        "between layers, one dropout mask per sequence reused at every step (variational dropout) "
        "instead of a new mask per step (the word LM also locks its input and output dropout)",
    )
    weight_drop: float = option(
        0.0,
        "DropConnect on the recurrent weights U, one mask per forward (AWD-LSTM's weight drop)",
        at_least=0,
        below=1,
    )
    implementation: str = option(
        "auto",
        "the recurrence's path: auto (the fastest that can run, rnnkit/kernels/dispatch.py says which), "
        "triton, fused, compiled or reference",
        choices=IMPLEMENTATIONS,
    )
    skip: str = option(
        "none",
        "connections between the core's stacked layers (seq2seq: the encoder's) besides each reading the one "
        "below: none; residual (from the second layer on, a layer's output plus its input, through a learned "
        "projection where the widths differ); dense (each layer reads the core's input and every earlier "
        "layer's output side by side); the core's output is the last layer's either way, and one layer has "
        "nothing to connect (it runs as none)",
        choices=SKIPS,
    )


def make_cell(config: CoreConfig, input_size: int):
    """One cell of the configured kind; the options that belong to other kinds are ignored."""
    if config.cell not in CELLS:
        raise RnnkitError(f"unknown cell {config.cell!r}; choose one of {', '.join(CELLS)}")
    if config.cell == "rnn":
        return RNNCell(input_size, config.hidden_size, nonlinearity=config.nonlinearity)
    if config.cell == "lstm":
        return LSTMCell(input_size, config.hidden_size, forget_bias=config.forget_bias, chrono=config.chrono)
    if config.cell == "gru":
        return GRUCell(input_size, config.hidden_size, reset_after=config.reset_after, chrono=config.chrono)
    return CELLS[config.cell](input_size, config.hidden_size)


def make_layer(config: CoreConfig, input_size: int) -> Recurrent | WeightDrop:
    layer = Recurrent(make_cell(config, input_size), config.implementation)
    return WeightDrop(layer, config.weight_drop) if config.weight_drop else layer


def make_core(
    config: CoreConfig, input_size: int, bidirectional: bool = False, output_size: int | None = None
) -> Stacked:
    """num_layers layers of the configured cell, dropout between them, connected as config.skip says.
    `output_size` gives the last layer another width (AWD-LSTM's last layer, sized to the embedding so the
    decoder can share its weights; with skip="residual" a learned projection then meets it)."""
    if config.num_layers < 1 or config.hidden_size < 1:
        raise RnnkitError(
            f"num_layers and hidden_size must be positive, got {config.num_layers} and {config.hidden_size}"
        )
    last = config.num_layers - 1

    def layer(index: int, layer_input: int) -> Recurrent | WeightDrop:
        sized = replace(config, hidden_size=output_size) if output_size is not None and index == last else config
        return make_layer(sized, layer_input)

    return stack_layers(
        layer, input_size, config.num_layers, bidirectional, config.dropout, config.locked_dropout, config.skip
    )


def reset_weights(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """Every weight of `model` from `generator` alone, the way rnnkit's models start: convolutions He-normal (the
    signal keeps its size through the ReLUs), linear maps U(±1/√fan_in), biases 0, each cell its own way, a
    residual core's shortcuts the identity again."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = module.in_features**-0.5
            nn.init.uniform_(module.weight, -bound, bound, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, Cell):
            module.reset_parameters(generator)
        elif isinstance(module, Shortcut):
            module.reset_parameters()

"""The recurrent core every task model shares, built from a ModelConfig.

    cell name --make_cell--> Cell --Recurrent--> one layer --Stacked--> the core
"""

from rnnkit.cells import CELLS, GRUCell, LSTMCell, RNNCell
from rnnkit.config import ModelConfig
from rnnkit.errors import RnnkitError
from rnnkit.recurrent import Bidirectional, Recurrent, Stacked


def make_cell(config: ModelConfig, input_size: int):
    """One cell of the configured kind; the options that belong to other kinds are ignored."""
    if config.cell not in CELLS:
        raise RnnkitError(f"unknown cell {config.cell!r}; choose one of {', '.join(CELLS)}")
    if config.cell == "rnn":
        return RNNCell(input_size, config.hidden_size, nonlinearity=config.nonlinearity)
    if config.cell == "lstm":
        return LSTMCell(input_size, config.hidden_size, forget_bias=config.forget_bias)
    if config.cell == "gru":
        return GRUCell(input_size, config.hidden_size, reset_after=config.reset_after)
    return CELLS[config.cell](input_size, config.hidden_size)


def make_core(config: ModelConfig, input_size: int, bidirectional: bool = False) -> Stacked:
    """num_layers layers of the configured cell, dropout between them."""
    if config.num_layers < 1 or config.hidden_size < 1:
        raise RnnkitError(f"num_layers and hidden_size must be positive, got {config.num_layers} and {config.hidden_size}")
    layers = []
    for index in range(config.num_layers):
        layer_input = input_size if index == 0 else config.hidden_size * (2 if bidirectional else 1)
        if bidirectional:
            layers.append(Bidirectional(Recurrent(make_cell(config, layer_input), config.implementation), Recurrent(make_cell(config, layer_input), config.implementation)))
        else:
            layers.append(Recurrent(make_cell(config, layer_input), config.implementation))
    return Stacked(layers, config.dropout)

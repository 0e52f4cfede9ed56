"""rnnkit: recurrent neural networks written from their equations.

The public API; everything here is re-exported from the module that defines it.
"""

from rnnkit.cells import Cell, GRUCell, LSTMCell, LSTMState, MUT1Cell, MUT2Cell, MUT3Cell, RNNCell, RNNState
from rnnkit.errors import RnnkitError
from rnnkit.layers import GRU, LSTM, RNN
from rnnkit.recurrent import Bidirectional, Recurrent, Stacked, detach, reverse_padded

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Cell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "MUT1Cell",
    "MUT2Cell",
    "MUT3Cell",
    "RNNCell",
    "RNNState",
    "Recurrent",
    "RnnkitError",
    "Stacked",
    "detach",
    "reverse_padded",
]

"""rnnkit: recurrent neural networks written from their equations.

The public API; everything here is re-exported from the module that defines it.

    cells and layers      RNNCell, LSTMCell, GRUCell, MUT1-3Cell, Recurrent, Stacked, Bidirectional, RNN, LSTM, GRU
    regularisers          LockedDropout, WeightDrop, embedding_dropout, word_dropout, unknown_dropout, AR, TAR
    tasks                 TASKS (name -> Task), Task (the contract), train(model, batches, config, loss)
    trained models        load(checkpoint, run directory or bundle) -> Trained, with the task's methods
                          (sample, tag, classify, translate, ...) returning results as data
    errors                RnnkitError, ArgumentError (a bad argument, named), ArgumentTypeError
    summarize(model)      parameters per module and in total, as Keras's model.summary() prints them
"""

from rnnkit.cells import (
    Cell,
    ConditionedRNNCell,
    GRUCell,
    LSTMCell,
    LSTMState,
    MUT1Cell,
    MUT2Cell,
    MUT3Cell,
    RNNCell,
    RNNState,
)
from rnnkit.config import TrainConfig
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.layers import GRU, LSTM, RNN
from rnnkit.recurrent import Bidirectional, Recurrent, Stacked, detach, reverse_padded
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
from rnnkit.summary import summarize
from rnnkit.tasks import TASKS
from rnnkit.tasks.base import Task
from rnnkit.train import train
from rnnkit.trained import Trained, load

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "Task",
    "TASKS",
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Cell",
    "ConditionedRNNCell",
    "LockedDropout",
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
    "TrainConfig",
    "Trained",
    "summarize",
    "WeightDrop",
    "activation_regularization",
    "detach",
    "embedding_dropout",
    "load",
    "locked_dropout",
    "reverse_padded",
    "temporal_activation_regularization",
    "train",
    "unknown_dropout",
    "word_dropout",
]

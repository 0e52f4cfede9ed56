"""WordLM: the word-level language model, with AWD-LSTM's regularisers and tied weights.

    ids (B, T) --embedding (whole words dropped)--> (B, T, E) --locked dropout--> core (locked dropout
    between layers, weight drop on U) --locked dropout--> [projection H -> E] --decoder--> logits (B, T, V)

Weight tying (Press & Wolf 2016; Inan et al. 2016): the decoder's weight *is* the embedding table, one
tensor, so the decoder's input must be E wide. tie_mode says how: "exact" needs hidden_size == E (an error
otherwise), "last_layer" gives the last recurrent layer E units (AWD-LSTM), "projection" adds a linear
H -> E map before the decoder.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell
from rnnkit.errors import RnnkitError
from rnnkit.models.core import make_core
from rnnkit.regularization import embedding_dropout, locked_dropout


class WordLM(nn.Module):
    """The word LM of this file's docstring; forward(ids, state[, activations]) -> (logits, state[, raw, dropped])."""

    def __init__(self, vocab_size: int, config):
        super().__init__()
        self.config = config
        E, H = config.embedding_size, config.hidden_size
        tie_mode = config.tie_mode if config.tie_weights else "none"
        if tie_mode == "exact" and H != E:
            raise RnnkitError(
                f"--model.tie_weights needs hidden_size == embedding_size (got {H} and {E}); "
                "or --model.tie_mode=last_layer (AWD-LSTM's) or projection"
            )
        self.embedding = nn.Embedding(vocab_size, E)
        self.core = make_core(config, E, output_size=E if tie_mode == "last_layer" else None)
        top = self.core.output_size
        self.projection = nn.Linear(top, E, bias=False) if tie_mode == "projection" and top != E else None
        self.decoder = nn.Linear(E if self.projection is not None else top, vocab_size)
        if tie_mode != "none":
            self.decoder.weight = (
                self.embedding.weight
            )  # one tensor: (V, E) is both the lookup and the softmax's weight

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone: embedding and decoder U(−0.1, 0.1) as pytorch/examples, bias 0."""
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1, generator=generator)
        if self.decoder.weight is not self.embedding.weight:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1, generator=generator)
        nn.init.zeros_(self.decoder.bias)
        if self.projection is not None:
            bound = self.projection.in_features**-0.5
            nn.init.uniform_(self.projection.weight, -bound, bound, generator=generator)
        for module in self.core.modules():
            if isinstance(module, Cell):
                module.reset_parameters(generator)

    def init_state(self, batch_size: int) -> list:
        return self.core.init_state(batch_size)

    def dropout(self, x: Tensor, p: float) -> Tensor:
        return (locked_dropout if self.config.locked_dropout else F.dropout)(x, p, self.training)

    def forward(self, ids: Tensor, state=None, activations: bool = False):
        """(logits (B, T, V), one state per layer); with `activations`, also the last layer's raw and
        dropped-out outputs (B, T, H), for AR and TAR (through forward, so DDP sees the call)."""
        x = embedding_dropout(self.embedding, ids, self.config.embedding_dropout, self.training)  # (B, T, E)
        outputs, state = self.core(self.dropout(x, self.config.input_dropout), state)  # (B, T, H), one state per layer
        dropped = self.dropout(outputs, self.config.output_dropout)  # (B, T, H)
        logits = self.decoder(dropped if self.projection is None else self.projection(dropped))  # (B, T, V)
        return (logits, state, outputs, dropped) if activations else (logits, state)

    def step(self, ids: Tensor, state=None) -> tuple[Tensor, list]:
        """One token of each row, (B,) ids -> ((B, V) logits, state): forward on (B, 1) ids, a token at a time
        (the core's step: rnnkit.recurrent.Stacked.step), as a sampler feeds its draws back in."""
        x = embedding_dropout(self.embedding, ids, self.config.embedding_dropout, self.training)  # (B, E)
        outputs, state = self.core.step(self.dropout(x, self.config.input_dropout), state)  # (B, H)
        dropped = self.dropout(outputs, self.config.output_dropout)  # (B, H)
        return self.decoder(dropped if self.projection is None else self.projection(dropped)), state  # (B, V)

    def readout(self, outputs: Tensor) -> Tensor:
        """The core's outputs (B, ..., H) -> logits (B, ..., V), without dropout: what diagnose differentiates."""
        return self.decoder(outputs if self.projection is None else self.projection(outputs))

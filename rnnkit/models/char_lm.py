"""CharLM: the notes' character-level language model.

    ids (B, T) --embedding--> (B, T, E) --dropout--> recurrent core --dropout--> (B, T, H) --decoder--> logits (B, T, V)

The embedding table is the notes' one-hot × W written as a lookup: row i of the table is W's column i.
The model predicts character t+1 from characters ≤ t; the state it returns is carried by the caller
(training carries it across TBPTT chunks, sampling feeds it one character at a time).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell
from rnnkit.models.core import make_core


class CharLM(nn.Module):
    """embedding -> recurrent core -> decoder over a character vocabulary; forward(ids, state) -> (logits, state)."""

    def __init__(
        self, vocab_size: int, config
    ):  # rnnkit.tasks.charlm.ModelConfig: the core's settings and embedding_size
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        self.core = make_core(config, config.embedding_size)
        self.decoder = nn.Linear(config.hidden_size, vocab_size)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every weight from `generator` alone, so a seed fixes the model."""
        nn.init.normal_(self.embedding.weight, 0.0, 1.0, generator=generator)
        bound = 1.0 / math.sqrt(self.config.hidden_size)
        nn.init.uniform_(self.decoder.weight, -bound, bound, generator=generator)
        nn.init.uniform_(self.decoder.bias, -bound, bound, generator=generator)
        for module in self.core.modules():
            if isinstance(module, Cell):
                module.reset_parameters(generator)

    def init_state(self, batch_size: int) -> list:
        return self.core.init_state(batch_size)

    def forward(self, ids: Tensor, state=None) -> tuple[Tensor, list]:
        p = self.config.dropout
        x = F.dropout(self.embedding(ids), p, self.training)  # (B, T, E)
        outputs, state = self.core(x, state)  # (B, T, H), one state per layer
        logits = self.decoder(F.dropout(outputs, p, self.training))  # (B, T, V)
        return logits, state

    def step(self, ids: Tensor, state=None) -> tuple[Tensor, list]:
        """One token of each row, (B,) ids -> ((B, V) logits, state): forward on (B, 1) ids, a token at a time
        (the core's step: rnnkit.recurrent.Stacked.step), as a sampler feeds its draws back in."""
        p = self.config.dropout if self.training else 0.0  # in evaluation: not even the call
        x = F.embedding(ids, self.embedding.weight)  # (B, E)
        outputs, state = self.core.step(F.dropout(x, p, True) if p else x, state)  # (B, H)
        return F.linear(F.dropout(outputs, p, True) if p else outputs, self.decoder.weight, self.decoder.bias), state

    def readout(self, outputs: Tensor) -> Tensor:
        """The core's outputs (B, ..., H) -> logits (B, ..., V), without dropout: what diagnose differentiates."""
        return self.decoder(outputs)

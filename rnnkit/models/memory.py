"""MemoryModel: a recurrent core with a linear readout at every step, for the long-memory problems.

adding: features (B, T, 2) -> core -> (B, T, H) -> readout -> (B, T, 1); the answer is the last step's
copy:   symbols (B, T) --embedding (one row per symbol)--> (B, T, E) -> core -> readout -> (B, T, 10)
"""

import torch
from torch import Tensor, nn

from rnnkit.cells import Cell
from rnnkit.models.core import make_core


class MemoryModel(nn.Module):
    """forward(inputs) -> (B, T, K): one output per step (K = 1 for adding, the 10 symbols for copy)."""

    def __init__(self, config, output_size: int, symbols: int | None = None, input_size: int = 2):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(symbols, config.embedding_size) if symbols else None
        self.core = make_core(config, config.embedding_size if symbols else input_size)
        self.decoder = nn.Linear(self.core.output_size, output_size)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        if self.embedding is not None:
            nn.init.normal_(self.embedding.weight, generator=generator)
        bound = self.decoder.in_features**-0.5
        nn.init.uniform_(self.decoder.weight, -bound, bound, generator=generator)
        nn.init.zeros_(self.decoder.bias)
        for module in self.core.modules():
            if isinstance(module, Cell):
                module.reset_parameters(generator)

    def init_state(self, batch_size: int) -> list:
        return self.core.init_state(batch_size)

    def features(self, inputs: Tensor) -> Tensor:
        """What the core reads: (B, T, D)."""
        return self.embedding(inputs) if self.embedding is not None else inputs  # (B, T, E) or (B, T, 2)

    def readout(self, outputs: Tensor) -> Tensor:
        return self.decoder(outputs)  # (B, ..., K)

    def forward(self, inputs: Tensor) -> Tensor:
        outputs, _ = self.core(self.features(inputs))  # (B, T, H): each sequence from the zero state
        return self.decoder(outputs)  # (B, T, K)

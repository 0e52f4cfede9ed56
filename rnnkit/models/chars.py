"""A word's vector from its spelling: the tagger's and the classifier's character encoder (Ling et al. 2015;
Plank et al. 2016), so a word never seen in training still gets a vector from its letters (its suffix, its
capital, its digits).
"""

import torch
from torch import Tensor, nn

from rnnkit.models.core import CoreConfig, make_core
from rnnkit.readout import readout


class CharEncoder(nn.Module):
    """chars (B, T, L) ids, char_lengths (B, T) (0 at padded words) -> (B, T, 2C): per word, a BiLSTM's
    forward memory after its last letter joined to the backward one's after its first. A word's vector depends
    on its letters alone, so each distinct spelling in the batch is read once ("the" once, not once per use)."""

    def __init__(
        self, num_chars: int, char_size: int, hidden_size: int, padding_id: int = 0, implementation: str = "auto"
    ):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_size, padding_idx=padding_id)
        config = CoreConfig(
            cell="lstm", hidden_size=hidden_size, num_layers=1, dropout=0.0, implementation=implementation
        )
        self.core = make_core(config, char_size, bidirectional=True)
        self.output_size = self.core.output_size

    def forward(self, chars: Tensor, char_lengths: Tensor) -> Tensor:
        B, T, _ = chars.shape
        present = char_lengths > 0  # (B, T): the words, not the padding
        lengths = char_lengths[present]  # (N,)
        words = chars[present][:, : int(lengths.max())]  # (N, L)
        spellings, which = torch.unique(words, dim=0, return_inverse=True)  # (U, L), (N,): word n is spelling which[n]
        spelled = lengths.new_zeros(len(spellings)).scatter_(0, which, lengths)  # (U,): each spelling's length
        outputs, _ = self.core(self.embedding(spellings), None, spelled.cpu())  # (U, L, 2C)
        vectors = readout(outputs, spelled, "last", bidirectional=True)[which]  # (N, 2C)
        return vectors.new_zeros(B, T, self.output_size).index_put((present,), vectors)  # (B, T, 2C)

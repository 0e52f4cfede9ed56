"""From a padded batch of per-step outputs to one vector per sequence: the notes' many-to-one readout.

The notes read the whole sequence, then predict from the last memory h_l. In a padded batch "last"
means each row's last *valid* step, never a padding step:

    outputs  row 0: h1 h2 h3        lengths [3, 2]     last_valid -> [h3, g2]
             row 1: g1 g2 pad

A bidirectional encoder's outputs are [forward | backward] halves (rnnkit.recurrent.Bidirectional); the
backward direction has read the whole sequence when it reaches step 0, so its "last memory" sits at
step 0 and the forward one's at the last valid step. Mean and max pooling are over valid steps only.
"""

import torch
from torch import Tensor

from rnnkit.errors import RnnkitError

READOUTS = ("last", "mean", "max")


def valid_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """(B,) lengths -> (B, T) booleans, True on each row's first lengths[b] steps."""
    return torch.arange(seq_len, device=lengths.device) < lengths[:, None]  # (B, T)


def last_valid(outputs: Tensor, lengths: Tensor) -> Tensor:
    """outputs (B, T, H), lengths (B,) -> (B, H): row b's output at step lengths[b] - 1."""
    B, T, H = outputs.shape
    index = (lengths.to(outputs.device) - 1).clamp(0, T - 1)  # (B,)
    return outputs[torch.arange(B, device=outputs.device), index]  # (B, H)


def readout(outputs: Tensor, lengths: Tensor, how: str = "last", bidirectional: bool = False) -> Tensor:
    """One vector per sequence from the encoder's outputs (B, T, H), padding never read -> (B, H)."""
    if how not in READOUTS:
        raise RnnkitError(f"readout must be one of {', '.join(READOUTS)}, got {how!r}")
    lengths = lengths.to(outputs.device)
    if how == "last" and not bidirectional:
        return last_valid(outputs, lengths)  # (B, H): h_l
    if how == "last":
        half = outputs.shape[-1] // 2
        forward = last_valid(outputs[..., :half], lengths)  # (B, H/2): the forward direction read up to the end
        backward = outputs[:, 0, half:]  # (B, H/2): the backward direction read from the end back to the start
        return torch.cat([forward, backward], dim=-1)  # (B, H)
    mask = valid_mask(lengths, outputs.shape[1])[:, :, None]  # (B, T, 1)
    if how == "mean":
        return (outputs * mask).sum(1) / lengths[:, None].to(outputs.dtype)  # (B, H)
    return outputs.masked_fill(~mask, float("-inf")).amax(1)  # (B, H): every row has at least one valid step

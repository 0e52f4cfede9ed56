"""Frame labeller: a label per video frame (the notes' many-to-many with |x| = |y|), or one per clip
(many-to-one, the notes' video classification).

    frame t (Y, X) --CNN--> v_t (F)       the same small CNN on every frame (rnnkit/models/vision.py)
    h_1..h_T = RNN(v_1..v_T)              any cell, stacked, one- or bidirectional
    head="frames"   p(direction_t), p(digit_t) = softmax(W_d h_t), softmax(W_c h_t)
    head="clip"     p(digit) = softmax(W_c h_T)     from the last state: [h_T forward; h_1 backward] when
                                                    bidirectional, each direction's state after the whole clip

With `context="none"` the heads read each frame's v_t (through one hidden layer of the same width) and no
recurrence: the per-frame CNN alone, to set beside the RNN and see what remembering adds. Its clip label
reads the mean of the frames' hidden vectors; the head being linear, that is the mean of what each frame's
logits would say (W_c mean_t u_t = mean_t W_c u_t): the frames vote, in no order.
"""

import torch
from torch import Tensor, nn

from rnnkit.models.core import make_core, reset_weights
from rnnkit.models.vision import ImageEncoder
from rnnkit.readout import readout

HEADS = ("frames", "clip")


class FrameLabeller(nn.Module):
    """forward(frames (B, T, Y, X)) -> head "frames": (direction logits (B, T, K_d), digit logits (B, T, K_c));
    head "clip": the clip's digit logits (B, K_c)."""

    def __init__(self, config, image_size: int, directions: int, digits: int):
        super().__init__()
        self.config, self.image_size = config, image_size
        self.encoder = ImageEncoder(image_size, config.feature_size, config.channels)
        if config.context == "rnn":
            self.core = make_core(config, config.feature_size, bidirectional=config.bidirectional)
            width = self.core.output_size
        else:  # no recurrent core at all: one hidden layer on each frame's v_t
            self.per_frame = nn.Sequential(
                nn.Linear(config.feature_size, config.hidden_size), nn.Tanh()
            )  # tanh, as the RNN's: ReLU units died here
            width = config.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        if config.head == "frames":
            self.direction_head = nn.Linear(width, directions)  # W_d
        self.digit_head = nn.Linear(width, digits)  # W_c

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone (rnnkit.models.core.reset_weights)."""
        reset_weights(self, generator)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        B, T, Y, X = frames.shape
        v, _ = self.encoder(frames.reshape(B * T, Y, X))  # (B·T, F)
        v = v.reshape(B, T, -1)  # (B, T, F)
        if self.config.context == "rnn":
            h, _ = self.core(v)  # (B, T, H) or (B, T, 2H)
        else:
            h = self.per_frame(v)  # (B, T, H): each frame on its own
        if self.config.head == "clip":
            if self.config.context == "rnn":  # the memory after the whole clip (every clip is T frames long)
                lengths = torch.full((B,), T, device=h.device)  # (B,)
                h = readout(h, lengths, "last", self.config.bidirectional)  # (B, H) or (B, 2H)
            else:
                h = h.mean(1)  # (B, H): the frames pooled, no order
            return self.digit_head(self.dropout(h))  # (B, K_c)
        h = self.dropout(h)
        return self.direction_head(h), self.digit_head(h)  # (B, T, K_d), (B, T, K_c)

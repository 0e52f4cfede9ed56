"""Evaluation without gradients: loss in nats per token, bits per token (per character for the char-LM), perplexity.

The text is read as B contiguous streams with the state carried across chunks, as in training, so
every character is predicted from everything before it in its stream.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.data.batching import StreamBatches


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (no dropout) inside the block; the mode the model had before, after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_lm(
    model: nn.Module, batches: StreamBatches, max_chunks: int = 0, device: str | torch.device = "cpu"
) -> float:
    """Mean cross-entropy (nats per token) over the first max_chunks chunks (0: all)."""
    total, count, state = 0.0, 0, None
    chunks = len(batches) if max_chunks <= 0 else min(max_chunks, len(batches))
    with evaluating(model):
        for k in range(chunks):
            inputs, targets = (t.to(device) for t in batches[k])  # each (B, T)
            logits, state = model(inputs, state)  # (B, T, V)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"))
            count += targets.numel()
    return total / count


def bits_per_char(loss: float) -> float:
    """nats -> bits (per character for the char-LM, per token in general)."""
    return loss / math.log(2)


def perplexity(loss: float) -> float:
    """exp(loss); a loss past 700 nats (exp would overflow a float) gives inf."""
    return math.exp(loss) if loss < 700.0 else math.inf

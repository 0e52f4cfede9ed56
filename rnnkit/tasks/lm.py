"""What the two language models (charlm, wordlm) share: their data, loss, evaluation and sampling.

Both read one long sequence of token ids laid out as B contiguous streams (rnnkit/data/batching.py),
predict token t+1 from tokens ≤ t, and carry the state across chunks (TBPTT).
"""

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import option
from rnnkit.data.batching import StreamBatches, WholeText
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import bits_per_char, evaluate_lm, perplexity
from rnnkit.sample import generate, seeded


@dataclass
class LMData:
    """A corpus ready for training: its vocabularies ({"text": ...}), train and validation ids."""

    vocabularies: dict
    train_ids: Tensor | np.ndarray  # (N_train,): a tensor, or a view of a memory-mapped token file
    val_ids: Tensor | np.ndarray  # (N_val,)
    source: str  # where the text came from, for messages

    @property
    def vocab(self):
        return self.vocabularies["text"]


@dataclass(frozen=True)
class SampleConfig:
    prime: str = option("\n", "text to warm the state up on before generating")
    length: int = option(500, "tokens to generate", at_least=0)
    temperature: float = option(0.8, "divide the logits by this (0: argmax)", at_least=0)
    top_k: int = option(0, "draw only from the k most likely tokens (0: all)", at_least=0)
    num_samples: int = option(1, "continuations to generate side by side", at_least=1, below=4097)
    seed: int = option(0, "seed of the sampling generator: the same seed gives the same text", at_least=0, below=2**63)


def dry_run(settings: SampleConfig) -> SampleConfig:
    """--dry-run generates a little: at most 50 tokens, at most 4 continuations."""
    return replace(settings, length=min(settings.length, 50), num_samples=min(settings.num_samples, 4))


def next_token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of (B, T, V) logits against (B, T) next tokens: a scalar, nats per token."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))  # (B·T, V) against (B·T,)


def loss(model: nn.Module, batch, state) -> tuple[Tensor, object, int]:
    """Mean cross-entropy of the next token over the chunk (every position is a real one)."""
    logits, state = model(batch.inputs, state)  # (B, T, V)
    return next_token_loss(logits, batch.targets), state, batch.targets.numel()


def validation_batches(ids, what: str, unit: str) -> StreamBatches:
    """Up to 16 streams of up to 256 steps, sized down for short texts."""
    batch_size = max(1, min(16, len(ids) // 64))
    seq_len = min(256, len(ids) // batch_size - 1)
    if seq_len < 1:
        raise RnnkitError(f"{what} has {len(ids)} {unit}; at least 2 are needed to evaluate")
    return StreamBatches(ids, batch_size, seq_len, what, unit)


def whole_text(ids, what: str, unit: str) -> WholeText:
    """What `eval` scores: every token of the text, one stream, the state carried throughout."""
    return WholeText(ids, 256, what, unit)


def stream_batches(config, data: LMData, unit: str) -> tuple[StreamBatches, StreamBatches]:
    train = StreamBatches(
        data.train_ids, config.train.batch_size, config.train.seq_len, f"{data.source} (training part)", unit
    )
    return train, validation_batches(data.val_ids, f"{data.source} (validation part)", unit)


def evaluate(model: nn.Module, batches: StreamBatches, device="cpu", max_tokens: int = 0) -> dict:
    """Loss in nats per token, bits per token and perplexity, over the chunks max_tokens allows (0: all)."""
    max_chunks = max_chunks_for(max_tokens, batches)
    value = evaluate_lm(model, batches, max_chunks=max_chunks, device=device)
    chunks = len(batches) if max_chunks <= 0 else min(max_chunks, len(batches))
    return {
        "loss": value,
        "bits": bits_per_char(value),
        "perplexity": perplexity(value),
        "tokens": batches.targets_in(chunks),
    }


def max_chunks_for(eval_tokens: int, batches: StreamBatches) -> int:
    """How many validation chunks eval_tokens allows (0: all)."""
    return 0 if not eval_tokens else max(1, eval_tokens // (batches.batch_size * batches.seq_len))


def sample_text(model: nn.Module, vocab, prime_ids: Tensor, settings: SampleConfig, show) -> Iterator[str]:
    """Generated text as it comes. show(ids, previous) writes ids as text, previous being the id before
    them (None at the start). One continuation is streamed token by token; several come back whole."""
    stream = generate(
        model,
        vocab,
        prime_ids,
        settings.length,
        settings.temperature,
        settings.top_k,
        settings.num_samples,
        seeded(settings.seed),
    )
    if settings.num_samples == 1:
        previous = prime_ids[-1].item()
        yield show(prime_ids.tolist(), None)
        for column in stream:
            yield show([vocab.index[column[0]]], previous)
            previous = vocab.index[column[0]]
        yield "\n"
        return
    columns = list(stream)
    for b in range(settings.num_samples):
        ids = prime_ids.tolist() + [vocab.index[c[b]] for c in columns]
        yield f"--- sample {b + 1} ---\n{show(ids, None)}\n"

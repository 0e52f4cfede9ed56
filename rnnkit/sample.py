"""Sampling one token at a time, feeding each draw back in (the notes' generation loop), for either
language model: the vocabulary's symbols are characters (charlm) or words (wordlm, whose prime comes as ids).

The state is warmed up on the prime once; after that each new token costs one step of the model: the prefix is
never run again. The step is the model's own `step` (the cells' equations one token at a time, rnnkit.recurrent
Stacked.step), not forward on a (B, 1) input: at batch 1 on a CPU, torch's fused kernel costs more to set up for
one step than the step costs to run, and forward's checks and choice of path more again. The text drawn for a seed
is the same as forward's on the reference path (--model.implementation=reference), bit for bit; beside the fused
kernel, whose float32 sums come in another order, the same distribution (a draw that falls within a rounding
error of the boundary between two tokens can go the other way). `fast=False` steps through forward, as a check.
sample() joins characters into strings (the char-LM's helper).
"""

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating


def generate(
    model: nn.Module,
    vocab: Vocab,
    prime: str | Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    fast: bool = True,
) -> Iterator[list[str]]:
    """Yield, `length` times, the next character of each of num_samples continuations of `prime`.

    The prime (text, or its ids) is checked now, so a character the vocabulary lacks is an error before
    anything is generated.
    """
    prime_ids = prime if isinstance(prime, Tensor) else vocab.encode(prime, what="prime text")  # (P,)
    return continuations(model, vocab, prime_ids, length, temperature, top_k, num_samples, generator, fast)


DIVERGED = "the model's outputs are not finite (NaN or inf): its weights have diverged"


@torch.no_grad()
def continuations(
    model: nn.Module,
    vocab: Vocab,
    prime_ids: Tensor,
    length: int,
    temperature: float,
    top_k: int,
    num_samples: int,
    generator: torch.Generator | None,
    fast: bool = True,
) -> Iterator[list[str]]:
    """generate's loop, once the prime is known good."""
    with evaluating(model):
        device = next(model.parameters()).device
        ids = prime_ids.to(device).expand(num_samples, -1)  # (B, P): every continuation starts from the same prime
        logits, state = model(ids, None)  # (B, P, V): warm the state up on the whole prime at once
        logits = logits[:, -1]  # (B, V): the prediction for the first new character
        on_cpu = device.type == "cpu"
        for _ in range(length):
            if temperature == 0:
                if not torch.isfinite(logits).all():  # argmax would pick a NaN's place without a word
                    raise RnnkitError(DIVERGED)
                next_ids = logits.argmax(dim=-1, keepdim=True)  # (B, 1): temperature 0 is argmax
            else:
                # < 1 sharpens, > 1 flattens; the maximum subtracted first, so even a tiny temperature cannot overflow
                shifted = logits - logits.max(dim=-1, keepdim=True).values  # (B, V), ≤ 0
                if temperature < 1e-30:  # below float32's range: divided in float64, or the maximum's 0 / 0 is NaN
                    shifted = shifted.double()
                logits = shifted / temperature  # (B, V)
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))  # keep the k most likely
                probs = torch.softmax(logits, dim=-1)  # (B, V): NaN where a logit was NaN or +inf
                try:  # multinomial refuses NaN itself: no check of every step's logits before it
                    next_ids = torch.multinomial(probs if on_cpu else probs.cpu(), 1, generator=generator)  # (B, 1)
                except RuntimeError as error:
                    if "probability tensor contains" in str(error):
                        raise RnnkitError(DIVERGED) from None
                    raise
                next_ids = next_ids if on_cpu else next_ids.to(device)
            yield [vocab.symbols[i] for i in next_ids[:, 0].tolist()]
            if fast:  # feed the draw back in: one step, O(1) work
                logits, state = model.step(next_ids[:, 0], state)  # (B, V)
            else:
                logits, state = model(next_ids, state)  # (B, 1, V)
                logits = logits[:, -1]  # (B, V)


def sample(
    model: nn.Module,
    vocab: Vocab,
    prime: str,
    length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> list[str]:
    """num_samples continuations of `prime`, each `length` characters (the prime not included)."""
    columns = list(generate(model, vocab, prime, length, temperature, top_k, num_samples, generator))
    return ["".join(column[b] for column in columns) for b in range(num_samples)]


def seeded(seed: int) -> torch.Generator:
    """A CPU generator for sampling: the same seed draws the same text."""
    return torch.Generator().manual_seed(seed)

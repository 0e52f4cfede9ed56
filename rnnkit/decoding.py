"""Decoding a model that emits one token per step, each conditioned on the last: greedy and beam search.

The model is seen through its one-step function only:

    step(previous (N,), state, t) -> (log_probs (N, V), state)

`previous` holds each row's last token (the start token at t = 0); `state` is any nest of tuples, lists,
dicts and tensors whose first dimension is N, so the search can reorder rows when it re-ranks beams.
A row finishes when it emits `end_id` (sequence-to-sequence, captions) or after `lengths[b]` tokens
(a tagger emits exactly one tag per word); from then on it emits `pad_id` at no cost.

    greedy          at each step the most probable token: one hypothesis per item
    beam_search     the `beam_width` best partial hypotheses by summed log-probability kept at each step;
                    finished ones stay in the beam at no further cost; the final ranking divides each
                    score by the GNMT length penalty ((5 + |y|) / 6)^α (α = 0: the raw sum)
    best            greedy for width 1, else beam search's best hypothesis (what the models call); `sequences`
                    trims each to its end token

In beam search row b·K + k is always a hypothesis of item b, so whatever is the same for all of an item's
hypotheses (an encoder's outputs, an image) can be repeated once with `expand_rows` and kept out of the
state. Beam search with width 1 returns what greedy does.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from rnnkit.errors import RnnkitError

Step = Callable[[Tensor, Any, int], tuple[Tensor, Any]]


class Decoded(NamedTuple):
    tokens: Tensor  # (B, L) greedy, (B, K, L) beam: K hypotheses per item, best first; pad_id after each one's end
    scores: Tensor  # (B,) or (B, K): summed log-probabilities (beam: ranked by score / length penalty)
    lengths: Tensor  # (B,) or (B, K): tokens up to and including the end token (or lengths[b])


def select_rows(state: Any, rows: Tensor) -> Any:
    """`state` with its tensors' rows picked (and reordered) by `rows` (M,), whatever nest it is."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, rows.to(state.device))
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a NamedTuple: LSTMState, RNNState
        return type(state)(*(select_rows(s, rows) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(select_rows(s, rows) for s in state)
    if isinstance(state, dict):
        return {key: select_rows(value, rows) for key, value in state.items()}
    raise TypeError(f"decoding state holds a {type(state).__name__}; expected tensors in tuples, lists or dicts")


def expand_rows(state: Any, beam_width: int) -> Any:
    """Each row repeated beam_width times in place (row b -> rows b·K ... b·K + K − 1)."""
    probe = first_tensor(state)
    if probe is None or beam_width == 1:
        return state
    rows = torch.arange(probe.shape[0], device=probe.device).repeat_interleave(beam_width)
    return select_rows(state, rows)


def first_tensor(state: Any) -> Tensor | None:
    if isinstance(state, Tensor):
        return state
    values = state.values() if isinstance(state, dict) else state if isinstance(state, (tuple, list)) else ()
    for value in values:
        found = first_tensor(value)
        if found is not None:
            return found
    return None


def check_arguments(
    start: Tensor, max_steps: int, end_id: int | None, lengths: Tensor | None, beam_width: int = 1
) -> Tensor:
    """The per-item step limits (B,): lengths where given, else max_steps; an error for arguments that cannot decode."""
    if start.dim() != 1:
        raise RnnkitError(f"decoding: start must be (B,) token ids, got shape {tuple(start.shape)}")
    if max_steps < 1 or beam_width < 1:
        raise RnnkitError(f"decoding: max_steps and beam_width must be positive, got {max_steps} and {beam_width}")
    if lengths is None:
        if end_id is None:
            raise RnnkitError(
                "decoding: give end_id (stop at the end token) or lengths (a fixed number of tokens per item)"
            )
        return torch.full(start.shape, max_steps, dtype=torch.long, device=start.device)
    lengths = lengths.to(start.device).long()
    if lengths.shape != start.shape or int(lengths.min()) < 1:
        raise RnnkitError(
            f"decoding: lengths must be (B,) = {tuple(start.shape)} positive counts, got {lengths.tolist()}"
        )
    return lengths.clamp(max=max_steps)


def finish(log_probs: Tensor, finished: Tensor, pad_id: int) -> Tensor:
    """Finished rows may only emit pad_id, at no cost: log_probs (N, V), finished (N,)."""
    if not bool(finished.any()):
        return log_probs
    padded = torch.full_like(log_probs, float("-inf"))
    padded[:, pad_id] = 0.0
    return torch.where(finished[:, None], padded, log_probs)  # (N, V)


@torch.no_grad()
def greedy(
    step: Step,
    state: Any,
    start: Tensor,
    max_steps: int,
    end_id: int | None = None,
    lengths: Tensor | None = None,
    pad_id: int | None = None,
) -> Decoded:
    """The most probable token at every step, fed back as the next step's input."""
    limits = check_arguments(start, max_steps, end_id, lengths)
    pad = pad_id if pad_id is not None else end_id if end_id is not None else 0
    B = start.shape[0]
    previous, scores = start, torch.zeros(B, dtype=torch.float64, device=start.device)
    finished = torch.zeros(B, dtype=torch.bool, device=start.device)
    done_at = limits.clone()
    tokens = []
    for t in range(int(limits.max())):
        log_probs, state = step(previous, state, t)  # (B, V)
        log_probs = finish(log_probs.float(), finished, pad)
        best, previous = log_probs.max(-1)  # (B,), (B,)
        scores += best.double()
        tokens.append(previous)
        ended = ~finished & ((previous == end_id) if end_id is not None else torch.zeros_like(finished))
        done_at = torch.where(ended, torch.full_like(done_at, t + 1), done_at)
        finished = finished | ended | (t + 1 >= limits)
        if bool(finished.all()):
            break
    return Decoded(torch.stack(tokens, dim=1), scores, done_at)  # (B, L), (B,), (B,)


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT's ((5 + |y|) / 6)^α (Wu et al. 2016); 1 when α = 0."""
    return ((5.0 + lengths.double()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    step: Step,
    state: Any,
    start: Tensor,
    beam_width: int,
    max_steps: int,
    end_id: int | None = None,
    lengths: Tensor | None = None,
    pad_id: int | None = None,
    alpha: float = 0.0,
) -> Decoded:
    """The beam_width best hypotheses per item. `state` (and `start`) are per item (B rows); they are
    expanded to B·K rows here."""
    limits = check_arguments(start, max_steps, end_id, lengths, beam_width)
    pad = pad_id if pad_id is not None else end_id if end_id is not None else 0
    B, K, device = start.shape[0], beam_width, start.device
    state, previous = expand_rows(state, K), start.repeat_interleave(K)  # (B·K, ...), (B·K,)
    limits = limits.repeat_interleave(K)  # (B·K,)
    scores = torch.full((B, K), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per item at the start: the others would repeat it
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    done_at = limits.clone()
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    offsets = (torch.arange(B, device=device) * K)[:, None]  # (B, 1)
    for t in range(int(limits.max())):
        log_probs, state = step(previous, state, t)  # (B·K, V)
        log_probs = finish(log_probs.double(), finished, pad)
        V = log_probs.shape[-1]
        totals = (scores[:, :, None] + log_probs.view(B, K, V)).view(B, K * V)  # (B, K·V)
        scores, choice = totals.topk(K, dim=-1)  # (B, K), best first (while fewer than K are alive, some are -inf)
        rows = (offsets + torch.div(choice, V, rounding_mode="floor")).view(-1)  # (B·K,): the hypothesis each came from
        previous = (choice % V).view(-1)  # (B·K,)
        state, history = select_rows(state, rows), torch.cat([history[rows], previous[:, None]], dim=1)
        finished, done_at = finished[rows], done_at[rows]
        ended = ~finished & ((previous == end_id) if end_id is not None else torch.zeros_like(finished))
        done_at = torch.where(ended, torch.full_like(done_at, t + 1), done_at)
        finished = finished | ended | (t + 1 >= limits)
        if bool(finished.all()):
            break
    done_at = done_at.view(B, K)
    ranked = (scores / length_penalty(done_at, alpha)).argsort(dim=-1, descending=True, stable=True)  # (B, K)
    pick = lambda x: x.gather(1, ranked)  # noqa: E731
    tokens = history.view(B, K, -1).gather(1, ranked[:, :, None].expand(B, K, history.shape[1]))  # (B, K, L)
    return Decoded(tokens, pick(scores), pick(done_at))


def best(
    make_step: Callable[[int], Step],
    state: Any,
    start: Tensor,
    beam_width: int,
    max_steps: int,
    end_id: int | None = None,
    lengths: Tensor | None = None,
    pad_id: int | None = None,
    alpha: float = 0.0,
) -> Decoded:
    """Each item's best hypothesis, tokens (B, L), scores (B,), lengths (B,): greedy for beam_width 1, else beam
    search. make_step(K) is the model's step function over its per-item inputs repeated K times (expand_rows)."""
    if beam_width == 1:
        return greedy(make_step(1), state, start, max_steps, end_id, lengths, pad_id)
    found = beam_search(make_step(beam_width), state, start, beam_width, max_steps, end_id, lengths, pad_id, alpha)
    return Decoded(found.tokens[:, 0], found.scores[:, 0], found.lengths[:, 0])


def sequences(found: Decoded, end_id: int) -> list[list[int]]:
    """Each item's tokens (B, L) up to its length, the end token left off."""
    outputs = []
    for b in range(found.tokens.shape[0]):
        ids = found.tokens[b, : int(found.lengths[b])].tolist()
        outputs.append(ids[:-1] if ids and ids[-1] == end_id else ids)
    return outputs

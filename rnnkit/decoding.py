"""Decoding a model that emits one token per step, each conditioned on the last: greedy and beam search.

The model is seen through its one-step function only, made over a context:

    step_over(context) -> step          context: what every hypothesis of an item reads and never changes (an
                                        encoder's outputs, an image), a nest of tensors with one row per item
    step(previous (N,), state, t) -> (log_probs (N, V), state)

`previous` holds each row's last token (the start token at t = 0); `state` is any nest of tuples, lists,
dicts and tensors whose first dimension is N (or None at t = 0, for a step that makes its own), so the search
can reorder rows when it re-ranks beams. A row finishes when it emits `end_id` (sequence-to-sequence,
captions) or after `lengths[b]` tokens (a tagger emits exactly one tag per word); from then on it emits
`pad_id` at no cost. A finished row is dropped from the steps that follow: the step runs on the unfinished
rows alone, over the context's rows they read (picked here), so a batch costs what its unfinished sentences
cost, not its longest sentence's length times its size. drop_finished=False (or DROP_FINISHED = False, for
every search a model runs) steps every row to the end, as a check: both find the same hypotheses.

    greedy          at each step the most probable token: one hypothesis per item
    beam_search     the `beam_width` best partial hypotheses by summed log-probability kept at each step;
                    finished ones stay in the beam at no further cost; the final ranking divides each
                    score by the GNMT length penalty ((5 + |y|) / 6)^α (α = 0: the raw sum)
    best            greedy for width 1, else beam search's best hypothesis (what the models call); `sequences`
                    trims each to its end token

In beam search row b·K + k is always a hypothesis of item b, so whatever is the same for all of an item's
hypotheses is the context, repeated here for each of them (`expand_rows`) and kept out of the state. Beam
search with width 1 returns what greedy does.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from rnnkit.errors import RnnkitError

DROP_FINISHED = True  # what a search does when it is not told
Step = Callable[[Tensor, Any, int], tuple[Tensor, Any]]
StepOver = Callable[[Any], Step]


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


def put_rows(state: Any, rows: Tensor, values: Any) -> Any:
    """`state` with its rows `rows` (M,) replaced by `values` (M rows, the same nest), the others kept."""
    if state is None:
        return values  # the step made the state: it has only the rows it was given
    if isinstance(state, Tensor):
        return state.index_copy(0, rows.to(state.device), values)
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(put_rows(s, rows, v) for s, v in zip(state, values)))
    if isinstance(state, (tuple, list)):
        return type(state)(put_rows(s, rows, v) for s, v in zip(state, values))
    if isinstance(state, dict):
        return {key: put_rows(value, rows, values[key]) for key, value in state.items()}
    raise TypeError(f"decoding state holds a {type(state).__name__}; expected tensors in tuples, lists or dicts")


class RowSteps:
    """One step of every row of a search, as each row's best next tokens: the model stepped on the unfinished rows
    alone (a finished row may only emit pad_id, at no cost), over the context rows they read. Row r reads context
    row items[r] (row b·K + k: a hypothesis of item b); the step over the live rows' context is made again only
    when the set of live rows changes."""

    def __init__(self, step_over: StepOver, context: Any, start: Tensor, K: int, pad_id: int, drop: bool | None):
        self.step_over, self.context, self.pad_id = step_over, context, pad_id
        self.items = torch.arange(start.shape[0], device=start.device).repeat_interleave(K)  # (B·K,)
        self.drop = DROP_FINISHED if drop is None else drop
        self.all = step_over(expand_rows(context, K))  # every row (greedy: the context itself, no copy)
        self.rows, self.step = None, None

    def best(self, previous: Tensor, state: Any, t: int, finished: Tensor, width: int) -> tuple[Tensor, Tensor, Any]:
        """-> (each row's `width` best log-probabilities (N, W) float32, best first, their tokens (N, W), state).
        Only these can enter a beam of `width`: no search needs a row's whole distribution."""
        if not self.drop or not bool(finished.any()):  # every row stepped
            log_probs, state = self.all(previous, state, t)  # (N, V)
            values, tokens = best_of(finish(log_probs.float(), finished, self.pad_id), width)
            return values, tokens, state
        live = (~finished).nonzero()[:, 0]  # (M,): the rows still writing
        if self.rows is None or not torch.equal(self.rows, live):
            self.rows, self.step = live, self.step_over(select_rows(self.context, self.items[live]))
        log_probs, new = self.step(previous[live], select_rows(state, live), t)  # (M, V)
        live_values, live_tokens = best_of(log_probs.float(), width)  # (M, W)
        N, W = previous.shape[0], live_values.shape[1]
        values = live_values.new_full((N, W), float("-inf"))  # a finished row: pad_id at no cost, nothing else
        values[:, 0] = 0.0
        tokens = live_tokens.new_full((N, W), self.pad_id)
        return (
            values.index_copy_(0, live, live_values),
            tokens.index_copy_(0, live, live_tokens),
            put_rows(state, live, new),
        )


def best_of(log_probs: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Each row's `width` highest log-probabilities and their tokens, best first: (N, W) and (N, W), W at most V."""
    if width == 1:
        best, token = log_probs.max(-1)  # greedy's argmax
        return best[:, None], token[:, None]
    return log_probs.topk(min(width, log_probs.shape[-1]), dim=-1)


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
    step_over: StepOver,
    context: Any,
    state: Any,
    start: Tensor,
    max_steps: int,
    end_id: int | None = None,
    lengths: Tensor | None = None,
    pad_id: int | None = None,
    drop_finished: bool | None = None,
) -> Decoded:
    """The most probable token at every step, fed back as the next step's input."""
    limits = check_arguments(start, max_steps, end_id, lengths)
    pad = pad_id if pad_id is not None else end_id if end_id is not None else 0
    B = start.shape[0]
    steps = RowSteps(step_over, context, start, 1, pad, drop_finished)
    previous, scores = start, torch.zeros(B, dtype=torch.float64, device=start.device)
    finished = torch.zeros(B, dtype=torch.bool, device=start.device)
    done_at = limits.clone()
    tokens = []
    for t in range(int(limits.max())):
        best, chosen, state = steps.best(previous, state, t, finished, 1)  # (B, 1), (B, 1)
        previous = chosen[:, 0]  # (B,)
        scores += best[:, 0].double()
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
    step_over: StepOver,
    context: Any,
    state: Any,
    start: Tensor,
    beam_width: int,
    max_steps: int,
    end_id: int | None = None,
    lengths: Tensor | None = None,
    pad_id: int | None = None,
    alpha: float = 0.0,
    drop_finished: bool | None = None,
) -> Decoded:
    """The beam_width best hypotheses per item. `context`, `state` (and `start`) are per item (B rows); they are
    expanded to B·K rows here."""
    limits = check_arguments(start, max_steps, end_id, lengths, beam_width)
    pad = pad_id if pad_id is not None else end_id if end_id is not None else 0
    B, K, device = start.shape[0], beam_width, start.device
    steps = RowSteps(step_over, context, start, K, pad, drop_finished)
    state, previous = expand_rows(state, K), start.repeat_interleave(K)  # (B·K, ...), (B·K,)
    limits = limits.repeat_interleave(K)  # (B·K,)
    scores = torch.full((B, K), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per item at the start: the others would repeat it
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    done_at = limits.clone()
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    offsets = (torch.arange(B, device=device) * K)[:, None]  # (B, 1)
    for t in range(int(limits.max())):
        best, tokens, state = steps.best(previous, state, t, finished, K)  # (B·K, W): each row's W ≤ K best
        W = best.shape[1]
        totals = (scores[:, :, None] + best.double().view(B, K, W)).view(B, K * W)  # (B, K·W): the beam's candidates
        scores, choice = totals.topk(K, dim=-1)  # (B, K), best first (while fewer than K are alive, some are -inf)
        rows = (offsets + torch.div(choice, W, rounding_mode="floor")).view(-1)  # (B·K,): the hypothesis each came from
        previous = tokens.view(B, K * W).gather(1, choice).view(-1)  # (B·K,)
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
    step_over: StepOver,
    context: Any,
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
    search. step_over(context) is the model's step function over the context's rows (one per item, repeated
    for its hypotheses and picked for the unfinished rows here)."""
    if beam_width == 1:
        return greedy(step_over, context, state, start, max_steps, end_id, lengths, pad_id)
    found = beam_search(step_over, context, state, start, beam_width, max_steps, end_id, lengths, pad_id, alpha)
    return Decoded(found.tokens[:, 0], found.scores[:, 0], found.lengths[:, 0])


def sequences(found: Decoded, end_id: int) -> list[list[int]]:
    """Each item's tokens (B, L) up to its length, the end token left off."""
    outputs = []
    for b in range(found.tokens.shape[0]):
        ids = found.tokens[b, : int(found.lengths[b])].tolist()
        outputs.append(ids[:-1] if ids and ids[-1] == end_id else ids)
    return outputs

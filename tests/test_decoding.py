"""Tests for rnnkit/decoding.py: greedy and beam search against exhaustive search on small models whose
next-token distribution depends on the whole history (so the state must follow its hypothesis)."""

import itertools

import pytest
import torch

from rnnkit.decoding import beam_search, expand_rows, greedy, length_penalty, select_rows
from rnnkit.errors import RnnkitError

V = 3


def history_model(seed: int = 0, items: int = 2):
    """A step function whose log-probs depend on the previous token and on the running sum of all
    tokens so far (the state), per item; and a function scoring a whole sequence the same way."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(items, 5, V, V, generator=generator).log_softmax(-1)  # (item, sum mod 5, previous, next)

    def step(previous, state, t):
        item, total = state["item"], state["sum"]  # (N,), (N,)
        log_probs = table[item, total % 5, previous]  # (N, V)
        return log_probs, {"item": item, "sum": total + previous}

    def score(item: int, start: int, sequence) -> float:
        total, previous, result = 0, start, 0.0
        for token in sequence:
            result += float(table[item, total % 5, previous, token])
            total, previous = total + previous, token
        return result

    return step, score


def fixed(step):
    """A step function that reads no context (its item is in its state)."""
    return lambda context: step


def start_state(items: int = 2):
    return {"item": torch.arange(items), "sum": torch.zeros(items, dtype=torch.long)}


def test_beam_search_wide_enough_is_exhaustive_search():
    """With K ≥ V^(L−1) nothing is pruned: the K hypotheses are the K best sequences, in order, with their scores."""
    step, score = history_model()
    L, K = 4, V**3
    decoded = beam_search(fixed(step), None, start_state(), torch.tensor([0, 1]), K, L, lengths=torch.tensor([L, L]))
    for item, start in ((0, 0), (1, 1)):
        everything = sorted(((score(item, start, s), s) for s in itertools.product(range(V), repeat=L)), reverse=True)
        for k in range(K):
            assert decoded.tokens[item, k].tolist() == list(everything[k][1])
            assert decoded.scores[item, k].item() == pytest.approx(everything[k][0], abs=1e-9)


def test_beam_width_1_equals_greedy_and_greedy_follows_the_argmax():
    step, score = history_model(seed=3)
    start = torch.tensor([2, 0])
    lengths = torch.tensor([5, 3])
    first = greedy(fixed(step), None, start_state(), start, 5, lengths=lengths, pad_id=0)
    beam = beam_search(fixed(step), None, start_state(), start, 1, 5, lengths=lengths, pad_id=0)
    assert torch.equal(beam.tokens[:, 0], first.tokens)
    assert torch.allclose(beam.scores[:, 0], first.scores)
    for item in range(2):  # by hand: each next token is the argmax given the history
        state, previous, tokens = {"item": torch.tensor([item]), "sum": torch.tensor([0])}, start[item : item + 1], []
        for t in range(int(lengths[item])):
            log_probs, state = step(previous, state, t)
            previous = log_probs.argmax(-1)
            tokens.append(int(previous))
        assert first.tokens[item, : len(tokens)].tolist() == tokens
        assert first.scores[item].item() == pytest.approx(score(item, int(start[item]), tokens), abs=1e-6)


def test_lengths_fix_each_items_token_count_and_pad_after_it():
    """A tagger's decoding: item b emits exactly lengths[b] tokens, then pad_id, whatever the model prefers."""
    step, _ = history_model(seed=1)
    lengths = torch.tensor([2, 4])
    for decoded in (
        greedy(fixed(step), None, start_state(), torch.tensor([0, 0]), 10, lengths=lengths, pad_id=2),
        beam_search(fixed(step), None, start_state(), torch.tensor([0, 0]), 3, 10, lengths=lengths, pad_id=2),
    ):
        tokens = decoded.tokens if decoded.tokens.dim() == 2 else decoded.tokens[:, 0]
        assert tokens.shape[-1] == 4  # the longest item's length, not max_steps
        assert tokens[0, 2:].tolist() == [2, 2]
        assert (decoded.lengths.view(2, -1)[:, 0] == lengths).all()


def end_model():
    """Token 2 ends. From the start 1 is likelier than 2, and after a 1 the end is only a little likelier
    than another 1: greedy says [1, 2] (-1.12), the beam finds [2] (-0.97), and a length penalty prefers
    [1, 2] again."""

    def step(previous, state, t):
        log_probs = torch.tensor([[-9.0, -0.5, -1.0], [-9.0, -2.0, -1.9], [-9.0, -9.0, 0.0]]).log_softmax(-1)
        return log_probs[torch.where(previous < 0, 0, previous)], state

    return step


def test_end_token_stops_a_hypothesis_and_pads_it():
    step = end_model()
    decoded = greedy(fixed(step), None, None, torch.tensor([-1]), 6, end_id=2)
    ended = (decoded.tokens[0] == 2).nonzero()[0].item()
    assert decoded.lengths[0].item() == ended + 1
    assert (decoded.tokens[0, ended:] == 2).all()  # pad_id defaults to end_id
    assert decoded.tokens[0, :2].tolist() == [1, 2]
    beam = beam_search(fixed(step), None, None, torch.tensor([-1]), 3, 6, end_id=2)
    assert beam.tokens[0, 0, 0].item() == 2 and beam.lengths[0, 0].item() == 1
    assert beam.scores[0, 0] > decoded.scores[0]  # the beam found what greedy missed


def test_length_penalty_favours_longer_hypotheses():
    assert length_penalty(torch.tensor([1]), 0.0).item() == 1.0
    assert length_penalty(torch.tensor([7]), 1.0).item() == pytest.approx(2.0)
    step = end_model()
    plain = beam_search(fixed(step), None, None, torch.tensor([-1]), 4, 4, end_id=2, alpha=0.0)
    long = beam_search(fixed(step), None, None, torch.tensor([-1]), 4, 4, end_id=2, alpha=1.0)
    assert plain.lengths[0, 0].item() == 1 and long.lengths[0, 0].item() == 2
    assert sorted(plain.scores[0].tolist()) == sorted(long.scores[0].tolist())  # the same beam, ranked otherwise


def test_select_and_expand_rows_keep_nests():
    from rnnkit.cells import LSTMState

    state = [
        LSTMState(torch.arange(3)[:, None].float(), torch.arange(3)[:, None].float()),
        {"x": torch.arange(3)},
        None,
    ]
    expanded = expand_rows(state, 2)
    assert expanded[0].h[:, 0].tolist() == [0, 0, 1, 1, 2, 2] and isinstance(expanded[0], LSTMState)
    assert select_rows(expanded, torch.tensor([5, 0]))[1]["x"].tolist() == [2, 0]
    with pytest.raises(TypeError, match="str"):
        select_rows("abc", torch.tensor([0]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: greedy(fixed(s), None, None, torch.tensor([0]), 5), "end_id"),
        (lambda s: greedy(fixed(s), None, None, torch.tensor([[0]]), 5, end_id=1), "start"),
        (lambda s: beam_search(fixed(s), None, None, torch.tensor([0]), 0, 5, end_id=1), "beam_width"),
        (lambda s: greedy(fixed(s), None, None, torch.tensor([0, 0]), 5, lengths=torch.tensor([1, 0])), "lengths"),
    ],
)
def test_arguments_that_cannot_decode_are_one_line_errors(call, match):
    with pytest.raises(RnnkitError, match=match):
        call(end_model())


def ending_model(seed: int, items: int):
    """A history model whose token 0 ends a hypothesis, likelier as the sum grows: items end at different steps."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(items, 7, V, V, generator=generator)
    table[..., 0] += torch.linspace(-3, 3, 7)[None, :, None]  # the end token likelier as the sum grows
    table = table.log_softmax(-1)
    rows_seen = []

    def step_over(context):
        item_of_row = context  # (N,): each row's item, picked and repeated by the search

        def step(previous, state, t):
            rows_seen.append(len(previous))
            total = state if state is not None else torch.zeros(len(previous), dtype=torch.long)
            return table[item_of_row, total % 7, previous], total + previous + 1

        return step

    return step_over, rows_seen


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("width", [1, 3])
def test_dropping_finished_rows_finds_what_stepping_every_row_finds(seed, width):
    """Rows that have ended are left out of the steps after: the same hypotheses, scores and lengths as when every
    row is stepped to the end, and fewer rows stepped."""
    items = 6
    found = {}
    for drop in (False, True):
        step_over, rows_seen = ending_model(seed, items)
        search = beam_search if width > 1 else greedy
        arguments = (step_over, torch.arange(items), None, torch.ones(items, dtype=torch.long))
        found[drop] = (
            (
                search(*arguments, width, 12, end_id=0, drop_finished=drop)
                if width > 1
                else search(*arguments, 12, end_id=0, drop_finished=drop)
            ),
            sum(rows_seen),
        )
    (kept, all_rows), (dropped, fewer_rows) = found[False], found[True]
    assert torch.equal(kept.tokens, dropped.tokens) and torch.equal(kept.lengths, dropped.lengths)
    assert torch.equal(kept.scores, dropped.scores)
    ended_apart = kept.lengths.unique().numel() > 1  # some row ended before the last step
    assert fewer_rows < all_rows if ended_apart else fewer_rows == all_rows

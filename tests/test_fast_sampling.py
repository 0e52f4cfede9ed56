"""The sampler's step (model.step: the cells' own equations, a token at a time) against forward on (B, 1) inputs:
the same text for a seed as forward on the reference path, bit for bit, for every cell, skip connection, batch,
temperature and top-k; and, beside the fused kernel (whose float32 sums come in another order), the same
distribution, tested on many draws."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from rnnkit.cells import Cell, RNNState
from rnnkit.data.vocab import Vocab
from rnnkit.models.char_lm import CharLM
from rnnkit.models.word_lm import WordLM
from rnnkit.recurrent import Recurrent, Stacked
from rnnkit.sample import generate, sample, seeded
from rnnkit.tasks.charlm import ModelConfig
from rnnkit.tasks.wordlm import ModelConfig as WordModelConfig

VOCAB = Vocab(["\n", *"abcdefgh"])


def char_model(**settings) -> CharLM:
    config = ModelConfig(embedding_size=8, hidden_size=16, num_layers=2, dropout=0.0, **settings)
    model = CharLM(len(VOCAB), config)
    model.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.decoder.weight.mul_(4)  # peaked distributions: draws that depend on the state
    return model.eval()


def texts(model, fast: bool, **settings) -> list[str]:
    options = {"prime": "abc", "length": 60, "temperature": 1.0, "top_k": 0, "num_samples": 3, **settings}
    columns = generate(model, VOCAB, generator=seeded(7), fast=fast, **options)
    return ["".join(row) for row in zip(*columns)]


class Leaky(Cell):
    """A cell written by a user: h_t = (1 − a) h_{t-1} + a tanh(W x_t + U h_{t-1})."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.W, self.U = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, state):
        return RNNState(0.7 * state.h + 0.3 * torch.tanh(self.W(x) + self.U(state.h)))

    def init_state(self, batch_size: int):
        return RNNState(torch.zeros(batch_size, self.hidden_size))


@pytest.mark.parametrize(
    "settings",
    [
        {"cell": "lstm"},
        {"cell": "gru"},
        {"cell": "gru", "reset_after": False},
        {"cell": "rnn"},
        {"cell": "rnn", "nonlinearity": "relu"},
        {"cell": "mut2"},
        {"cell": "lstm", "skip": "residual"},
        {"cell": "gru", "skip": "dense"},
        {"cell": "lstm", "weight_drop": 0.5},
    ],
)
def test_the_step_draws_what_forward_draws_on_the_reference_path(settings):
    model = char_model(implementation="reference", **settings)
    for options in ({}, {"temperature": 0.0}, {"top_k": 3, "temperature": 0.7}, {"num_samples": 16}):
        assert texts(model, True, **options) == texts(model, False, **options), options


def test_a_users_cell_steps_as_it_runs():
    model = char_model(implementation="reference")
    model.core = Stacked([Recurrent(Leaky(8, 16), "reference"), Recurrent(Leaky(16, 16), "reference")])
    model.decoder = nn.Linear(16, len(VOCAB))
    assert texts(model, True) == texts(model, False)


@pytest.mark.parametrize("settings", [{}, {"tie_weights": True, "num_layers": 3}])
def test_the_word_model_steps_as_forward_runs(settings):
    config = WordModelConfig(embedding_size=16, hidden_size=16, dropout=0.0, implementation="reference", **settings)
    model = WordLM(30, config).eval()
    ids = torch.randint(0, 30, (4, 9), generator=torch.Generator().manual_seed(1))
    logits, state = model(ids)  # (B, T, V)
    stepped, state = model(ids[:, :1])
    steps = [stepped[:, 0]]
    for t in range(1, ids.shape[1]):
        out, state = model.step(ids[:, t], state)  # (B, V)
        steps.append(out)
    assert torch.equal(torch.stack(steps, dim=1), logits)


def chi_square_critical(df: int, z: float = 3.09) -> float:
    """The χ² value exceeded with probability 0.001 (z: the normal's 0.999 quantile), by Wilson and Hilferty."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@torch.no_grad()
def test_beside_the_fused_kernel_the_draws_follow_the_same_distribution():
    """20,000 continuations of two characters drawn on the step; their joint frequencies against p(a) p(b | a)
    computed by forward on torch's fused kernel: a χ² test at the 0.1% level, over cells expecting at least 5."""
    model = char_model(implementation="fused")
    prime = VOCAB.encode("abc")
    count = 20_000
    drawn = generate(model, VOCAB, prime, 2, 1.0, 0, count, seeded(3), fast=True)
    pairs = list(zip(*drawn))  # (first, second) per continuation
    first = torch.softmax(model(prime[None])[0][0, -1], dim=-1)  # (V,)
    expected = {}
    for a, p_a in enumerate(first.tolist()):
        after = torch.softmax(model(torch.cat([prime, torch.tensor([a])])[None])[0][0, -1], dim=-1)  # (V,)
        for b, p_b in enumerate(after.tolist()):
            expected[VOCAB.symbols[a], VOCAB.symbols[b]] = count * p_a * p_b
    observed = {pair: 0 for pair in expected}
    for pair in pairs:
        observed[pair] += 1
    cells = [pair for pair, e in expected.items() if e >= 5]
    rest_expected = count - sum(expected[p] for p in cells)
    rest_observed = count - sum(observed[p] for p in cells)
    statistic = sum((observed[p] - expected[p]) ** 2 / expected[p] for p in cells)
    if rest_expected >= 5:
        statistic += (rest_observed - rest_expected) ** 2 / rest_expected
    df = len(cells) - (rest_expected < 5)
    assert df >= 10 and statistic < chi_square_critical(df), (statistic, df)


def test_a_diverged_model_is_still_refused_on_the_step():
    model = char_model()
    with torch.no_grad():
        model.decoder.bias.fill_(float("nan"))
    with pytest.raises(Exception, match="not finite"):
        sample(model, VOCAB, "a", 5)


def test_a_bidirectional_core_has_no_step():
    from rnnkit.errors import RnnkitError
    from rnnkit.models.core import make_core

    core = make_core(replace(ModelConfig(), hidden_size=4, num_layers=1), 3, bidirectional=True)
    with pytest.raises(RnnkitError, match="no single step"):
        core.step(torch.zeros(1, 3))


def test_a_subclass_that_writes_its_own_step_is_stepped_by_it():
    """torch's LSTM cell kernel runs only the LSTM's own equations: a subclass's step (here, a forget gate held
    at 1) is what its one step runs."""
    from rnnkit.cells import LSTMCell, LSTMState

    class Remembers(LSTMCell):
        def step(self, wx, state):
            h, c = state
            a_i, _, a_g, a_o = (wx + torch.nn.functional.linear(h, self.U, self.b_U)).chunk(4, dim=1)
            c = c + torch.sigmoid(a_i) * torch.tanh(a_g)
            return LSTMState(torch.sigmoid(a_o) * torch.tanh(c), c)

    cell, plain = Remembers(3, 4), LSTMCell(3, 4)
    plain.load_state_dict(cell.state_dict())
    x, state = torch.randn(2, 3), LSTMState(torch.randn(2, 4), torch.randn(2, 4))
    assert torch.equal(cell.one_step(x, state).c, cell.step(cell.project(x), state).c)
    assert not torch.equal(cell.one_step(x, state).c, plain.one_step(x, state).c)

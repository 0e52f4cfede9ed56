"""Tests for rnnkit/sample.py: temperature 0 and top-k 1 are greedy decoding (checked against a hand-written
loop), seeds fix the text, top-k draws only from the k most likely, and each new character costs one
(B, 1) step of the model."""

import pytest
import torch

from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.char_lm import CharLM
from rnnkit.sample import sample, seeded
from rnnkit.tasks.charlm import ModelConfig

VOCAB = Vocab.from_text("abcdefghijklmnopqrstuvwxyz .,\n")
PRIME = "the cat"
LENGTH = 40


@pytest.fixture
def model() -> CharLM:
    """An untrained one-layer CharLM; its embedding (N(0, 1)) spreads the logits enough for varied draws."""
    model = CharLM(len(VOCAB), ModelConfig(embedding_size=16, hidden_size=32, num_layers=1, dropout=0.0))
    model.reset_parameters(torch.Generator().manual_seed(0))
    return model


def record_forward(model: CharLM) -> list[dict]:
    """Wrap model.forward (the prime) and model.step (each token after it) so every call's input ids, as (B, T),
    and last-step logits are recorded."""
    calls, original, original_step = [], model.forward, model.step

    def forward(ids, state=None):
        logits, new_state = original(ids, state)
        calls.append({"ids": ids.clone(), "last_logits": logits[:, -1].clone()})  # (B, T), (B, V)
        return logits, new_state

    def step(ids, state=None):
        logits, new_state = original_step(ids, state)
        calls.append({"ids": ids[:, None].clone(), "last_logits": logits.clone()})  # (B, 1), (B, V)
        return logits, new_state

    model.forward, model.step = forward, step
    return calls


@torch.no_grad()
def greedy(model: CharLM, prime: str, length: int) -> str:
    """Greedy decoding written out: warm up on the prime, then feed each argmax back in."""
    model.eval()
    logits, state = model(VOCAB.encode(prime)[None], None)  # (1, P, V)
    text = ""
    for _ in range(length):
        next_id = logits[0, -1].argmax()
        text += VOCAB.symbols[next_id]
        logits, state = model(next_id.view(1, 1), state)  # (1, 1, V)
    return text


def test_temperature_zero_is_argmax(model):
    """temperature=0 gives the hand-written greedy loop's text, whatever generator is passed."""
    expected = greedy(model, PRIME, LENGTH)
    assert len(set(expected)) > 1  # a non-trivial continuation
    for generator in (None, seeded(1), seeded(2)):
        assert sample(model, VOCAB, PRIME, LENGTH, temperature=0, generator=generator) == [expected]
    assert sample(model, VOCAB, PRIME, LENGTH, temperature=0, num_samples=3) == [expected] * 3


def test_top_k_one_is_argmax(model):
    """Drawing from only the most likely character is greedy decoding, at any temperature."""
    expected = greedy(model, PRIME, LENGTH)
    for temperature in (0.5, 1.0, 3.0):
        assert sample(model, VOCAB, PRIME, LENGTH, temperature=temperature, top_k=1, generator=seeded(5)) == [expected]


def test_same_seed_same_text_different_seed_different_text(model):
    """The generator alone decides the draws: seeded(7) twice gives the same text, seeded(8) another."""
    first = sample(model, VOCAB, PRIME, LENGTH, temperature=1.0, generator=seeded(7))
    assert sample(model, VOCAB, PRIME, LENGTH, temperature=1.0, generator=seeded(7)) == first
    assert sample(model, VOCAB, PRIME, LENGTH, temperature=1.0, generator=seeded(8)) != first


def test_sampling_leaves_the_global_rng_alone(model):
    """Randomness is explicit: sampling with a generator draws nothing from torch's global RNG."""
    before = torch.get_rng_state()
    sample(model, VOCAB, PRIME, LENGTH, temperature=1.0, generator=seeded(7))
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("num_samples", [1, 3])
def test_num_samples_strings_of_the_requested_length(model, num_samples):
    """num_samples continuations come back, each exactly `length` characters from the vocabulary, prime excluded;
    with several samples side by side the draws differ between rows."""
    texts = sample(model, VOCAB, PRIME, LENGTH, temperature=1.0, num_samples=num_samples, generator=seeded(3))
    assert len(texts) == num_samples
    assert all(len(text) == LENGTH and set(text) <= set(VOCAB.symbols) for text in texts)
    assert len(set(texts)) == num_samples


def test_zero_length_gives_empty_strings(model):
    assert sample(model, VOCAB, PRIME, 0, num_samples=2) == ["", ""]


def test_top_k_draws_only_from_the_k_most_likely(model):
    """With top_k=3 every generated character is among the 3 highest logits of the step that produced it."""
    calls = record_forward(model)
    (text,) = sample(model, VOCAB, PRIME, LENGTH, temperature=2.0, top_k=3, generator=seeded(0))
    for position, character in enumerate(text):
        top = torch.topk(calls[position]["last_logits"][0], 3).indices.tolist()  # the step before this character
        assert VOCAB.index[character] in top, f"position {position}"
    assert len(set(text)) > 1  # it did not just take the argmax every time


def test_each_new_character_is_one_step(model):
    """The prime is run once; after that every call feeds exactly one character per row, the one just drawn:
    O(1) work per character, the prefix is never run again."""
    calls = record_forward(model)
    (text,) = sample(model, VOCAB, PRIME, LENGTH, temperature=1.0, generator=seeded(4))
    assert calls[0]["ids"].tolist() == [VOCAB.encode(PRIME).tolist()]
    single_steps = calls[1:]
    assert LENGTH - 1 <= len(single_steps) <= LENGTH
    assert all(call["ids"].shape == (1, 1) for call in single_steps)
    assert VOCAB.decode(call["ids"][0, 0] for call in single_steps) == text[: len(single_steps)]


def test_prime_with_unseen_characters_is_an_error(model):
    """A prime the vocabulary cannot encode is an RnnkitError naming the characters."""
    with pytest.raises(RnnkitError, match=r"'Z' \(U\+005A\)"):
        sample(model, VOCAB, "Zebra", 5)


def test_a_model_whose_outputs_are_not_finite_is_an_error_not_a_draw():
    """Diverged weights give NaN logits: sampling says so in one line instead of failing inside torch.multinomial."""
    from rnnkit.errors import RnnkitError

    model = CharLM(len(VOCAB), ModelConfig(embedding_size=8, hidden_size=8, num_layers=1, dropout=0.0))
    with torch.no_grad():
        model.decoder.bias.fill_(float("nan"))
    with pytest.raises(RnnkitError, match="outputs are not finite"):
        sample(model, VOCAB, PRIME, 5, temperature=1.0)


def test_a_temperature_below_float32s_range_is_argmax_not_nan():
    model = CharLM(len(VOCAB), ModelConfig(embedding_size=8, hidden_size=8, num_layers=1, dropout=0.0))
    model.reset_parameters(torch.Generator().manual_seed(0))
    assert sample(model, VOCAB, PRIME, 6, temperature=1e-300, generator=seeded(1)) == sample(
        model, VOCAB, PRIME, 6, temperature=0
    )

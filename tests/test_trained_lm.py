"""The language models from Python: rnnkit.load(...).sample and .score return data, check their arguments and
agree with the CLI and with the model's own loss."""

import math
from collections import Counter

import pytest
import torch.nn.functional as F

import rnnkit
from rnnkit.data.vocab import TokenVocab
from rnnkit.tasks.lm import Generated, LMData, Scored
from rnnkit.tasks.wordlm import SPECIALS, words


@pytest.fixture(scope="module", params=["charlm", "wordlm"])
def trained(request):
    task = rnnkit.TASKS[request.param]
    model, vocabularies, config = task.tiny_model()
    return task.trained(model.eval(), vocabularies, config, task)


def test_sample_gives_one_result_for_a_prime_and_a_list_for_a_list(trained):
    one = trained.sample("the", length=5, seed=2)
    assert isinstance(one, Generated) and one.prime == "the" and one.text.startswith("the")
    assert one == trained.sample("the", length=5, seed=2)  # the same seed, the same text
    several = trained.sample(["the", "a"], length=5)
    assert [g.prime for g in several] == ["the", "a"]
    assert len(trained.sample("the", length=5, num_samples=3)) == 3


def test_score_is_the_models_own_cross_entropy(trained):
    text = "the king is dead .\nlong live the king .\n"
    scored = trained.score(text)
    assert isinstance(scored, Scored) and len(scored.tokens) == len(scored.log_probabilities)
    ids = trained.task.scored_ids(trained.vocabularies, text)  # (N,)
    logits, _ = trained.model(ids[None, :-1], None)  # (1, N - 1, V)
    expected = -F.cross_entropy(logits[0].double(), ids[1:], reduction="sum").item()
    assert math.isclose(scored.total, expected, rel_tol=1e-9)
    assert all(p <= 0 for p in scored.log_probabilities)
    assert [s.text for s in trained.score([text, "the king"])] == [text, "the king"]


def test_a_grammar_the_model_learned_is_preferred():
    """A word LM trained on 'the dog runs / the dogs run' prefers the agreeing verb."""
    wordlm = rnnkit.TASKS["wordlm"]
    corpus = "\n".join(["the dog runs .", "the dogs run .", "a cat runs .", "the cats run ."] * 200)
    config = wordlm.build_config("tiny", {"train.max_steps": 150, "train.learning_rate": 1e-2})
    tokens = words(corpus)
    vocab = TokenVocab.from_counts(Counter(tokens), SPECIALS)
    ids = vocab.encode(tokens)
    data = LMData({"text": vocab}, ids[: len(ids) * 9 // 10], ids[len(ids) * 9 // 10 :], "toy grammar")
    model = wordlm.build_model(config, data.vocabularies)
    train_batches, _ = wordlm.batches(config, data)
    rnnkit.train(model, train_batches, config.train, wordlm.step_loss)
    trained = wordlm.trained(model.eval(), data.vocabularies, config, wordlm)
    good, bad = trained.score(["the dogs run .", "the dogs runs ."])
    assert good.total > bad.total


@pytest.mark.parametrize(
    "call, kind, named",
    [
        (lambda t: t.sample(["a"], lenght=3), TypeError, "lenght: not an argument here; did you mean length?"),
        (lambda t: t.sample("a", length=-1), ValueError, "length: must not be negative"),
        (lambda t: t.sample(3), TypeError, "prime: expected a text or a list of them, got int"),
        (lambda t: t.sample([]), ValueError, "prime: expected a text or a list of them, got an empty list"),
        (lambda t: t.sample("a", temperature="hot"), TypeError, "temperature: expected float, got str"),
        (lambda t: t.score(["a", 3]), TypeError, "texts[1]: expected a text, got int"),
        (lambda t: t.score(None), TypeError, "texts: expected a text or a list of them, got NoneType"),
    ],
)
def test_a_bad_argument_is_rnnkits_error_naming_it(trained, call, kind, named):
    with pytest.raises(kind, match=named.replace("[", r"\[").replace("]", r"\]").replace("?", r"\?")) as caught:
        call(trained)
    assert isinstance(caught.value, rnnkit.ArgumentError)


def test_help_shows_what_a_language_model_can_do(trained):
    import pydoc

    text = pydoc.render_doc(trained, renderer=pydoc.plaintext)
    assert "sample(" in text and "score(" in text and "evaluate(" in text and "save(" in text


def test_load_refuses_what_is_not_a_path_and_an_unknown_device(tmp_path):
    with pytest.raises(rnnkit.ArgumentTypeError, match="path: expected a file or directory name, got NoneType"):
        rnnkit.load(None)
    with pytest.raises(rnnkit.ArgumentTypeError, match="path: expected a file or directory name, got int"):
        rnnkit.load(42)
    with pytest.raises(rnnkit.ArgumentError, match="device: unknown device 'banana'"):
        rnnkit.load(tmp_path, device="banana")
    with pytest.raises(rnnkit.RnnkitError, match="neither best.pt"):
        rnnkit.load(tmp_path)

"""Next-token probabilities and minimal pairs for the language models (rnnkit/tasks/lm.py's next and score_pairs,
rnnkit/data/minimal_pairs.py, rnnkit/data/agreement.py, and `rnnkit charlm|wordlm next|score`, `wordlm pairs`)."""

import gzip
import math
import random
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from test_cli import run_main

import rnnkit
from rnnkit.checkpoint import save_checkpoint
from rnnkit.cli import build_parser, main
from rnnkit.commands.extras import EXTRA_COMMANDS
from rnnkit.data.agreement import CONSTRUCTIONS, agreement_pairs, vocabulary
from rnnkit.data.minimal_pairs import MinimalPair, read_pairs
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.tasks.lm import LMData, NextToken
from rnnkit.tasks.wordlm import SPECIALS, words

PTB_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb" / "ptb.train.txt.gz"


def toy_grammar(lines: int, seed: int = 0) -> str:
    """Sentences whose verb agrees with its subject: 'the dog runs', 'the dogs run', 'a cat sleeps', ..."""
    chooser = random.Random(seed)
    nouns, verbs = (("dog", "dogs"), ("cat", "cats"), ("bird", "birds")), (("runs", "run"), ("sleeps", "sleep"))
    sentences = []
    for _ in range(lines):
        plural = chooser.random() < 0.5
        determiner = "the" if plural else chooser.choice(("the", "a"))
        sentences.append(f"{determiner} {chooser.choice(nouns)[plural]} {chooser.choice(verbs)[plural]}")
    return "\n".join(sentences) + "\n"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tiny word model trained on the toy grammar, and its checkpoint file."""
    wordlm = rnnkit.TASKS["wordlm"]
    config = wordlm.build_config("tiny", {"train.max_steps": 300, "train.learning_rate": 2e-2})
    tokens = words(toy_grammar(800))
    vocab = TokenVocab.from_counts(Counter(tokens), SPECIALS)
    ids = vocab.encode(tokens)
    data = LMData({"text": vocab}, ids[: len(ids) * 9 // 10], ids[len(ids) * 9 // 10 :], "toy grammar")
    model = wordlm.build_model(config, data.vocabularies)
    rnnkit.train(model, wordlm.batches(config, data)[0], config.train, wordlm.step_loss)
    path = tmp_path_factory.mktemp("toy") / "toy.pt"
    save_checkpoint(
        path,
        {
            "task": "wordlm",
            "model": model.state_dict(),
            "config": asdict(config),
            "vocabularies": {"text": vocab.to_dict()},
            "step": config.train.max_steps,
        },
    )
    return wordlm.trained(model.eval(), data.vocabularies, config, wordlm), path


@pytest.fixture(scope="module", params=["charlm", "wordlm"])
def untrained(request):
    task = rnnkit.TASKS[request.param]
    model, vocabularies, config = task.tiny_model()
    return task.trained(model.eval(), vocabularies, config, task)


# --- next ------------------------------------------------------------------------------------------------------


def test_next_probabilities_over_the_whole_vocabulary_sum_to_one(untrained):
    size = len(untrained.vocabularies["text"])
    after = untrained.next("the ", top=size)
    assert after.vocab_size == size and len(after.top) == size
    assert math.isclose(sum(entry.probability for entry in after.top), 1.0, rel_tol=1e-9)
    assert [entry.rank for entry in after.top] == sorted(entry.rank for entry in after.top)
    assert after.top[0].rank == 1 and len({entry.token for entry in after.top}) == size


def test_next_is_the_softmax_after_the_whole_prime(toy):
    trained, _ = toy
    after = trained.next("the dogs", words=["run", "runs", "<eos>"])
    ids = trained.task.prime_ids(trained.vocabularies, "the dogs")  # (P,): <eos> the dogs
    with torch.no_grad():
        logits, _ = trained.model(ids[None], None)  # (1, P, V)
    expected = torch.softmax(logits[0, -1].double(), dim=-1)  # (V,)
    index = trained.vocabularies["text"].index
    for entry in after.candidates:
        assert isinstance(entry, NextToken)
        assert math.isclose(entry.probability, expected[index[entry.token]].item(), rel_tol=1e-5)
        assert entry.rank == int((expected > expected[index[entry.token]]).sum()) + 1
    run, runs, _ = after.candidates
    assert run.probability > runs.probability and run.rank < runs.rank  # the toy grammar was learned
    assert after.top == []  # words asked for and no top: only them


def test_next_on_the_command_line_lists_the_whole_vocabulary(toy, capsys):
    trained, checkpoint = toy
    size = len(trained.vocabularies["text"])
    code, out, err = run_main(["wordlm", "next", str(checkpoint), "--prime", "a cat", "--top", str(size)], capsys)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == size
    assert math.isclose(sum(float(row[2]) for row in rows), 1.0, rel_tol=1e-3)  # printed to 4 significant digits
    assert rows[0][1] in ("sleeps", "runs")
    code, out, _ = run_main(
        ["wordlm", "next", str(checkpoint), "--prime", "the cats", "--words", "sleep, sleeps"], capsys
    )
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["sleep", "sleeps"]


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--prime", "the", "--words", "is,zebra"], "--words: 'zebra' is not among the model's"),
        (["--prime", "the", "--words", "is,,are"], "--words: an empty item"),
        (["--prime", ""], "--prime: is empty"),
        (["--prime", "   "], "--prime: is empty"),
        (["--prime", "the", "--top", "-1"], "--top: must not be negative"),
    ],
)
def test_next_bad_input_is_one_line(args, expect, capsys):
    code, out, err = run_main(["wordlm", "next", "--dry-run", *args], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"rnnkit: error: {expect}") and err.count("\n") == 1
    if "zebra" in expect:
        assert "<unk>" in err  # says how the word would be read


def test_a_character_models_candidates_are_characters(capsys):
    code, out, _ = run_main(["charlm", "next", "--dry-run", "--prime", "th", "--words", "e, ,a"], capsys)
    assert code == 0 and [line[2:5] for line in out.splitlines()[1:4]] == ["e  ", "' '", "a  "]
    code, out, _ = run_main(["charlm", "next", "--dry-run", "--prime", "ROMEO:", "--words", r"\n,\,,:"], capsys)
    assert code == 0 and [line[2:5] for line in out.splitlines()[1:4]] == ["'\\n", ",  ", ":  "]  # escapes as shown
    code, _, err = run_main(["charlm", "next", "--dry-run", "--prime", "th", "--words", "er"], capsys)
    assert code == 2 and "--words: 'er' is not one character" in err
    code, _, err = run_main(["charlm", "next", "--dry-run", "--prime", "th", "--words", "é"], capsys)
    assert code == 2 and "'é' (U+00E9) is not among the" in err
    code, _, err = run_main(["charlm", "next", "--dry-run", "--prime", ""], capsys)
    assert code == 2 and "--prime: must have at least one character" in err


def test_next_reports_prime_words_read_as_unknown(toy):
    trained, _ = toy
    after = trained.next("the zebras", words="run")
    assert after.unknown == ["zebras"] and len(after.candidates) == 1
    assert [a.prime for a in trained.next(["the dog", "a cat"])] == ["the dog", "a cat"]
    assert len(trained.next("the dog").top) == 10  # no words asked: the 10 most likely


# --- reading pairs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["good\tbad\tconstruction\n", "sentence_good\tsentence_bad\n", ""])
def test_pairs_are_read_with_or_without_a_header(tmp_path, header):
    path = tmp_path / "pairs.tsv"
    path.write_text(f"{header}the dogs run\tthe dogs runs\tsimple\n\na cat sleeps\ta cat sleep\n", encoding="utf-8")
    pairs = read_pairs(str(path))
    assert [(p.good, p.bad, p.construction) for p in pairs] == [
        ("the dogs run", "the dogs runs", "simple"),
        ("a cat sleeps", "a cat sleep", "unnamed"),
    ]
    assert pairs[1].where == f"{path}:{4 if header else 3}"


@pytest.mark.parametrize(
    "content, expect",
    [
        (b"the dogs run\tthe dogs runs\nthe dogs run\n", ":2: one column"),
        (b"the dogs run\t \n", ":1: the unacceptable sentence is empty"),
        (b"\tthe dogs runs\n", ":1: the acceptable sentence is empty"),
        (b"a\tb\tc\td\n", ":1: 4 columns"),
        (b"the dogs run\tthe dogs runs\nthe cat\xff\tthe cats\n", "not UTF-8 at line 2, byte offset 34"),
        (b"\n\n", "no pairs"),
    ],
)
def test_a_bad_pairs_file_is_an_error_naming_file_and_line(tmp_path, content, expect):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(RnnkitError, match=expect) as caught:
        read_pairs(str(path))
    assert str(path) in str(caught.value)


# --- scoring pairs ---------------------------------------------------------------------------------------------

HAND_BUILT = [
    ("the dogs run", "the dogs runs", "plural"),
    ("the cats sleep", "the cats sleeps", "plural"),
    ("the dog runs", "the dog run", "singular"),
    ("a bird sleeps", "a bird sleep", "singular"),
    ("a cat runs", "a cat run", "singular"),
]


def test_a_model_that_learned_agreement_prefers_the_grammatical_sentence(toy):
    trained, _ = toy
    scores = trained.score_pairs(HAND_BUILT)
    assert scores.accuracy == 1.0 and all(s.margin > 0 for s in scores.scored)
    assert {name: (a.correct, a.total) for name, a in scores.by_construction().items()} == {
        "plural": (2, 2),
        "singular": (3, 3),
    }
    good, bad = trained.score(["the dogs run", "the dogs runs"])  # the margin is score's totals, nothing else
    assert math.isclose(scores.scored[0].margin, good.total - bad.total, rel_tol=1e-12)
    reversed_pairs = trained.score_pairs([(bad, good, kind) for good, bad, kind in HAND_BUILT])
    assert reversed_pairs.accuracy == 0.0


def test_identical_sentences_are_reported_not_scored_and_unknown_words_counted(toy):
    trained, _ = toy
    scores = trained.score_pairs(
        [("the dogs run", "the dogs run"), MinimalPair("the zebras run", "the zebras runs", "x"), HAND_BUILT[0]]
    )
    assert [p.good for p in scores.identical] == ["the dogs run"] and scores.identical[0].where == "pairs[0]"
    assert len(scores.scored) == 2 and scores.with_unknown == 1 and scores.scored[0].unknown == 2  # both sentences
    assert trained.score_pairs(HAND_BUILT[0]).scored[0].pair.construction == "plural"  # one pair alone
    with pytest.raises(TypeError, match=r"pairs\[0\]: expected \(acceptable, unacceptable"):
        trained.score_pairs([("only one",)])


def test_score_on_the_command_line_reports_and_writes(toy, tmp_path, capsys):
    _, checkpoint = toy
    pairs = tmp_path / "pairs.tsv"
    lines = ["good\tbad\tconstruction", *("\t".join(pair) for pair in HAND_BUILT), "the dogs run\tthe dogs run"]
    pairs.write_text("\n".join([*lines, "the zebras run\tthe zebras runs\tplural"]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code, printed, err = run_main(
        ["wordlm", "score", str(checkpoint), "--pairs", str(pairs), "--out", str(out)], capsys
    )
    assert code == 0, err
    assert "  singular  1.000  (3 of 3)" in printed
    assert "note: 1 of the pairs hold a word outside the vocabulary, read as <unk>" in printed
    assert f"note: 1 pair(s) left unscored, their two sentences the same: {pairs}:7" in printed
    margins = [float(line.split("\t")[0]) for line in printed.splitlines() if line.startswith(("+", "-"))]
    assert len(margins) == 6 and all(m > 0 for m in margins[:5])
    written = (out / "pairs.tsv").read_text(encoding="utf-8").splitlines()
    assert written[0].split("\t")[-2:] == ["margin", "unknown_words"] and len(written) == 7
    assert (out / "accuracy.png").read_bytes().startswith(b"\x89PNG")
    code, _, err = run_main(["wordlm", "score", str(checkpoint), "--pairs", str(pairs), "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err  # an earlier report is kept unless asked
    assert main(["wordlm", "score", str(checkpoint), "--pairs", str(pairs), "--out", str(out), "--overwrite"]) == 0


def test_score_bad_input_writes_nothing(toy, tmp_path, capsys):
    _, checkpoint = toy
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("the dogs run\tthe dogs runs\nonly one column\n", encoding="utf-8")
    out = tmp_path / "out"
    code, printed, err = run_main(
        ["wordlm", "score", str(checkpoint), "--pairs", str(pairs), "--out", str(out)], capsys
    )
    assert (
        code == 2 and printed == "" and err == f"rnnkit: error: --pairs: {pairs}:2: one column; " + err.split("; ")[1]
    )
    assert not out.exists()
    code, _, err = run_main(["wordlm", "score", str(checkpoint)], capsys)
    assert code == 2 and "needs --pairs FILE" in err
    code, _, err = run_main(["wordlm", "score", str(checkpoint), "--pairs", str(tmp_path / "none.tsv")], capsys)
    assert code == 2 and "none.tsv: no such file" in err


def test_a_character_model_scores_pairs_and_names_an_unseen_character(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("the dogs run\tthe dogs runs\n", encoding="utf-8")
    code, printed, _ = run_main(["charlm", "score", "--dry-run", "--pairs", str(pairs)], capsys)
    assert code == 0 and ("(0 of 1)" in printed or "(1 of 1)" in printed)
    pairs.write_text("the dogs run\tthe dögs runs\n", encoding="utf-8")
    code, _, err = run_main(["charlm", "score", "--dry-run", "--pairs", str(pairs)], capsys)
    assert code == 2 and f"{pairs}:1 (unacceptable sentence)" in err and "'ö' (U+00F6)" in err


# --- generating pairs ------------------------------------------------------------------------------------------


def test_generated_pairs_differ_in_exactly_the_verb():
    pairs = agreement_pairs(CONSTRUCTIONS, count=50, seed=3)
    assert len(pairs) == 50 * len(CONSTRUCTIONS)
    for pair in pairs:
        good, bad = pair.good.split(), pair.bad.split()
        differing = [k for k in range(len(good)) if good[k] != bad[k]]
        assert len(good) == len(bad) and differing == [len(good) - 1], pair  # the last word: the agreeing verb
    by_construction = Counter(pair.construction for pair in pairs)
    assert by_construction == dict.fromkeys(CONSTRUCTIONS, 50)


def test_generated_pairs_are_deterministic_by_seed_and_use_only_the_shipped_words():
    assert agreement_pairs(count=20, seed=7) == agreement_pairs(count=20, seed=7)
    assert agreement_pairs(count=20, seed=7) != agreement_pairs(count=20, seed=8)
    alone = agreement_pairs(["object_relative"], count=20, seed=7)  # independent of the other constructions
    assert alone == [p for p in agreement_pairs(count=20, seed=7) if p.construction == "object_relative"]
    used = {word for pair in agreement_pairs(count=200, seed=1) for word in f"{pair.good} {pair.bad}".split()}
    assert used <= vocabulary()
    assert all(word == word.lower() and word.isalpha() for word in used)  # PTB's text: lower case, no punctuation


def test_subjects_are_half_singular_half_plural():
    pairs = agreement_pairs(["simple"], count=40, seed=0)
    assert sum(pair.good.split()[1].endswith("s") for pair in pairs) == 20


@pytest.mark.skipif(not PTB_TRAIN.exists(), reason="Penn Treebank is not in ../shared/data/ptb")
def test_every_shipped_word_occurs_in_penn_treebank():
    with gzip.open(PTB_TRAIN, "rt", encoding="utf-8") as file:
        ptb = set(file.read().split())
    assert vocabulary() - ptb == set()


def test_pairs_command_writes_once_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "agreement.tsv"
    args = ["wordlm", "pairs", "--constructions", "simple,vp_coordination", "--count", "3", "--seed", "2"]
    code, printed, err = run_main([*args, "--out", str(out)], capsys)
    assert code == 0, err
    assert read_pairs(str(out)) == [
        MinimalPair(p.good, p.bad, p.construction, f"{out}:{k + 2}")
        for k, p in enumerate(agreement_pairs(["simple", "vp_coordination"], 3, 2))
    ]
    before = out.read_bytes()
    code, _, err = run_main([*args, "--seed", "5", "--out", str(out)], capsys)
    assert code == 2 and "already exists; pass --overwrite" in err and out.read_bytes() == before
    assert main([*args, "--seed", "5", "--out", str(out), "--overwrite"]) == 0 and out.read_bytes() != before
    code, _, err = run_main(["wordlm", "pairs", "--constructions", "simple,relative"], capsys)
    assert code == 2 and "--constructions: unknown ['relative']; choose from simple," in err
    code, printed, _ = run_main(["wordlm", "pairs", "--dry-run", "--out", str(tmp_path / "x.tsv")], capsys)
    assert code == 0 and len(printed.splitlines()) == 1 + 2 * len(CONSTRUCTIONS) and not (tmp_path / "x.tsv").exists()


# --- the commands are declared ---------------------------------------------------------------------------------


def test_extra_commands_are_declared_for_tasks_that_exist():
    assert set(EXTRA_COMMANDS) <= set(rnnkit.TASKS)
    tasks = next(a for a in build_parser()._actions if a.dest == "task").choices
    for task, commands in EXTRA_COMMANDS.items():
        actions = next(a for a in tasks[task]._actions if a.dest == "action").choices
        assert set(commands) <= set(actions)

"""The tagger: the CoNLL-U reader and writer, a loss that ignores padding, the conditioned tagger's teacher
forcing and decoding (greedy, beam, scheduled sampling), learning on the tiny data, its predictions as data
(predict, rnnkit.load(...).tag), and the CLI."""

import gzip
import random

import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, kill_then_resume, run_rnnkit, run_side_by_side
from test_distributed import assert_two_processes_train_like_one
from torch.testing import assert_close

import rnnkit
from rnnkit.data.conllu import read_conllu, to_conllu
from rnnkit.data.splits import split_files
from rnnkit.data.tagged import IGNORE, collate, encode_sentence
from rnnkit.data.text import input_lines
from rnnkit.decoding import beam_search
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.tasks import TASKS
from rnnkit.tasks.tagger import PredictConfig, Tagged
from rnnkit.train import train

tagger = TASKS["tagger"]

ROW = "\t".join


def word(n, form, upos, xpos="_"):
    return ROW([str(n), form, form.lower(), upos, xpos, "_", "0", "_", "_", "_"])


SAMPLE = (
    "\n".join(
        [
            "# newdoc id = a",
            "# sent_id = 1",
            "# text = Don't go.",
            ROW(["1-2", "Don't", *"_" * 8]),
            word(1, "Do", "AUX", "VBP"),
            word(2, "n't", "PART", "RB"),
            word(3, "go", "VERB", "VB"),
            ROW(["3.1", "gone", *"_" * 8]),
            word(4, ".", "PUNCT", "."),
            "",
            "# sent_id = 2",
            word(1, "Yes", "INTJ", "UH"),
            "",
            "",
        ]
    )
    + "\n"
)


# --- the reader and the writer ------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_reader_skips_comments_ranges_and_empty_nodes(tmp_path, compressed):
    path = tmp_path / ("s.conllu.gz" if compressed else "s.conllu")
    path.write_bytes(gzip.compress(SAMPLE.encode()) if compressed else SAMPLE.encode())
    first, second = read_conllu(path)
    assert first.words == ["Do", "n't", "go", "."] and first.upos == ["AUX", "PART", "VERB", "PUNCT"]
    assert first.xpos == ["VBP", "RB", "VB", "."] and first.where == f"{path}:1"
    assert second.words == ["Yes"] and second.where == f"{path}:11"
    assert (
        first.word_where(2) == f"{path}:7" and first.word_where(3) == f"{path}:9"
    )  # "go", and "." after the empty node 3.1


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    """Editors on Windows start UTF-8 files with U+FEFF: the comment it precedes stays a comment, and a
    sentence to predict keeps its first word."""
    (tmp_path / "bom.conllu").write_bytes(b"\xef\xbb\xbf" + SAMPLE.encode())
    (tmp_path / "plain.conllu").write_bytes(SAMPLE.encode())
    assert read_conllu(tmp_path / "bom.conllu")[0].words == read_conllu(tmp_path / "plain.conllu")[0].words
    (tmp_path / "in.txt").write_bytes(b"\xef\xbb\xbfgood film\nbad film\n")
    assert [line for line, _ in input_lines(str(tmp_path / "in.txt"))] == ["good film", "bad film"]


@pytest.mark.parametrize(
    "lines, expect",
    [
        ([word(1, "a", "DET"), "2\tb\tb\tNOUN"], "x.conllu:2: 4 tab-separated column(s); a CoNLL-U word line has 10"),
        ([word(1, "a", "DET"), ROW(["two", "b", *"_" * 8])], "x.conllu:2: ID 'two' is not a word number"),
        ([word(1, "a", "DET"), word(3, "b", "NOUN")], "x.conllu:2: word ID 3 where 2 comes next"),
        ([word(1, "a", "DET"), "", "# sent_id = 2", ROW(["1-2", "ab", *"_" * 8]), ""], "x.conllu:3: an empty sentence"),
        ([word(1, " a", "DET")], "x.conllu:1: FORM ' a' begins or ends with whitespace"),
        ([ROW(["1", "a", "a", "", "_", "_", "0", "_", "_", "_"])], "x.conllu:1: column UPOS is empty"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, lines, expect):
    path = tmp_path / "x.conllu"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RnnkitError) as error:
        read_conllu(path)
    assert str(error.value).startswith(str(tmp_path / expect.split(":")[0])) and expect.split(":", 1)[1] in str(
        error.value
    )


def test_written_conllu_reads_back_unchanged(tmp_path):
    sentences = [
        (["The", "old", "man", "the", "boat", "."], ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"]),
        (["Hi"], ["INTJ"]),
    ]
    path = tmp_path / "out.conllu"
    path.write_text("".join(to_conllu(w, t, k + 1) for k, (w, t) in enumerate(sentences)))
    assert [(s.words, s.upos) for s in read_conllu(path)] == sentences
    assert all(
        len(line.split("\t")) == 10 for line in path.read_text().splitlines() if line and not line.startswith("#")
    )


def test_split_files_finds_ud_names(tmp_path):
    for name in (
        "en_ewt-ud-train.conllu.gz",
        "en_ewt-ud-dev.conllu",
        "en_ewt-ud-test.conllu",
        "LICENSE.txt",
        "retrain.txt",
    ):
        (tmp_path / name).write_text("x")
    assert {k: p.name for k, p in split_files(tmp_path).items()} == {
        "train": "en_ewt-ud-train.conllu.gz",
        "dev": "en_ewt-ud-dev.conllu",
        "test": "en_ewt-ud-test.conllu",
    }
    (tmp_path / "a-dev.conllu").write_text("x")
    (tmp_path / "b-dev.conllu").write_text("x")
    (tmp_path / "en_ewt-ud-dev.conllu").unlink()
    with pytest.raises(RnnkitError, match="several dev files"):
        split_files(tmp_path)


# --- the model ----------------------------------------------------------------------------------------
def tiny(changes=None, **model):
    config = tagger.build_config("tiny", {**(changes or {}), **{f"model.{k}": v for k, v in model.items()}})
    data = tagger.load_data(config, tiny=True)
    return config, data, tagger.build_model(config, data.vocabularies)


def batch_of(data, config, sentences):
    encoded = [encode_sentence(s.words, s.upos, data.vocabularies, config.data.lowercase) for s in sentences]
    return collate(encoded, data.vocabularies["words"].index["<pad>"], data.vocabularies["chars"].index["<pad>"])


@pytest.mark.parametrize("conditioned", [False, True])
def test_padding_changes_neither_the_logits_nor_the_loss(conditioned):
    """A sentence padded beside a longer one gets the logits it gets alone (both directions), and the
    loss counts its valid words only."""
    config, data, model = tiny(conditioned=conditioned)
    model.eval()
    short, long = (
        sorted(data.val[:20], key=lambda s: len(s.words))[0],
        sorted(data.val[:20], key=lambda s: len(s.words))[-1],
    )
    assert len(short.words) < len(long.words)
    alone, padded = batch_of(data, config, [short]), batch_of(data, config, [short, long])
    logits_alone = model(alone.words, alone.lengths, alone.chars, alone.char_lengths, alone.tags)
    logits_padded = model(padded.words, padded.lengths, padded.chars, padded.char_lengths, padded.tags)
    assert_close(logits_padded[0, : len(short.words)], logits_alone[0], atol=1e-5, rtol=1e-5)
    assert (padded.tags[0, len(short.words) :] == IGNORE).all()
    with torch.no_grad():
        loss_alone, count_alone = tagger.loss(model, alone)
        loss_long, count_long = tagger.loss(model, batch_of(data, config, [long]))
        loss_both, count_both = tagger.loss(model, padded)
    assert count_both == count_alone + count_long == len(short.words) + len(long.words)
    assert float(loss_both) == pytest.approx(
        (float(loss_alone) * count_alone + float(loss_long) * count_long) / count_both, rel=1e-5
    )


def recording(model):
    """Record every tag id the conditioned tagger's φ_y reads."""
    seen = []
    model.tag_embedding.register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    return seen


def test_teacher_forcing_reads_the_gold_tags_and_decoding_its_own():
    config, data, model = tiny(conditioned=True)
    model.eval()
    batch = batch_of(data, config, data.val[:3])
    seen = recording(model)
    model(batch.words, batch.lengths, batch.chars, batch.char_lengths, batch.tags)
    start = torch.full((3, 1), model.start_id)
    gold = batch.tags.clamp(min=0)
    assert torch.equal(seen[-1], torch.cat([start, gold[:, :-1]], dim=1))  # y_{t-1} = the gold tags, shifted
    seen.clear()
    own = model.decode(
        batch.words, batch.lengths, batch.chars, batch.char_lengths
    )  # (B, T): untrained, so not the gold ones
    assert len(seen) == int(batch.lengths.max())  # one φ_y call per step, on the sentences not yet tagged whole
    for t, fed in enumerate(seen):
        live = (batch.lengths > t).nonzero()[:, 0]  # the sentences with a word at t
        assert torch.equal(fed, start[live, 0] if t == 0 else own[live, t - 1])
    assert not torch.equal(own * (batch.tags != IGNORE), gold * (batch.tags != IGNORE))


def test_beam_width_1_is_greedy_and_wider_beams_score_at_least_as_well():
    config, data, model = tiny(conditioned=True)
    model.eval()
    batch = batch_of(data, config, data.val[:6])
    greedy_tags = model.decode(batch.words, batch.lengths, batch.chars, batch.char_lengths, beam_width=1)
    encoded = model.encode(batch.words, batch.lengths, batch.chars, batch.char_lengths)
    start = torch.full((6,), model.start_id)
    one = beam_search(model.step_function, encoded, None, start, 1, encoded.shape[1], lengths=batch.lengths, pad_id=0)
    assert torch.equal(one.tokens[:, 0], greedy_tags)
    scores = {}
    for width in (1, 4):
        found = beam_search(
            model.step_function,
            encoded,
            None,
            start,
            width,
            encoded.shape[1],
            lengths=batch.lengths,
            pad_id=0,
        )
        scores[width] = found.scores[:, 0]
    assert (scores[4] >= scores[1] - 1e-9).all()


def test_scheduled_sampling_feeds_the_models_own_tags():
    config, data, model = tiny(conditioned=True, sampling_probability=1.0)
    model.train()
    torch.manual_seed(0)
    batch = batch_of(data, config, data.val[:4])
    seen = recording(model)
    logits = model(batch.words, batch.lengths, batch.chars, batch.char_lengths, batch.tags)  # (B, T, K)
    fed = torch.stack(seen, dim=1)  # (B, T)
    assert torch.equal(fed[:, 1:], logits[:, :-1].argmax(-1))  # every y_{t-1} its own guess at probability 1
    tagger.loss(model, batch)[0].backward()
    assert model.decoder.cell.W_y.grad.abs().sum() > 0


@pytest.mark.parametrize("conditioned", [False, True])
def test_the_tiny_preset_learns_tags_that_need_context(conditioned):
    """'book' and 'run' are NOUN after a determiner and VERB after a pronoun: both taggers learn it."""
    config, data, model = tiny(conditioned=conditioned)
    batches, val = tagger.batches(config, data)
    before = tagger.evaluate(model, val)["accuracy"]
    train(model, batches, config.train, tagger.step_loss)
    after = tagger.evaluate(model, val)
    assert after["accuracy"] > 0.97 and after["accuracy"] > before + 0.3, (before, after["accuracy"])
    assert after["sentence_accuracy"] > 0.8
    tagged = tagger.trained(model, data.vocabularies, config, tagger).tag(
        [["they", "book", "a", "run", "."], "the book runs a run ."]
    )
    tags = [t.tags for t in tagged]
    assert tags == [["PRON", "VERB", "DET", "NOUN", "PUNCT"], ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"]]


def test_unseen_words_are_counted_and_scored_apart(tmp_path):
    config, data, model = tiny()
    path = tmp_path / "dev.conllu"
    path.write_text(
        "\n".join([word(1, "the", "DET"), word(2, "zorblax", "NOUN"), word(3, "runs", "VERB"), word(4, ".", "PUNCT")])
        + "\n"
    )
    [(name, batches)] = tagger.eval_data(str(path), data.vocabularies, config).items()
    metrics = tagger.evaluate(model, batches)
    assert metrics["unseen_words"] == 1 and metrics["unseen_accuracy"] in (0.0, 1.0) and metrics["examples"] == 4


# --- predictions as data -------------------------------------------------------------------------------
@pytest.mark.parametrize("conditioned", [False, True])
def test_predict_yields_each_sentences_tags_and_the_probability_of_each(conditioned):
    """One Tagged per sentence, in order, a tag and a probability per word; the probability is μ of the tag
    chosen (greedily: the most probable one, so at least 1/K), whatever the batch the sentence is tagged in."""
    config, data, model = tiny(conditioned=conditioned)
    sentences = [s.words for s in data.val[:7]]
    tagged = list(tagger.predict(model, data.vocabularies, sentences, PredictConfig(batch_size=3)))
    assert [type(t) for t in tagged] == [Tagged] * 7 and [t.words for t in tagged] == sentences
    symbols, K = data.vocabularies["tags"].symbols, len(data.vocabularies["tags"])
    for t in tagged:
        assert len(t.tags) == len(t.probabilities) == len(t.words) and set(t.tags) <= set(symbols)
        assert all(isinstance(p, float) and 1 / K - 1e-6 <= p <= 1 for p in t.probabilities)
    model.eval()
    batch = batch_of(data, config, data.val[:7])
    chosen = torch.tensor(
        [[symbols.index(tag) for tag in t.tags] + [0] * (batch.words.shape[1] - len(t.tags)) for t in tagged]
    )
    mu = model(batch.words, batch.lengths, batch.chars, batch.char_lengths, chosen).softmax(-1)  # (B, T, K)
    for b, t in enumerate(tagged):
        n = len(t.words)
        assert_close(
            torch.tensor(t.probabilities), mu[b, :n].gather(-1, chosen[b, :n, None])[:, 0], atol=1e-5, rtol=1e-5
        )
        assert_close(torch.tensor(t.probabilities), mu[b, :n].max(-1).values, atol=1e-5, rtol=1e-5)  # greedy
    alone = list(tagger.predict(model, data.vocabularies, sentences[3:4], PredictConfig()))
    assert alone[0].tags == tagged[3].tags
    assert_close(torch.tensor(alone[0].probabilities), torch.tensor(tagged[3].probabilities), atol=1e-5, rtol=1e-5)


def test_predict_reads_words_lowercased_as_the_run_trained():
    """config.data.lowercase: the embedding looks up 'The' as 'the' (a known word), or as written (unseen)."""
    config, data, _ = tiny()
    assert "the" in data.vocabularies["words"].index and "The" not in data.vocabularies["words"].index
    for lowercase, expect in ((True, "the"), (False, "The")):
        model = tagger.build_model(tagger.build_config("tiny", {"data.lowercase": lowercase}), data.vocabularies)
        seen = []
        model.embedding.register_forward_hook(lambda module, args, output, seen=seen: seen.append(args[0].clone()))
        list(tagger.predict(model, data.vocabularies, [["The", "dog"]], PredictConfig()))
        assert seen[-1][0, 0] == data.vocabularies["words"].encode([expect])[0]


def test_tag_takes_a_sentence_or_a_list_and_answers_in_kind():
    config, data, model = tiny(conditioned=True)
    trained = tagger.trained(model.eval(), data.vocabularies, config, tagger)
    one = trained.tag("the dog runs .")
    assert isinstance(one, Tagged) and one.words == ["the", "dog", "runs", "."] and len(one.tags) == 4
    several = trained.tag(["the dog runs .", ["a", "cat"]], beam_width=3, batch_size=1)
    assert isinstance(several, list) and [t.words for t in several] == [one.words, ["a", "cat"]]
    assert trained.tag(("the dog runs .",))[0].tags == one.tags
    assert trained.tag([["the", "dog", "runs", "."]], beam_width=1)[0] == one


@pytest.mark.parametrize(
    "call, error, named",
    [
        (lambda tag: tag(3), ArgumentTypeError, "sentences"),
        (lambda tag: tag([]), ArgumentError, "sentences"),
        (lambda tag: tag("  "), ArgumentError, "sentences"),
        (lambda tag: tag(["the dog", ""]), ArgumentError, "sentences[1]"),
        (lambda tag: tag(["the dog", 7]), ArgumentTypeError, "sentences[1]"),
        (lambda tag: tag([["the", ["dog"]]]), ArgumentTypeError, "sentences[0][1]"),  # a list where a word goes
        (lambda tag: tag([["the dog"]]), ArgumentError, "sentences[0][0]"),  # a sentence where a word goes
        (lambda tag: tag("the dog", beam_width="2"), ArgumentTypeError, "beam_width"),  # a string where a number goes
        (lambda tag: tag("the dog", beam_width=[2]), ArgumentTypeError, "beam_width"),
        (lambda tag: tag("the dog", beam_width=0), ArgumentError, "beam_width"),
        (lambda tag: tag("the dog", batch_size=0), ArgumentError, "batch_size"),
        (lambda tag: tag("the dog", beam=2), ArgumentTypeError, "beam"),
    ],
)
def test_tag_names_a_bad_argument(call, error, named):
    config, data, model = tiny()
    trained = tagger.trained(model.eval(), data.vocabularies, config, tagger)
    with pytest.raises(error) as raised:
        call(trained.tag)
    assert str(raised.value).startswith(f"{named}: ")


# --- the command line ---------------------------------------------------------------------------------
def test_every_tagger_subcommand_has_a_fast_dry_run(tmp_path):
    runs = run_side_by_side(*((("tagger", action, "--dry-run"), tmp_path) for action in ("train", "tag", "eval")))
    for result in runs:
        assert_ok(result)
    train_run, tag_run, eval_run = runs
    assert "trained 120 steps on generated tiny sentences" in train_run.stdout
    assert all("/" in pair for pair in tag_run.stdout.split())
    assert "accuracy" in eval_run.stdout and "confusion" in eval_run.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagger")
    assert_ok(
        run_rnnkit(
            "tagger", "train", "--preset", "tiny", "--model.conditioned=true", "--out", "run", "--quiet", cwd=root
        )
    )
    return root


def test_tag_prints_pairs_or_conllu_that_reads_back(trained):
    (trained / "in.txt").write_text("they book the red film .\nthe old dog sees a run .\n")
    pairs = run_rnnkit("tagger", "tag", "run/best.pt", "--input", "in.txt", "--beam_width", "3", cwd=trained)
    assert_ok(pairs)
    assert pairs.stdout.splitlines()[0] == "they/PRON book/VERB the/DET red/ADJ film/NOUN ./PUNCT"
    loaded = rnnkit.load(trained / "run")
    tagged = loaded.tag((trained / "in.txt").read_text().splitlines(), beam_width=3)
    assert [" ".join(f"{w}/{t}" for w, t in zip(s.words, s.tags)) for s in tagged] == pairs.stdout.splitlines()
    conllu = run_rnnkit(
        "tagger", "tag", "run/best.pt", "--input", "in.txt", "--format", "conllu", "--batch_size", "1", cwd=trained
    )
    assert_ok(conllu)
    (trained / "tagged.conllu").write_text(conllu.stdout)
    back = read_conllu(trained / "tagged.conllu")
    assert [s.words for s in back] == [line.split() for line in (trained / "in.txt").read_text().splitlines()]
    assert [" ".join(f"{w}/{t}" for w, t in zip(s.words, s.upos)) for s in back] == pairs.stdout.splitlines()


def test_eval_decodes_with_a_beam_and_draws_the_confusion_matrix(trained):
    (trained / "dev.conllu").write_text(
        "\n".join(
            [
                word(1, "we", "PRON"),
                word(2, "run", "VERB"),
                word(3, "a", "DET"),
                word(4, "book", "NOUN"),
                word(5, ".", "PUNCT"),
            ]
        )
        + "\n"
    )
    result = run_rnnkit(
        "tagger", "eval", "run/best.pt", "--data", "dev.conllu", "--beam_width", "4", "--out", "figures", cwd=trained
    )
    assert_ok(result)
    assert "accuracy 100.00%" in result.stdout and "sentences 100.00%" in result.stdout
    assert (trained / "figures" / "confusion.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "content, expect",
    [
        (
            word(1, "we", "PRON") + "\n" + word(2, "run", "VRB") + "\n",
            "dev.conllu:2: UPOS tag 'VRB' (of 'run') is not one of the 6 tags trained on",
        ),
        (word(1, "we", "PRON") + "\n2\trun\n", "dev.conllu:2: 2 tab-separated column(s)"),
    ],
)
def test_eval_on_bad_gold_data_is_one_line(trained, content, expect):
    (trained / "dev.conllu").write_text(content)
    result = run_rnnkit("tagger", "eval", "run/best.pt", "--data", "dev.conllu", cwd=trained)
    assert_one_line_error(result.returncode, result.stderr, expect)


def test_tag_refuses_an_empty_line_and_a_bad_beam_naming_them(trained):
    (trained / "in.txt").write_bytes(b"we run\n  \nbad\n")
    result = run_rnnkit("tagger", "tag", "run/best.pt", "--input", "in.txt", "--batch_size", "1", cwd=trained)
    assert result.returncode == 2 and result.stderr.strip().endswith(
        "in.txt:2: an empty line (one sentence per line, words split on spaces; there is nothing to tag)"
    )
    assert result.stdout == "we/PRON run/VERB\n"  # what came before was written
    result = run_rnnkit("tagger", "tag", "run/best.pt", "--text", "we run", "--beam_width", "0", cwd=trained)
    assert_one_line_error(result.returncode, result.stderr, "--beam-width: must be at least 1")


KILL_RUN = (
    "--preset",
    "tiny",
    "--quiet",
    "--train.max_steps=60",
    "--train.eval_interval=20",
    "--model.conditioned=true",
    "--model.input_dropout=0.2",
    "--model.word_dropout=0.1",
)


def test_sigkill_then_resume_equals_uninterrupted_for_the_tagger(tmp_path):
    straight, _ = kill_then_resume(tmp_path, "tagger", KILL_RUN, random.Random(5).randint(3, 50))
    assert all("words_per_second" in r for r in straight)


def test_two_gloo_processes_train_the_tagger_like_one(tmp_path):
    """The ranks' halves of a batch hold different numbers of words: the loss is weighted so the
    averaged gradient is the global batch's per-word mean."""
    assert_two_processes_train_like_one(
        tmp_path,
        "tagger",
        "train",
        "--preset",
        "tiny",
        "--quiet",
        "--train.batch_size=8",
        "--train.lr_schedule=constant",
        "--train.max_steps=6",
        "--train.eval_interval=3",
        steps=6,
    )


def test_best_by_accuracy_keeps_the_most_accurate_checkpoint(tmp_path):
    """--train.best_by=accuracy: best.pt is the evaluation with the highest accuracy, which the summary names;
    a task without accuracy refuses it before training."""
    result = run_rnnkit(
        "tagger",
        "train",
        "--preset",
        "tiny",
        "--quiet",
        "--out",
        "run",
        "--train.best_by=accuracy",
        "--train.max_steps=40",
        "--train.eval_interval=10",
        cwd=tmp_path,
    )
    assert_ok(result)
    import json

    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in records if r.get("val_loss") is not None]
    best = [r for r in evaluated if r["is_best"]][-1]
    assert best["val_accuracy"] == max(r["val_accuracy"] for r in evaluated)
    assert f"best val accuracy at step {best['step']}" in result.stdout
    refused = run_rnnkit("charlm", "train", "--dry-run", "--train.best_by=accuracy", cwd=tmp_path)
    assert_one_line_error(refused.returncode, refused.stderr, "charlm reports no accuracy")


def test_a_form_with_a_space_is_read_and_written_back_unchanged(tmp_path):
    """UD v2 allows a space inside FORM and LEMMA ("New York"); the word stays one word."""
    path = tmp_path / "x.conllu"
    path.write_text("\n".join([word(1, "New York", "PROPN"), word(2, "sleeps", "VERB")]) + "\n\n")
    (sentence,) = read_conllu(path)
    assert sentence.words == ["New York", "sleeps"] and sentence.upos == ["PROPN", "VERB"]
    written = to_conllu(sentence.words, sentence.upos, 1)
    assert "1\tNew York\t_\tPROPN" in written
    (tmp_path / "back.conllu").write_text(written)
    assert read_conllu(tmp_path / "back.conllu")[0].words == ["New York", "sleeps"]

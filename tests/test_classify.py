"""The many-to-one classifier: readout that never reads padding, the σ(vᵀh_l) head, the readers (tables and
treebank trees), bucketed batches, metrics, learning on the tiny data, and the CLI as a user runs it."""

import io
import random
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from test_cli import assert_ok, assert_one_line_error, kill_then_resume, run_rnnkit, run_side_by_side
from test_distributed import assert_two_processes_train_like_one
from torch.testing import assert_close

from rnnkit.data.labelled import parse_tree, read_table, read_trees
from rnnkit.data.padded import LengthBuckets
from rnnkit.data.tagged import MAX_CHARS, char_vocab
from rnnkit.data.vocab import PAD, UNK, TokenVocab
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.metrics import classification_metrics, confusion_matrix
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.readout import last_valid, readout
from rnnkit.tasks import TASKS, classify
from rnnkit.train import train

classifier = TASKS["classify"]


# --- readout ----------------------------------------------------------------------------------------
def test_last_valid_takes_each_rows_last_real_step():
    outputs = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [99.0]]])  # (B=2, T=3, H=1); 99 is padding
    assert last_valid(outputs, torch.tensor([3, 2])).tolist() == [[3.0], [5.0]]


def test_bidirectional_readout_joins_forward_end_and_backward_start():
    # H = 2: the first feature is the forward direction's, the second the backward one's
    outputs = torch.tensor([[[1.0, 10.0], [2.0, 20.0], [9.0, 90.0]]])  # (1, 3, 2); step 2 is padding
    assert readout(outputs, torch.tensor([2]), "last", bidirectional=True).tolist() == [[2.0, 10.0]]


def test_mean_and_max_pool_over_valid_steps_only():
    outputs = torch.tensor([[[1.0], [3.0], [100.0]]])  # (1, 3, 1); step 2 is padding
    assert readout(outputs, torch.tensor([2]), "mean").tolist() == [[2.0]]
    assert readout(outputs, torch.tensor([2]), "max").tolist() == [[3.0]]


def tiny_classifier(num_classes: int, **changes) -> SequenceClassifier:
    config = replace(classify.ModelConfig(), embedding_size=6, hidden_size=5, num_layers=2, dropout=0.0, **changes)
    model = SequenceClassifier(num_classes, config, vocab_size=12)
    model.reset_parameters(torch.Generator().manual_seed(0))
    return model.eval()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("how", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_padded_text_gets_the_prediction_it_gets_alone(bidirectional, how, cell):
    model = tiny_classifier(3, bidirectional=bidirectional, readout=how, cell=cell)
    short, long = torch.tensor([3, 5, 7]), torch.tensor([2, 4, 6, 8, 10, 11])
    padded = torch.stack([torch.cat([short, torch.tensor([9, 9, 9])]), long])  # (2, 6): 9 pads the short one
    together = model(padded, torch.tensor([3, 6]))  # (2, K)
    alone = torch.cat([model(short[None], torch.tensor([3])), model(long[None], torch.tensor([6]))])  # (2, K)
    assert_close(together, alone)


def test_the_binary_head_is_sigma_of_v_dot_h_and_agrees_with_a_two_class_softmax():
    model = tiny_classifier(2, bidirectional=True)
    ids, lengths = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]), torch.tensor([4, 2])
    logits = model(ids, lengths)  # (B,)
    h = model.encode(ids, lengths)  # (B, H)
    assert logits.shape == (2,)
    assert_close(logits, h @ model.head.weight[0] + model.head.bias[0])  # z = vᵀh_l + b
    labels = torch.tensor([1, 0])
    two_class = torch.stack([torch.zeros_like(logits), logits], dim=-1)  # softmax([0, z]) = [1 − σ(z), σ(z)]
    assert_close(classify.class_loss(logits, labels), F.cross_entropy(two_class, labels))
    assert_close(classify.probabilities(logits), torch.softmax(two_class, dim=-1))


def spelling_classifier(words: list[str], **changes) -> tuple[SequenceClassifier, dict]:
    """A tiny classifier that reads each word's letters too, knowing `words`, and its vocabularies."""
    config = classifier.build_config("tiny", {"model.char_hidden_size": 4, "model.char_embedding_size": 3, **changes})
    vocabularies = {
        "text": TokenVocab(words, [PAD, UNK]),
        "labels": TokenVocab(["negative", "positive"]),
        "chars": char_vocab(words),
    }
    return classifier.build_model(config, vocabularies).eval(), vocabularies


def test_characters_read_unseen_words_by_their_spelling_and_ignore_padding():
    model, vocabularies = spelling_classifier(["good", "film"])
    inputs = [
        classify.text_ids(words, vocabularies) for words in (["good", "film"], ["good", "flim"], ["good", "xyzzy"])
    ]
    assert inputs[0].shape == (2, 1 + MAX_CHARS) and inputs[1][1, 0] == inputs[2][1, 0] == vocabularies["text"].unk_id
    alone = torch.cat([model(x[None]) for x in inputs])  # (3,): one logit each
    assert alone[1] != alone[2]  # two unseen words, both <unk> by id, read differently by their letters
    padded = torch.stack(
        [inputs[0], torch.cat([inputs[1][:1], torch.zeros_like(inputs[1][1:])])]
    )  # (2, 2, 1 + L): row 1 padded
    assert_close(model(padded, torch.tensor([2, 1])), torch.cat([alone[:1], model(inputs[1][None, :1])]))


@pytest.mark.parametrize("letters", [True, False])
def test_unk_dropout_reads_words_as_unknown_in_training_only(letters):
    model, vocabularies = spelling_classifier(
        ["good", "film"],
        **{"model.unk_dropout": 1 - 1e-12, "model.input_dropout": 0.0, "model.char_hidden_size": 4 if letters else 0},
    )
    if not letters:
        del vocabularies["chars"]  # word ids alone, (T,)
    known, unseen = classify.text_ids(["good", "film"], vocabularies), classify.text_ids(["good", "flim"], vocabularies)
    assert unseen[1].flatten()[0] == vocabularies["text"].unk_id
    if letters:
        unseen[:, 1:] = known[:, 1:]  # the same letters: only the ids differ
    model.train()
    assert torch.equal(model.encode(known[None]), model.encode(unseen[None]))
    model.eval()
    assert not torch.allclose(model.encode(known[None]), model.encode(unseen[None]))


# --- readers ----------------------------------------------------------------------------------------
def test_tree_parser_gives_the_root_then_every_phrase():
    nodes = parse_tree("(3 (2 It) (4 (2 's) (3 (3 lovely) (2 film))))", "t:1")
    assert nodes[0] == ("3", ["It", "'s", "lovely", "film"])
    assert ("4", ["'s", "lovely", "film"]) in nodes and ("2", ["It"]) in nodes and len(nodes) == 7


@pytest.mark.parametrize(
    "line, expect",
    [
        ("(3 (2 It) (4 good)", "never closed"),
        ("(3 (2 It)) extra", "text after the tree"),
        ("((2 It))", "must start with its label"),
        ("(3 )", "has no words"),
        ("3 (2 It)", r"expected '\('"),
    ],
)
def test_tree_parser_names_the_line_of_a_malformed_tree(line, expect):
    with pytest.raises(RnnkitError, match=expect) as error:
        parse_tree(line, "trees.txt:7")
    assert "trees.txt:7" in str(error.value)


def test_sst_label_schemes(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text("(0 (0 awful))\n(1 (1 dull))\n(2 (2 fine))\n(3 (3 good))\n(4 (4 great))\n")
    assert [e.label for e in read_trees(path, "sst3")] == ["negative", "negative", "neutral", "positive", "positive"]
    assert [e.label for e in read_trees(path, "sst2")] == [
        "negative",
        "negative",
        "positive",
        "positive",
    ]  # neutral dropped
    assert [e.label for e in read_trees(path, "sst5")] == [
        "very negative",
        "negative",
        "neutral",
        "positive",
        "very positive",
    ]
    (tmp_path / "bad.txt").write_text("(7 (7 what))\n")
    with pytest.raises(RnnkitError, match=r"bad.txt:1: label '7'"):
        read_trees(tmp_path / "bad.txt", "sst3")


def test_phrases_add_every_labelled_subtree(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text("(3 (2 It) (4 (3 lovely) (2 film)))\n")
    assert len(read_trees(path, "sst5")) == 1
    assert [e.words for e in read_trees(path, "sst5", phrases=True)] == [
        ["it", "lovely", "film"],
        ["it"],
        ["lovely", "film"],
        ["lovely"],
        ["film"],
    ]


def test_unique_phrases_keep_each_labelled_text_once(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text(
        "(3 (2 The) (3 film))\n(1 (2 the) (1 (1 dull) (2 film)))\n"
    )  # "the" twice as neutral (case folded); "film" as 3 and 2
    every = read_trees(path, "sst5", phrases=True)
    once = read_trees(path, "sst5", phrases=True, unique=True)
    assert len(every) == 8
    assert [(e.words, e.label, e.where.rsplit(":", 1)[1]) for e in once] == [
        (["the", "film"], "positive", "1"),
        (["the"], "neutral", "1"),
        (["film"], "positive", "1"),
        (["the", "dull", "film"], "negative", "2"),
        (["dull", "film"], "negative", "2"),
        (["dull"], "negative", "2"),
        (["film"], "neutral", "2"),
    ]  # the same words under another label are another example


def test_table_reader_by_name_by_number_and_csv_quoting(tmp_path):
    (tmp_path / "a.tsv").write_text("sentence\tlabel\nA Fine Film \t1\nawful\t0\n")
    assert [(e.words, e.label) for e in read_table(tmp_path / "a.tsv")] == [
        (["a", "fine", "film"], "1"),
        (["awful"], "0"),
    ]
    (tmp_path / "b.tsv").write_text("pos\tgood film\nneg\tbad\n")
    assert [e.label for e in read_table(tmp_path / "b.tsv", text_column="1", label_column="0", header=False)] == [
        "pos",
        "neg",
    ]
    (tmp_path / "c.csv").write_text('text,label\n"good, really",yes\n')
    assert read_table(tmp_path / "c.csv", text_column="text")[0].words == ["good,", "really"]


@pytest.mark.parametrize(
    "content, columns, expect",
    [
        ("sentence\tlabel\ngood\t1\nbad\n", {}, r"a.tsv:3: 1 column\(s\)"),
        ("sentence\tlabel\ngood\t1\n\nbad\t0\n", {}, r"a.tsv:3: an empty line"),
        ("sentence\tlabel\n \t1\n", {}, r"a.tsv:2: the text is empty"),
        (
            "sentence\tlabel\ngood\t1\n",
            {"label_column": "sentiment"},
            r"no column 'sentiment' in the header \(it has 'sentence', 'label'\)",
        ),
        ("sentence\tlabel\n", {}, "no rows after the header"),
    ],
)
def test_table_reader_names_file_and_line(tmp_path, content, columns, expect):
    (tmp_path / "a.tsv").write_text(content)
    with pytest.raises(RnnkitError, match=expect):
        read_table(tmp_path / "a.tsv", **columns)


# --- batches and metrics ----------------------------------------------------------------------------
def random_sequences(count: int, seed: int = 0) -> list[torch.Tensor]:
    chooser = random.Random(seed)
    return [torch.randint(1, 9, (chooser.randint(1, 40),)) for _ in range(count)]


def test_training_batches_are_full_bucketed_and_a_pure_function_of_k():
    sequences = random_sequences(1000)
    labels = torch.arange(1000) % 2
    first, second = LengthBuckets(sequences, labels, 16, seed=5), LengthBuckets(sequences, labels, 16, seed=5)
    for k in (0, 7, 62, 63, 200):  # 62 batches per pass: 63 is the next pass's second
        a, b = first[k], second[k]
        assert torch.equal(a.inputs, b.inputs) and a.inputs.shape[0] == 16
    assert not torch.equal(first[0].inputs, first[len(first)].inputs)  # each pass reshuffles
    padded = sum(int(first[k].inputs.numel() - first[k].lengths.sum()) for k in range(len(first)))
    unsorted = sum(
        16 * max(len(s) for s in sequences[i : i + 16]) - sum(len(s) for s in sequences[i : i + 16])
        for i in range(0, 992, 16)
    )
    assert padded < unsorted / 4  # bucketing: a small fraction of the padding random batches would need


def test_evaluation_batches_cover_every_example_once():
    sequences = random_sequences(101)
    batches = LengthBuckets(sequences, torch.arange(101), 16, train=False)
    seen = torch.cat([batches[k].labels for k in range(len(batches))])
    assert sorted(seen.tolist()) == list(range(101)) and len(batches) == 7


def test_metrics_on_a_hand_counted_confusion():
    truth, predicted = torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 0, 1, 1, 2, 2])
    confusion = confusion_matrix(truth, predicted, 3)
    assert confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    result = classification_metrics(confusion, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert result["per_class"]["b"]["precision"] == pytest.approx(0.5) and result["per_class"]["c"]["recall"] == 1.0


# --- learning -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"data.labels": "", "model.bidirectional": False, "model.readout": "mean"},
        {"model.word_dropout": 0.2},
        {"model.char_hidden_size": 8, "model.char_embedding_size": 8, "model.unk_dropout": 0.1},
    ],
)
def test_the_tiny_preset_learns_the_generated_sentiment(changes):
    config = classifier.build_config("tiny", changes)
    data = classifier.load_data(config, tiny=True)
    batches, val = classifier.batches(config, data)
    model = classifier.build_model(config, data.vocabularies)
    before = classifier.evaluate(model, val)["accuracy"]
    train(model, batches, config.train, classifier.step_loss)
    after = classifier.evaluate(model, val)["accuracy"]
    assert after > 0.9 and after > before + 0.2, (before, after)


def test_word_dropout_hides_the_words_in_training_only():
    """With every word dropped, two different texts of one length read the same in training, and differently in eval."""
    config = classifier.build_config("tiny", {"model.word_dropout": 1 - 1e-12})
    data = classifier.load_data(config, tiny=True)
    model = classifier.build_model(config, data.vocabularies)
    texts = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]])  # (B, T)
    model.train()
    read = model.encode(texts)  # (B, H)
    assert torch.equal(read[0], read[1])
    model.eval()
    read = model.encode(texts)
    assert not torch.allclose(read[0], read[1])


def test_three_classes_use_a_softmax_head_and_learn(tmp_path):
    words = {"negative": ["bad", "dull"], "neutral": ["fine", "okay"], "positive": ["good", "great"]}
    chooser = random.Random(0)
    rows = [f"the film was {chooser.choice(w)}\t{label}" for _ in range(200) for label, w in words.items()]
    (tmp_path / "three.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    config = classifier.build_config("tiny", {"data.path": str(tmp_path / "three.tsv")})
    data = classifier.load_data(config)
    assert data.vocabularies["labels"].symbols == ["negative", "neutral", "positive"]
    model = classifier.build_model(config, data.vocabularies)
    assert model.head.out_features == 3
    batches, val = classifier.batches(config, data)
    train(model, batches, config.train, classifier.step_loss)
    assert classifier.evaluate(model, val)["accuracy"] > 0.9


# --- predictions as data, and from Python ---------------------------------------------------------------
TEXTS = ["the film was good", "the plot was dull and slow", "great"]
WORDS = [text.split() for text in TEXTS]


def assert_same_labels(got: list[classify.Label], expected: list[classify.Label]) -> None:
    """The same labels, and probabilities equal up to float rounding (a batch of other sizes sums in another order)."""
    assert [label.label for label in got] == [label.label for label in expected]
    for a, b in zip(got, expected):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


def tiny_trained(**changes):
    """An untrained tiny classifier as rnnkit.load gives it, and the config it was built from."""
    config = classifier.build_config("tiny", changes)
    data = classifier.load_data(config, tiny=True)
    model = classifier.build_model(config, data.vocabularies).eval()
    return classifier.trained(model, data.vocabularies, config, classifier)


def test_predict_yields_one_label_per_text_with_every_class_probability():
    model, vocabularies, _ = classifier.tiny_model()
    results = list(classifier.predict(model, vocabularies, WORDS, classifier.Predict()))
    assert len(results) == len(TEXTS) and all(isinstance(result, classify.Label) for result in results)
    for result in results:
        assert list(result.probabilities) == vocabularies["labels"].symbols == ["negative", "positive"]
        assert all(0 <= p <= 1 for p in result.probabilities.values())
        assert sum(result.probabilities.values()) == pytest.approx(1, abs=1e-6)
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        assert result.probability == result.probabilities[result.label] >= 0.5
    alone = [next(classifier.predict(model, vocabularies, [words], classifier.Predict())) for words in WORDS]
    assert_same_labels(results, alone)  # a text's label does not depend on the texts beside it


def test_predict_refuses_an_empty_text_or_one_not_split_into_words_naming_it():
    model, vocabularies, _ = classifier.tiny_model()
    with pytest.raises(ArgumentError, match=r"^texts\[1\]: an empty text: there is nothing to classify$"):
        list(classifier.predict(model, vocabularies, [["good"], []], None))
    with pytest.raises(ArgumentTypeError, match=r"^texts: expected a text's words"):
        list(classifier.predict(model, vocabularies, ["good film"], None))


def test_trained_classify_takes_one_text_or_a_list():
    trained = tiny_trained()
    expected = list(classifier.predict(trained.model, trained.vocabularies, WORDS, classifier.Predict()))
    assert trained.classify(TEXTS) == expected
    one = trained.classify(TEXTS[0])  # one text, one Label
    assert isinstance(one, classify.Label)
    assert_same_labels([one], expected[:1])
    assert_same_labels(trained.classify(TEXTS[:1]), expected[:1])  # a list of one, a list
    assert trained.classify(tuple(TEXTS)) == expected


@pytest.mark.parametrize("lowercase", [True, False])
def test_texts_are_read_in_the_case_training_read_them(lowercase):
    trained = tiny_trained(**{"data.lowercase": lowercase})
    assert classify.words_of(" The FILM\twas good ", trained.config.data) == (
        ["the", "film", "was", "good"] if lowercase else ["The", "FILM", "was", "good"]
    )
    [shouted, quiet] = trained.classify(["THE FILM WAS GOOD", "the film was good"])
    assert (shouted == quiet) is lowercase  # as written, the capitalised words are <unk> to a lowercase vocabulary


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda t: t.classify([["the", "film"]]), ArgumentTypeError, r"^texts\[0\]: expected a text, got list$"),
        (lambda t: t.classify(["good", 7]), ArgumentTypeError, r"^texts\[1\]: expected a text, got int$"),
        (lambda t: t.classify(b"good"), ArgumentTypeError, r"^texts: expected a text or a list of them, got bytes$"),
        (lambda t: t.classify([]), ArgumentError, r"^texts: expected a text or a list of them, got an empty list$"),
        (lambda t: t.classify(" "), ArgumentError, r"^texts: an empty text: there is nothing to classify$"),
        (lambda t: t.classify(["a", ""]), ArgumentError, r"^texts\[1\]: an empty text: there is nothing to classify$"),
        (lambda t: t.classify("good", beam_width=2), ArgumentTypeError, r"^beam_width: not an argument here"),
    ],
)
def test_trained_classify_names_a_bad_argument(call, error, message):
    with pytest.raises(error, match=message):
        call(tiny_trained())


def test_the_predict_command_writes_label_and_probability_and_names_an_empty_line(tmp_path):
    from rnnkit.commands.verbs import classify as verb

    trained = tiny_trained()
    (tmp_path / "in.txt").write_text("\n".join(["THE FILM WAS GOOD", *TEXTS[1:]]) + "\n")  # read as training read
    out = io.StringIO()
    verb.run(trained, None, verb.Options(input=str(tmp_path / "in.txt"), batch_size=2), out)
    expected = classifier.predict(trained.model, trained.vocabularies, WORDS, None)
    assert out.getvalue() == "".join(f"{result.label}\t{result.probability:.4f}\n" for result in expected)
    (tmp_path / "in.txt").write_text("good\n\nbad\n")
    with pytest.raises(RnnkitError, match=r"in.txt:2: an empty line \(one text per line"):
        verb.run(trained, None, verb.Options(input=str(tmp_path / "in.txt")), io.StringIO())


# --- the command line ---------------------------------------------------------------------------------
def test_every_classify_subcommand_has_a_fast_dry_run(tmp_path):
    train_run, predict_run, eval_run = run_side_by_side(
        *((("classify", action, "--dry-run"), tmp_path) for action in ("train", "predict", "eval"))
    )
    for result in (train_run, predict_run, eval_run):
        assert_ok(result)
    assert "trained 150 steps on generated tiny sentiment" in train_run.stdout
    label, probability = predict_run.stdout.strip().split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1
    assert "accuracy" in eval_run.stdout and "confusion" in eval_run.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    assert_ok(run_rnnkit("classify", "train", "--preset", "tiny", "--out", "run", "--quiet", cwd=root))
    return root


def test_predict_streams_label_and_probability_per_line(trained):
    (trained / "in.txt").write_text("the plot was not funny\nthe cast was really wonderful\n")
    result = run_rnnkit("classify", "predict", "run/best.pt", "--input", "in.txt", cwd=trained)
    assert_ok(result)
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [label for label, _ in lines] == ["negative", "positive"] and all(float(p) > 0.5 for _, p in lines)
    assert (trained / "run" / "confusion.png").read_bytes().startswith(b"\x89PNG")


def test_eval_prints_the_table_and_draws_the_confusion_matrix(trained):
    (trained / "dev.tsv").write_text("sentence\tlabel\nthe film was not good\tnegative\nthe plot was great\tpositive\n")
    result = run_rnnkit("classify", "eval", "run/best.pt", "--data", "dev.tsv", "--out", "figures", cwd=trained)
    assert_ok(result)
    assert "accuracy 100.00%" in result.stdout and "precision" in result.stdout
    assert (trained / "figures" / "confusion.png").read_bytes().startswith(b"\x89PNG")
    again = run_rnnkit("classify", "eval", "run/best.pt", "--data", "dev.tsv", "--out", "figures", cwd=trained)
    assert_one_line_error(again.returncode, again.stderr, "--overwrite")


@pytest.mark.parametrize(
    "content, expect",
    [
        (
            "sentence\tlabel\nthe film was good\tmaybe\n",
            "dev.tsv:2: label 'maybe' is not one of the classes trained on (negative, positive)",
        ),
        ("sentence\tlabel\nthe film was good\n", "dev.tsv:2: 1 column(s)"),
    ],
)
def test_eval_on_bad_gold_data_is_one_line(trained, content, expect):
    (trained / "dev.tsv").write_text(content)
    result = run_rnnkit("classify", "eval", "run/best.pt", "--data", "dev.tsv", cwd=trained)
    assert_one_line_error(result.returncode, result.stderr, expect)


def test_predict_refuses_an_empty_line_naming_it(trained):
    (trained / "in.txt").write_bytes(b"good film\n\nbad\n")
    result = run_rnnkit("classify", "predict", "run/best.pt", "--input", "in.txt", "--batch-size", "1", cwd=trained)
    assert result.returncode == 2 and result.stderr.strip().endswith(
        "in.txt:2: an empty line (one text per line; there is nothing to classify)"
    )
    (trained / "latin1.txt").write_bytes(b"good film\ncaf\xe9\n")
    result = run_rnnkit("classify", "predict", "run/best.pt", "--input", "latin1.txt", cwd=trained)
    assert_one_line_error(result.returncode, result.stderr, "latin1.txt: not UTF-8 at line 2, byte offset 13")


KILL_RUN = (
    "--preset",
    "tiny",
    "--quiet",
    "--train.max_steps=60",
    "--train.eval_interval=20",
    "--model.dropout=0.2",
    "--model.input_dropout=0.2",
    "--model.num_layers=2",
)


def test_sigkill_then_resume_equals_uninterrupted_for_the_classifier(tmp_path):
    straight, _ = kill_then_resume(tmp_path, "classify", KILL_RUN, random.Random(4).randint(3, 50))
    assert all("sentences_per_second" in r for r in straight)


DDP_RUN = (
    "classify",
    "train",
    "--preset",
    "tiny",
    "--quiet",
    "--train.batch_size=8",
    "--train.lr_schedule=constant",
    "--train.max_steps=6",
    "--train.eval_interval=3",
)


def test_two_gloo_processes_train_the_classifier_like_one(tmp_path):
    """Padded, bucketed batches split by rows: each rank's half keeps its lengths, and two processes take
    the steps one process takes with the same global batch."""
    assert_two_processes_train_like_one(tmp_path, *DDP_RUN, steps=6)


def test_a_checkpoint_of_another_task_or_tool_is_refused_by_name(trained):
    assert_ok(
        run_rnnkit(
            "memory", "train", "--preset", "tiny", "--quiet", "--train.max_steps=2", "--out", "memory", cwd=trained
        )
    )
    result = run_rnnkit("classify", "predict", "memory/best.pt", "--text", "a fine film", cwd=trained)
    assert_one_line_error(result.returncode, result.stderr, "a memory checkpoint, not a classify one")
    result = run_rnnkit("viz", "run/best.pt", "--text", "in.txt", cwd=trained)
    assert_one_line_error(
        result.returncode,
        result.stderr,
        "rnnkit viz colours a text by a character model's units (charlm), not a classify model",
    )


def test_macro_f1_averages_the_classes_that_occur():
    only_one = classification_metrics(confusion_matrix(torch.tensor([1, 1]), torch.tensor([1, 1]), 3), ["a", "b", "c"])
    assert only_one["macro_f1"] == 1.0 and only_one["accuracy"] == 1.0


def test_readers_take_deep_trees_byte_order_marks_and_refuse_odd_column_numbers(tmp_path):
    deep = "(1 " * 5000 + "word" + ")" * 5000
    assert parse_tree(deep, "deep:1")[0] == ("1", ["word"]) and len(parse_tree(deep, "deep:1")) == 5000
    (tmp_path / "bom.tsv").write_bytes("\ufeffsentence\tlabel\ngood\t1\n".encode())
    assert read_table(tmp_path / "bom.tsv")[0].words == ["good"]
    with pytest.raises(RnnkitError, match="no column '²'"):
        read_table(tmp_path / "bom.tsv", text_column="²")


def test_eval_on_a_glue_directory_skips_its_unlabelled_test_file(tmp_path):
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nthe film was good\tpositive\n")
    (tmp_path / "test.tsv").write_text("index\tsentence\n0\tthe film was bad\n")
    config = classifier.build_config("tiny")
    data = classifier.load_data(config, tiny=True)
    assert list(classifier.eval_data(str(tmp_path), data.vocabularies, config)) == [str(tmp_path / "dev.tsv")]


def test_bucket_seeds_near_the_limit_work():
    batches = LengthBuckets(random_sequences(40), torch.arange(40), 8, seed=2**63 - 1)
    assert batches[3].inputs.shape[0] == 8

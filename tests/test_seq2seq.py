"""Translation: the parallel reader, attention that ignores padding, the bridge, decoding (greedy, beam,
batched beam, the end token), BLEU, learning the tiny reversed-lexicon task exactly, and the CLI."""

import gzip
import random
import re

import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, kill_then_resume, run_rnnkit, run_side_by_side
from torch.testing import assert_close

import rnnkit
from rnnkit import decoding
from rnnkit.data.parallel import IGNORE, read_parallel
from rnnkit.data.subword import Subwords, Words
from rnnkit.data.vocab import vocab_from_dict
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.metrics import bleu_scores
from rnnkit.models.attention import Attention
from rnnkit.tasks import TASKS, seq2seq
from rnnkit.train import train

translator = TASKS["seq2seq"]


def tiny(**model):
    config = translator.build_config("tiny", {f"model.{k}": v for k, v in model.items()})
    data = translator.load_data(config, tiny=True)
    return config, data, translator.build_model(config, data.vocabularies).eval()


def batch_of(data, pairs=None):
    pairs = pairs if pairs is not None else data.val[:5]
    return seq2seq.encode(pairs, data.vocabularies, translator.build_config("tiny"), False, "test")[0]


# --- reading parallel text ----------------------------------------------------------------------------
def test_parallel_files_pair_line_by_line_and_read_gz(tmp_path):
    (tmp_path / "a.de.gz").write_bytes(gzip.compress(b"Ein Hund.\nZwei Katzen.\n"))
    (tmp_path / "a.en").write_text("A dog.\r\nTwo cats.\n")
    pairs = read_parallel(tmp_path / "a.de.gz", tmp_path / "a.en")
    assert [(p.source, p.target) for p in pairs] == [("Ein Hund.", "A dog."), ("Zwei Katzen.", "Two cats.")]
    assert pairs[1].where == f"{tmp_path / 'a.de.gz'}:2"


@pytest.mark.parametrize(
    "source, target, expect",
    [
        ("a\nb\nc\n", "x\ny\n", "a.de has 3 lines but {root}/a.en has 2"),
        ("a\n \nc\n", "x\ny\nz\n", "a.de:2: an empty line"),
        ("a\nb\n", "x\n\n", "a.en:2: an empty line"),
        (b"a\nb\xff\n", "x\ny\n", "a.de: not UTF-8 at line 2, byte offset 3"),
    ],
)
def test_parallel_reader_errors_name_the_file_and_line(tmp_path, source, target, expect):
    for name, content in (("a.de", source), ("a.en", target)):
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(RnnkitError) as error:
        read_parallel(tmp_path / "a.de", tmp_path / "a.en")
    assert expect.format(root=tmp_path) in str(error.value) and "\n" not in str(error.value)


def test_bpe_round_trips_detokenised_text_and_travels_as_text():
    sentences = ["Ein Mann geht über die Straße.", "Zwei Frauen sitzen auf einer Bank."] * 30
    bpe = Subwords.learn(sentences, 60)
    pieces = bpe.split("Ein Mann sitzt auf der Straße.")
    assert bpe.join(pieces) == "Ein Mann sitzt auf der Straße." and len(pieces) > 6  # rarer words come in pieces
    again = vocab_from_dict(bpe.to_dict())  # what a checkpoint holds: base64 text, read by weights_only loading
    assert isinstance(bpe.to_dict()["model"], str) and again.split("Zwei Männer") == bpe.split("Zwei Männer")
    assert Words().join(Words().split(" a  b c ")) == "a b c"
    with pytest.raises(RnnkitError, match="not base64"):
        vocab_from_dict({"kind": "bpe", "model": "not base64!"})


# --- attention, bridge, padding -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_attention_puts_exactly_zero_weight_on_padding(kind):
    torch.manual_seed(0)
    attention = Attention(kind, 6, 6, 5)
    memory = torch.randn(2, 4, 6)  # (B, S, H)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    context, weights = attention(torch.randn(2, 6), attention.keys(memory), memory, mask)
    assert torch.equal(weights[0, 2:], torch.zeros(2)) and weights[1].min() > 0
    assert_close(weights.sum(-1), torch.ones(2))
    assert_close(context, (weights[:, :, None] * memory).sum(1))


@pytest.mark.parametrize("attention", ["additive", "general", "none"])
def test_extra_padding_changes_neither_outputs_nor_weights(attention):
    config, data, model = tiny(attention=attention)
    batch = batch_of(data)
    logits, weights = model(batch.source, batch.source_lengths, batch.target_in)
    padded = torch.cat([batch.source, torch.full((batch.source.shape[0], 3), model.padding_id)], dim=1)  # (B, S + 3)
    more_logits, more_weights = model(padded, batch.source_lengths, batch.target_in)
    assert_close(more_logits, logits)
    if attention != "none":
        assert torch.equal(more_weights[:, :, -3:], torch.zeros_like(more_weights[:, :, -3:]))
        assert_close(more_weights[:, :, : batch.source.shape[1]], weights)
    loss = translator.loss(model, batch)[0]
    assert_close(translator.loss(model, batch._replace(source=padded))[0], loss)


def test_the_decoders_first_state_is_the_bridged_encoder_state():
    config, data, model = tiny()
    batch = batch_of(data)
    memory, state = model.encode(batch.source, batch.source_lengths)
    _, finals = model.encoder(model.source_embedding(batch.source), None, batch.source_lengths)
    forward_h, backward_h = finals[-1][0].h, finals[-1][1].h  # the forward direction's last step, the backward's first
    expected = torch.tanh(model.bridge(torch.cat([forward_h, backward_h], dim=-1)))  # (B, fields·H_d)
    assert_close(torch.cat([field for layer in state.layers for field in layer], dim=-1), expected)
    copy_config, copy_data, copied = tiny(bridge="copy", bidirectional=False)
    memory, state = copied.encode(batch.source, batch.source_lengths)
    _, finals = copied.encoder(copied.source_embedding(batch.source), None, batch.source_lengths)
    assert all(torch.equal(a, b) for layer, final in zip(state.layers, finals) for a, b in zip(layer, final))
    with pytest.raises(RnnkitError, match="bridge=copy needs a one-directional encoder"):
        tiny(bridge="copy")


# --- decoding -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def learned():
    """The tiny preset trained: each source word translated by a lexicon and the order reversed."""
    config = translator.build_config("tiny", {"train.max_steps": 800})
    data = translator.load_data(config, tiny=True)
    model = translator.build_model(config, data.vocabularies)
    batches, val = translator.batches(config, data)
    train(model, batches, config.train, translator.step_loss)
    return config, data, model.eval(), val


def test_the_tiny_reverse_task_is_learned_to_exact_match(learned):
    config, data, model, val = learned
    greedy = translator.evaluate(model, val)
    beam = translator.evaluate(model, val, settings=seq2seq.EvaluateConfig(beam_width=4))
    assert greedy["exact_match"] == 1.0 and beam["exact_match"] == 1.0, (greedy["exact_match"], beam["exact_match"])
    assert greedy["bleu"] == pytest.approx(100.0) and greedy["loss"] < 0.05
    translations = translator.predict(model, data.vocabularies, ["hund rot eins", "katze baum"], translator.Predict())
    assert [t.text for t in translations] == ["one red dog", "tree cat"]


def test_beam_width_1_is_greedy_and_batched_beams_equal_one_sentence_at_a_time(learned):
    config, data, model, val = learned
    batch = val[0]
    memory, state = model.encode(batch.source, batch.source_lengths)
    start = torch.full((len(batch.source_lengths),), model.start_id)
    limits = batch.source_lengths * 2
    by_greedy = decoding.greedy(model.step_function, memory, state, start, 20, model.end_id, limits, model.padding_id)
    by_beam = decoding.beam_search(
        model.step_function, memory, state, start, 1, 20, model.end_id, limits, model.padding_id, alpha=0.6
    )
    assert torch.equal(by_beam.tokens[:, 0], by_greedy.tokens) and torch.equal(by_beam.lengths[:, 0], by_greedy.lengths)
    batched = model.translate(batch.source, batch.source_lengths, beam_width=3, alpha=0.6)
    for b in range(len(batch.source_lengths)):
        n = int(batch.source_lengths[b])
        alone = model.translate(batch.source[b : b + 1, :n], batch.source_lengths[b : b + 1], beam_width=3, alpha=0.6)
        assert alone == [batched[b]]


def test_decoding_stops_at_the_end_token_and_at_the_length_limit(learned):
    config, data, model, val = learned
    batch = val[0]
    target = data.vocabularies["target"]
    outputs = model.translate(batch.source, batch.source_lengths)
    assert all(target.index["</s>"] not in ids for ids in outputs)  # stopped there, the end token left off
    assert [len(ids) for ids in outputs] == (batch.target_out != IGNORE).sum(1).sub(
        1
    ).tolist()  # exactly the reference's length
    short = model.translate(batch.source, batch.source_lengths, max_ratio=0.01, max_extra=0)  # ceil(0.01·|x|) = 1 token
    assert all(len(ids) == 1 for ids in short)


def test_bleu_of_a_reference_against_itself_is_100():
    references = ["A dog runs across the grass.", "Two men are playing chess in a park."]
    assert bleu_scores(references, references)["bleu"] == pytest.approx(100.0)
    assert bleu_scores(["A cat.", "Nothing here."], references)["bleu"] < 20


def test_teacher_forcing_below_one_feeds_the_models_own_tokens():
    config, data, model = tiny(teacher_forcing=0.0)
    batch = batch_of(data)
    model.train()
    torch.manual_seed(0)
    own, _ = model(batch.source, batch.source_lengths, batch.target_in, teacher_forcing=0.0)
    torch.manual_seed(0)
    gold, _ = model(batch.source, batch.source_lengths, batch.target_in, teacher_forcing=1.0)
    assert_close(own[:, 0], gold[:, 0])
    assert not torch.allclose(own[:, 1:], gold[:, 1:])


# --- predictions as data, and translate() from Python ---------------------------------------------------
def test_predict_yields_translations_with_their_tokens_and_attention(learned):
    """Each Translation holds the text, the target tokens it joins, and the (tokens + 1, source tokens) weights the
    decoder gives the source while reading its own translation back: the same, batched or alone, as the model's
    forward pass over that one sentence."""
    config, data, model, _ = learned
    sentences = ["hund rot eins", "katze baum", "zwei hund"]
    translations = list(translator.predict(model, data.vocabularies, sentences, translator.Predict()))
    assert [type(t) for t in translations] == [seq2seq.Translation] * 3
    assert [t.text for t in translations] == ["one red dog", "tree cat", "dog two"]
    target = data.vocabularies["target"]
    for sentence, translation in zip(sentences, translations):
        assert translation.tokens == translation.text.split()
        source = seq2seq.source_ids(data.vocabularies, sentence)  # (S,)
        assert translation.attention.shape == (len(translation.tokens) + 1, len(source))
        assert ((translation.attention >= 0) & (translation.attention <= 1)).all()
        assert_close(translation.attention.sum(-1), torch.ones(len(translation.tokens) + 1))
        target_in = target.encode(["<s>", *translation.tokens])[None]  # (1, T + 1)
        _, weights = model(source[None], torch.tensor([len(source)]), target_in)  # (1, T + 1, S)
        assert_close(translation.attention, weights[0])
    _, tiny_data, unattended = tiny(attention="none")
    (plain,) = translator.predict(unattended, tiny_data.vocabularies, ["hund"], translator.Predict(beam_width=1))
    assert plain.attention is None and isinstance(plain.text, str)


def test_predict_names_the_sentence_it_cannot_translate(learned):
    config, data, model, _ = learned
    for sentences, expect in (
        (["hund", ""], "sentences[1]: an empty line"),
        (["xylophon quark"], "sentences[0]: every token of the sentence is unknown to the model"),
    ):
        with pytest.raises(ArgumentError, match=re.escape(expect)):
            list(translator.predict(model, data.vocabularies, sentences, translator.Predict()))


def test_translate_from_python_takes_one_sentence_or_a_list(trained):
    loaded = rnnkit.load(trained / "run")
    one = loaded.translate("hund rot eins")
    assert isinstance(one, seq2seq.Translation) and one.text == "one red dog"
    many = loaded.translate(["hund rot eins", "zwei katze", "baum hund"], beam_width=3, alpha=0.0, max_ratio=2.0)
    assert [t.text for t in many] == ["one red dog", "cat two", "dog tree"]  # as `rnnkit translate` writes them
    assert [t.text for t in loaded.translate(("katze baum",), beam_width=1)] == ["tree cat"]


@pytest.mark.parametrize(
    "sentences, settings, error, expect",
    [
        (["hund", ["katze"]], {}, ArgumentTypeError, "sentences[1]: expected a sentence, got list"),
        (["hund"], {"beam_width": "3"}, ArgumentTypeError, "beam_width: expected int, got str"),
        ("hund", {"beam": 3}, ArgumentTypeError, "beam: not an argument here"),
        (5, {}, ArgumentTypeError, "sentences: expected a sentence or a list of them, got int"),
        ([], {}, ArgumentError, "sentences: expected a sentence or a list of them, got an empty list"),
        ("hund", {"beam_width": 0}, ArgumentError, "beam_width: must be at least 1, got 0"),
        ("hund", {"max_ratio": 0.0}, ArgumentError, "max_ratio: must be above 0"),
        (["hund", " "], {}, ArgumentError, "sentences[1]: an empty line"),
        ("xylophon", {}, ArgumentError, "sentences: every token of the sentence is unknown to the model"),
    ],
)
def test_translate_from_python_names_a_bad_argument(trained, sentences, settings, error, expect):
    with pytest.raises(error, match=re.escape(expect)):
        rnnkit.load(trained / "run").translate(sentences, **settings)


# --- the command line ---------------------------------------------------------------------------------
def test_every_seq2seq_subcommand_has_a_fast_dry_run(tmp_path):
    runs = run_side_by_side(
        *(
            (args, tmp_path)
            for args in (
                ("seq2seq", "train", "--dry-run"),
                ("seq2seq", "translate", "--dry-run"),
                ("seq2seq", "eval", "--dry-run"),
                ("translate", "--dry-run"),
            )
        )
    )
    for result in runs:
        assert_ok(result)
    assert "trained 150 steps on generated tiny sentence pairs" in runs[0].stdout
    assert "BLEU" in runs[2].stdout and "tok:13a" in runs[2].stdout
    assert runs[1].stdout.strip() and runs[3].stdout.strip()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, learned):
    """The learned model as a checkpoint of the format `seq2seq train` writes (training it again there would
    take as long)."""
    from dataclasses import asdict

    from rnnkit.checkpoint import save_checkpoint

    config, data, model, _ = learned
    root = tmp_path_factory.mktemp("seq2seq")
    (root / "run").mkdir()
    save_checkpoint(
        root / "run" / "best.pt",
        {
            "task": "seq2seq",
            "model": model.state_dict(),
            "config": asdict(config),
            "step": 800,
            "vocabularies": {n: v.to_dict() for n, v in data.vocabularies.items()},
            "optimizer": {},
            "train_state": {},
        },
    )
    return root


def test_translate_streams_batches_and_draws_attention(trained):
    (trained / "in.de").write_text("hund rot eins\nzwei katze\nbaum hund\n")
    result = run_rnnkit(
        "translate",
        "run/best.pt",
        "--input",
        "in.de",
        "--batch_size",
        "2",
        "--beam_width",
        "3",
        "--attention-png",
        "attention",
        cwd=trained,
    )
    assert_ok(result)
    assert result.stdout.splitlines() == ["one red dog", "cat two", "dog tree"]
    assert sorted(p.name for p in (trained / "attention").iterdir()) == [f"sentence-{n}.png" for n in (1, 2, 3)]
    assert (trained / "attention" / "sentence-1.png").read_bytes().startswith(b"\x89PNG")
    again = run_rnnkit("translate", "run/best.pt", "--text", "hund", "--attention-png", "attention", cwd=trained)
    assert_one_line_error(again.returncode, again.stderr, "already holds sentence-1.png")


def test_translate_writes_a_line_for_every_input_line_and_names_the_ones_it_cannot_translate(trained):
    """An empty line, or one of unknown words only, gets an empty output line and a warning naming it, so the
    output stays line for line with the input; a sentence given by --text is refused instead."""
    (trained / "bad.de").write_text("hund eins\n\nxylophon quark\nbaum\n")
    result = run_rnnkit(
        "translate",
        "run/best.pt",
        "--input",
        "bad.de",
        "--batch_size",
        "1",
        "--attention-png",
        "new/pictures",
        cwd=trained,
    )
    assert_ok(result)
    lines = result.stdout.split("\n")
    assert len(lines) == 5 and lines[0] == "one dog" and lines[1:3] == ["", ""] and lines[3] and lines[4] == ""
    assert "rnnkit: warning: bad.de:2: an empty line (there is nothing to translate); its output line is empty" in (
        result.stderr
    )
    assert "rnnkit: warning: bad.de:3: every token of the sentence is unknown to the model" in result.stderr
    pictures = sorted(p.name for p in (trained / "new" / "pictures").iterdir())
    assert pictures == ["sentence-1.png", "sentence-4.png"]
    (trained / "some.de").write_text("hund quark\nbaum\n")
    result = run_rnnkit("translate", "run/best.pt", "--input", "some.de", cwd=trained)
    assert_ok(result)
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == "rnnkit: note: some.de: 1 of 3 tokens unknown to the model, read as <unk>\n"
    result = run_rnnkit("seq2seq", "translate", "run/best.pt", "--text", "xylophon quark", cwd=trained)
    assert_one_line_error(
        result.returncode, result.stderr, "--text: every token of the sentence is unknown to the model"
    )


def test_eval_scores_each_split_of_a_directory(trained):
    pairs = seq2seq.tiny_parallel(30, seed=7)
    corpus = trained / "corpus"
    corpus.mkdir(exist_ok=True)
    for split in ("val", "test_2016"):
        (corpus / f"{split}.de").write_text("".join(f"{s}\n" for s, _ in pairs))
        (corpus / f"{split}.en").write_text("".join(f"{t}\n" for _, t in pairs))
    result = run_rnnkit("seq2seq", "eval", "run/best.pt", "--data", "corpus", "--beam_width", "2", cwd=trained)
    assert_ok(result)
    assert result.stdout.count("BLEU 100.00") == 2 and "val.de" in result.stdout and "test_2016.de" in result.stdout
    (corpus / "test_2016.en").write_text("one\n")
    result = run_rnnkit("seq2seq", "eval", "run/best.pt", "--data", "corpus", cwd=trained)
    assert_one_line_error(result.returncode, result.stderr, "test_2016.de has 30 lines but")


def test_training_data_directory_errors_are_one_line(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\n")
    (tmp_path / "train.en").write_text("x\n")
    (tmp_path / "val.de").write_text("a\n")
    (tmp_path / "val.en").write_text("x\n")
    result = run_rnnkit("seq2seq", "train", "--data", ".", "--preset", "tiny", "--quiet", "--out", "run", cwd=tmp_path)
    assert_one_line_error(result.returncode, result.stderr, "train.de has 2 lines but")
    assert not (tmp_path / "run").exists()


def test_overlong_training_pairs_are_left_out_and_said(tmp_path):
    pairs = seq2seq.tiny_parallel(100, seed=3)
    for split, chosen in (("train", pairs), ("val", pairs[:10])):
        (tmp_path / f"{split}.de").write_text("".join(f"{s}\n" for s, _ in chosen))
        (tmp_path / f"{split}.en").write_text("".join(f"{t}\n" for _, t in chosen))
    config = translator.build_config("tiny", {"data.path": str(tmp_path), "data.max_length": 4})
    data = translator.load_data(config)
    training, _ = translator.batches(config, data)
    longer = sum(len(s.split()) > 4 for s, _ in pairs)
    assert longer > 0 and len(training.encoded) == 100 - longer
    assert f"{longer} pairs longer than --data.max_length=4 tokens left out" in training.what


KILL_RUN = (
    "--preset",
    "tiny",
    "--quiet",
    "--train.max_steps=50",
    "--train.eval_interval=20",
    "--model.dropout=0.2",
    "--model.teacher_forcing=0.8",
)


def test_sigkill_then_resume_equals_uninterrupted_for_seq2seq(tmp_path):
    kill_then_resume(tmp_path, "seq2seq", KILL_RUN, random.Random(6).randint(3, 40))


def test_the_loss_reads_the_config_through_a_distributed_wrapper():
    """Under torch.distributed the loop hands loss() the DistributedDataParallel wrapper, whose model is .module
    (tests/test_distributed.py runs the wrapper itself, with two gloo processes, for the tagger)."""
    config, data, model = tiny(teacher_forcing=0.5, label_smoothing=0.1)

    class Wrapper(torch.nn.Module):  # what DistributedDataParallel exposes: forward, training, .module
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args):
            return self.module(*args)

    batch = batch_of(data)
    torch.manual_seed(0)
    direct = translator.loss(model.train(), batch)
    torch.manual_seed(0)
    wrapped = translator.loss(Wrapper(model).train(), batch)
    assert_close(wrapped[0], direct[0])
    assert wrapped[1] == direct[1] == int((batch.target_out != IGNORE).sum())


def test_the_compiled_decoder_step_equals_the_eager_one(monkeypatch):
    """decoder_path=compiled runs the same step through torch.compile (aot_eager here: the captured graph and
    its autograd, without Inductor's minutes of C++ compiling): same logits, weights and gradients."""
    from rnnkit.kernels import compiled

    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    config, data, eager = tiny()
    _, _, fast = tiny(decoder_path="compiled")
    fast.load_state_dict(eager.state_dict())
    for length in (5, 3):  # two source lengths: one dynamic graph
        batch = batch_of(data, [p for p in data.val if len(p.source.split()) == length][:4])
        results = []
        for model in (eager, fast):
            model.zero_grad()
            logits, weights = model(batch.source, batch.source_lengths, batch.target_in)
            logits.logsumexp(-1).sum().backward()
            results.append((logits, weights, model.cells[0].U.grad.clone()))
        for mine, reference in zip(results[1], results[0]):
            assert_close(mine, reference)

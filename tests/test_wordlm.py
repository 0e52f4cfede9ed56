"""Tests for the word-level language model (rnnkit/tasks/wordlm.py, models/word_lm.py), the token
vocabulary, the task contract's shared pieces it proves (checkpoint v2 and the v1 upgrade, NT-ASGD and
the plateau schedule in the one loop), and its bad input."""

import gzip
from collections import Counter
from dataclasses import replace

import pytest
import torch

from rnnkit.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from rnnkit.config import StreamTrainConfig
from rnnkit.data.batching import StreamBatches
from rnnkit.data.text import read_text
from rnnkit.data.vocab import EOS, UNK, TokenVocab, Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.char_lm import CharLM
from rnnkit.optim import should_average
from rnnkit.tasks import TASKS, from_checkpoint
from rnnkit.tasks.charlm import ModelConfig as CharModelConfig
from rnnkit.tasks.wordlm import SPECIALS, DataConfig, split_files, words
from rnnkit.train import train

NEVER = 10**9
LINES = "the cat sat on the mat\nthe dog sat on the log\n" * 30
charlm, wordlm = TASKS["charlm"], TASKS["wordlm"]


def tiny_config(**model) -> wordlm.Config:
    config = wordlm.build_config("tiny")
    return replace(config, model=replace(config.model, **model))


# --- words and vocabulary -------------------------------------------------------------------------


def test_each_line_is_its_words_then_eos():
    assert words("a b\n\nc") == ["a", "b", EOS, EOS, "c", EOS]
    assert words("a b\nc\n") == ["a", "b", EOS, "c", EOS]  # as `for line in file` reads it


def test_token_vocab_orders_specials_then_counts_then_names():
    counts = Counter({"b": 3, "a": 3, "c": 5, "rare": 1, EOS: 9})
    vocab = TokenVocab.from_counts(counts, (EOS, UNK), min_count=2)
    assert vocab.symbols == [EOS, UNK, "c", "a", "b"]  # specials, then by count, ties sorted; 'rare' below min_count
    assert TokenVocab.from_counts(counts, (EOS, UNK), max_size=2).symbols == [EOS, UNK, "c", "a"]
    assert vocab.encode(["c", "zebra", "a"]).tolist() == [2, 1, 3]  # unknown -> <unk>
    rebuilt = TokenVocab(**{"tokens": vocab.to_dict()["tokens"], "specials": vocab.to_dict()["specials"]})
    assert rebuilt.symbols == vocab.symbols


def test_token_vocab_without_unk_names_unknown_tokens():
    vocab = TokenVocab(["a", "b"])
    with pytest.raises(RnnkitError, match="'zebra'"):
        vocab.encode(["a", "zebra"], what="prime")


def test_gzip_files_read_as_their_text(tmp_path):
    (tmp_path / "corpus.txt.gz").write_bytes(gzip.compress(LINES.encode()))
    assert read_text(tmp_path / "corpus.txt.gz") == LINES
    (tmp_path / "broken.txt.gz").write_bytes(gzip.compress(LINES.encode())[:40])
    with pytest.raises(RnnkitError, match="broken.txt.gz: not a readable gzip file"):
        read_text(tmp_path / "broken.txt.gz")


def test_a_corpus_directory_gives_its_splits(tmp_path):
    """PTB's layout (ptb.train.txt.gz, ptb.valid.txt, ptb.test.txt): the vocabulary from train, every
    split's unseen words as <unk>."""
    (tmp_path / "ptb.train.txt.gz").write_bytes(gzip.compress(LINES.encode()))
    (tmp_path / "ptb.valid.txt").write_text("the cat sat on the log\n")
    (tmp_path / "ptb.test.txt").write_text("a zebra sat\n")
    config = replace(tiny_config(), data=DataConfig(path=str(tmp_path)))
    data = wordlm.load_data(config)
    assert data.vocab.symbols[:2] == [EOS, UNK] and set(data.vocab.symbols[2:]) == {
        "the",
        "cat",
        "sat",
        "on",
        "mat",
        "dog",
        "log",
    }
    assert len(data.train_ids) == len(words(LINES))
    splits = wordlm.eval_data(str(tmp_path), data.vocabularies, config)
    assert [name.split()[0] for name in splits] == ["valid", "test"]


# --- the model ------------------------------------------------------------------------------------


def test_tied_weights_are_one_tensor():
    model = wordlm.build_model(tiny_config(), {"text": TokenVocab(["a", "b", "c"], (EOS, UNK))})
    assert model.decoder.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in {id(p): p for p in model.parameters()}.values()
    )
    assert len(list(model.parameters())) == len({id(p) for p in model.parameters()})  # counted once


def test_tied_weights_with_mismatched_sizes_are_a_clear_error_or_a_projection():
    vocabularies = {"text": TokenVocab(["a", "b"], (EOS, UNK))}
    with pytest.raises(RnnkitError, match="hidden_size == embedding_size"):
        wordlm.build_model(tiny_config(hidden_size=24), vocabularies)
    for mode in ("last_layer", "projection"):
        model = wordlm.build_model(tiny_config(hidden_size=24, num_layers=2, tie_mode=mode), vocabularies)
        assert model.decoder.weight is model.embedding.weight
        logits, _ = model(torch.zeros(2, 3, dtype=torch.long))
        assert logits.shape == (2, 3, 4)


def test_untied_model_has_its_own_decoder():
    model = wordlm.build_model(tiny_config(tie_weights=False, hidden_size=24), {"text": TokenVocab(["a"], (EOS, UNK))})
    assert model.decoder.weight is not model.embedding.weight and model.decoder.weight.shape == (3, 24)


def test_wordlm_overfits_a_tiny_corpus():
    """Every regulariser on: the loop, the AR/TAR loss and weight drop still learn two repeated sentences."""
    config = tiny_config(
        hidden_size=32,
        embedding_size=32,
        locked_dropout=True,
        weight_drop=0.1,
        embedding_dropout=0.05,
        input_dropout=0.1,
        output_dropout=0.1,
        activation_regularization=1.0,
        temporal_activation_regularization=1.0,
    )
    vocab = TokenVocab.from_counts(Counter(words(LINES)), SPECIALS)
    ids = vocab.encode(words(LINES))
    model = wordlm.build_model(config, {"text": vocab})
    records = train(
        model,
        StreamBatches(ids, 4, 12),
        StreamTrainConfig(
            batch_size=4,
            seq_len=12,
            max_steps=150,
            learning_rate=1e-2,
            lr_schedule="constant",
            weight_decay=0.0,
            eval_interval=NEVER,
        ),
        wordlm.loss,
    )
    assert records[0].loss > 2.0
    with torch.no_grad():
        model.eval()
        logits, _ = model(ids[None, :-1])
        loss = torch.nn.functional.cross_entropy(logits[0], ids[1:]).item()
    assert loss < 0.6  # the sentences are determined but for cat/dog and mat/log: ln 2 / 3 per word ≈ 0.23


# --- NT-ASGD and the plateau schedule -------------------------------------------------------------


def test_nt_asgd_trigger_is_non_monotone():
    assert not should_average([5.0, 4.0, 3.0], 3.5, patience=3)  # too few evaluations yet
    assert not should_average(
        [5.0, 4.0, 3.0, 2.9, 2.8], 2.95, patience=3
    )  # better than 4.0, the best before the last 3
    assert should_average([5.0, 4.0, 3.0, 2.9, 2.8], 5.5, patience=3)


def scripted(losses: list[float]):
    """An evaluate() that returns the scripted losses in turn."""
    remaining = iter(losses)
    return lambda model: {"loss": next(remaining)}


def small_lm():
    vocab = Vocab.from_text("hello world ")
    model = CharLM(len(vocab), CharModelConfig(embedding_size=8, hidden_size=8, num_layers=1, dropout=0.0))
    model.reset_parameters(torch.Generator().manual_seed(0))
    return model, StreamBatches(vocab.encode("hello world " * 20), 2, 8)


def test_nt_asgd_starts_averaging_on_a_scripted_plateau_and_checkpoints_the_mean():
    """Validation improves, then stalls: averaging starts at the evaluation where it is worse than the best
    of all but the last `patience`, and from then on the snapshot's weights are the mean of the steps since."""
    model, batches = small_lm()
    config = StreamTrainConfig(
        batch_size=2,
        seq_len=8,
        max_steps=12,
        optimizer="ntasgd",
        learning_rate=0.5,
        weight_decay=0.0,
        lr_schedule="constant",
        eval_interval=2,
        averaging_patience=2,
        checkpoint_minutes=0,
    )
    saved, raw = {}, {}

    def save(snapshot, is_best):
        saved[snapshot["step"]] = snapshot
        raw[snapshot["step"]] = {k: v.clone() for k, v in model.state_dict().items()}

    records = train(model, batches, config, charlm.loss, evaluate=scripted([3.0, 2.0, 2.5, 2.6, 2.7, 2.8]), save=save)
    # step 10's 2.7 is the first worse than the best before the last 2 evaluations (2.0): averaging from step 11
    assert [r.averaging for r in records] == [False] * 10 + [True] * 2
    assert saved[8]["train_state"]["averaging"] is None
    averaging = saved[12]["train_state"]["averaging"]
    assert averaging["count"] == 2
    assert not torch.equal(
        saved[12]["model"]["decoder.weight"], raw[12]["decoder.weight"]
    )  # the mean, not the raw weights
    assert torch.equal(averaging["raw"][-1], raw[12]["decoder.bias"]) or any(
        torch.equal(t, raw[12]["decoder.bias"]) for t in averaging["raw"]
    )


def test_nt_asgd_resume_is_bit_identical(tmp_path):
    model, batches = small_lm()
    config = StreamTrainConfig(
        batch_size=2,
        seq_len=8,
        max_steps=10,
        optimizer="ntasgd",
        learning_rate=0.5,
        weight_decay=0.0,
        lr_schedule="constant",
        eval_interval=2,
        averaging_patience=1,
        checkpoint_interval=1,
        checkpoint_minutes=0,
    )
    losses = [3.0, 3.5, 3.6, 3.7, 3.8]  # averaging starts at step 6: the run stops before it and resumes into it
    snapshots, path = {}, tmp_path / "last.pt"

    def save(snapshot, is_best):
        snapshots[snapshot["step"]] = {**snapshot, "model": {k: v.clone() for k, v in snapshot["model"].items()}}
        if snapshot["step"] == 5:
            save_checkpoint(path, {**snapshot, "task": "charlm", "config": {}, "vocabularies": {}})

    train(model, batches, config, charlm.loss, evaluate=scripted(losses), save=save)
    assert snapshots[10]["train_state"]["averaging"]["count"] == 4
    resumed, _ = small_lm()
    checkpoint = load_checkpoint(path)
    resumed.load_state_dict(checkpoint["model"])
    train(
        resumed,
        batches,
        config,
        charlm.loss,
        evaluate=scripted(losses[2:]),
        save=lambda s, b: snapshots.update({("r", s["step"]): s}),
        resume=checkpoint,
    )
    for name, tensor in snapshots[10]["model"].items():
        assert torch.equal(snapshots[("r", 10)]["model"][name], tensor), name


def test_plateau_schedule_divides_the_rate_when_validation_stalls():
    model, batches = small_lm()
    config = StreamTrainConfig(
        batch_size=2,
        seq_len=8,
        max_steps=8,
        learning_rate=1.0,
        lr_schedule="plateau",
        plateau_factor=4.0,
        eval_interval=2,
    )
    records = train(model, batches, config, charlm.loss, evaluate=scripted([3.0, 2.0, 2.5, 1.0]))
    assert [r.learning_rate for r in records] == [1.0] * 6 + [
        0.25
    ] * 2  # divided after the third evaluation (2.5 > 2.0)


# --- checkpoints: format 2, the upgrade of format 1 -----------------------------------------------


def test_a_version_1_charlm_checkpoint_loads_upgraded(tmp_path):
    """A file as the char-LM alone wrote it (format version 1: one `vocab`, the config of that time) loads
    with vocabularies {"text": ...}, rebuilds its model with the same weights, and samples."""
    vocab = Vocab.from_text("hello world ")
    v1_config = {
        "model": {
            "cell": "lstm",
            "nonlinearity": "tanh",
            "reset_after": True,
            "forget_bias": None,
            "embedding_size": 16,
            "hidden_size": 32,
            "num_layers": 1,
            "dropout": 0.0,
            "implementation": "auto",
        },
        "data": {"path": "", "val_fraction": 0.1, "token_cache": ""},
        "train": {
            "batch_size": 4,
            "seq_len": 16,
            "carry_state": True,
            "max_steps": 20,
            "optimizer": "adamw",
            "learning_rate": 0.002,
            "weight_decay": 0.01,
            "momentum": 0.0,
            "lr_schedule": "cosine",
            "warmup_steps": 0,
            "min_lr_fraction": 0.1,
            "grad_clip": 1.0,
            "clip_mode": "norm",
            "eval_interval": 10,
            "eval_tokens": 2000,
            "checkpoint_interval": 0,
            "checkpoint_minutes": 10.0,
            "nan_policy": "stop",
            "sample_interval": 0,
            "seed": 1337,
            "device": "cpu",
        },
    }
    model = CharLM(len(vocab), CharModelConfig(embedding_size=16, hidden_size=32, num_layers=1, dropout=0.0))
    torch.save(
        {
            "format": FORMAT,
            "version": 1,
            "task": "charlm",
            "model": model.state_dict(),
            "config": v1_config,
            "vocab": {"symbols": "".join(vocab.symbols)},
            "step": 20,
        },
        tmp_path / "v1.pt",
    )
    checkpoint = load_checkpoint(tmp_path / "v1.pt", task="charlm")
    assert checkpoint["vocabularies"] == {"text": {"symbols": "".join(vocab.symbols)}}
    rebuilt, vocabularies, config, task = from_checkpoint(checkpoint)
    assert task is charlm and config.model.hidden_size == 32 and vocabularies["text"].symbols == vocab.symbols
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())
    (generated,) = charlm.predict(rebuilt, vocabularies, ["he"], replace(charlm.Predict(), length=5))
    text = generated.text
    assert text.startswith("he") and len(text) == 2 + 5  # the line's end is the CLI's to write


def test_a_version_1_checkpoint_of_another_task_is_refused(tmp_path):
    torch.save(
        {
            "format": FORMAT,
            "version": 1,
            "task": "charlm",
            "model": {},
            "config": {},
            "vocab": {"symbols": "ab"},
            "step": 1,
        },
        tmp_path / "v1.pt",
    )
    with pytest.raises(RnnkitError, match="a charlm checkpoint, not a wordlm one"):
        load_checkpoint(tmp_path / "v1.pt", task="wordlm")


# --- bad input ------------------------------------------------------------------------------------


def test_every_word_below_the_minimum_count_is_an_error(tmp_path):
    (tmp_path / "corpus.txt").write_text("a b c d e f\n" * 3)
    config = wordlm.build_config("tiny", {"data.path": str(tmp_path / "corpus.txt"), "data.min_count": "10"})
    with pytest.raises(RnnkitError, match="corpus.txt: every word appears fewer than --data.min_count=10 times"):
        wordlm.load_data(config)


def test_a_prime_of_unknown_words_only_is_an_error():
    model, vocabularies, _ = wordlm.tiny_model()
    with pytest.raises(RnnkitError, match="none of its words is in the model's vocabulary"):
        list(wordlm.predict(model, vocabularies, ["qwertyuiop zxcvb"], wordlm.Predict()))
    (generated,) = wordlm.predict(model, vocabularies, ["the qwertyuiop"], replace(wordlm.Predict(), length=3))
    text = generated.text
    assert text.startswith("the <unk>") and len(text.split()) == 2 + 3


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_nan_policy_holds_for_the_word_lm(policy):
    """A NaN in step 3's logits: "stop" raises naming step 3, "skip" drops that update and trains on."""
    from rnnkit.train import TrainingDiverged

    config = tiny_config()
    vocab = TokenVocab.from_counts(Counter(words(LINES)), SPECIALS)
    model = wordlm.build_model(config, {"text": vocab})
    calls = []
    model.decoder.register_forward_hook(
        lambda module, args, output: (calls.append(1), output * float("nan") if len(calls) == 3 else output)[1]
    )
    batches = StreamBatches(vocab.encode(words(LINES)), 4, 8)
    train_config = StreamTrainConfig(batch_size=4, seq_len=8, max_steps=5, eval_interval=NEVER, nan_policy=policy)
    if policy == "stop":
        with pytest.raises(TrainingDiverged, match="step 3"):
            train(model, batches, train_config, wordlm.loss)
    else:
        records = train(model, batches, train_config, wordlm.loss)
        assert [r.skipped for r in records] == [False, False, True, False, False]


def test_the_split_files_are_found_by_name(tmp_path):
    """PTB's own folder holds the character files too: the word files are the shortest names; eval needs no
    train file."""
    for name in (
        "ptb.train.txt",
        "ptb.valid.txt",
        "ptb.test.txt",
        "ptb.char.train.txt",
        "ptb.char.valid.txt",
        "README",
    ):
        (tmp_path / name).write_text("a b\n")
    assert {split: p.name for split, p in split_files(tmp_path).items()} == {
        "train": "ptb.train.txt",
        "valid": "ptb.valid.txt",
        "test": "ptb.test.txt",
    }
    (tmp_path / "ptb.train.txt").unlink()
    (tmp_path / "ptb.char.train.txt").unlink()
    with pytest.raises(RnnkitError, match="expected a train file and a dev file"):
        split_files(tmp_path)
    assert set(split_files(tmp_path, need_train=False)) == {"valid", "test"}


def test_a_file_too_short_to_split_is_an_error(tmp_path):
    (tmp_path / "one.txt").write_text("just one line\n")
    with pytest.raises(RnnkitError, match="one.txt: 1 line\\(s\\) cannot be split"):
        wordlm.load_data(wordlm.build_config("tiny", {"data.path": str(tmp_path / "one.txt")}))

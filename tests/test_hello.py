"""The notes' "hello" example end to end: a character model with 3 hidden units, trained on "hello" repeated,
then sampled at temperature 0 from "h", writes "hello...". Its text has no line break, so the sample training
closes with must start from a character the text has (it once primed with "\\n" and failed after training)."""

from rnnkit.cli import main
from rnnkit.data.vocab import Vocab
from rnnkit.tasks import TASKS

TRAIN = [  # the README's snippet: a vanilla RNN, one layer of 3 units, as in the notes
    "--model.cell=rnn",
    "--model.num_layers=1",
    "--model.hidden_size=3",
    "--model.embedding_size=8",
    "--model.dropout=0",
    "--train.batch_size=4",
    "--train.seq_len=16",
    "--train.max_steps=500",
    "--train.learning_rate=0.02",
]


def test_a_character_model_learns_hello(tmp_path, capsys):
    (tmp_path / "hello.txt").write_text("hello" * 200, encoding="utf-8")
    run = tmp_path / "runs" / "hello"
    # not --quiet: training closes with a sample, which is what once failed on a text without a line break
    assert main(["charlm", "train", "--data", str(tmp_path / "hello.txt"), *TRAIN, "--out", str(run)]) == 0
    trained = capsys.readouterr()
    assert "--- sample ---" in trained.out and "error" not in trained.err
    command = ["charlm", "sample", str(run / "best.pt"), "--prime", "h", "--temperature", "0", "--length", "20"]
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("hellohellohello")


def test_the_default_prime_is_a_character_the_model_knows():
    charlm = TASKS["charlm"]
    assert charlm.default_prime({"text": Vocab.from_text("a b\nc")}) == "\n"  # a line break where the text has one
    assert charlm.default_prime({"text": Vocab.from_text("a b c")}) == " "
    assert charlm.default_prime({"text": Vocab.from_text("hello")}) == "e"  # else the first in sorted order

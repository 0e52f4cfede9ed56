"""Tests for rnnkit/summary.py: parameters counted per top-level module as Keras's model.summary() counts them
(tied tensors once, frozen ones apart, a model's own parameters in a row of their own), the table, and where the
CLI prints it (train's standard output unless --quiet; eval's standard error, its standard output unchanged)."""

import torch
from test_cli import run_main
from torch import nn

from rnnkit.summary import ModuleRow, summarize
from rnnkit.tasks import TASKS


class Tied(nn.Module):
    """An embedding tied to its decoder, a dropout with no parameters, a frozen layer and a parameter of its own."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(11, 4)  # 44
        self.dropout = nn.Dropout(0.1)
        self.frozen = nn.Linear(4, 3).requires_grad_(False)  # 15, not trainable
        self.decoder = nn.Linear(4, 11)  # 44 tied + 11 bias
        self.decoder.weight = self.embedding.weight
        self.scale = nn.Parameter(torch.ones(2))  # 2, held by the model itself


def test_each_top_level_module_is_a_row_and_a_tied_tensor_counts_once():
    summary = summarize(Tied())
    assert summary.model == "Tied"
    assert summary.rows == (
        ModuleRow("embedding", "Embedding", 44, 44),
        ModuleRow("dropout", "Dropout", 0, 0),
        ModuleRow("frozen", "Linear", 15, 0),
        ModuleRow("decoder", "Linear", 11, 11),  # its weight is the embedding's, counted there
        ModuleRow("scale", "Parameter", 2, 2),
    )
    assert (summary.total, summary.trainable, summary.non_trainable) == (72, 57, 15)
    assert summary.total == sum(p.numel() for p in Tied().parameters())  # torch also counts a shared tensor once


def test_the_table_names_each_module_and_type_and_the_totals():
    lines = str(summarize(Tied())).splitlines()
    assert lines[0] == "Model: Tied"
    assert lines[2].split() == ["Module", "(type)", "Param", "#"]
    rows = {line.split(" (")[0].strip(): line.split()[-1] for line in lines[4:9]}
    assert rows == {"embedding": "44", "dropout": "0", "frozen": "15", "decoder": "11", "scale": "2"}
    assert lines[-4:-1] == [" Total params: 72", " Trainable params: 57", " Non-trainable params: 15"]
    assert len({len(line) for line in lines[1:9]}) == 1  # rules and rows one width, the counts right-aligned


def test_every_tasks_model_is_summarized_in_full():
    """The rows add up to all of each tiny model's parameters, thousands separated in the table."""
    for name, task in TASKS.items():
        model = task.tiny_model()[0]
        summary = summarize(model)
        assert summary.total == sum(p.numel() for p in model.parameters()) > 0, name
        assert [row.name for row in summary.rows][: len(list(model.children()))] == [
            child for child, _ in model.named_children()
        ]
        assert f" Total params: {summary.total:,}" in str(summary)


def test_train_prints_the_summary_first_unless_quiet_and_eval_on_standard_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    total = summarize(TASKS["memory"].tiny_model()[0]).total
    code, out, _ = run_main(["memory", "train", "--dry-run"], capsys)
    assert code == 0 and out.startswith("Model: MemoryModel\n") and f" Total params: {total:,}\n" in out
    assert out.index("Non-trainable params") < out.index("step ")  # before training reports anything
    code, out, _ = run_main(["memory", "train", "--dry-run", "--quiet"], capsys)
    assert code == 0 and "Model:" not in out and out.startswith("trained ")
    code, out, err = run_main(["memory", "eval", "--dry-run"], capsys)
    assert code == 0 and "Model:" not in out and out.startswith("built-in tiny data: MSE ")
    assert err.startswith("Model: MemoryModel\n") and f" Total params: {total:,}\n" in err

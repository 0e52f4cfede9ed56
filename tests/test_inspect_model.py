"""Tests for rnnkit/viz.py and rnnkit/inspect_model.py: recorded activations agree with the equations,
gate saturation counts, the colour scale, and the HTML report, opened in a real headless browser."""

import html.parser
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from rnnkit.data.vocab import Vocab
from rnnkit.features import correlations, source_features
from rnnkit.inspect_model import compare_cells, hidden_norm_by_activation, inspect_units
from rnnkit.models.char_lm import CharLM
from rnnkit.tasks.charlm import ModelConfig
from rnnkit.viz import colour, gate_saturation, record_activations

CODE = 'def f(x):\n    if x > 1:\n        return "big (x)"  # a comment\n    return [x, (x + 1)]\n' * 12


def model_for(text: str, cell: str = "lstm", scale: float = 1.0, seed: int = 0) -> tuple[CharLM, Vocab]:
    vocab = Vocab.from_text(text)
    model = CharLM(len(vocab), ModelConfig(cell=cell, embedding_size=8, hidden_size=16, num_layers=2, dropout=0.0))
    model.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)  # a large scale saturates the units: strong colours for the browser test
    return model, vocab


def test_recorded_lstm_activations_obey_the_equations():
    """h_t = o_t ⊙ tanh(c_t) for every recorded step; layer 0's h equals the core's own forward; the
    recording is the same whatever the chunking."""
    model, vocab = model_for(CODE)
    activations = record_activations(model, vocab, CODE)
    for layer in ("layer0", "layer1"):
        h, c, o = activations[f"{layer}.h"], activations[f"{layer}.c"], activations[f"{layer}.o"]
        assert h.shape == (len(CODE), 16)
        np.testing.assert_allclose(h, o * np.tanh(c), atol=1e-5)
    with torch.no_grad():
        x = model.embedding(vocab.encode(CODE)[None])
        expected = model.core.layers[0](x)[0][0].numpy()
    np.testing.assert_allclose(activations["layer0.h"], expected, atol=1e-5)
    assert {"layer0.i", "layer0.f", "layer0.o"} <= activations.keys()


def test_gru_gates_are_recorded():
    model, vocab = model_for(CODE, cell="gru")
    activations = record_activations(model, vocab, CODE[:100])
    assert {"layer0.h", "layer0.r", "layer0.z"} <= activations.keys() and "layer0.c" not in activations
    assert ((activations["layer0.z"] > 0) & (activations["layer0.z"] < 1)).all()


def test_gate_saturation_counts_values_near_zero_and_one():
    gates = {"layer0.f": np.array([[0.05, 0.5], [0.95, 0.99]]), "layer0.h": np.zeros((2, 2))}
    assert gate_saturation(gates) == {"layer0.f": {"left": 0.25, "right": 0.5}}


@pytest.mark.parametrize(
    "value, expected", [(1.0, "rgb(255,0,0)"), (-1.0, "rgb(0,0,255)"), (0.0, "rgb(255,255,255)"), (7.0, "rgb(255,0,0)")]
)
def test_colour_scale_red_positive_blue_negative(value, expected):
    assert colour(value) == expected


class Collector(html.parser.HTMLParser):
    """Counts tags and checks that every opened span and pre is closed."""

    def __init__(self):
        super().__init__()
        self.open, self.counts = [], {}

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag in ("span", "pre", "table", "figure"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("span", "pre", "table", "figure"):
            assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
            self.open.pop()


def test_report_is_well_formed_and_its_ranking_is_the_correlation(tmp_path):
    model, vocab = model_for(CODE, scale=3.0)
    summary = inspect_units(model, vocab, CODE, tmp_path, kind="source")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    collector = Collector()
    collector.feed(page)
    assert collector.open == [] and collector.counts["span"] >= len(CODE) and collector.counts["img"] >= 1
    assert page.startswith("<!DOCTYPE html>") and "rgb(255," in page
    assert set(summary["features"]) == set(source_features(CODE))
    assert json.loads((tmp_path / "units.json").read_text()) == json.loads(json.dumps(summary))
    activations = record_activations(model, vocab, CODE)
    in_string = source_features(CODE)["in_string"]
    squashed = {
        name: np.tanh(v) if name.endswith(".c") else v for name, v in activations.items() if name.endswith((".h", ".c"))
    }  # c as tanh(c)
    best = summary["features"]["in_string"][0]
    assert best["r"] == pytest.approx(correlations(squashed[best["state"]], in_string)[best["unit"]])
    strongest = max(np.abs(correlations(values, in_string)).max() for values in squashed.values())
    assert abs(best["r"]) == pytest.approx(strongest)  # the best unit of all layers' h and c
    assert (tmp_path / "top_unit.png").read_bytes().startswith(b"\x89PNG")


def test_compare_cells_measures_every_cell():
    summary, png = compare_cells(["rnn", "lstm"], seq_len=12, hidden_size=8, steps=5)
    assert set(summary) == {"rnn", "lstm"} and png.startswith(b"\x89PNG")
    assert all(
        entry["gradient_ratio_at_init"] >= 0 and entry["gradient_ratio_trained"] >= 0 for entry in summary.values()
    )


def find_or_install_chromium() -> str | None:
    """Debian's chromium, installed with apt-get when missing (CI machines start without it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or not shutil.which("apt-get"):
        return found
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError):
            return None
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_or_install_chromium()
    if path is None:
        pytest.skip("no headless browser: chromium is not installed and apt-get could not install it")
    return path


def test_report_opens_in_a_headless_browser_and_shows_coloured_text(tmp_path, chromium):
    """Chromium renders report.html; its screenshot has thousands of strongly red or blue pixels (the units)."""
    from PIL import Image

    model, vocab = model_for(CODE, scale=4.0)
    inspect_units(model, vocab, CODE, tmp_path, kind="source")
    screenshot = tmp_path / "screenshot.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
        "--window-size=1200,3000",
        f"--screenshot={screenshot}",
    ]
    subprocess.run(
        [chromium, *flags, (tmp_path / "report.html").as_uri()], check=True, capture_output=True, timeout=120
    )
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 120) & (pixels[..., 2] < 120)
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 120) & (pixels[..., 1] < 120)
    assert (red | blue).sum() > 2000, (red.sum(), blue.sum())  # the units' colours, not only the plots' and the text's


def test_hidden_norm_by_activation_shows_the_rectifier_blow_up():
    """Same weights, ρ(U) = 1.2: relu and identity grow by orders of magnitude, tanh stays within √H."""
    summary, png = hidden_norm_by_activation(seq_len=60, hidden_size=16)
    assert png.startswith(b"\x89PNG")
    assert summary["relu"]["last"] > 100 * summary["relu"]["first"]
    assert summary["identity"]["last"] > 100 * summary["identity"]["first"]
    assert summary["tanh"]["last"] <= 16**0.5


def test_a_feature_constant_over_the_text_is_left_out_and_said(tmp_path):
    """Prose without a quotation mark has no in_quotes feature to track: no unit is reported as its best."""
    text = "the old man the boat. the dog runs, and the cat sleeps; a bird sings.\n" * 20
    vocab = Vocab.from_text(text)
    model = CharLM(len(vocab), ModelConfig(embedding_size=8, hidden_size=16, num_layers=1, dropout=0.0))
    summary = inspect_units(model, vocab, text, tmp_path, kind="prose")
    assert "in_quotes" in summary["constant_features"] and "in_quotes" not in summary["features"]
    assert "Left out, constant over this text" in (tmp_path / "report.html").read_text()

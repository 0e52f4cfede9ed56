"""What `rnnkit diagnose` and `rnnkit viz` compute: gradient-through-time curves, spectra, hidden units.

Library functions that return numbers and write files; cli.py only calls them and prints.

    diagnose_core      any task's model on what its task gives (rnnkit.diagnostics.Diagnosis): ‖∂L/∂h_t‖ per
                       layer (‖∂L/∂c_t‖ beside it for the LSTM), spectra, ‖h_t‖; diagnose_model: a language model's
    compare_cells      tiny RNN / LSTM / GRU models trained on a long-dependency task, their curves together
    spectral_radius_toy  the vanilla RNN with U = r · (random orthogonal) for several r: ‖∂h_T/∂h_t‖ and ‖h_t‖
    inspect_units      every unit's activations over a text, ranked against the text's features, as HTML
"""

import base64
import html
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit import diagnostics
from rnnkit.cells import RNNCell
from rnnkit.config import TrainConfig
from rnnkit.data.batching import Generated
from rnnkit.data.vocab import Vocab
from rnnkit.evaluate import evaluating
from rnnkit.features import prose_features, rank_units, source_features
from rnnkit.models.core import CoreConfig, make_core
from rnnkit.plots import figure_png, plt
from rnnkit.recurrent import Recurrent
from rnnkit.train import train
from rnnkit.viz import colour_html, colour_png, gate_saturation, record_activations


class Curve(NamedTuple):
    """One line of a gradient plot: its label, its norms at t = 1..T, its colour's index, solid or dashed."""

    label: str
    norms: np.ndarray  # (T,)
    colour: int
    dashed: bool = False


def drawable(values) -> np.ndarray:
    """Values for a log scale: zeros (a step the loss does not reach), inf and nan left out, not drawn at an edge."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def finite(values) -> list[float | None]:
    """Values for JSON, which has no inf or nan: those become null."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def ratio(first: float, last: float) -> float | None:
    """first / last, or None where that is no number (last 0, or either not finite)."""
    value = float(first) / float(last) if float(last) != 0 else math.nan
    return value if math.isfinite(value) else None


def plot_gradient_curves(curves: list[Curve], title: str, ylabel: str = "‖∂L/∂h_t‖") -> bytes:
    """Gradient norms against steps back from the last step, log scale, one line per curve."""
    figure, axes = plt.subplots(figsize=(7, 4))
    for curve in curves:
        steps_back = np.arange(len(curve.norms))[::-1]  # the last step, where the loss sits, at 0
        axes.semilogy(
            steps_back,
            drawable(curve.norms),
            "--" if curve.dashed else "-",
            label=curve.label,
            color=f"C{curve.colour}",
            marker=".",  # a step the loss reaches alone (a backward direction's first) has no line, only its dot
            markersize=3,
        )
    axes.set_xlabel("steps back from the last step (T − t; a backward direction's steps in its own order)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    figure.tight_layout()
    return figure_png(figure)


def diagnosable(length: int, seq_len: int, batch_size: int = 8) -> bool:
    """Is a text of `length` tokens long enough for diagnose_model's batch of windows?"""
    return length >= batch_size * (seq_len + 1)


def diagnose_model(model, ids: torch.Tensor, seq_len: int = 200, batch_size: int = 8) -> tuple[dict, dict[str, bytes]]:
    """Gradient through time (the loss of the token after each window), spectra and hidden norms, for a language
    model (embedding -> core -> readout) on a text's ids (N,)."""
    return diagnose_core(diagnostics.next_token_diagnosis(model, ids, seq_len, "text", batch_size))


def diagnose_core(diagnosis: diagnostics.Diagnosis) -> tuple[dict, dict[str, bytes]]:
    """What a Diagnosis measures, as summary.json and gradient_through_time.png: ‖∂L/∂h_t‖ of every layer (and
    direction), and for an LSTM layer ‖∂L/∂c_t‖ of its cell state beside it (the highway), each averaged over the
    batch; the spectra of the recurrent matrices; the mean ‖h_t‖."""
    gradients, states = diagnostics.state_gradients(diagnosis)
    hidden = {name: g.h.norm(dim=-1).mean(dim=0).numpy() for name, g in gradients.items()}  # each (T,)
    cell = {name: g.c.norm(dim=-1).mean(dim=0).numpy() for name, g in gradients.items() if "c" in g._fields}
    summary = {
        "loss": diagnosis.what,
        "steps": len(next(iter(hidden.values()))),
        "gradient_through_time": {name: finite(norms) for name, norms in hidden.items()},
        "gradient_ratio_first_to_last": {name: ratio(norms[0], norms[-1]) for name, norms in hidden.items()},
        "cell_state_gradient_through_time": {name: finite(norms) for name, norms in cell.items()},
        "cell_state_gradient_ratio_first_to_last": {name: ratio(norms[0], norms[-1]) for name, norms in cell.items()},
        "spectra": diagnostics.spectra(diagnosis.core),
        "hidden_norm_mean": {name: float(state.h.norm(dim=-1).mean()) for name, state in states.items()},
    }
    curves = []
    for colour, (name, norms) in enumerate(hidden.items()):
        curves.append(Curve(f"{name}: ∂L/∂h_t", norms, colour))
        if name in cell:
            curves.append(Curve(f"{name}: ∂L/∂c_t (cell state)", cell[name], colour, dashed=True))
    ylabel = "‖∂L/∂h_t‖, ‖∂L/∂c_t‖ (dashed)" if cell else "‖∂L/∂h_t‖"
    title = f"gradient through time (loss at {diagnosis.what})"
    return summary, {"gradient_through_time.png": plot_gradient_curves(curves, title, ylabel)}


def first_symbol_task(
    batch_size: int, seq_len: int, symbols: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A long dependency: random symbols, and the target at the last step is the first symbol."""
    inputs = torch.randint(0, symbols, (batch_size, seq_len), generator=generator)  # (B, T)
    return F.one_hot(inputs, symbols).float(), inputs[:, 0]  # (B, T, V), (B,)


MEMORY_BIAS = (
    5.0  # gates start out keeping the state: σ(5)^100 ≈ 0.5 (cf. chrono initialisation, Tallec & Ollivier 2018)
)


def make_compare_model(name: str, hidden_size: int, symbols: int, generator: torch.Generator):
    """One layer of `name` and a linear head, initialised from `generator`. The LSTM's forget gate and the
    GRU's update gate start biased towards keeping the state; the vanilla RNN has no gate to bias."""
    config = CoreConfig(
        cell=name,
        hidden_size=hidden_size,
        num_layers=1,
        dropout=0.0,
        forget_bias=MEMORY_BIAS if name == "lstm" else None,
    )
    core = make_core(config, symbols)
    cell = core.layers[0].cell
    cell.reset_parameters(generator)
    if name == "gru":  # ours is h_t = (1 − z) h_{t-1} + z h̃: z near 0 keeps the state
        with torch.no_grad():
            cell.b[hidden_size : 2 * hidden_size] = -MEMORY_BIAS
            cell.b_U[hidden_size : 2 * hidden_size] = 0.0
    head = torch.nn.Linear(hidden_size, symbols)
    torch.nn.init.uniform_(head.weight, -(hidden_size**-0.5), hidden_size**-0.5, generator=generator)
    torch.nn.init.zeros_(head.bias)
    return core, head


class FirstSymbolBatches(Generated):
    """first_symbol_task batches for train(): batch k drawn from its own seed, so it depends on k alone."""

    def __init__(self, batch_size: int, seq_len: int, symbols: int, seed: int):
        self.batch_size, self.seq_len, self.symbols = batch_size, seq_len, symbols
        super().__init__(
            lambda seed: first_symbol_task(batch_size, seq_len, symbols, torch.Generator().manual_seed(seed)),
            seed,
            1 << 30,
        )


class LastStepClassifier(torch.nn.Module):
    """core -> the head on the last step's output: the long-dependency task's model."""

    def __init__(self, core, head):
        super().__init__()
        self.core, self.head = core, head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.core(inputs)  # (B, T, H)
        return self.head(outputs[:, -1])  # (B, V)


def last_step_loss(model: LastStepClassifier, batch, state) -> tuple[torch.Tensor, None, int]:
    inputs, target = batch  # (B, T, V), (B,)
    return F.cross_entropy(model(inputs), target), None, target.shape[0]


def compare_cells(
    cells: list[str], seq_len: int = 100, hidden_size: int = 32, steps: int = 600, seed: int = 0, on_cell=None
) -> tuple[dict, bytes]:
    """Train a one-layer model of each cell on first_symbol_task with rnnkit's training loop; measure its
    gradient through time before and after training (loss at the last step, ‖∂L/∂h_t‖ back to the first)."""
    symbols, curves, summary = 8, [], {}
    config = TrainConfig(
        batch_size=32,
        max_steps=steps,
        optimizer="adam",
        learning_rate=3e-3,
        weight_decay=0.0,
        lr_schedule="constant",
        grad_clip=1.0,
        eval_interval=1 << 30,
        checkpoint_minutes=0.0,
        seed=seed,
    )
    for name in cells:
        generator = torch.Generator().manual_seed(seed)
        model = LastStepClassifier(*make_compare_model(name, hidden_size, symbols, generator))

        def measure(model=model, generator=generator) -> np.ndarray:  # bound now: the loop rebinds both
            inputs, target = first_symbol_task(64, seq_len, symbols, generator)
            gradients = diagnostics.gradient_through_time(
                model.core, inputs, lambda h: F.cross_entropy(model.head(h), target)
            )
            return diagnostics.gradient_norms(gradients)[0].numpy()

        at_init = measure()
        records = train(model, FirstSymbolBatches(32, seq_len, symbols, seed), config, last_step_loss)
        trained = measure()
        parameters = sum(p.numel() for p in model.core.parameters())  # the cell's: the head is the same for all
        named = f"{name} ({parameters:,} params)"
        curves += [
            Curve(f"{named}: trained", trained, len(summary)),
            Curve(f"{named}: at init", at_init, len(summary), True),
        ]
        inputs, target = first_symbol_task(256, seq_len, symbols, generator)
        with torch.no_grad(), evaluating(model):
            accuracy = float((model(inputs).argmax(-1) == target).float().mean())
        final_loss = records[-1].loss if records else math.nan
        summary[name] = {
            "parameters": parameters,
            "final_loss": final_loss,
            "accuracy": accuracy,
            "chance_accuracy": 1.0 / symbols,
            **orders_lost("at_init", at_init),
            **orders_lost("trained", trained),
        }
        if on_cell is not None:
            on_cell(name)
    return summary, plot_gradient_curves(
        curves, f"gradient through time, {seq_len}-step dependency ({steps} training steps)"
    )


def orders_lost(label: str, norms: np.ndarray) -> dict:
    """The first step's gradient norm over the last's, and that in orders of magnitude (None: underflowed to 0)."""
    ratio = float(norms[0]) / float(norms[-1])
    return {
        f"gradient_ratio_{label}": ratio,
        f"orders_of_magnitude_lost_{label}": -math.log10(ratio) if ratio > 0 else None,
    }


def spectral_radius_toy(radii: list[float], seq_len: int = 50, seed: int = 0) -> tuple[dict, bytes]:
    """The notes' toy (diagnostics.radius_toy): for each r, the vanilla tanh RNN with U = r · Q, Q a seeded random
    orthogonal matrix: ‖∂h_T/∂h_t‖ and ‖h_t‖ over t, one curve per r on log scales, and beside each ρ(U) the 1/γ
    below which the gradient must vanish."""
    measured = diagnostics.radius_toy(radii, seq_len, seed=seed)
    threshold = 1.0 / diagnostics.GAMMA["tanh"]
    figure, (gradient_axes, hidden_axes) = plt.subplots(1, 2, figsize=(11, 4))
    summary = {
        "nonlinearity": "tanh",
        "gamma": diagnostics.GAMMA["tanh"],
        "vanishing_below": threshold,
        "vanishing_below_for_sigmoid": 1.0 / diagnostics.GAMMA["sigmoid"],
        "radii": {},
    }
    for colour, (radius, entry) in enumerate(measured.items()):
        certain = diagnostics.vanishing_certain(radius)
        label = f"ρ(U) = {radius:g} ({'<' if certain else '≥'} 1/γ = {threshold:g})"
        jacobian, hidden = np.asarray(entry["jacobian_norm"]), np.asarray(entry["hidden_norm"])  # (T,), (T,)
        gradient_axes.semilogy(np.arange(seq_len)[::-1], drawable(jacobian), label=label, color=f"C{colour}")
        hidden_axes.semilogy(np.arange(1, seq_len + 1), drawable(hidden), label=label, color=f"C{colour}")
        summary["radii"][f"{radius:g}"] = {
            "spectral_radius": entry["spectral_radius"],
            "vanishing_certain": certain,
            "jacobian_norm_first": finite(jacobian[:1])[0],  # ‖∂h_T/∂h_1‖: T − 1 steps back
            "hidden_norm_last": finite(hidden[-1:])[0],
            "jacobian_norm": finite(jacobian),
            "hidden_norm": finite(hidden),
        }
    gradient_axes.set_xlabel("steps back from h_T (T − t)")
    gradient_axes.set_ylabel("‖∂h_T/∂h_t‖ (spectral norm)")
    hidden_axes.set_xlabel("t")
    hidden_axes.set_ylabel("‖h_t‖")
    for axes in (gradient_axes, hidden_axes):
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=8)
    figure.suptitle(
        f"vanilla tanh RNN, U = r · (random orthogonal): ρ(U) = r; vanishing is certain below 1/γ = {threshold:g}"
    )
    figure.tight_layout()
    return summary, figure_png(figure)


def hidden_norm_by_activation(
    seq_len: int = 100, hidden_size: int = 32, radius: float = 1.2, seed: int = 0
) -> tuple[dict, bytes]:
    """‖h_t‖ over time for the vanilla RNN with g = tanh, relu and identity, on the same weights with
    U = radius · I (the IRNN initialisation of Le et al. 2015, a little past 1): tanh stays bounded, the
    rectifier and the linear RNN blow up."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(4, seq_len, 8, generator=generator)  # (B, T, D): positive inputs, as pixels or counts
    figure, axes = plt.subplots(figsize=(7, 4))
    summary = {}
    for g in ("tanh", "relu", "identity"):
        cell = RNNCell(8, hidden_size, nonlinearity=g)
        cell.reset_parameters(torch.Generator().manual_seed(seed))  # the same weights for every g
        with torch.no_grad():
            cell.U.copy_(radius * torch.eye(hidden_size))  # ρ(U) = radius
        norms = diagnostics.hidden_norms(Recurrent(cell), inputs)[0].numpy()  # (T,)
        axes.semilogy(np.arange(1, seq_len + 1), norms, label=f"g = {g}")
        summary[g] = {"first": float(norms[0]), "last": float(norms[-1])}
    axes.set_xlabel("t")
    axes.set_ylabel("‖h_t‖")
    axes.set_title(f"vanilla RNN with ρ(U) = {radius}: why not rectifiers")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    figure.tight_layout()
    return summary, figure_png(figure)


def text_features(text: str, kind: str) -> dict[str, np.ndarray]:
    if kind == "auto":
        kind = (
            "source"
            if sum(text.count(s) for s in ("def ", "import ", "return ", "    ")) > len(text) / 200
            else "prose"
        )
    return source_features(text) if kind == "source" else prose_features(text)


def saturation_png(saturation: dict[str, dict[str, float]]) -> bytes:
    names = list(saturation)
    figure, axes = plt.subplots(figsize=(max(4, 0.6 * len(names) + 2), 3.5))
    positions = np.arange(len(names))
    axes.bar(positions - 0.2, [saturation[n]["left"] for n in names], 0.4, label="left-saturated (< 0.1)")
    axes.bar(positions + 0.2, [saturation[n]["right"] for n in names], 0.4, label="right-saturated (> 0.9)")
    axes.set_xticks(positions, names, rotation=45, ha="right")
    axes.set_ylabel("fraction of time")
    axes.set_title("gate saturation")
    axes.legend()
    figure.tight_layout()
    return figure_png(figure)


def inspect_units(
    model,
    vocab: Vocab,
    text: str,
    out: Path,
    kind: str = "auto",
    top: int = 2,
    extra_plots: dict[str, bytes] | None = None,
) -> dict:
    """Write out/report.html (coloured text for the best units of each feature, gate saturation, plots) and
    out/units.json; return the ranking."""
    activations = record_activations(model, vocab, text)
    features = text_features(text, kind)
    # a feature constant over this text (no quotation marks at all) has no unit that tracks it: left out, and said
    constant = [name for name, values in features.items() if np.ptp(np.asarray(values, dtype=float)) == 0]
    features = {name: values for name, values in features.items() if name not in constant}
    # the states as ranked and shown: c reaches the output only through tanh(c), so c is tanh(c) here
    states = {
        name: np.tanh(values) if name.endswith(".c") else values
        for name, values in activations.items()
        if name.endswith((".h", ".c"))
    }
    ranking = {}
    for name, values in states.items():
        for feature, units in rank_units(values, features, top).items():
            ranking.setdefault(feature, []).extend((name, unit, r) for unit, r in units)
    best = {feature: sorted(found, key=lambda item: -abs(item[2]))[:top] for feature, found in ranking.items()}
    saturation = gate_saturation(activations)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    shown = text[:2000]
    for feature, units in best.items():
        for layer_state, unit, r in units:
            title = f"{feature}: {layer_state} unit {unit}, r = {r:+.2f}"
            sections.append(colour_html(shown, states[layer_state][: len(shown), unit], title))
    if best:
        feature, ((layer_state, unit, r), *_) = next(iter(best.items()))
        colour_png(
            shown[:1200],
            states[layer_state][:1200, unit],
            out / "top_unit.png",
            title=f"{feature}: {layer_state} unit {unit}, r = {r:+.2f}",
        )
    images = dict(extra_plots or {})
    if saturation:
        images["gate_saturation.png"] = saturation_png(saturation)
    figures = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for n, png in images.items()
    )
    table = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{html.escape(s)} unit {u}</td><td>{r:+.3f}</td></tr>"
        for f, units in best.items()
        for s, u, r in units
    )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto} "
        "pre.unit{white-space:pre-wrap;font-family:monospace;line-height:1.35;border:1px solid #ccc;padding:.5em}\n"
        "table{border-collapse:collapse} td{border:1px solid #ccc;padding:2px 8px} figure{display:inline-block}"
    )
    left_out = f"<p>Left out, constant over this text: {html.escape(', '.join(constant))}.</p>" if constant else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rnnkit: inside the model</title>
<style>{style}</style></head>
<body><h1>Inside the model</h1>
<p>Each character's background shows one hidden unit's value as the model reads it: red near +1, blue near −1.</p>
<h2>Best units per feature (Pearson r)</h2><table><tr><th>feature</th><th>unit</th><th>r</th></tr>{table}</table>
{left_out}
<h2>Plots</h2>{figures}
<h2>Units</h2>{"".join(sections)}
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    summary = {
        "features": {f: [{"state": s, "unit": u, "r": r} for s, u, r in units] for f, units in best.items()},
        "gate_saturation": saturation,
        "constant_features": constant,
    }
    (out / "units.json").write_text(json.dumps(summary, indent=1))
    return summary

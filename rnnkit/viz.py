"""The inside view, part 2: what each hidden unit of a character model does as it reads a text.

record_activations runs the model over a text and keeps every unit's h (and c and the gates of an
LSTM or GRU) at every character, from the states Recurrent returns. colour_html / colour_png draw the
text with each character's background coloured by one unit's value (red near +1, blue near −1, as the
notes show it), and gate_saturation counts how often each gate sits near 0 or 1.
"""

import html
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.cells import GRUCell, LSTMCell
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write
from rnnkit.plots import plt

CHUNK = 512  # steps per forward call; the state is carried, so chunking changes nothing but memory


def gates(cell, x: torch.Tensor, h_previous: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gate values the cell computed at each step, from its inputs (B, T, D) and h_{t-1} (B, T, H)."""
    if isinstance(cell, LSTMCell):
        a = cell.project(x) + F.linear(h_previous, cell.U, cell.b_U)  # (B, T, 4H)
        i, f, _, o = a.chunk(4, dim=-1)
        return {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "o": torch.sigmoid(o)}
    if isinstance(cell, GRUCell):
        H = cell.hidden_size
        a_x = cell.project(x)[..., : 2 * H]  # (B, T, 2H)
        a_h = F.linear(h_previous, cell.U[: 2 * H], None if cell.b_U is None else cell.b_U[: 2 * H])
        r, z = (a_x + a_h).chunk(2, dim=-1)
        return {"r": torch.sigmoid(r), "z": torch.sigmoid(z)}
    return {}


@torch.no_grad()
def record_activations(model, vocab: Vocab, text: str) -> dict[str, np.ndarray]:
    """{'layer0.h': (N, H), 'layer0.c': ..., 'layer0.f': ..., ...} for a text of N characters."""
    if not hasattr(model, "embedding") or not hasattr(model, "core"):
        raise RnnkitError("record_activations needs a character model (embedding -> core -> decoder)")
    device = next(model.parameters()).device
    ids = vocab.encode(text, what="text").to(device)[None]  # (1, N)
    x = model.embedding(ids)  # (1, N, E)
    recorded: dict[str, list] = {}
    below = [x]  # the core's input, then each layer's output: what its skip connections read
    for index, layer in enumerate(model.core.layers):
        x = model.core.reads(index, below)  # (1, N, D): what this layer reads
        state, outputs = None, []
        for start in range(0, x.shape[1], CHUNK):
            chunk = x[:, start : start + CHUNK]  # (1, t, D)
            first = layer.init_state(1) if state is None else state
            out, state, states = layer(chunk, first, return_states=True)  # each field (1, t, H)
            h_previous = torch.cat([first.h[:, None], states.h[:, :-1]], dim=1)  # (1, t, H)
            values = {field: getattr(states, field) for field in states._fields} | gates(layer.cell, chunk, h_previous)
            for name, value in values.items():
                recorded.setdefault(f"layer{index}.{name}", []).append(value[0].cpu())
            outputs.append(out)
        below.append(model.core.joins(index, x, torch.cat(outputs, dim=1)))  # (1, N, H): what the layers above read
    return {name: torch.cat(parts).numpy() for name, parts in recorded.items()}


def gate_saturation(activations: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """For every gate: the fraction of (step, unit) values left-saturated (< 0.1) and right-saturated (> 0.9)."""
    report = {}
    for name, values in activations.items():
        if name.rsplit(".", 1)[1] in ("i", "f", "o", "r", "z"):
            report[name] = {"left": float((values < 0.1).mean()), "right": float((values > 0.9).mean())}
    return report


def colour(value: float) -> str:
    """Red for +1, blue for −1, white for 0 (values are clipped to [−1, 1])."""
    v = float(np.clip(value, -1, 1))
    strength = int(255 * (1 - abs(v)))
    return f"rgb(255,{strength},{strength})" if v >= 0 else f"rgb({strength},{strength},255)"


def colour_html(text: str, values: np.ndarray, title: str = "") -> str:
    """An HTML fragment: the text, each character on a background coloured by its value."""
    spans = []
    for ch, value in zip(text, values):
        shown = "↵\n" if ch == "\n" else html.escape(ch)
        spans.append(f'<span style="background:{colour(value)}" title="{value:+.3f}">{shown}</span>')
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return f'{heading}<pre class="unit">{"".join(spans)}</pre>'


def colour_png(text: str, values: np.ndarray, path: str | Path, columns: int = 100, title: str = "") -> None:
    """The same colouring as a PNG: one cell per character, lines wrapped at `columns`."""
    cells, row, column = [], 0, 0
    for ch, value in zip(text, values):
        cells.append((row, column, ch, value))
        column += 1
        if ch == "\n" or column == columns:
            row, column = row + 1, 0
    rows = row + 1
    figure = plt.figure(figsize=(columns * 0.11, rows * 0.2 + 0.4))
    axes = figure.add_axes([0, 0, 1, rows / (rows + 2)])
    axes.set_xlim(0, columns)
    axes.set_ylim(rows, 0)
    axes.axis("off")
    for r, c, ch, value in cells:
        v = float(np.clip(value, -1, 1))
        face = (1, 1 - abs(v), 1 - abs(v)) if v >= 0 else (1 - abs(v), 1 - abs(v), 1)
        axes.add_patch(plt.Rectangle((c, r), 1, 1, color=face, lw=0))
        if ch not in "\n ":
            axes.text(c + 0.5, r + 0.55, ch, ha="center", va="center", family="monospace", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=100))
    plt.close(figure)

"""Pictures of a run, and the one place rnnkit sets matplotlib up (files only, no display).

plot_losses     train and validation loss against steps, as a PNG
figure_png      any figure as PNG bytes (the inside view's plots, rnnkit/inspect_model.py)
confusion_png   a confusion matrix as PNG bytes (the classifiers' eval)
attention_png   a translation's attention weights as PNG bytes: source tokens across, target tokens down
"""

import functools
import io
import itertools
from pathlib import Path

import numpy as np

from rnnkit.files import atomic_write

__all__ = ["attention_png", "confusion_png", "figure_png", "plot_losses", "pyplot"]


@functools.cache
def pyplot():
    """matplotlib.pyplot, set up for files only (no display), imported on the first picture: a command that
    draws nothing (rnnkit --help, sample, tag) never pays for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def __getattr__(name: str):
    if name == "plt":  # from rnnkit.plots import plt
        return pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def figure_png(figure) -> bytes:
    plt = pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def plot_losses(records: list[dict], path: str | Path, title: str = "", ylabel: str = "loss (nats per token)") -> None:
    """records: dicts with step, loss and (on evaluation steps) val_loss. Written atomically."""
    plt = pyplot()
    steps = [r["step"] for r in records]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(steps, [r["loss"] for r in records], lw=0.8, alpha=0.6, label="train (per batch)")
    evaluated = [r for r in records if r.get("val_loss") is not None]
    if evaluated:
        axes.plot([r["step"] for r in evaluated], [r["val_loss"] for r in evaluated], "o-", label="validation")
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=110))
    plt.close(figure)


def confusion_png(confusion: list[list[int]], names: list[str], title: str = "") -> bytes:
    """A confusion matrix (rows true, columns predicted) as a PNG: each row shaded by its own total,
    counts written in."""
    plt = pyplot()
    counts = np.asarray(confusion, dtype=float)  # (K, K)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)  # (K, K): each row's share, so rare classes show
    size = max(3.5, 0.45 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if len(names) <= 20:
        for i in range(len(names)):
            for j in range(len(names)):
                axes.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    color="white" if rates[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    figure.colorbar(image, ax=axes, label="share of the true class")
    figure.tight_layout()
    return figure_png(figure)


def attention_png(weights, source: list[str], target: list[str], title: str = "") -> bytes:
    """weights (T, S): row t the attention of target token t over the source tokens (each row sums to 1)."""
    plt = pyplot()
    weights = np.asarray(weights, dtype=float)  # (T, S)
    figure, axes = plt.subplots(figsize=(max(3.5, 0.35 * len(source) + 1.8), max(3.0, 0.3 * len(target) + 1.4)))
    image = axes.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(target)), target, fontsize=8)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, label="attention weight")
    figure.tight_layout()
    return figure_png(figure)


def picture_png(picture) -> bytes:
    """A Pillow image as PNG bytes."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def animated_gif(pictures, milliseconds: int = 200) -> bytes:
    """Pillow images one after another, `milliseconds` each, looping: GIF bytes. Pillow writes a run of identical
    frames as one frame shown for their summed time, which GIF caps at 65,535 ms: such a run is shown that long."""
    durations = []
    for _, run in itertools.groupby(picture.tobytes() for picture in pictures):  # each run of identical frames
        length = sum(1 for _ in run)
        durations += [min(milliseconds, 65535 // length)] * length
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return buffer.getvalue()


def accuracy_bars_png(accuracies: dict[str, dict[str, float]], title: str = "", chance: float | None = 0.5) -> bytes:
    """Grouped bars: for each series (a model, a cell) its accuracy in each group (a construction of minimal pairs),
    groups across, one colour per series, the value written on each bar and a dashed line at `chance`."""
    plt = pyplot()
    groups = list(dict.fromkeys(group for series in accuracies.values() for group in series))  # in first-seen order
    width = 0.8 / max(1, len(accuracies))
    figure, axes = plt.subplots(figsize=(max(5.0, len(groups) * (0.4 + 0.3 * len(accuracies)) + 2.5), 4))
    for s, (name, series) in enumerate(accuracies.items()):
        positions = [g + (s - (len(accuracies) - 1) / 2) * width for g in range(len(groups))]
        values = [series.get(group, float("nan")) for group in groups]
        bars = axes.bar(positions, values, width, label=name)
        axes.bar_label(bars, [f"{v:.2f}" if v == v else "" for v in values], fontsize=7, padding=1)
    if chance is not None:
        axes.axhline(chance, color="grey", linestyle="--", linewidth=0.8, label="chance")
    axes.set_xticks(range(len(groups)), [group.replace("_", "\n") for group in groups], fontsize=8)
    axes.set_ylim(0, 1.08)
    axes.set_ylabel("accuracy")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    figure.tight_layout()
    return figure_png(figure)

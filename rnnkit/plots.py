"""Pictures of a run, and the one place rnnkit sets matplotlib up (files only, no display).

    plot_losses     train and validation loss against steps, as a PNG
    figure_png      any figure as PNG bytes (the inside view's plots, rnnkit/inspect_model.py)
"""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from rnnkit.files import atomic_write  # noqa: E402

__all__ = ["figure_png", "plot_losses", "plt"]


def figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def plot_losses(records: list[dict], path: str | Path, title: str = "", ylabel: str = "loss (nats per token)") -> None:
    """records: dicts with step, loss and (on evaluation steps) val_loss. Written atomically."""
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

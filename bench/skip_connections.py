"""Skip connections in a deep char-LM: does the gradient reach the bottom layer, and does validation loss follow?

Trains an 8-layer character model on Tiny Shakespeare (the copy inside rnnkit, nanoGPT's split: the last 10% is
validation) for the same wall-clock budget with each --model.skip (none, residual, dense), for the LSTM and the
vanilla RNN, one run after another. For each run it records the validation loss over training (the run's
metrics.jsonl) and, with rnnkit.diagnostics, ‖∂L/∂h_t‖ of every layer for the loss of the next character after
8 validation windows, at initialisation and after training: the bottom layer's value at the last step is the
gradient that came down through all the layers above (the CS224n notes' vanishing gradient, in depth).
Run by hand (10 minutes per run, 6 runs, on 2 CPU cores):

    python bench/skip_connections.py [--minutes 10] [--cells lstm,rnn] [--skips none,residual,dense] [EXTRA FLAGS]

It writes bench/results-skip-connections.json (per run: the validation curve, and ‖∂L/∂h_t‖ of the bottom
layer at every step and of every layer at the loss's step) and bench/results-skip-connections.png (validation
loss against training minutes; ‖∂L/∂h_T‖ layer by layer). Extra flags go to `rnnkit charlm train` (e.g.
--train.learning_rate=1e-3). A quick check of the script itself:

    python bench/skip_connections.py --minutes 0.1 --hidden-size 16 --json /tmp/skip.json --png /tmp/skip.png
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import rnnkit
from rnnkit import diagnostics
from rnnkit.plots import figure_png, plt
from rnnkit.runs import read_metrics
from rnnkit.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "rnnkit" / "data" / "corpora" / "tinyshakespeare.txt"
WINDOWS = 8  # validation windows the gradient is measured on


def train_run(cell: str, skip: str, args: argparse.Namespace, out: Path) -> list[str]:
    """`rnnkit charlm train` for one (cell, skip) on the time budget; returns its command line."""
    command = [
        *("charlm", "train", "--preset", args.preset, "--data", str(args.data), "--out", str(out)),
        *("--overwrite", "--quiet", f"--train.device={args.device}"),
        f"--model.cell={cell}",
        f"--model.skip={skip}",
        f"--model.num_layers={args.layers}",
        f"--model.hidden_size={args.hidden_size}",
        f"--train.max_minutes={args.minutes}",
        "--train.lr_schedule=budget",  # cosine over the time budget: each run anneals fully, however fast it is
        f"--train.max_steps={10**9}",
        f"--train.eval_interval={args.eval_interval}",
        "--train.checkpoint_minutes=0",
        *args.extra,
    ]
    subprocess.run([sys.executable, "-m", "rnnkit", *command], check=True, cwd=ROOT)
    return command


def validation_windows(trained, text: str, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """WINDOWS windows of the validation split, evenly spread: inputs (B, T) and the next character (B,)."""
    val_text = text[int(len(text) * (1 - trained.config.data.val_fraction)) :]
    ids = trained.vocabularies["text"].encode(val_text)  # (N,)
    starts = torch.linspace(0, len(ids) - seq_len - 1, WINDOWS).long()
    windows = torch.stack([ids[s : s + seq_len + 1] for s in starts.tolist()])  # (B, T + 1)
    return windows[:, :-1], windows[:, -1]


def gradient_report(model, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """‖∂L/∂h_t‖ per layer (rnnkit.diagnostics) for the loss of the character after each window."""
    model.eval()
    with torch.no_grad():
        x = model.embedding(inputs)  # (B, T, E)
    gradients = diagnostics.gradient_through_time(model.core, x, lambda h: F.cross_entropy(model.readout(h), targets))
    norms = diagnostics.gradient_norms(gradients)  # (L, T)
    return {
        "bottom_last_step": float(norms[0, -1]),  # ∂L/∂h_T of layer 0: what came down through every layer above
        "top_last_step": float(norms[-1, -1]),
        "bottom_over_top": float(norms[0, -1] / norms[-1, -1]),
        "bottom_curve": norms[0].tolist(),  # ‖∂L/∂h_t‖ of layer 0 for t = 1 .. T
        "last_step_by_layer": norms[:, -1].tolist(),
    }


def one_run(cell: str, skip: str, args: argparse.Namespace, text: str) -> dict:
    out = Path(args.out) / f"{cell}-{skip}"
    started = time.time()
    command = train_run(cell, skip, args, out)
    seconds = time.time() - started
    records = read_metrics(out / "metrics.jsonl")
    trained = rnnkit.load(out / "best.pt")
    B, T = trained.config.train.batch_size, trained.config.train.seq_len
    curve = [
        [record["step"] * B * T / record["tokens_per_second"] / 60, record["val_loss"]]  # training minutes, loss
        for record in records
        if record.get("val_loss") is not None
    ]
    inputs, targets = validation_windows(trained, text, args.diagnose_steps)
    initial = TASKS["charlm"].build_model(trained.config, trained.vocabularies)  # the same seed: the run's start
    result = {
        "cell": cell,
        "skip": skip,
        "command": "rnnkit " + " ".join(command),
        "seconds": round(seconds),
        "steps": records[-1]["step"],
        "tokens_per_second": records[-1]["tokens_per_second"],
        "best_val_loss": min(loss for _, loss in curve),
        "final_val_loss": curve[-1][1],
        "val_curve": curve,
        "gradient_at_init": gradient_report(initial, inputs, targets),
        "gradient_trained": gradient_report(trained.model, inputs, targets),
    }
    print(
        f"{cell:4} {skip:8} best val {result['best_val_loss']:.4f} nats/char in {result['steps']} steps; bottom "
        f"layer ‖∂L/∂h_T‖ {result['gradient_at_init']['bottom_last_step']:.3g} at init, "
        f"{result['gradient_trained']['bottom_last_step']:.3g} trained",
        flush=True,
    )
    return result


def figure(runs: list[dict], cells: list[str], layers: int) -> bytes:
    """Per cell: validation loss against training minutes; ‖∂L/∂h_T‖ of each layer at the loss's step, bottom to
    top (how much of the gradient comes down through the layers)."""
    fig, axes = plt.subplots(2, len(cells), figsize=(6 * len(cells), 8), squeeze=False)
    skips = list(dict.fromkeys(run["skip"] for run in runs))
    for column, cell in enumerate(cells):
        for run in (r for r in runs if r["cell"] == cell):
            colour = f"C{skips.index(run['skip'])}"
            minutes, losses = zip(*run["val_curve"])
            axes[0, column].plot(minutes, losses, "o-", color=colour, label=run["skip"])
            for key, style, when in (("gradient_trained", "o-", "trained"), ("gradient_at_init", "x--", "at init")):
                by_layer = torch.tensor(run[key]["last_step_by_layer"]).clamp(min=1e-30)
                axes[1, column].semilogy(by_layer, style, color=colour, label=f"{run['skip']} ({when})")
        axes[0, column].set(
            title=f"{cell}, {layers} layers", xlabel="training minutes", ylabel="validation loss (nats/char)"
        )
        axes[1, column].set(
            title=f"{cell}: the gradient down the layers (loss at the next character)",
            xlabel="layer (0: the bottom, reading the embeddings)",
            ylabel="‖∂L/∂h_T‖ at the loss's step",
        )
        for axis in axes[:, column]:
            axis.grid(alpha=0.3, which="both")
            axis.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each run")
    parser.add_argument("--cells", default="lstm,rnn", help="comma-separated cells")
    parser.add_argument("--skips", default="none,residual,dense", help="comma-separated --model.skip values")
    parser.add_argument("--layers", type=int, default=8, help="stacked layers")
    parser.add_argument("--hidden-size", type=int, default=256, help="hidden units per layer")
    parser.add_argument("--preset", default="cpu-10min", help="the charlm preset the runs start from")
    parser.add_argument("--eval-interval", type=int, default=100, help="steps between validation evaluations")
    parser.add_argument("--diagnose-steps", type=int, default=100, help="T of the windows the gradient is measured on")
    parser.add_argument("--data", type=Path, default=DATA, help="the text (default: the bundled Tiny Shakespeare)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-skip"), help="where the runs go")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results-skip-connections.json")
    parser.add_argument("--png", type=Path, default=ROOT / "bench" / "results-skip-connections.png")
    args, extra = parser.parse_known_args()  # the rest are `rnnkit charlm train` flags
    args.extra = extra
    cells, skips = args.cells.split(","), args.skips.split(",")
    text = args.data.read_text(encoding="utf-8")
    runs = [one_run(cell, skip, args, text) for cell in cells for skip in skips]
    report = {
        "benchmark": "skip_connections",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "minutes_per_run": args.minutes,
        "layers": args.layers,
        "hidden_size": args.hidden_size,
        "runs": runs,
    }
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    args.png.write_bytes(figure(runs, cells, args.layers))
    print(f"wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()

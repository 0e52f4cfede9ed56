"""Subject-verb agreement by cell: word LMs with rnn, gru and lstm cells, each trained for the same wall-clock
budget on Penn Treebank, scored on generated minimal pairs (Marvin & Linzen 2018's constructions,
rnnkit/data/agreement.py): the share of pairs whose grammatical sentence each model finds more likely.

Each cell trains with `rnnkit wordlm train --preset ptb-cpu --model.cell=CELL` for --budget seconds (one after
another, --threads each), then the best checkpoint scores --count pairs of every construction in this process
(TrainedLanguageModel.score_pairs). --checkpoints scores checkpoints already trained instead.

    python bench/agreement.py --json bench/results-agreement.json --figure bench/results-agreement.png
    python bench/agreement.py --checkpoints rnn=runs/a/rnn/best.pt,gru=runs/a/gru/best.pt,lstm=runs/a/lstm/best.pt
    python bench/agreement.py --preset tiny --budget 5 --count 20 --out /tmp/agreement   # a check of the script
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import rnnkit
from rnnkit.data.agreement import CONSTRUCTIONS, agreement_pairs
from rnnkit.plots import accuracy_bars_png

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "ptb"
CELLS = ("rnn", "gru", "lstm")


def environment(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def train(args, cell: str, out: Path) -> str:
    """Train one cell for the budget; its summary line."""
    command = [
        *(sys.executable, "-m", "rnnkit", "wordlm", "train", "--preset", args.preset, "--data", args.data),
        *("--out", str(out), "--overwrite", "--quiet", f"--model.cell={cell}"),
        *(f"--train.max_minutes={args.budget / 60}", f"--train.device={args.device}"),
    ]
    done = subprocess.run(command, env=environment(args.threads), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"training {cell} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[0]


def best_perplexity(run: Path) -> float | None:
    """exp(best validation loss) from the run's metrics.jsonl, where the checkpoint has one beside it."""
    metrics = run / "metrics.jsonl"
    if not metrics.exists():
        return None
    losses = [json.loads(line).get("val_loss") for line in metrics.read_text().splitlines()]
    losses = [loss for loss in losses if loss is not None]
    return round(math.exp(min(losses)), 2) if losses else None


def score(checkpoint: Path, pairs, device: str) -> dict:
    trained = rnnkit.load(checkpoint, device=device)
    started = time.time()
    scores = trained.score_pairs(pairs)
    return {
        "checkpoint": str(checkpoint),
        "steps": trained.step,
        "val_perplexity": best_perplexity(checkpoint.parent),
        "accuracy": round(scores.accuracy, 4),
        "by_construction": {
            name: {"accuracy": round(a.accuracy, 4), "correct": a.correct, "total": a.total}
            for name, a in scores.by_construction().items()
        },
        "pairs_with_unknown_words": scores.with_unknown,
        "scoring_seconds": round(time.time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1800, help="training seconds per cell (default 1800)")
    parser.add_argument("--preset", default="ptb-cpu", help="wordlm preset each cell trains with (default ptb-cpu)")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells (default rnn,gru,lstm)")
    parser.add_argument("--checkpoints", help="instead of training: CELL=PATH,... checkpoints to score")
    parser.add_argument("--data", default=str(DATA), help="the PTB directory (default ../shared/data/ptb)")
    parser.add_argument("--count", type=int, default=1000, help="pairs per construction (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated pairs (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="threads for training and scoring (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/bench-agreement", help="directory of the training runs")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--figure", help="write the accuracy by construction and cell here (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoints:
        checkpoints = {cell: Path(path) for cell, path in (item.split("=", 1) for item in args.checkpoints.split(","))}
    else:
        checkpoints = {}
        for cell in args.cells.split(","):
            run = Path(args.out) / cell
            print(f"{cell}: {train(args, cell, run)}", flush=True)
            checkpoints[cell] = run / "best.pt"
    pairs = agreement_pairs(CONSTRUCTIONS, count=args.count, seed=args.seed)
    results = {cell: score(path, pairs, args.device) for cell, path in checkpoints.items()}
    width = max(len(name) for name in CONSTRUCTIONS)
    print(f"{'':<{width}}  " + "  ".join(f"{cell:>6}" for cell in results))
    for name in [*CONSTRUCTIONS, "all"]:
        row = [r["accuracy"] if name == "all" else r["by_construction"][name]["accuracy"] for r in results.values()]
        print(f"{name:<{width}}  " + "  ".join(f"{value:6.3f}" for value in row))
    if args.json:
        machine = {"cpus": os.cpu_count(), "threads": args.threads, "device": args.device}
        report = {
            "machine": machine,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "preset": args.preset,
            "budget_s": None if args.checkpoints else args.budget,
            "pairs_per_construction": args.count,
            "seed": args.seed,
            "results": results,
        }
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.figure:
        accuracies = {
            cell: {name: entry["accuracy"] for name, entry in r["by_construction"].items()}
            for cell, r in results.items()
        }
        Path(args.figure).write_bytes(
            accuracy_bars_png(accuracies, "subject-verb agreement on PTB: acceptable preferred")
        )


if __name__ == "__main__":
    main()

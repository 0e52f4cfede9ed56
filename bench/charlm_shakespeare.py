"""Tiny Shakespeare quality benchmark: rnnkit's char-LM against the plain torch.nn.LSTM anchor, one machine.

Runs `rnnkit charlm train --preset PRESET` on nanoGPT's split (first 90% train, last 10% validation),
times the whole command, and reads the best validation loss from its metrics. With --anchor it first
runs ../shared/anchors/charlm_nn_lstm.py with the same wall-clock budget, so both figures come from one
run on one machine. Run by hand (10 minutes each on 2 CPU cores):

    python bench/charlm_shakespeare.py --preset cpu-10min [--anchor] [--budget 600] [--out runs/bench-cpu]
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from rnnkit.runs import read_metrics

ANCHOR = Path(__file__).resolve().parents[1] / ".." / "shared" / "anchors" / "charlm_nn_lstm.py"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinyshakespeare" / "input.txt"


def run_anchor(budget: float, device: str) -> dict:
    args = (
        ["cpu", str(budget), "2", "256", "0.1", "32", "128"]
        if device == "cpu"
        else ["cuda", str(budget), "3", "512", "0.5", "128", "256"]
    )
    started = time.time()
    output = subprocess.run(
        [sys.executable, str(ANCHOR), *args, str(DATA)], capture_output=True, text=True, check=True
    ).stdout
    best = float(re.search(r"best_val=([\d.]+)", output).group(1))
    return {"what": "anchor torch.nn.LSTM " + " ".join(args), "seconds": time.time() - started, "best_val_loss": best}


def run_rnnkit(preset: str, out: Path, extra: list[str]) -> dict:
    command = [
        sys.executable,
        "-m",
        "rnnkit",
        "charlm",
        "train",
        "--preset",
        preset,
        "--data",
        str(DATA),
        "--out",
        str(out),
        "--overwrite",
        "--quiet",
        *extra,
    ]
    started = time.time()
    subprocess.run(command, check=True)
    seconds = time.time() - started
    records = read_metrics(out / "metrics.jsonl")
    evaluated = [r for r in records if r.get("val_loss") is not None]
    best = min(evaluated, key=lambda r: r["val_loss"])
    return {
        "what": "rnnkit " + " ".join(command[3:]),
        "seconds": seconds,
        "best_val_loss": best["val_loss"],
        "best_step": best["step"],
        "steps": records[-1]["step"],
        "tokens_per_second": records[-1]["tokens_per_second"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-10min")
    parser.add_argument(
        "--anchor", action="store_true", help="run the torch.nn.LSTM anchor first, with --budget seconds"
    )
    parser.add_argument("--budget", type=float, default=600)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/bench-shakespeare")
    parser.add_argument("extra", nargs="*", help="more rnnkit flags, e.g. --train.max_steps=2000")
    args = parser.parse_args()
    results = []
    if args.anchor:
        results.append(run_anchor(args.budget, args.device))
        print(json.dumps(results[-1]), flush=True)
    results.append(run_rnnkit(args.preset, Path(args.out), args.extra))
    print(json.dumps(results[-1]), flush=True)
    for r in results:
        print(f"{r['best_val_loss']:.4f} nats/char best val in {r['seconds']:.0f} s  <- {r['what']}")


if __name__ == "__main__":
    main()

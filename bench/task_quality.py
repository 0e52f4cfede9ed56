"""Quality benchmarks of the task modules: train a preset, then score the best checkpoint, timing both.

    python bench/task_quality.py sst2     # classify, GLUE SST-2 (../shared/data/sst2): dev accuracy
    python bench/task_quality.py sst3     # classify, SST trees (../shared/data/sst2/sst5_trees), 3 classes:
                                          # dev accuracy
    python bench/task_quality.py sst5     # the same, 5 classes
    python bench/task_quality.py rows     # seqmnist row by row (../shared/data/mnist): validation and t10k test
                                          # accuracy
    python bench/task_quality.py adding   # memory, adding problem at T = 400 for the rnn, lstm and gru cells
    python bench/task_quality.py multi30k # translation, Multi30k de→en (../shared/data/multi30k/raw): an hour of
                                          # training (multi30k-cpu), val BLEU with beam 5 and greedy
    python bench/task_quality.py captions # captioning, digits composed from ../shared/data/mnist: exact captions on
                                          # unseen compositions of the t10k digits
    python bench/task_quality.py frames   # frame labelling, clips of ../shared/data/mnist digits: the recurrent
                                          # labeller and the per-frame CNN alone, side by side, on clips of the
                                          # t10k digits
    python bench/task_quality.py glimpse  # glimpse classifier, 28×28 ../shared/data/mnist, 6 glimpses of 8×8:
                                          # t10k test error
    python bench/task_quality.py cluttered # the same on 60×60 cluttered translated MNIST, 6 glimpses of 12×12
                                           # at 3 scales
    python bench/task_quality.py draw     # DRAW on binarised ../shared/data/mnist, with attention and without:
                                          # the t10k bound
    python bench/task_quality.py ewt      # tagger, UD English EWT (../shared/data/ud-english-ewt): the plain and the
                                          # conditioned tagger, same budget; the conditioned one scored greedily
                                          # and with a beam

Each prints the raw output and writes bench/results-task-<name>.json with the command, machine, time and
figures. Extra flags after the name go to `rnnkit TASK train` (e.g. --train.max_minutes=5). Presets are
tuned on train and dev (or validation) only.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
EWT = DATA / "ud-english-ewt"
MULTI30K = DATA / "multi30k" / "raw"
BENCHMARKS = {  # name: (task, preset, --data, what eval reads, extra train flags per run)
    "sst2": ("classify", "sst2", DATA / "sst2", DATA / "sst2" / "dev.tsv", [[]]),
    "sst3": ("classify", "sst3", DATA / "sst2" / "sst5_trees", DATA / "sst2" / "sst5_trees" / "dev.txt", [[]]),
    "sst5": ("classify", "sst5", DATA / "sst2" / "sst5_trees", DATA / "sst2" / "sst5_trees" / "dev.txt", [[]]),
    "rows": ("seqmnist", "rows-cpu", DATA / "mnist", DATA / "mnist", [[]]),
    "adding": ("memory", "adding-cpu", None, None, [["--model.cell=rnn"], ["--model.cell=lstm"], ["--model.cell=gru"]]),
    "ewt": ("tagger", "ewt-cpu", EWT, EWT / "en_ewt-ud-dev.conllu", [[], ["--model.conditioned=true"]]),
    "multi30k": ("seq2seq", "multi30k-cpu", MULTI30K, MULTI30K, [[]]),
    "captions": ("caption", "mnist-cpu", DATA / "mnist", DATA / "mnist", [[]]),
    "frames": ("frames", "mnist-cpu", DATA / "mnist", DATA / "mnist", [[], ["--model.context=none"]]),
    "glimpse": ("glimpse", "mnist-cpu", DATA / "mnist", DATA / "mnist", [[]]),
    "cluttered": ("glimpse", "cluttered-cpu", DATA / "mnist", DATA / "mnist", [[]]),
    "draw": ("draw", "mnist-cpu", DATA / "mnist", DATA / "mnist", [[], ["--model.attention=false"]]),
}
EVAL_FLAGS = {
    "ewt": [[], ["--beam_width", "4"]],
    "multi30k": [[], ["--beam_width", "1"]],
}  # each run is also scored with these eval flags


def rnnkit(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout


def one_run(
    name: str, task: str, preset: str, data: Path | None, scored: Path | None, flags: list[str], out: Path
) -> dict:
    command = [
        "train",
        "--preset",
        preset,
        "--out",
        str(out),
        "--overwrite",
        "--quiet",
        *(["--data", str(data)] if data else []),
        *flags,
    ]
    started = time.time()
    trained = rnnkit(task, *command)
    train_seconds = time.time() - started
    scoring = ["eval", str(out / "best.pt"), *(["--data", str(scored)] if scored else [])]
    evaluated = rnnkit(task, *scoring)
    also = {" ".join(e): rnnkit(task, *scoring, *e) for e in EVAL_FLAGS.get(name, []) if e}
    print(f"--- {name} {' '.join(flags)} ---\n{trained.strip()}\n{evaluated.strip()}", flush=True)
    for extra, text in also.items():
        print(f"eval {extra}: {text.strip()}", flush=True)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = [r for r in records if r.get("is_best")][-1]  # the evaluation best.pt holds (by --train.best_by)
    result = {
        "command": f"rnnkit {task} {' '.join(command)}",
        "train_seconds": round(train_seconds),
        "steps": records[-1]["step"],
        "best_step": best["step"],
        "val_loss": best["val_loss"],
        "eval": {
            line.split(": ", 1)[0]: line.split(": ", 1)[1]
            for line in evaluated.splitlines()
            if ": " in line and ("loss" in line or "MSE" in line)
        },
    }
    for key in (
        "val_accuracy",
        "val_macro_f1",
        "val_baseline",
        "val_bleu",
        "val_chrf",
        "val_exact_match",
        "val_direction_accuracy",
        "val_digit_accuracy",
        "val_hidden_digit_accuracy",
        "val_error",
        "val_bound",
        "val_reconstruction",
        "val_kl",
    ):
        if key in best:
            result[key] = best[key]
    accuracies = re.findall(r"accuracy ([\d.]+)%", evaluated)
    if accuracies:
        result["eval_accuracy"] = [float(a) / 100 for a in accuracies]
    for extra, text in also.items():
        result[f"eval {extra}"] = text.splitlines()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument(
        "--parallel", action="store_true", help="start a benchmark's runs (adding: one per cell) together"
    )
    args, extra = parser.parse_known_args()  # the rest are `rnnkit TASK train` flags, e.g. --train.max_minutes=5
    args.extra = extra
    task, preset, data, scored, runs = BENCHMARKS[args.name]
    with ThreadPoolExecutor(max_workers=len(runs) if args.parallel else 1) as pool:
        results = list(
            pool.map(
                lambda k: one_run(
                    args.name,
                    task,
                    preset,
                    data,
                    scored,
                    [*runs[k], *args.extra],
                    ROOT / "runs" / f"bench-{args.name}-{k}",
                ),
                range(len(runs)),
            )
        )
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    report = {
        "benchmark": args.name,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "parallel": args.parallel,
        "runs": results,
    }
    path = ROOT / "bench" / f"results-task-{args.name}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

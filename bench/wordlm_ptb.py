"""Word-LM quality benchmark: rnnkit's word LM against the pytorch/examples recipe on torch.nn.LSTM,
side by side: both start together, each with the same number of threads and the same wall-clock budget.

Needs Penn Treebank (Mikolov's ptb.train.txt[.gz], ptb.valid.txt, ptb.test.txt) in --data, by default
../shared/data/ptb beside the repository, and the anchor script ../shared/anchors/wordlm_ptb_nn_lstm.py.
rnnkit trains with --preset (tuned on train/valid only), then `rnnkit wordlm eval` scores every word of
valid and test with the best checkpoint; the anchor reports its own best valid and its test perplexity.

    python bench/wordlm_ptb.py --budget 1800 --threads 1 --anchor-hidden 200 --json bench/results-wordlm-ptb-cpu.json
    python bench/wordlm_ptb.py --budget 1800 --preset awd-gpu --device cuda --anchor-hidden 650 --threads 8   # one GPU
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT / ".." / "shared" / "anchors" / "wordlm_ptb_nn_lstm.py"
DATA = ROOT / ".." / "shared" / "data" / "ptb"


def environment(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def start_anchor(args, hidden: int, dropout: float) -> subprocess.Popen:
    command = [sys.executable, str(ANCHOR), args.device, str(args.budget), str(hidden), str(dropout)]
    env = environment(args.threads) | {"DATA": str(Path(args.data).parent)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start_rnnkit(args, out: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "rnnkit",
        "wordlm",
        "train",
        "--preset",
        args.preset,
        "--data",
        args.data,
        "--out",
        str(out),
        "--overwrite",
        "--quiet",
        f"--train.max_minutes={args.budget / 60}",
        f"--train.device={args.device}",
        *args.extra,
    ]
    return subprocess.Popen(
        command, env=environment(args.threads), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def rnnkit_result(args, out: Path, seconds: float, output: str) -> dict:
    scored = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "wordlm",
            "eval",
            str(out / "best.pt"),
            "--data",
            args.data,
            "--device",
            args.device,
        ],
        env=environment(args.threads),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    perplexities = dict(re.findall(r"^(\w+) .*perplexity ([\d.]+)", scored, re.M))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {
        "what": f"rnnkit wordlm --preset {args.preset} {' '.join(args.extra)}".strip(),
        "seconds": round(seconds),
        "steps": records[-1]["step"],
        "tokens_per_second": round(records[-1]["tokens_per_second"]),
        "best_val_ppl": float(perplexities["valid"]),
        "test_ppl": float(perplexities["test"]),
        "train_summary": output.strip().splitlines()[0],
    }


def anchor_result(hidden: int, dropout: float, seconds: float, output: str) -> dict:
    found = re.search(r"epochs=(\d+).*best_val_ppl=([\d.]+) test_ppl=([\d.]+)", output)
    if found is None:
        raise SystemExit(f"the anchor failed:\n{output}")
    return {
        "what": f"anchor torch.nn.LSTM hidden {hidden} dropout {dropout}",
        "seconds": round(seconds),
        "epochs": int(found[1]),
        "best_val_ppl": float(found[2]),
        "test_ppl": float(found[3]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=1800, help="wall-clock seconds of training for each (default 1800)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per process (default 1: two processes share 2 cores)"
    )
    parser.add_argument("--preset", default="ptb-cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default=str(DATA), help="the PTB directory")
    parser.add_argument(
        "--anchor-hidden", type=int, nargs="*", default=[200], help="anchor sizes, each run beside rnnkit"
    )
    parser.add_argument("--anchor-dropout", type=float, default=0.2)
    parser.add_argument("--out", default="runs/bench-wordlm-ptb")
    parser.add_argument("--json", help="write the results here as well")
    parser.add_argument("extra", nargs="*", help="more rnnkit flags, e.g. --model.hidden_size=400")
    args = parser.parse_args()
    started = time.time()
    processes = {"rnnkit": start_rnnkit(args, Path(args.out))}
    processes.update({f"anchor-{h}": start_anchor(args, h, args.anchor_dropout) for h in args.anchor_hidden})
    outputs = {name: process.communicate()[0] for name, process in processes.items()}
    seconds = time.time() - started
    for name, output in outputs.items():  # the raw outputs first: a later failure must not lose the anchor's figures
        print(f"--- {name} ---\n{output.strip()}", flush=True)
    if processes["rnnkit"].returncode:
        raise SystemExit(f"rnnkit failed:\n{outputs['rnnkit']}")
    results = [rnnkit_result(args, Path(args.out), seconds, outputs["rnnkit"])]
    results += [anchor_result(h, args.anchor_dropout, seconds, outputs[f"anchor-{h}"]) for h in args.anchor_hidden]
    machine = {
        "cpus": os.cpu_count(),
        "threads_each": args.threads,
        "device": args.device,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    for result in results:
        print(
            f"valid {result['best_val_ppl']:.2f}  test {result['test_ppl']:.2f}  "
            f"in {result['seconds']} s  <- {result['what']}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "budget_s": args.budget, "results": results}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()

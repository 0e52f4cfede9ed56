"""How long `rnnkit --help` and `rnnkit TASK --help` take to start, beside `python -c "import torch"`.

    python bench/startup.py --rounds 7 --json bench/results-startup.json

Each command runs as its own process, alternating with the others round by round so that a busy moment
hits them alike; the figure is each one's median wall time and its excess over importing torch alone.
Target: rnnkit --help within 0.5 s of import torch on the same machine.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "rnnkit --help": [sys.executable, "-m", "rnnkit", "--help"],
    "rnnkit tagger --help": [sys.executable, "-m", "rnnkit", "tagger", "--help"],
    "rnnkit charlm sample --help": [sys.executable, "-m", "rnnkit", "charlm", "sample", "--help"],
}


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="also write the medians here")
    args = parser.parse_args()
    for command in COMMANDS.values():  # a first run each: the file cache warm for all alike
        wall_time(command)
    seconds = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            seconds[name].append(wall_time(command))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base = medians["import torch"]
    for name, median in medians.items():
        extra = "" if name == "import torch" else f"  (+{median - base:.2f} s over import torch)"
        print(f"{name:>30}: {median:.2f} s median of {args.rounds}{extra}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"rounds": args.rounds, "median_seconds": medians, "seconds": seconds}, file, indent=2)


if __name__ == "__main__":
    main()

"""How long a second process waits for the compiled path: the same cell and shapes compiled in two fresh
processes that share torch's on-disk cache (a new, empty cache directory for the first).

Each process builds one layer of --cell (hidden 256, B = 32, T = 128), calls it once (eager, as `auto` does
for a first sight), then times the second call, forward and backward, which compiles (or reads the cache).
Target: the second process's compile time under a quarter of the first's. Run by hand:

    python bench/compile_cache.py [--cell mut1] [--json bench/results-compile-cache.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, time, torch, rnnkit
torch.manual_seed(0)
cell = {"mut1": rnnkit.MUT1Cell, "mut2": rnnkit.MUT2Cell, "mut3": rnnkit.MUT3Cell,
        "gru-reset-before": lambda d, h: rnnkit.GRUCell(d, h, reset_after=False)}[sys.argv[1]](64, 256)
layer = rnnkit.Recurrent(cell)
x = torch.randn(32, 128, 64)
layer(x)[0].sum().backward()                      # the first call with this shape: eager
started = time.perf_counter()
layer(x)[0].sum().backward()                      # the second: compiles, or reads torch's cache
compiling = time.perf_counter() - started
started = time.perf_counter()
layer(x)[0].sum().backward()                      # the third: compiled code, for scale
print(compiling, time.perf_counter() - started)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="mut1")
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, args.cell], env=env, capture_output=True, text=True, check=True
            ).stdout
            runs.append([float(v) for v in out.split()])
    (first, step), (second, _) = runs
    result = {
        "cell": args.cell,
        "first_process_compile_s": first,
        "second_process_compile_s": second,
        "ratio": second / first,
        "compiled_step_s": step,
    }
    print(
        f"{args.cell}: compile in a first process {first:.1f} s, in a second with the cache {second:.1f} s "
        f"(ratio {second / first:.2f}); a compiled call then takes {step:.2f} s"
    )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()

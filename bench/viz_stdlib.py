"""The hidden-unit demonstration: a character LSTM trained on the Python standard library's own source,
then `rnnkit viz` on held-out source, reporting the units that track strings, indentation and brackets.

The corpus needs no download: it is the .py files of the running Python's standard library (its modules,
or with --corpus tests its test suite; data tables excluded), concatenated in sorted order. The model reads
the last 10% only at validation, and the report is drawn on the start of that held-out part. Run by hand
(about 10 minutes on 2 CPU cores with the default preset; with --preset gpu --steps 1500, under 3 minutes
on one H100):

    python bench/viz_stdlib.py [--megabytes 4] [--steps 2700] [--out runs/stdlib] [--corpus library|tests] \\
        [--preset cpu-10min|gpu]
"""

import argparse
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

LEFT_OUT = (
    "idlelib",
    "site-packages",
    "lib2to3",
    "encodings",
    "pydoc_data",
)  # vendored code, data tables written as code


def stdlib_corpus(limit_bytes: int, part: str = "library") -> str:
    """The standard library's .py files in sorted order: the library proper, or its test suite (Lib/test),
    where string literals are mostly short ones on code lines rather than docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    for path in sorted((root / "test").rglob("test_*.py") if part == "tests" else root.rglob("*.py")):
        inside = path.relative_to(root).parts
        if any(name in LEFT_OUT for name in inside) or (
            part == "library" and any(name in ("test", "tests") for name in inside)
        ):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(f"# file: {path.relative_to(root)}\n{text}\n")
        size += len(text)
        if size >= limit_bytes:
            break
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=2700)
    parser.add_argument("--out", default="runs/stdlib")
    parser.add_argument(
        "--corpus", choices=("library", "tests"), default="library", help="the library's modules, or its test suite"
    )
    parser.add_argument(
        "--preset",
        default="cpu-10min",
        help="the charlm training preset: cpu-10min (2×256, 2 CPU cores) or gpu (3×512, one GPU)",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = stdlib_corpus(int(args.megabytes * 1e6), args.corpus)
    (out / "corpus.py.txt").write_text(corpus, encoding="utf-8")
    validation = corpus[int(len(corpus) * 0.9) :]  # the part training never sees
    held_out = validation[validation.index("# file:") :][:20000]  # from the start of a file
    (out / "held_out.py.txt").write_text(held_out, encoding="utf-8")
    rnnkit = [sys.executable, "-m", "rnnkit"]
    subprocess.run(
        [
            *rnnkit,
            "charlm",
            "train",
            "--preset",
            args.preset,
            "--data",
            str(out / "corpus.py.txt"),
            "--out",
            str(out / "model"),
            "--overwrite",
            "--quiet",
            f"--train.max_steps={args.steps}",
        ],
        check=True,
    )
    subprocess.run(
        [
            *rnnkit,
            "viz",
            str(out / "model" / "best.pt"),
            "--text",
            str(out / "held_out.py.txt"),
            "--out",
            str(out / "viz"),
            "--kind",
            "source",
            "--overwrite",
        ],
        check=True,
    )
    subprocess.run(
        [
            *rnnkit,
            "diagnose",
            str(out / "model" / "best.pt"),
            "--data",
            str(out / "held_out.py.txt"),
            "--out",
            str(out / "diagnose"),
            "--overwrite",
        ],
        check=True,
    )
    units = json.loads((out / "viz" / "units.json").read_text())["features"]
    for feature in ("in_string", "indentation", "bracket_depth", "in_comment", "line_position", "in_if_block"):
        best = units[feature][0]
        print(f"{feature:>14}: |r| = {abs(best['r']):.3f} ({best['state']} unit {best['unit']})")


if __name__ == "__main__":
    main()

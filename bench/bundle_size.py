"""How much smaller a bundle is than the checkpoint it comes from: best.pt against model.safetensors and the rest.

    python bench/bundle_size.py --preset cpu-demo --steps 2

Trains a char-LM of the preset's shape for a few steps on the bundled Tiny Shakespeare (sizes do not depend on
how far it trained), writes its run with `rnnkit charlm train`, bundles best.pt with `rnnkit export --bundle`,
and prints both sizes in bytes.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path


def size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-demo")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run, bundle = Path(scratch) / "run", Path(scratch) / "bundle"
        train = ["charlm", "train", "--preset", args.preset, "--out", str(run), "--quiet"]
        limits = [f"--train.max_steps={args.steps}", f"--train.eval_interval={args.steps}", "--train.eval_tokens=2048"]
        for command in ([*train, *limits], ["export", str(run / "best.pt"), "--bundle", str(bundle)]):
            subprocess.run([sys.executable, "-m", "rnnkit", *command], check=True, stdout=subprocess.DEVNULL)
        checkpoint, bundled = size(run / "best.pt"), size(bundle)
        print(
            f"charlm {args.preset}: best.pt {checkpoint:,} bytes; bundle {bundled:,} bytes "
            f"(model.safetensors {size(bundle / 'model.safetensors'):,}); {checkpoint / bundled:.2f}× smaller"
        )


if __name__ == "__main__":
    main()

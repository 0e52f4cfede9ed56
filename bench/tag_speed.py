"""Tagging throughput: `rnnkit tagger tag` on the raw text of a CoNLL-U file (one sentence per line), timed
from the command's start to its last line, in sentences per second.

    python bench/tag_speed.py runs/bench-ewt-0/best.pt  # UD English EWT's dev text (../shared/data/ud-english-ewt)
    python bench/tag_speed.py runs/bench-ewt-1/best.pt --beam_width 4

Extra flags go to `rnnkit tagger tag` (--beam_width, --batch_size, --device).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rnnkit.data.conllu import read_conllu  # noqa: E402

DEV = ROOT / ".." / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-dev.conllu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--conllu", default=str(DEV), help="whose words to tag (default: EWT dev)")
    args, extra = parser.parse_known_args()
    sentences = read_conllu(args.conllu)
    with tempfile.TemporaryDirectory() as folder:
        text = Path(folder) / "raw.txt"
        text.write_text("".join(" ".join(s.words) + "\n" for s in sentences), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "rnnkit", "tagger", "tag", args.checkpoint, "--input", str(text), *extra],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        seconds = time.perf_counter() - started
    lines = done.stdout.count("\n")
    assert lines == len(sentences), (lines, len(sentences))
    words = sum(len(s.words) for s in sentences)
    print(
        f"{len(sentences)} sentences ({words} words) in {seconds:.1f} s, process start included: "
        f"{len(sentences) / seconds:,.0f} sentences/s, {words / seconds:,.0f} words/s {' '.join(extra)}"
    )


if __name__ == "__main__":
    main()

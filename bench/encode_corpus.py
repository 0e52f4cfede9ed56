"""Encoding a large corpus into a memory-mapped token array: speed (MB/s) and peak memory.

Writes a generated text file of --gigabytes (Tiny Shakespeare repeated, each copy with a varying line
prefix so the file is not one block repeated), encodes it in a child process with
rnnkit.data.tokens.encode_file, and reports the child's wall time and peak resident memory. Then it
reads one batch from the mapped array. Run by hand:

    python bench/encode_corpus.py --gigabytes 1 --dir /tmp/rnnkit-encode
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

CHILD = (
    """
import json, sys, time
from rnnkit.data.tokens import encode_file
from rnnkit.data.batching import StreamBatches
started = time.perf_counter()
ids, vocab = encode_file(sys.argv[1], sys.argv[2])
seconds = time.perf_counter() - started
inputs, targets = StreamBatches(ids, 64, 256)[12345]
print(json.dumps({"seconds": seconds, "tokens": len(ids), "vocab": len(vocab), """
    '"dtype": str(ids.dtype), "batch": list(inputs.shape)}))\n'
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--dir", default="/tmp/rnnkit-encode")
    args = parser.parse_args()
    folder = Path(args.dir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    corpus = folder / "corpus.txt"
    from rnnkit.data.text import bundled_text

    base = bundled_text()
    target = int(args.gigabytes * (1 << 30))
    with corpus.open("w", encoding="utf-8") as file:
        copy = 0
        while file.tell() < target:
            file.write(f"[copy {copy}] " + base)
            copy += 1
    size = corpus.stat().st_size
    result = json.loads(
        subprocess.run(
            [sys.executable, "-c", CHILD, str(corpus), str(folder / "cache")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
    print(f"{size / 1e9:.2f} GB text, {result['tokens']:,} tokens, vocabulary {result['vocab']} ({result['dtype']})")
    print(
        f"encoded in {result['seconds']:.1f} s = {size / 1e6 / result['seconds']:.1f} MB/s (two passes), "
        f"peak memory {peak / 2**20:.0f} MiB"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Translation throughput: beam search over batches of sentences, three ways, in one run.

Reads the first --sentences source sentences of the Multi30k val set (../shared/data/multi30k/raw/val.de.gz)
and translates them with a seq2seq checkpoint, beam --beam (5):

    batched                 batches of --batch, the beams of all the batch's sentences decoded together, each
                            hypothesis and sentence dropped from the steps once it has ended (as `rnnkit translate`)
    every row to the end    the same batches, every row stepped until the batch's last sentence ends
                            (rnnkit.decoding.DROP_FINISHED = False: the search as it was)
    one at a time           one sentence per batch

Rounds alternate, order flipped every round; all three must write the same translations.

    python bench/translate_speed.py runs/de-en/best.pt [--rounds 3] [--json bench/results-translate-speed.json]
"""

import argparse
import gzip
import statistics
from pathlib import Path

import torch
from rounds import alternate, write_json

import rnnkit
from rnnkit import decoding
from rnnkit.tasks.seq2seq import EvaluateConfig

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT / ".." / "shared" / "data" / "multi30k" / "raw" / "val.de.gz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--source", default=str(VAL), help="source sentences, one per line (.gz read as it is)")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    opener = gzip.open if args.source.endswith(".gz") else open
    with opener(args.source, "rt", encoding="utf-8") as file:
        sentences = [line.rstrip("\n") for line, _ in zip(file, range(args.sentences))]
    trained = rnnkit.load(args.checkpoint)
    settings = EvaluateConfig(beam_width=args.beam)

    def translate(batch_size: int, drop_finished: bool = True) -> list[str]:
        decoding.DROP_FINISHED, written = drop_finished, []
        for start in range(0, len(sentences), batch_size):
            batch = sentences[start : start + batch_size]
            written += [t.text for t in trained.task.predict(trained.model, trained.vocabularies, batch, settings)]
        decoding.DROP_FINISHED = True
        return written

    ways = {
        "batched": lambda: translate(args.batch),
        "every row to the end": lambda: translate(args.batch, drop_finished=False),
        "one at a time": lambda: translate(1),
    }
    outputs = {}
    seconds = alternate(
        {name: lambda name=name, way=way: outputs.__setitem__(name, way()) for name, way in ways.items()}, args.rounds
    )
    same = sum(a == b == c for a, b, c in zip(*(outputs[name] for name in ways)))
    result = {
        name: {"sentences_per_second": len(sentences) / statistics.median(s), "seconds": statistics.median(s)}
        for name, s in seconds.items()
    }
    ratios = [alone / batched for batched, alone in zip(seconds["batched"], seconds["one at a time"])]
    dropping = [kept / batched for batched, kept in zip(seconds["batched"], seconds["every row to the end"])]
    result |= {
        "speedup_median": statistics.median(ratios),
        "speedup_range": [min(ratios), max(ratios)],
        "dropping_speedup_median": statistics.median(dropping),
        "dropping_speedup_range": [min(dropping), max(dropping)],
        "same_translations": same,
        "sentences": len(sentences),
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, beam {args.beam}, "
        f"{len(sentences)} sentences of {args.source}"
    )
    for name in ways:
        print(f"{name:>22}: {result[name]['sentences_per_second']:7.1f} sentences/s")
    print(
        f"batched / one at a time = {result['speedup_median']:.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}); "
        f"dropping finished rows = {result['dropping_speedup_median']:.2f}x "
        f"(rounds {min(dropping):.2f}-{max(dropping):.2f}); {same} of {len(sentences)} translations identical all ways"
    )
    write_json(args.json, vars(args), result)


if __name__ == "__main__":
    main()

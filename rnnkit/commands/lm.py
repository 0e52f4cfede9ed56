"""`rnnkit charlm|wordlm next`, `score` and `rnnkit wordlm pairs`: what a language model expects next, which
sentence of a minimal pair it prefers, and agreement pairs to ask it about.

Part of the CLI: these functions read arguments, call the library (TrainedLanguageModel.next and .score_pairs,
rnnkit/data/agreement.py), print, and write files atomically.
"""

import argparse
import re
import sys
import tempfile
from pathlib import Path

from rnnkit.commands.predict import model_for, named_as_flags, settings_from
from rnnkit.commands.verbs.lm import NextOptions, PairsOptions, ScoreOptions
from rnnkit.data.agreement import CONSTRUCTIONS, agreement_pairs
from rnnkit.data.minimal_pairs import PairScores, pairs_tsv, read_pairs
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write, staged_output
from rnnkit.tasks.base import Task

ESCAPES = {"\\n": "\n", "\\t": "\t", "\\,": ",", "\\\\": "\\"}  # a character model's candidates, as `next` shows them


def items(text: str, flag: str, characters: bool = False) -> list[str]:
    """A comma-separated flag's items, each stripped of the spaces around it unless it is only spaces (a character
    model's candidate ' '); for characters, \\n, \\t, \\, and \\\\ stand for a line break, a tab, a comma and a
    backslash. An empty item is an error naming the flag."""
    pieces = re.split(r"(?<!\\),", text) if characters else text.split(",")  # "\\," is a comma, not a separator
    found = [ESCAPES.get(piece.strip(), piece.strip() or piece) if characters else piece.strip() for piece in pieces]
    if any(not item for item in found):
        raise RnnkitError(f"{flag}: an empty item in {text!r} (items are separated by single commas)")
    return found


def shown(token: str) -> str:
    """A token as printed: as it is, or quoted where it is blank or holds a control character (' ', '\\n')."""
    return token if token and token.isprintable() and token.strip() == token else repr(token)


def trained_model(task: Task, args: argparse.Namespace, verb: str):
    model, vocabularies, config = model_for(task, args, verb)
    return task.trained(model.eval(), vocabularies, config, task, args.checkpoint or "")


def next_command(task: Task, args: argparse.Namespace) -> int:
    options = settings_from(args, NextOptions, "options:")
    given = vars(args).get("options:prime") is not None
    prime = "the" if args.dry_run and not given else options.prime  # an empty --prime given is refused, as ever
    words = items(options.words, "--words", characters=task.per == "character") if options.words else None
    trained = trained_model(task, args, "next")
    with named_as_flags():
        result = trained.next(prime, words=words, top=options.top or None)
    unit = "characters" if task.per == "character" else "words"
    print(f"after {prime!r} ({result.vocab_size:,} {unit}):")
    width = max((len(shown(e.token)) for e in [*result.candidates, *result.top]), default=0)
    for entry in result.candidates:
        print(f"  {shown(entry.token):<{width}}  {entry.probability:<10.4g}  rank {entry.rank:,}")
    if result.top:
        print(f"the {len(result.top)} most likely:")
        for entry in result.top:
            print(f"  {entry.rank:>4}  {shown(entry.token):<{width}}  {entry.probability:.4g}")
    if result.unknown:
        print(f"note: read as <unk>: {', '.join(map(repr, result.unknown))}")
    return 0


def report(scores: PairScores) -> list[str]:
    """Each pair's margin, then the accuracy by construction and overall, then what was unknown or left out."""
    lines = [f"{s.margin:+.3f}\t{s.pair.construction}\t{s.pair.good}\t{s.pair.bad}" for s in scores.scored]
    by_construction = scores.by_construction()
    width = max(len(name) for name in [*by_construction, "all"])
    lines.append("accuracy (the share of pairs whose acceptable sentence is the more likely):")
    for name, agreement in [*by_construction.items(), ("all", scores.overall)]:
        lines.append(f"  {name:<{width}}  {agreement.accuracy:.3f}  ({agreement.correct:,} of {agreement.total:,})")
    if scores.with_unknown:
        lines.append(f"note: {scores.with_unknown:,} of the pairs hold a word outside the vocabulary, read as <unk>")
    if scores.identical:
        where = ", ".join(pair.where for pair in scores.identical[:5]) + (" ..." if len(scores.identical) > 5 else "")
        lines.append(f"note: {len(scores.identical):,} pair(s) left unscored, their two sentences the same: {where}")
    return lines


def scores_tsv(scores: PairScores) -> str:
    """pairs.tsv: each scored pair, its sentences' total log-probabilities (nats), margin and unknown words."""
    header = "good\tbad\tconstruction\tlogprob_good\tlogprob_bad\tmargin\tunknown_words"
    rows = [
        f"{s.pair.good}\t{s.pair.bad}\t{s.pair.construction}\t{s.good:.6f}\t{s.bad:.6f}\t{s.margin:.6f}\t{s.unknown}"
        for s in scores.scored
    ]
    return "\n".join([header, *rows]) + "\n"


def score_command(task: Task, args: argparse.Namespace) -> int:
    from rnnkit.plots import accuracy_bars_png

    options = settings_from(args, ScoreOptions, "options:")
    if not options.pairs and not args.dry_run:
        raise RnnkitError(f"{task.name} score needs --pairs FILE (a TSV of minimal pairs; or --dry-run)")
    try:
        pairs = read_pairs(options.pairs) if options.pairs else agreement_pairs(CONSTRUCTIONS, count=2)
    except RnnkitError as error:
        raise RnnkitError(f"--pairs: {error}") from None
    trained = trained_model(task, args, "score")
    with tempfile.TemporaryDirectory() as scratch:
        out = scratch if args.dry_run and options.out else options.out  # --dry-run writes nothing of the user's
        # checked before anything is scored, and both files or neither
        with staged_output(out, "pairs.tsv", "--out", args.overwrite) as stage:
            scores = trained.score_pairs(pairs)
            if not scores.scored:
                raise RnnkitError("--pairs: every pair's two sentences are the same; there is nothing to compare")
            lines = report(scores)
            if stage is not None:
                atomic_write(stage / "pairs.tsv", lambda file: file.write(scores_tsv(scores).encode("utf-8")))
                accuracies = {name: a.accuracy for name, a in scores.by_construction().items()}
                picture = accuracy_bars_png(
                    {args.checkpoint or "untrained tiny model": accuracies}, "minimal pairs: acceptable preferred"
                )
                atomic_write(stage / "accuracy.png", lambda file: file.write(picture))
    print("\n".join(lines))
    if options.out and not args.dry_run:
        print(f"wrote {Path(options.out) / 'pairs.tsv'} and {Path(options.out) / 'accuracy.png'}")
    return 0


def pairs_command(task: Task, args: argparse.Namespace) -> int:
    options = settings_from(args, PairsOptions, "options:")
    names = CONSTRUCTIONS if options.constructions.strip() == "all" else items(options.constructions, "--constructions")
    with named_as_flags():
        pairs = agreement_pairs(names, min(options.count, 2) if args.dry_run else options.count, options.seed)
    text = pairs_tsv(pairs)
    if args.dry_run or not options.out:
        sys.stdout.write(text)
        return 0
    path = Path(options.out)
    if path.is_dir():
        raise RnnkitError(f"--out: {path} is a directory; give the TSV file to write")
    if path.exists() and not args.overwrite:
        raise RnnkitError(f"--out: {path} already exists; pass --overwrite to replace it")
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))
    print(f"wrote {len(pairs):,} pairs ({len(names)} construction(s) × {options.count:,}) to {path}")
    return 0

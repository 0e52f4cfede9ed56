"""The `rnnkit` command: parsing arguments and dispatching to the commands in rnnkit/commands/.

    rnnkit charlm train  [--preset P] [--data FILE] [--out DIR] [--resume CKPT] [--section.key=value ...]
    rnnkit charlm sample CHECKPOINT [--prime TEXT] [--length N] [--temperature T] [--top_k K] ...
    rnnkit charlm eval   CHECKPOINT --data FILE
    rnnkit diagnose      CHECKPOINT --data FILE | --compare rnn,lstm,gru
    rnnkit viz           CHECKPOINT --text FILE

Arguments become config dataclasses, library functions do the work, and only the CLI (this file and
rnnkit/commands/) prints. Every problem rnnkit can name is an RnnkitError: one line on stderr, exit
status 2, no traceback, and nothing half-written (inputs are checked before any output is touched).
"""

import argparse
import sys
from dataclasses import fields

from rnnkit.commands.charlm import charlm_eval, charlm_sample, charlm_train
from rnnkit.commands.inspect import diagnose_command, viz_command
from rnnkit.config import PRESETS, DataConfig, ModelConfig, SampleConfig, TrainConfig
from rnnkit.errors import RnnkitError

SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


# --- argument parsing ---------------------------------------------------------------------------
def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One --section.key flag per config field, with the field's help; values are type-checked later."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} settings (--{section}.KEY=VALUE)")
        for f in fields(cls):
            group.add_argument(f"--{section}.{f.name}", dest=f"override:{section}.{f.name}", metavar="V",
                               help=f"{f.metadata['help']} (default {f.default!r})")


class Parser(argparse.ArgumentParser):
    """argparse with rnnkit's manners: no abbreviated flags, and a usage error is one line and exit 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        print(f"rnnkit: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def add_output_flags(parser: argparse.ArgumentParser, default_out: str, what: str) -> None:
    """--out, --overwrite and --dry-run, as every inspection command takes them."""
    parser.add_argument("--out", default=default_out, help=f"directory for {what} (default {default_out})")
    parser.add_argument("--overwrite", action="store_true", help="allow replacing an earlier result in --out")
    parser.add_argument("--dry-run", action="store_true", help="an untrained tiny model on the built-in tiny text, in a temporary --out")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks written from their equations.")
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    charlm = tasks.add_parser("charlm", help="character-level language model: train, sample, eval")
    actions = charlm.add_subparsers(dest="action", required=True, metavar="ACTION")

    train_parser = actions.add_parser("train", help="train on a UTF-8 text file by truncated BPTT")
    train_parser.add_argument("--preset", choices=sorted(PRESETS), help="named settings; flags override them")
    train_parser.add_argument("--data", dest="override:data.path", metavar="FILE", help="UTF-8 text to train on (default: bundled Tiny Shakespeare)")
    train_parser.add_argument("--device", dest="override:train.device", metavar="DEV", help="cpu, cuda, ... (same as --train.device)")
    train_parser.add_argument("--out", help="directory for last.pt, best.pt, metrics.jsonl, loss.png (default runs/charlm, or the resumed checkpoint's)")
    train_parser.add_argument("--resume", metavar="CKPT", help="continue the run saved in this checkpoint, exactly where it stopped")
    train_parser.add_argument("--overwrite", action="store_true", help="allow replacing the checkpoints already in --out")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar or samples, only the final summary")
    train_parser.add_argument("--dry-run", action="store_true", help="tiny model, built-in tiny text, a few steps on CPU, in a temporary --out")
    add_config_flags(train_parser)

    sample_parser = actions.add_parser("sample", help="generate text from a checkpoint, one character at a time")
    sample_parser.add_argument("checkpoint", nargs="?", help="a checkpoint written by charlm train")
    for f in fields(SampleConfig):
        sample_parser.add_argument(f"--{f.name}", dest=f"sample:{f.name}", metavar="V", help=f"{f.metadata['help']} (default {f.default!r})")
    sample_parser.add_argument("--device", default="cpu", help="device to sample on (default cpu)")
    sample_parser.add_argument("--dry-run", action="store_true", help="sample from an untrained tiny model; no checkpoint needed")

    eval_parser = actions.add_parser("eval", help="loss, bits per character and perplexity of a checkpoint on a text")
    eval_parser.add_argument("checkpoint", nargs="?", help="a checkpoint written by charlm train")
    eval_parser.add_argument("--data", metavar="FILE", help="UTF-8 text to evaluate on")
    eval_parser.add_argument("--device", default="cpu", help="device to evaluate on (default cpu)")
    eval_parser.add_argument("--dry-run", action="store_true", help="evaluate an untrained tiny model on the built-in tiny text")

    diagnose = tasks.add_parser("diagnose", help="gradients through time, spectra of U, hidden-state norms: PNG plots and summary.json")
    diagnose.add_argument("checkpoint", nargs="?", help="a charlm checkpoint to diagnose on --data")
    diagnose.add_argument("--data", metavar="FILE", help="UTF-8 text whose windows the gradients are measured on")
    diagnose.add_argument("--compare", metavar="CELLS", help="instead: train tiny models of these cells (e.g. rnn,lstm,gru) on a long-dependency task and plot their curves together")
    diagnose.add_argument("--seq-len", type=int, default=100, help="steps between the loss and the earliest state measured (default 100)")
    diagnose.add_argument("--steps", type=int, default=600, help="training steps per cell for --compare (default 600)")
    add_output_flags(diagnose, "runs/diagnose", "the plots and summary.json")

    viz = tasks.add_parser("viz", help="colour a text by the hidden units that track its features: one HTML report")
    viz.add_argument("checkpoint", nargs="?", help="a charlm checkpoint")
    viz.add_argument("--text", metavar="FILE", help="UTF-8 text for the model to read (characters it has seen)")
    viz.add_argument("--kind", choices=("auto", "source", "prose"), default="auto", help="which features to look for (default: guess)")
    viz.add_argument("--chars", type=int, default=20000, help="read at most this many characters of --text (default 20000)")
    add_output_flags(viz, "runs/viz", "report.html, units.json and top_unit.png")
    return parser


COMMANDS = {("charlm", "train"): charlm_train, ("charlm", "sample"): charlm_sample, ("charlm", "eval"): charlm_eval,
            ("diagnose", None): diagnose_command, ("viz", None): viz_command}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[(args.task, getattr(args, "action", None))](args)
    except RnnkitError as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

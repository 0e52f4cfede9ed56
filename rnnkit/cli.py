"""The `rnnkit` command, generated from rnnkit.tasks.TASKS: one shape for every task.

    rnnkit TASK train   [--data PATH] [--preset P] [--out DIR] [--resume CKPT] [--section.key=value ...]
    rnnkit TASK eval    CHECKPOINT --data PATH
    rnnkit TASK VERB    CHECKPOINT [settings]       the task's prediction: charlm/wordlm sample, ...
    rnnkit diagnose     CHECKPOINT --data FILE | --compare rnn,lstm,gru
    rnnkit viz          CHECKPOINT --text FILE
    rnnkit export       CHECKPOINT --onnx FILE

Arguments become config dataclasses, library functions do the work, and only the CLI (this file and
rnnkit/commands/) prints. main() is the one error boundary: every problem rnnkit can name is an
RnnkitError (one line on stderr, exit status 2, nothing half-written: inputs are checked before any output
is touched); the outside world's failures (a full disk, a read-only directory, memory) are one line and
status 1; a closed stdout (`| head`) ends quietly; anything else is a bug, still one line (status 70),
with the traceback under --debug.
"""

import argparse
import difflib
import importlib
import os
import signal
import sys
import warnings
from dataclasses import MISSING, fields

import torch

from rnnkit import __version__
from rnnkit.config import field_type
from rnnkit.errors import RnnkitError
from rnnkit.files import StaleOutput, Stopped
from rnnkit.tasks import TASKS
from rnnkit.tasks.base import Task


def command(name: str, *bound):
    """The function `module:function` under rnnkit/commands/, imported only when its command runs: `rnnkit --help`
    then loads no plotting, tokenizer or ONNX library."""

    def run(args):
        module, function = name.split(":")
        return getattr(importlib.import_module(f"rnnkit.commands.{module}"), function)(*bound, args)

    return run


def type_name(f, owner: type) -> str:
    annotation = field_type(owner, f.name)
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "none")


def help_text(f, owner: type) -> str:
    """A field's help, type, choices and default, with % escaped (argparse formats help strings with %)."""
    choices = f.metadata.get("choices")
    kind = f"one of {', '.join(map(str, choices))}" if choices else type_name(f, owner)
    default = "" if f.default is MISSING else f"; default {f.default!r}"
    return f"{f.metadata['help']} ({kind}{default})".replace("%", "%%")


def metavar(f, owner: type) -> str:
    choices = f.metadata.get("choices")
    return "{" + ",".join(map(str, choices)) + "}" if choices else type_name(f, owner).upper()


def flag(name: str) -> str:
    """A command's own setting as its flag, words joined by dashes: beam_width -> --beam-width."""
    return "--" + name.replace("_", "-")


# --- argument parsing ---------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """argparse type for counts: '12' -> 12; zero, negatives and non-numbers are usage errors."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One --section.key flag per config field, with the field's help; values are type-checked later."""
    for section in fields(config_class):
        group = parser.add_argument_group(f"{section.name} settings (--{section.name}.KEY=VALUE)")
        for f in fields(field_type(config_class, section.name)):
            owner = field_type(config_class, section.name)
            group.add_argument(
                f"--{section.name}.{f.name}",
                dest=f"override:{section.name}.{f.name}",
                metavar=metavar(f, owner),
                help=help_text(f, owner),
            )


class Parser(argparse.ArgumentParser):
    """argparse with rnnkit's manners: no abbreviated flags, either spelling of a flag (--top-k and --top_k,
    --train.max_steps and --train.max-steps), and a usage error is one line and exit 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def respell(self, arg: str) -> str:
        """--seq_len -> --seq-len when only the other spelling is a flag of this parser."""
        if not arg.startswith("--") or arg == "--":
            return arg
        name, equals, value = arg.partition("=")
        if name in self._option_string_actions:
            return arg
        for other in ("--" + name[2:].replace("_", "-"), "--" + name[2:].replace("-", "_")):
            if other in self._option_string_actions:
                return other + equals + value
        return arg

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args([self.respell(arg) for arg in args], namespace)

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown flag points to the --help of the subcommand it was given to."""
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            words = [w for w in (getattr(args, "task", None), getattr(args, "action", None)) if w]
            parser = self
            for word in words:  # the subcommand's own parser: its flags are the ones to suggest from
                parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
            flag = extras[0].split("=")[0]
            near = (
                difflib.get_close_matches(flag, parser._option_string_actions, n=1, cutoff=0.83)
                if flag.startswith("--")
                else []
            )
            hint = f"; did you mean {near[0]}?" if near else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}", " ".join([self.prog, *words]))
        return args

    def error(self, message: str, prog: str | None = None):
        print(f"rnnkit: error: {one_line(message)} (see {prog or self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def add_output_flags(parser: argparse.ArgumentParser, default_out: str, what: str) -> None:
    """--out, --overwrite and --dry-run, as every inspection command takes them."""
    parser.add_argument("--out", default=default_out, help=f"directory for {what} (default {default_out})")
    parser.add_argument("--overwrite", action="store_true", help="allow replacing an earlier result in --out")
    parser.add_argument(
        "--dry-run", action="store_true", help="an untrained tiny model on the built-in tiny text, in a temporary --out"
    )


def add_settings(parser: argparse.ArgumentParser, settings_class: type, prefix: str) -> None:
    """One flag per field of a command's own settings (--beam-width), with the field's help, type and default."""
    for f in fields(settings_class):
        parser.add_argument(
            flag(f.name),
            dest=f"{prefix}:{f.name}",
            metavar=metavar(f, settings_class),
            help=help_text(f, settings_class),
        )


def add_task(tasks, task: Task) -> None:
    """`rnnkit TASK train | eval | VERB`, every flag from the task's config and prediction settings."""
    parser = tasks.add_parser(task.name, help=task.description, description=task.description)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    train_parser = actions.add_parser(
        "train", help="train (truncated BPTT where the data are streams); checkpoints, metrics, loss plot"
    )
    train_parser.add_argument(
        "--preset",
        choices=sorted(task.presets),
        help=f"named settings (rnnkit/presets/{task.name}.yaml); --config and flags override them",
    )
    train_parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings from a YAML or JSON file ({train: {learning_rate: 3e-3}} or "
        '{"train.learning_rate": 3e-3}), over the preset; flags override them',
    )
    train_parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved settings (defaults, preset, --config, flags) as YAML and exit",
    )
    train_parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write the metrics for TensorBoard, in --out/tensorboard (needs pip install tensorboard)",
    )
    train_parser.add_argument(
        "--data",
        dest="override:data.path",
        metavar="PATH",
        help=task.Data.__dataclass_fields__["path"].metadata["help"],
    )
    train_parser.add_argument(
        "--device", dest="override:train.device", metavar="DEV", help="cpu, cuda, ... (same as --train.device)"
    )
    train_parser.add_argument(
        "--out",
        help=f"directory for last.pt, best.pt, metrics.jsonl, loss.png (default runs/{task.name}, "
        "or the resumed checkpoint's)",
    )
    train_parser.add_argument(
        "--resume", metavar="CKPT", help="continue the run saved in this checkpoint, exactly where it stopped"
    )
    train_parser.add_argument(
        "--overwrite", action="store_true", help="allow replacing the checkpoints already in --out"
    )
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar or samples, only the final summary")
    train_parser.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny model, built-in tiny data, a few steps on CPU, in a temporary --out",
    )
    add_config_flags(train_parser, task.Config)
    train_parser.set_defaults(command=command("train:train_command", task))

    add_predict(actions, task)

    eval_parser = actions.add_parser("eval", help="the task's metrics of a checkpoint on data")
    add_model_arguments(eval_parser, task, "evaluate")
    eval_parser.add_argument("--data", metavar="PATH", help="data to evaluate on (a file, or a corpus directory)")
    if task.Evaluate is not None:
        add_settings(eval_parser, task.Evaluate, "evaluate")
    eval_parser.add_argument(
        "--out", metavar="DIR", help="also draw the task's figures (confusion matrix, ...) as PNG files in DIR"
    )
    eval_parser.add_argument("--overwrite", action="store_true", help="allow replacing figures already in --out")
    eval_parser.set_defaults(command=command("predict:eval_command", task))

    from rnnkit.commands.extras import EXTRA_COMMANDS  # the table only: each command's code loads when it runs

    for name, extra in EXTRA_COMMANDS.get(task.name, {}).items():  # the task's further commands (wordlm next, ...)
        extra_parser = actions.add_parser(name, help=extra.help, description=extra.help)
        if extra.reads_model:
            add_model_arguments(extra_parser, task, "run")
        else:
            extra_parser.add_argument("--dry-run", action="store_true", help=extra.dry_run)
        add_settings(extra_parser, extra.Options, "options")
        if extra.writes:
            extra_parser.add_argument("--overwrite", action="store_true", help="allow replacing what --out names")
        extra_parser.set_defaults(command=command(extra.run, task))


def add_model_arguments(parser: argparse.ArgumentParser, task: Task, what: str) -> None:
    """CHECKPOINT, --device and --dry-run, as every command that runs a trained model takes them."""
    parser.add_argument("checkpoint", nargs="?", help=f"a checkpoint, run directory or bundle of {task.name} train")
    parser.add_argument("--device", default="cpu", help=f"device to {what} on (default cpu)")
    parser.add_argument("--dry-run", action="store_true", help="an untrained tiny model; no checkpoint needed")


def add_predict(parsers, task: Task, help_line: str = "") -> None:
    """`rnnkit TASK VERB CHECKPOINT` (and `rnnkit translate CHECKPOINT`, a task's verb of its own at the top)."""
    from rnnkit.commands.verbs import verb_module

    predict_parser = parsers.add_parser(task.verb, help=help_line or f"{task.verb} from a checkpoint")
    add_model_arguments(predict_parser, task, "run")
    add_settings(predict_parser, task.Predict, "predict")
    add_settings(predict_parser, verb_module(task.name).Options, "options")
    predict_parser.set_defaults(command=command("predict:predict_command", task))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks written from their equations.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback instead of a one-line error (anywhere on the line)"
    )
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for task in TASKS.values():
        add_task(tasks, task)
    if "seq2seq" in TASKS:
        add_predict(
            tasks,
            TASKS["seq2seq"],
            "translate sentences with a seq2seq checkpoint (the same as rnnkit seq2seq translate)",
        )

    readers = ", ".join(name for name, task in TASKS.items() if task.reads_text)
    drawers = ", ".join(name for name, task in TASKS.items() if task.generates_data)
    diagnose = tasks.add_parser(
        "diagnose",
        help="gradients through time, spectra of U, hidden-state norms: PNG plots and summary.json",
        description="Three modes: CHECKPOINT measures a trained model (‖∂L/∂h_t‖ per layer, ‖∂L/∂c_t‖ beside it "
        "for the LSTM, spectra of U, ‖h_t‖); --compare trains tiny models of several cells and draws their curves "
        "together; --spectral-radius draws the notes' toy, the vanilla RNN with U = r · (random orthogonal).",
    )
    diagnose.add_argument(
        "checkpoint",
        nargs="?",
        help=f"a checkpoint whose model reads text ({readers}), measured on --data, "
        f"or one whose task draws its own problem ({drawers}), measured on that",
    )
    diagnose.add_argument(
        "--data",
        metavar="FILE",
        help="UTF-8 text whose windows the gradients are measured on (a classifier reads each window as one text, "
        "the tagger as one sentence)",
    )
    diagnose.add_argument(
        "--compare",
        metavar="CELLS",
        help="instead: train tiny models of these cells (e.g. rnn,lstm,gru) "
        "on a long-dependency task and plot their curves together, each labelled with its parameter count",
    )
    diagnose.add_argument(
        "--spectral-radius",
        metavar="R,R,...",
        help="instead, with no CHECKPOINT: the notes' toy, a vanilla tanh RNN with U = r · (a seeded random "
        "orthogonal matrix) for each r (e.g. 0.2,1,3): ‖∂h_T/∂h_t‖ and ‖h_t‖ over t in spectral_radius.png, and each "
        "ρ(U) beside 1/γ = 1, below which the gradient must vanish",
    )
    diagnose.add_argument(
        "--seq-len",
        type=positive_int,
        help="steps between the loss and the earliest state measured "
        "(default 100; 50 with --compare or --spectral-radius)",
    )
    diagnose.add_argument(
        "--steps",
        type=positive_int,
        default=2000,
        help="training steps per cell for --compare "
        "(default 2000: the LSTM and GRU learn a 50-step dependency, the vanilla RNN stays at chance)",
    )
    add_output_flags(diagnose, "runs/diagnose", "the plots and summary.json")
    diagnose.set_defaults(command=command("inspect:diagnose_command"))

    viz = tasks.add_parser("viz", help="colour a text by the hidden units that track its features: one HTML report")
    viz.add_argument("checkpoint", nargs="?", help="a charlm checkpoint")
    viz.add_argument("--text", metavar="FILE", help="UTF-8 text for the model to read (characters it has seen)")
    viz.add_argument(
        "--kind",
        choices=("auto", "source", "prose"),
        default="auto",
        help="which features to look for (default: guess)",
    )
    viz.add_argument(
        "--chars", type=positive_int, default=20000, help="read at most this many characters of --text (default 20000)"
    )
    add_output_flags(viz, "runs/viz", "report.html, units.json and top_unit.png")
    viz.set_defaults(command=command("inspect:viz_command"))

    export = tasks.add_parser(
        "export",
        help="a language model (charlm, wordlm) as an ONNX graph, state in and out, or a seq2seq "
        "model as two (FILE-encoder.onnx, FILE-decoder.onnx: one decoder step)",
    )
    export.add_argument(
        "checkpoint",
        nargs="?",
        help="a checkpoint or run directory (any task for --bundle; charlm, wordlm or seq2seq for --onnx)",
    )
    export.add_argument("--onnx", metavar="FILE", help="the ONNX file to write")
    export.add_argument(
        "--bundle",
        metavar="DIR",
        help="instead: the model to share, without its optimizer: model.safetensors, config.json, its vocabularies "
        "and a model card README.md (any task)",
    )
    export.add_argument("--overwrite", action="store_true", help="allow replacing an existing --onnx file or --bundle")
    export.add_argument("--dry-run", action="store_true", help="export an untrained tiny model to a temporary file")
    export.set_defaults(command=command("export:export_command"))
    return parser


LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029) if chr(c) != "\t"}


def one_line(message: str) -> str:
    """A message kept to one line: a control character in it (a file named "a\\rb") is shown escaped."""
    return message.translate(LINE_BREAKS)


def failure_line(error: BaseException) -> tuple[str, int] | None:
    """The one line and exit status for a failure of the world outside rnnkit; None for a bug."""
    if isinstance(error, RnnkitError):
        return str(error), 2
    if isinstance(error, ValueError) and "null byte" in str(
        error
    ):  # a path from a --config file or Python: no OS allows it
        return "a file name holds a NUL byte (\\x00), which no file can have", 2
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(error, RuntimeError) and "allocate" in str(error)
    ):
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "the allocation failed"
        return (
            f"out of memory: {detail[:300]} (try a smaller --train.batch_size, --model.hidden_size or --train.seq_len)",
            1,
        )
    if isinstance(
        error, (RuntimeError, TypeError)
    ) and any(  # torch asked for a tensor of more elements than an int64 counts
        overflow in str(error) for overflow in ("Storage size calculation overflowed", "Overflow when unpacking long")
    ):
        return "a size too large to allocate (a --model or --train size beyond any machine's memory?)", 2
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}", 1
    if (
        int(os.environ.get("WORLD_SIZE", "1")) > 1
        and isinstance(error, RuntimeError)
        and any(lost in str(error) for lost in ("Connection closed by peer", "Connection reset by peer"))
    ):
        # under torchrun: another process stopped (its own line says why), and this one lost its connection to it
        return (
            f"process {os.environ.get('RANK', '?')} of {os.environ['WORLD_SIZE']}: "
            "another process of this run stopped; its message says why",
            1,
        )
    return None


PATH_FLAGS = {  # destinations of the flags whose value names a file or directory: never an empty string
    "checkpoint": "CHECKPOINT",
    "data": "--data",
    "out": "--out",
    "resume": "--resume",
    "config": "--config",
    "onnx": "--onnx",
    "bundle": "--bundle",
    "text": "--text",  # viz's text file (the prediction commands' --text is options:text, a sentence)
    "options:input": "--input",
    "options:out": "--out",
    "options:attention_png": "--attention-png",
}
PATH_SETTINGS = ("path", "token_cache", "features", "val_features")  # data settings that name files


def empty_path(args: argparse.Namespace) -> str | None:
    """The flag given an empty string where a path goes (a script's --data "$DATA" with DATA unset), or None."""
    for dest, value in vars(args).items():
        if value != "":
            continue
        if dest in PATH_FLAGS:
            return PATH_FLAGS[dest]
        section, _, name = dest.removeprefix("override:").partition(".")
        if dest.startswith("override:") and section == "data" and name in PATH_SETTINGS:
            return "--data" if name == "path" else f"--data.{name}"
    return None


def say_note(message, category, filename, lineno, file=None, line=None) -> None:
    """rnnkit's own warnings (StaleOutput, ...) as one line on stderr; others as Python shows them."""
    if issubclass(category, StaleOutput):
        print(f"rnnkit: note: {one_line(str(message))}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr, end="")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # anywhere on the line: tracebacks instead of one-line errors
    parser = build_parser()
    args = parser.parse_args([a for a in argv if a != "--debug"])
    for name, value in vars(args).items():  # argparse reads "--flag=--" as an empty list; no rnnkit flag takes one
        if isinstance(value, list):
            parser.error(f"--{name.split(':')[-1]}: expected a value, got {value!r}")
    if sys.stdin is None:  # started with standard input closed (<&-): it reads as empty input
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  (for the life of the process)
        print("rnnkit: note: standard input is closed; it reads as empty", file=sys.stderr)
    if sys.stdout is None:  # started with standard output closed (>&-)
        if getattr(args, "action", None) != "train" and args.task not in ("diagnose", "viz", "export"):
            print(
                "rnnkit: error: standard output is closed (>&-): what this command prints could not be read",
                file=sys.stderr,
            )
            return 1
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (its files are what it makes)
        print("rnnkit: note: standard output is closed; the summary printed there is lost", file=sys.stderr)
    flag = empty_path(args)
    if flag is not None:  # the built-in data, or the current directory, only when the flag is absent
        print(f"rnnkit: error: {flag}: an empty path (give a file or directory, or drop {flag})", file=sys.stderr)
        return 2
    warnings.showwarning = say_note
    try:
        return args.command(args)
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except Stopped as stopped:  # SIGTERM or Ctrl-C while a command staged its files: they are removed
        said = "interrupted" if stopped.signum == signal.SIGINT else f"stopped by {signal.Signals(stopped.signum).name}"
        print(f"rnnkit: {said}", file=sys.stderr)
        return 128 + stopped.signum
    except BrokenPipeError:  # `rnnkit charlm sample ... | head`: the reader has gone, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 0
    except Exception as error:
        if debug:
            raise
        known = failure_line(error)
        if known is not None:
            print(f"rnnkit: error: {one_line(known[0])}", file=sys.stderr)
            return known[1]
        print(
            f"rnnkit: internal error: {type(error).__name__}: "
            f"{one_line(str(error).strip().splitlines()[0][:300]) if str(error).strip() else ''} "
            "(rerun with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    raise SystemExit(main())

"""The `rnnkit` command: `rnnkit <task> <action>`, a thin layer over the library.

    rnnkit charlm train  [--preset P] [--data FILE] [--out DIR] [--resume CKPT] [--section.key=value ...]
    rnnkit charlm sample CHECKPOINT [--prime TEXT] [--length N] [--temperature T] [--top_k K] ...
    rnnkit charlm eval   CHECKPOINT --data FILE

Arguments become config dataclasses, library functions do the work, and only this file prints.
Every problem rnnkit can name is an RnnkitError: one line on stderr, exit status 2, no traceback, and
nothing half-written (inputs are checked before the output directory is touched).
"""

import argparse
import json
import signal
import sys
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch
from tqdm import tqdm

from rnnkit import distributed
from rnnkit.checkpoint import load_checkpoint
from rnnkit.config import PRESETS, DataConfig, ModelConfig, RunConfig, SampleConfig, TrainConfig, apply_overrides, build_config, from_dict, parse_value, validate
from rnnkit.data.batching import StreamBatches
from rnnkit.data.datasets import load_char_data, tiny_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import bits_per_char, evaluate_lm, perplexity
from rnnkit.models.char_lm import CharLM
from rnnkit.runs import RunDirectory
from rnnkit.sample import generate, seeded
from rnnkit.train import StepRecord, TrainingDiverged, train

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
    diagnose.add_argument("--out", default="runs/diagnose", help="directory for the plots and summary.json (default runs/diagnose)")
    diagnose.add_argument("--overwrite", action="store_true", help="allow replacing an earlier summary in --out")
    diagnose.add_argument("--dry-run", action="store_true", help="an untrained tiny model on the built-in tiny text, in a temporary --out")

    viz = tasks.add_parser("viz", help="colour a text by the hidden units that track its features: one HTML report")
    viz.add_argument("checkpoint", nargs="?", help="a charlm checkpoint")
    viz.add_argument("--text", metavar="FILE", help="UTF-8 text for the model to read (characters it has seen)")
    viz.add_argument("--out", default="runs/viz", help="directory for report.html, units.json, top_unit.png (default runs/viz)")
    viz.add_argument("--kind", choices=("auto", "source", "prose"), default="auto", help="which features to look for (default: guess)")
    viz.add_argument("--chars", type=int, default=20000, help="read at most this many characters of --text (default 20000)")
    viz.add_argument("--overwrite", action="store_true", help="allow replacing an earlier report in --out")
    viz.add_argument("--dry-run", action="store_true", help="an untrained tiny model on the built-in tiny text, in a temporary --out")
    return parser


def overrides_from(args: argparse.Namespace, prefix: str) -> dict[str, str]:
    return {key.split(":", 1)[1]: value for key, value in vars(args).items() if key.startswith(prefix) and value is not None}


# --- shared pieces --------------------------------------------------------------------------------
def validation_batches(ids: torch.Tensor, what: str) -> StreamBatches:
    """Up to 16 streams of up to 256 steps, sized down for short texts."""
    batch_size = max(1, min(16, len(ids) // 64))
    seq_len = min(256, len(ids) // batch_size - 1)
    if seq_len < 1:
        raise RnnkitError(f"{what} has {len(ids)} characters; at least 2 are needed to evaluate")
    return StreamBatches(ids, batch_size, seq_len, what)


def encoding_progress(config: DataConfig, quiet: bool):
    """A progress bar for encoding a text into a token cache (two passes over the file)."""
    if not config.token_cache or not config.path or quiet or not Path(config.path).is_file():
        return None
    bar = tqdm(total=2 * Path(config.path).stat().st_size, unit="B", unit_scale=True, desc="encoding", file=sys.stderr, leave=False)
    return bar.update


def model_from_checkpoint(checkpoint: dict, device: str) -> tuple[CharLM, Vocab, RunConfig]:
    config = from_dict(RunConfig, checkpoint["config"])
    vocab = Vocab.from_dict(checkpoint["vocab"])
    model = CharLM(len(vocab), config.model)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise RnnkitError(f"checkpoint weights do not fit its config: {str(error).splitlines()[0]}") from None
    return model.to(device), vocab, config


def tiny_model(cell_config: ModelConfig | None = None) -> tuple[CharLM, Vocab]:
    """An untrained tiny model over the built-in tiny text's vocabulary, for --dry-run."""
    config = apply_overrides(RunConfig(), PRESETS["tiny"]).model if cell_config is None else cell_config
    vocab = Vocab.from_text(tiny_text())
    model = CharLM(len(vocab), config)
    model.reset_parameters(torch.Generator().manual_seed(0))
    return model, vocab


# --- charlm train ---------------------------------------------------------------------------------
def charlm_train(args: argparse.Namespace) -> int:
    overrides = overrides_from(args, "override:")
    if args.resume and args.preset:
        raise RnnkitError("--preset cannot be combined with --resume: the checkpoint's settings are used, and flags override single keys")
    checkpoint = load_checkpoint(args.resume, task="charlm") if args.resume else None
    if checkpoint is not None:  # the saved run's settings, with the flags given now on top (e.g. more steps)
        config = apply_overrides(from_dict(RunConfig, checkpoint["config"]), overrides)
    else:
        config = build_config(args.preset, overrides)
    if args.dry_run:
        config = apply_overrides(config, {**PRESETS["tiny"], "train.device": "cpu", "train.sample_interval": 10})
    validate(config)
    data = load_char_data(config.data, tiny=args.dry_run, progress=encoding_progress(config.data, args.quiet))
    if checkpoint is not None and Vocab.from_dict(checkpoint["vocab"]).symbols != data.vocab.symbols:
        raise RnnkitError(f"{data.source}: its characters differ from the vocabulary saved in {args.resume}")
    batches = StreamBatches(data.train_ids, config.train.batch_size, config.train.seq_len, f"{data.source} (training part)")
    val_batches = validation_batches(data.val_ids, f"{data.source} (validation part)")
    device = config.train.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RnnkitError(f"device {device!r} asked for, but no CUDA GPU is available")

    model = CharLM(len(data.vocab), config.model)
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])

    context = distributed.setup(device)  # alone, or one of torchrun's processes
    try:
        model.to(context.device)
        out = Path(args.out or (Path(args.resume).parent if args.resume else "runs/charlm"))
        resuming_here = checkpoint is not None and Path(args.resume).resolve().parent == out.resolve()
        with tempfile.TemporaryDirectory() as scratch:
            run = RunDirectory(Path(scratch) if args.dry_run else out, checkpoint["step"] if checkpoint else None, args.overwrite or args.dry_run)
            if checkpoint is not None and not resuming_here and not args.overwrite:
                run.refuse_existing()
            if context.is_main:  # only rank 0 writes
                run.start()
            return run_training(args, config, data, model, batches, val_batches, run, checkpoint, context)
    finally:
        distributed.teardown()


def run_training(args, config: RunConfig, data, model: CharLM, batches, val_batches, run: RunDirectory, checkpoint,
                 context: distributed.Context) -> int:
    # each process draws its own dropout masks; the checkpoint keeps the user's settings
    train_config = replace(config.train, device=context.device, seed=config.train.seed + context.rank)
    start = checkpoint["step"] if checkpoint else 0
    main, quiet = context.is_main, args.quiet or not context.is_main
    bar = tqdm(total=train_config.max_steps, initial=start, unit="step", disable=quiet, dynamic_ncols=True, file=sys.stderr)
    if context.world_size > 1:
        batches = distributed.ShardedBatches(batches, context)

    def evaluate(ddp_model):  # every process evaluates the plain model on all of the validation text, so all agree on "best"
        return evaluate_lm(model, val_batches, max_chunks=eval_chunks(train_config, val_batches), device=train_config.device)

    def save(snapshot: dict, is_best: bool) -> None:
        if main:
            run.save({**snapshot, "task": "charlm", "config": asdict(config), "vocab": data.vocab.to_dict()}, is_best)

    def on_step(record: StepRecord) -> None:
        if not main:
            return
        entry = asdict(record) | {"bits_per_char": bits_per_char(record.loss)}
        if record.val_loss is not None:
            entry["val_bits_per_char"] = bits_per_char(record.val_loss)
        run.log(entry)
        bar.update(1)
        postfix = {"loss": f"{record.loss:.3f}", "grad": f"{record.grad_norm:.2f}", "tok/s": f"{record.tokens_per_second * context.world_size:,.0f}"}
        best = min((r["val_loss"] for r in run.records if r.get("val_loss") is not None), default=None)
        if best is not None:
            postfix["val"] = f"{best:.3f}"
        bar.set_postfix(postfix, refresh=False)
        if record.val_loss is not None:
            run.plot(f"charlm on {data.source}")
            if not quiet:
                bar.write(f"step {record.step}: val loss {record.val_loss:.4f} ({entry['val_bits_per_char']:.3f} bits/char){'  best' if record.is_best else ''}")
        if not quiet and train_config.sample_interval and record.step % train_config.sample_interval == 0:
            text = "".join(c[0] for c in generate(model, data.vocab, "\n", 200, 0.8, generator=seeded(record.step)))
            bar.write(f"--- sample at step {record.step} ---\n{text}\n---")

    stop_signals = []  # SIGINT/SIGTERM: finish the step, save last.pt, exit; a second signal stops at once

    def request_stop(signum, frame):
        if stop_signals:
            raise KeyboardInterrupt
        stop_signals.append(signum)

    def on_step_or_stop(record: StepRecord) -> bool:
        on_step(record)
        return batches.mean(1.0 if stop_signals else 0.0) > 0  # under DDP every process stops at the same step

    handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        records = train(distributed.wrap(model, context), batches, train_config, evaluate=evaluate, save=save, on_step=on_step_or_stop, resume=checkpoint)
    except TrainingDiverged as error:
        last = run.path / "last.pt"
        kept = f"; the last good checkpoint is {last}" if last.exists() and not args.dry_run else ""
        raise RnnkitError(f"{error}{kept}") from None
    finally:
        bar.close()
        for s, handler in handlers.items():
            signal.signal(s, handler)
    if not main:
        return 128 + stop_signals[0] if stop_signals else 0
    if stop_signals:
        step = records[-1].step if records else start
        print(f"stopped by {signal.Signals(stop_signals[0]).name} after step {step}; saved {run.path / 'last.pt'}; "
              f"continue with: rnnkit charlm train --resume {run.path / 'last.pt'}", file=sys.stderr)
        return 128 + stop_signals[0]
    run.plot(f"charlm on {data.source}")
    evaluated = [r for r in run.records if r.get("val_loss") is not None]
    best = min(r["val_loss"] for r in evaluated) if evaluated else float("nan")
    clip_rate = records[-1].clip_fraction if records else 0.0
    print(f"trained {train_config.max_steps} steps on {data.source}: best val loss {best:.4f} nats/char "
          f"({bits_per_char(best):.3f} bits/char), clipping fired on {clip_rate:.1%} of steps")
    if not args.dry_run:
        print(f"checkpoints: {run.path / 'best.pt'}, {run.path / 'last.pt'}; metrics: {run.metrics_path}; plot: {run.path / 'loss.png'}")
    if not quiet:
        print("--- sample ---")
        print("".join(c[0] for c in generate(model, data.vocab, "\n", 300, 0.8, generator=seeded(0))))
    return 0


def eval_chunks(config: TrainConfig, val_batches: StreamBatches) -> int:
    """How many validation chunks eval_tokens allows (0: all)."""
    per_chunk = val_batches.batch_size * val_batches.seq_len
    return 0 if not config.eval_tokens else max(1, config.eval_tokens // per_chunk)


# --- charlm sample / eval ------------------------------------------------------------------------
def charlm_sample(args: argparse.Namespace) -> int:
    settings = SampleConfig()
    for key, text in overrides_from(args, "sample:").items():
        settings = SampleConfig(**{**asdict(settings), key: parse_value(key, text, type(getattr(SampleConfig(), key)))})
    if args.dry_run:
        model, vocab = tiny_model()
        settings = SampleConfig(**{**asdict(settings), "length": min(settings.length, 50)})
    else:
        if not args.checkpoint:
            raise RnnkitError("charlm sample needs a CHECKPOINT (or --dry-run)")
        model, vocab, _ = model_from_checkpoint(load_checkpoint(args.checkpoint, task="charlm"), args.device)
    if settings.length < 0 or settings.temperature < 0 or settings.top_k < 0 or settings.num_samples < 1:
        raise RnnkitError("length, temperature and top_k must be ≥ 0 and num_samples ≥ 1")
    if not settings.prime:
        raise RnnkitError("--prime must have at least one character (the state is warmed up on it)")
    vocab.encode(settings.prime, what="prime text")  # unseen characters are an error before anything is printed
    stream = generate(model, vocab, settings.prime, settings.length, settings.temperature, settings.top_k,
                      settings.num_samples, seeded(settings.seed))
    if settings.num_samples == 1:  # stream the text as it is generated
        sys.stdout.write(settings.prime)
        for column in stream:
            sys.stdout.write(column[0])
            sys.stdout.flush()
        sys.stdout.write("\n")
    else:
        columns = list(stream)
        for b in range(settings.num_samples):
            print(f"--- sample {b + 1} ---\n{settings.prime}{''.join(c[b] for c in columns)}")
    return 0


def charlm_eval(args: argparse.Namespace) -> int:
    if args.dry_run:
        model, vocab = tiny_model()
        text, source = tiny_text(), "built-in tiny text"
    else:
        if not args.checkpoint or not args.data:
            raise RnnkitError("charlm eval needs a CHECKPOINT and --data FILE (or --dry-run)")
        from rnnkit.data.text import read_text

        model, vocab, _ = model_from_checkpoint(load_checkpoint(args.checkpoint, task="charlm"), args.device)
        text, source = read_text(args.data), args.data
    ids = vocab.encode(text, what=source)
    batches = validation_batches(ids, source)
    loss = evaluate_lm(model, batches, device=args.device)
    evaluated = len(batches) * batches.batch_size * batches.seq_len
    print(f"{source}: loss {loss:.4f} nats/char, {bits_per_char(loss):.4f} bits/char, perplexity {perplexity(loss):.3f} ({evaluated:,} characters)")
    return 0


def output_directory(args: argparse.Namespace, scratch: str, marker: str) -> Path:
    """--out, or a temporary directory for --dry-run; an earlier result there is kept unless --overwrite."""
    out = Path(scratch) if args.dry_run else Path(args.out)
    if (out / marker).exists() and not args.overwrite:
        raise RnnkitError(f"{out} already holds {marker}; pass --overwrite or another --out")
    return out


def model_for_inspection(args: argparse.Namespace, text_path: str | None) -> tuple[CharLM, Vocab, str]:
    if args.dry_run:
        model, vocab = tiny_model()
        return model, vocab, tiny_text()
    if not args.checkpoint or not text_path:
        raise RnnkitError(f"rnnkit {args.task} needs a CHECKPOINT and a text file (or --dry-run)")
    from rnnkit.data.text import read_text

    model, vocab, _ = model_from_checkpoint(load_checkpoint(args.checkpoint, task="charlm"), "cpu")
    return model, vocab, read_text(text_path)


def diagnose_command(args: argparse.Namespace) -> int:
    from rnnkit.inspect_model import compare_cells, diagnose_model

    with tempfile.TemporaryDirectory() as scratch:
        out = output_directory(args, scratch, "summary.json")
        if args.compare:
            cells = [c.strip() for c in args.compare.split(",") if c.strip()]
            unknown = [c for c in cells if c not in ("rnn", "lstm", "gru", "mut1", "mut2", "mut3")]
            if unknown or not cells:
                raise RnnkitError(f"--compare: unknown cells {unknown or args.compare!r}; choose from rnn, lstm, gru, mut1, mut2, mut3")
            steps, seq_len = (20, 20) if args.dry_run else (args.steps, args.seq_len)
            with tqdm(total=len(cells), desc="training tiny models", file=sys.stderr, disable=args.dry_run) as bar:
                summary, png = compare_cells(cells, seq_len=seq_len, steps=steps, on_cell=lambda name: bar.update(1))
            plots = {"compare_gradient_through_time.png": png}
        else:
            model, vocab, text = model_for_inspection(args, args.data)
            seq_len = 20 if args.dry_run else args.seq_len
            summary, plots = diagnose_model(model, vocab, text, seq_len=seq_len)
        out.mkdir(parents=True, exist_ok=True)
        for name, png in plots.items():
            (out / name).write_bytes(png)
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        if args.compare:
            for name, entry in summary.items():
                print(f"{name:>5}: ‖∂L/∂h‖ {seq_len} steps back / at the loss = {entry['gradient_ratio_at_init']:.3g} at init, "
                      f"{entry['gradient_ratio_trained']:.3g} trained; task accuracy {entry['accuracy']:.0%}")
        else:
            for name, ratio in summary["gradient_ratio_first_to_last"].items():
                print(f"{name}: ‖∂L/∂h‖ {seq_len} steps back / at the loss = {ratio:.3g}")
        if not args.dry_run:
            print(f"wrote {', '.join(str(out / n) for n in plots)} and {out / 'summary.json'}")
    return 0


def viz_command(args: argparse.Namespace) -> int:
    from rnnkit.inspect_model import inspect_units

    model, vocab, text = model_for_inspection(args, args.text)
    text = text[: 600 if args.dry_run else args.chars]
    vocab.encode(text, what=args.text or "text")  # unseen characters: an error before anything is written
    with tempfile.TemporaryDirectory() as scratch:
        out = output_directory(args, scratch, "report.html")
        summary = inspect_units(model, vocab, text, out, kind=args.kind)
        for feature, units in summary["features"].items():
            best = units[0]
            print(f"{feature:>14}: {best['state']} unit {best['unit']}, r = {best['r']:+.3f}")
        if not args.dry_run:
            print(f"wrote {out / 'report.html'}")
    return 0


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

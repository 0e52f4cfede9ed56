"""`rnnkit charlm train | sample | eval`: the character-level language model's commands.

Part of the CLI: these functions read arguments, call the library, and print.
"""

import argparse
import math
import signal
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm import tqdm

from rnnkit import diagnostics, distributed
from rnnkit.checkpoint import load_checkpoint
from rnnkit.config import PRESETS, DataConfig, RunConfig, SampleConfig, TrainConfig, apply_overrides, build_config, from_dict, replace_fields, validate
from rnnkit.data.batching import StreamBatches
from rnnkit.data.datasets import load_char_data, tiny_text
from rnnkit.data.text import read_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import bits_per_char, evaluate_lm, perplexity
from rnnkit.models.char_lm import CharLM
from rnnkit.runs import RunDirectory
from rnnkit.sample import generate, seeded
from rnnkit.train import StepRecord, TrainingDiverged, train


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
    load_weights(model, checkpoint)
    return model.to(device), vocab, config


def load_weights(model: CharLM, checkpoint: dict) -> None:
    """The checkpoint's weights into `model`, or a one-line error when they do not fit (say, another --model.hidden_size)."""
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise RnnkitError(f"checkpoint weights do not fit the model's config: {str(error).splitlines()[0]}") from None


def tiny_model() -> tuple[CharLM, Vocab]:
    """An untrained tiny model over the built-in tiny text's vocabulary, for --dry-run."""
    config = apply_overrides(RunConfig(), PRESETS["tiny"]).model
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
    device = config.train.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RnnkitError(f"device {device!r} asked for, but no CUDA GPU is available")

    context = distributed.setup(device)  # alone, or one of torchrun's processes
    try:
        with distributed.main_first(context):  # rank 0 builds a token cache; the others then read it
            data = load_char_data(config.data, tiny=args.dry_run, progress=encoding_progress(config.data, args.quiet or not context.is_main))
        if checkpoint is not None and Vocab.from_dict(checkpoint["vocab"]).symbols != data.vocab.symbols:
            raise RnnkitError(f"{data.source}: its characters differ from the vocabulary saved in {args.resume}")
        batches = StreamBatches(data.train_ids, config.train.batch_size, config.train.seq_len, f"{data.source} (training part)")
        val_batches = validation_batches(data.val_ids, f"{data.source} (validation part)")

        model = CharLM(len(data.vocab), config.model)
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        if checkpoint is not None:
            load_weights(model, checkpoint)
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

    best = [min((r["val_loss"] for r in run.records if r.get("val_loss") is not None), default=math.inf)]  # the best so far, for the bar

    def on_step(record: StepRecord) -> None:
        if not main:
            return
        entry = asdict(record) | {"bits_per_char": bits_per_char(record.loss)}
        if record.val_loss is not None:
            entry["val_bits_per_char"] = bits_per_char(record.val_loss)
            # the spectra of the recurrent matrices, tracked as training goes (rnnkit diagnose explains them)
            entry["spectral_radius"] = {name: v["spectral_radius"] for name, v in diagnostics.spectra(model.core, top=1).items()}
        run.log(entry)
        bar.update(1)
        postfix = {"loss": f"{record.loss:.3f}", "grad": f"{record.grad_norm:.2f}", "tok/s": f"{record.tokens_per_second * context.world_size:,.0f}"}
        if record.val_loss is not None:
            best[0] = min(best[0], record.val_loss)
        if best[0] < math.inf:
            postfix["val"] = f"{best[0]:.3f}"
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
    settings = replace_fields(SampleConfig(), overrides_from(args, "sample:"))
    if args.dry_run:
        model, vocab = tiny_model()
        settings = replace(settings, length=min(settings.length, 50))
    else:
        if not args.checkpoint:
            raise RnnkitError("charlm sample needs a CHECKPOINT (or --dry-run)")
        model, vocab, _ = model_from_checkpoint(load_checkpoint(args.checkpoint, task="charlm"), args.device)
    if settings.length < 0 or settings.temperature < 0 or settings.top_k < 0 or settings.num_samples < 1:
        raise RnnkitError("length, temperature and top_k must be ≥ 0 and num_samples ≥ 1")
    if not settings.prime:
        raise RnnkitError("--prime must have at least one character (the state is warmed up on it)")
    # generate checks the prime at once: unseen characters are an error before anything is printed
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
        model, vocab, _ = model_from_checkpoint(load_checkpoint(args.checkpoint, task="charlm"), args.device)
        text, source = read_text(args.data), args.data
    ids = vocab.encode(text, what=source)
    batches = validation_batches(ids, source)
    loss = evaluate_lm(model, batches, device=args.device)
    evaluated = len(batches) * batches.batch_size * batches.seq_len
    print(f"{source}: loss {loss:.4f} nats/char, {bits_per_char(loss):.4f} bits/char, perplexity {perplexity(loss):.3f} ({evaluated:,} characters)")
    return 0

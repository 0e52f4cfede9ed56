"""`rnnkit TASK train`: one training command for every task in rnnkit.tasks.TASKS.

Part of the CLI: it reads arguments, calls the library (the task's data and model, rnnkit/train.py's
loop), and prints. Checkpoints, metrics.jsonl, loss.png, the progress bar, SIGTERM handling, resume and
DDP are the same for every task.
"""

import argparse
import difflib
import math
import signal
import sys
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch
from tqdm import tqdm

from rnnkit import diagnostics, distributed
from rnnkit.checkpoint import load_checkpoint
from rnnkit.config import apply_overrides, read_settings_file, validate
from rnnkit.data.vocab import vocab_from_dict
from rnnkit.devices import checked_device
from rnnkit.errors import RnnkitError
from rnnkit.optim import learning_rate_at
from rnnkit.runs import RunDirectory
from rnnkit.summary import summarize
from rnnkit.tasks import load_weights, saved_config
from rnnkit.tasks.base import Task
from rnnkit.train import StepRecord, TrainingDiverged, check_snapshot, train


def overrides_from(args: argparse.Namespace, prefix: str) -> dict[str, str]:
    return {
        key.split(":", 1)[1]: value for key, value in vars(args).items() if key.startswith(prefix) and value is not None
    }


def check_device(device: str) -> None:
    """The same answer for every command: a name torch knows, and a device this machine has."""
    checked_device(device, "--device")


def settings_file(task: Task, path: str) -> dict:
    """--config FILE's settings; a run directory's config.json (which also names its task) reruns that run."""
    settings = read_settings_file(path)
    named = settings.pop("task", task.name)
    if named != task.name:
        raise RnnkitError(f"{path}: the settings of a {named} run, not a {task.name} one")
    known = [f"{section.name}.{f.name}" for section in fields(task.Config) for f in fields(section.type)]
    for key in settings:
        if key not in known:  # a typo in the file: say the file, and the setting it most likely meant
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
            hint = (
                f"; did you mean {near[0]}?"
                if near
                else f" of {task.name} (rnnkit {task.name} train --help lists them)"
            )
            raise RnnkitError(f"{path}: unknown setting {key}{hint}")
    return settings


def resolve_config(task: Task, args: argparse.Namespace):
    """The run's config and the checkpoint it resumes (or None): defaults, preset or checkpoint, then flags."""
    overrides = {
        **(settings_file(task, args.config) if args.config else {}),
        **overrides_from(args, "override:"),
    }  # flags win
    if args.resume and args.preset:
        raise RnnkitError(
            "--preset cannot be combined with --resume: "
            "the checkpoint's settings are used, and flags override single keys"
        )
    checkpoint = load_checkpoint(args.resume, task=task.name) if args.resume else None
    if checkpoint is not None:  # the saved run's settings, with the flags given now on top (e.g. more steps)
        config = apply_overrides(saved_config(task, checkpoint["config"], args.resume), overrides)
    else:
        config = task.build_config(args.preset, overrides)
    check_device(config.train.device)  # also under --dry-run, which then runs on the CPU
    if args.dry_run:
        schedule = (
            {"train.lr_schedule": "cosine"} if config.train.lr_schedule == "budget" else {}
        )  # no budget: a few steps
        config = apply_overrides(
            config,
            {
                **task.presets["tiny"],
                "train.device": "cpu",
                "train.sample_interval": 10,
                "train.max_minutes": 0.0,
                **schedule,
            },
        )
    validate(config)
    return config, checkpoint


def say_schedule_change(task: Task, checkpoint: dict, config) -> None:
    """A resumed run whose flags change the schedule (max_steps, learning_rate, ...) says once how the
    learning rate at the resume step changes (a cosine schedule re-planned for more steps jumps up)."""
    saved = saved_config(task, checkpoint["config"]).train
    step = checkpoint["step"]
    if "budget" in (saved.lr_schedule, config.train.lr_schedule):  # a function of time, not of the step
        return
    before, after = learning_rate_at(step, saved), learning_rate_at(step, config.train)
    if not math.isclose(before, after, rel_tol=1e-9):
        print(
            f"note: with the new settings the learning rate at step {step} is {after:.3g} "
            f"(the saved run's schedule had {before:.3g})",
            file=sys.stderr,
        )


def refuse_going_back(path: Path, step: int) -> None:
    """Resuming an earlier checkpoint of a run in its own directory would replace the run's later last.pt (and
    drop its later metrics): refused unless --overwrite."""
    last = path.parent / "last.pt"
    if last.exists() and last.resolve() != path.resolve():
        later = torch.load(last, map_location="cpu", weights_only=True, mmap=True).get(
            "step", 0
        )  # mmap: the weights stay on disk
        if later > step:
            raise RnnkitError(
                f"{path} is step {step}, but {last} has gone on to step {later}; resuming here would replace it: "
                f"pass --overwrite, or --out another directory"
            )


def encoding_progress(config, quiet: bool):
    """A progress bar for encoding a text into a token cache (two passes over the file)."""
    path, cache = getattr(config.data, "path", ""), getattr(config.data, "token_cache", "")
    if not cache or not path or quiet or not Path(path).is_file():
        return None
    total = None if path.endswith(".gz") else 2 * Path(path).stat().st_size  # a .gz file's text is longer than the file
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="encoding", file=sys.stderr, leave=False)
    return bar.update


def tensorboard_class():
    """torch's SummaryWriter; without the tensorboard package, one line saying how to get it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RnnkitError(
            "--tensorboard needs the tensorboard package: pip install tensorboard (or 'rnnkit[tensorboard]')"
        ) from None
    return SummaryWriter


def tensorboard_writer(directory: Path):
    return tensorboard_class()(str(directory))


def train_command(task: Task, args: argparse.Namespace) -> int:
    config, checkpoint = resolve_config(task, args)
    if args.print_config:  # the resolved settings, to save and edit before a run: nothing is read or written
        import yaml

        print(yaml.safe_dump(asdict(config), sort_keys=False, allow_unicode=True), end="")
        return 0
    if config.train.best_by == "accuracy" and task.headline != "accuracy":
        raise RnnkitError(f"--train.best_by=accuracy: {task.name} reports no accuracy; its best.pt is picked by loss")
    if args.tensorboard:  # before anything is written: a missing package is an input error
        tensorboard_class()
    context = distributed.setup(config.train.device)  # alone, or one of torchrun's processes
    finished = False
    try:
        with distributed.main_first(context):  # rank 0 builds a token cache; the others then read it
            progress = encoding_progress(config, args.quiet or not context.is_main)
            data = task.load_data(config, tiny=args.dry_run, **({"progress": progress} if task.streams else {}))
        if checkpoint is not None:
            for name, vocab in data.vocabularies.items():  # compared as vocabularies (a format-1 dict lacks "kind")
                saved = checkpoint["vocabularies"].get(name)
                if saved is None or vocab.to_dict() != vocab_from_dict(saved).to_dict():
                    raise RnnkitError(
                        f"{data.source}: its {task.per}s differ from the {name} vocabulary saved in {args.resume}"
                    )
        batches, val_batches = task.batches(config, data)
        model = task.build_model(config, data.vocabularies)
        if checkpoint is not None:
            load_weights(model, checkpoint, args.resume)
        model.to(context.device)
        if checkpoint is not None:
            try:
                check_snapshot(checkpoint, model, config.train, saved_config(task, checkpoint["config"]).train, batches)
            except RnnkitError as error:
                raise RnnkitError(f"{args.resume}: {error}") from None
        out = Path(args.out or (Path(args.resume).parent if args.resume else f"runs/{task.name}"))
        resuming_here = checkpoint is not None and Path(args.resume).resolve().parent == out.resolve()
        if resuming_here and not args.overwrite and context.is_main:
            refuse_going_back(Path(args.resume), checkpoint["step"])
        with tempfile.TemporaryDirectory() as scratch:
            # only rank 0 writes, so only rank 0 checks what the directory holds (the others would see its lock)
            run = RunDirectory(
                Path(scratch) if args.dry_run else out,
                checkpoint["step"] if checkpoint else None,
                args.overwrite or args.dry_run or not context.is_main,
            )
            if checkpoint is not None and not resuming_here and not args.overwrite and context.is_main:
                run.refuse_existing()
            if context.is_main:  # only rank 0 writes
                if checkpoint is not None:  # the inputs are good: say what the flags change
                    say_schedule_change(task, checkpoint, config)
                run.start({"task": task.name, **asdict(config)})
            try:
                status = Session(task, args, config, data, model, run, context).run(batches, val_batches, checkpoint)
            finally:
                run.release()
        finished = True
        return status
    finally:
        distributed.teardown(finished)


class Session:
    """One training run's reporting: the log, the bar, previews, checkpoints and the final summary."""

    def __init__(self, task: Task, args, config, data, model, run: RunDirectory, context: distributed.Context):
        self.task, self.args, self.config, self.data, self.model, self.run_dir, self.context = (
            task,
            args,
            config,
            data,
            model,
            run,
            context,
        )
        # each process draws its own dropout masks; the checkpoint keeps the user's settings
        self.train_config = replace(config.train, device=context.device, seed=config.train.seed + context.rank)
        self.main, self.quiet = context.is_main, args.quiet or not context.is_main
        self.best = min((r["val_loss"] for r in run.records if r.get("val_loss") is not None), default=math.inf)
        self.stop_signals: list[int] = []  # the signals this process received
        self.stopped_by: int | None = None  # the signal every process stopped for (under DDP, maybe another's)
        self.title = f"{task.name} on {data.source}"
        self.tensorboard = (
            tensorboard_writer(run.path / "tensorboard") if getattr(args, "tensorboard", False) and self.main else None
        )

    def save(self, snapshot: dict, is_best: bool) -> None:
        if self.main:
            vocabularies = {name: vocab.to_dict() for name, vocab in self.data.vocabularies.items()}
            self.run_dir.save(
                {**snapshot, "task": self.task.name, "config": asdict(self.config), "vocabularies": vocabularies},
                is_best,
            )

    def preview(self, length: int, seed: int) -> str:
        return self.task.preview(self.model, self.data, self.config, length, seed)

    def log(self, record: StepRecord) -> dict:
        entry = {k: v for k, v in asdict(record).items() if k not in ("units_per_second", "val_metrics")}
        entry[f"{self.task.unit}_per_second"] = record.units_per_second
        for key, value in (record.val_metrics or {}).items():
            if key != "loss":
                entry[f"val_{key}"] = value
        if record.val_loss is not None and hasattr(self.model, "core"):
            # the spectra of the recurrent matrices, tracked as training goes (rnnkit diagnose explains them)
            entry["spectral_radius"] = {
                name: v["spectral_radius"] for name, v in diagnostics.spectra(self.model.core, top=1).items()
            }
        self.run_dir.log(entry)
        if self.tensorboard is not None:  # the same numbers, for TensorBoard
            for key, value in entry.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    self.tensorboard.add_scalar(key, value, record.step)
        return entry

    def on_step(self, record: StepRecord, bar) -> bool:
        if self.main:
            self.log(record)
            bar.update(1)
            self.best = min(self.best, record.val_loss if record.val_loss is not None else math.inf)
            postfix = {
                "loss": f"{record.loss:.3f}",
                "grad": f"{record.grad_norm:.2f}",
                f"{self.task.unit}/s": f"{record.units_per_second * self.context.world_size:,.0f}",
            }
            if self.best < math.inf:
                postfix["val"] = f"{self.best:.3f}"
            bar.set_postfix(postfix, refresh=False)
            if record.val_loss is not None:
                self.run_dir.plot(self.title, f"loss (nats per {self.task.per})")
                if record.is_best and self.task.draws_figures:  # the best model's figures (confusion.png, ...)
                    for name, picture in self.task.figures(record.val_metrics).items():
                        self.run_dir.picture(name, picture)
                if not self.quiet:
                    best = "  best" if record.is_best else ""
                    bar.write(f"step {record.step}: val {self.task.describe(record.val_metrics)}{best}")
            if (
                not self.quiet
                and self.train_config.sample_interval
                and record.step % self.train_config.sample_interval == 0
            ):
                bar.write(f"--- sample at step {record.step} ---\n{self.preview(200, record.step)}\n---")
        stop = (
            self.batches.mean(1.0 if self.stop_signals else 0.0) > 0
        )  # under DDP every process stops at the same step
        if stop:  # and reports the signal, whichever process received it
            self.stopped_by = next(s for signals in self.batches.gather_objects(self.stop_signals[:1]) for s in signals)
        return stop

    def request_stop(self, signum, frame) -> None:
        """SIGINT/SIGTERM: finish the step, save last.pt, exit; a second signal stops at once."""
        if self.stop_signals:
            raise KeyboardInterrupt
        self.stop_signals.append(signum)

    def run(self, batches, val_batches, checkpoint) -> int:
        start = checkpoint["step"] if checkpoint else 0
        if not self.quiet:  # what is about to train, module by module, as Keras's model.summary()
            print(summarize(self.model), flush=True)
        bar = tqdm(
            total=self.train_config.max_steps,
            initial=start,
            unit="step",
            disable=self.quiet,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.batches = distributed.ShardedBatches(batches, self.context) if self.context.world_size > 1 else batches

        def evaluate(
            ddp_model,
        ):  # every process evaluates the plain model on the validation data, so all agree on "best"
            return self.task.evaluate(self.model, val_batches, self.train_config.device)

        # kept until the summary is written: a signal after the last step then no longer cuts it short
        handlers = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                records = train(
                    distributed.wrap(self.model, self.context),
                    self.batches,
                    self.train_config,
                    self.task.step_loss,
                    evaluate=evaluate,
                    save=self.save,
                    on_step=lambda record: self.on_step(record, bar),
                    resume=checkpoint,
                )
            finally:
                bar.close()
                if self.tensorboard is not None:
                    self.tensorboard.close()
            return self.finish(records, start)
        except TrainingDiverged as error:
            last = self.run_dir.path / "last.pt"
            kept = f"; the last good checkpoint is {last}" if last.exists() and not self.args.dry_run else ""
            raise RnnkitError(f"{error}{kept}") from None
        except OSError as error:  # a full disk, a directory made read-only mid-run: checkpoints are written atomically
            where = error.filename or self.run_dir.path
            raise RnnkitError(
                f"{where}: {error.strerror or error}; the checkpoints already in {self.run_dir.path} are intact"
            ) from None
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)

    def finish(self, records: list[StepRecord], start: int) -> int:
        if not self.main:
            return 0 if self.stopped_by is None else 128 + self.stopped_by
        path = self.run_dir.path
        if self.stopped_by is not None:
            step = records[-1].step if records else start
            print(
                f"stopped by {signal.Signals(self.stopped_by).name} after step {step}; saved {path / 'last.pt'}; "
                f"continue with: rnnkit {self.task.name} train --resume {path / 'last.pt'}",
                file=sys.stderr,
            )
            return 128 + self.stopped_by
        self.run_dir.plot(self.title, f"loss (nats per {self.task.per})")
        evaluated = [r for r in self.run_dir.records if r.get("val_loss") is not None]
        chosen = [
            r for r in evaluated if r.get("is_best")
        ]  # what best.pt holds: by loss, or by accuracy (train.best_by)
        best = (
            chosen[-1]
            if chosen
            else min(evaluated, key=lambda r: r["val_loss"])
            if evaluated
            else {"val_loss": float("nan")}
        )
        clip_rate = records[-1].clip_fraction if records else 0.0
        steps = records[-1].step if records else start
        headline = self.task.headline  # the task's main metric, e.g. accuracy, at the best step
        value = best.get(f"val_{headline}") if headline else None
        shown = "" if value is None else f" ({headline} {value:{self.task.headline_format}})"
        label = (
            "best val loss"
            if self.train_config.best_by == "loss"
            else f"best val {self.train_config.best_by} at step {best.get('step')}: loss"
        )
        print(
            f"trained {steps} steps on {self.data.source}: {label} {self.task.summary(best['val_loss'])}{shown}, "
            f"clipping fired on {clip_rate:.1%} of steps"
        )
        if not self.args.dry_run:
            print(
                f"checkpoints: {path / 'best.pt'}, {path / 'last.pt'}; "
                f"metrics: {self.run_dir.metrics_path}; plot: {path / 'loss.png'}"
            )
        if not self.quiet:
            print("--- sample ---")
            print(self.preview(300, 0))
        return 0

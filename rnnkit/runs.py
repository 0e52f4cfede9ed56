"""A training run on disk: checkpoints (last.pt, best.pt), metrics.jsonl and loss.png in one directory.

Nothing the user already has is overwritten unless they ask: a directory that holds a checkpoint is
refused unless the run resumes from it or `overwrite` is set.
"""

import json
import math
from pathlib import Path

from rnnkit.checkpoint import save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.files import stale_temporaries
from rnnkit.plots import plot_losses

CHECKPOINTS = ("last.pt", "best.pt")


def read_metrics(path: str | Path, up_to_step: float = math.inf) -> list[dict]:
    """The records of a metrics.jsonl file (none if it is missing), up to a step; a line cut short by a kill is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill: it belongs to the lost steps
            continue
    return [r for r in records if isinstance(r, dict) and r.get("step", math.inf) <= up_to_step]


class RunDirectory:
    def __init__(self, path: str | Path, resume_step: int | None = None, overwrite: bool = False):
        self.path = Path(path)
        if resume_step is None and not overwrite:
            self.refuse_existing()
        if self.path.exists() and not self.path.is_dir():
            raise RnnkitError(f"{self.path}: exists and is not a directory")
        self.metrics_path = self.path / "metrics.jsonl"
        self.records = read_metrics(self.metrics_path, resume_step) if resume_step is not None else []  # later lines belong to the lost run

    def refuse_existing(self) -> None:
        """Raise if the directory already holds checkpoints this run would replace."""
        existing = [name for name in CHECKPOINTS if (self.path / name).exists()]
        if existing:
            raise RnnkitError(f"{self.path} already holds {', '.join(existing)}; pass --resume {self.path / 'last.pt'}, --overwrite, or another --out")

    def start(self) -> None:
        """Create the directory and (re)write the metrics file: called once the inputs are known good."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in CHECKPOINTS:  # a kill during an atomic save leaves its temporary file: never the checkpoint itself
            for stale in stale_temporaries(self.path, name):
                stale.unlink(missing_ok=True)
        self.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def log(self, record: dict) -> None:
        self.records.append(record)
        with self.metrics_path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    def save(self, checkpoint: dict, is_best: bool) -> None:
        save_checkpoint(self.path / "last.pt", checkpoint)
        if is_best:
            save_checkpoint(self.path / "best.pt", checkpoint)

    def plot(self, title: str = "", ylabel: str = "loss (nats per token)") -> Path:
        path = self.path / "loss.png"
        if self.records:
            plot_losses(self.records, path, title, ylabel)
        return path

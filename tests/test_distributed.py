"""Tests for rnnkit/distributed.py: sharding rows, and two gloo processes started by torchrun training
like one process with the same global batch (and resuming with a different number of processes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from rnnkit.data.batching import StreamBatches
from rnnkit.distributed import Context, ShardedBatches
from rnnkit.errors import RnnkitError

CORPUS = "the quick brown fox jumps over the lazy dog.\n" * 40
ENV = {key: value for key, value in os.environ.items() if key not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")} | {
    "OMP_NUM_THREADS": "1"
}
# dropout 0: the two layouts then compute the same sums (in another order), so the curves agree to rounding
RUN = (
    "charlm",
    "train",
    "--preset",
    "tiny",
    "--data",
    "corpus.txt",
    "--quiet",
    "--model.dropout=0",
    "--train.batch_size=4",
    "--train.lr_schedule=constant",
    "--train.max_steps=10",
    "--train.eval_interval=5",
)  # constant: a 5-step plan anneals like a 10-step one
RESUME = [flag for flag in RUN if flag not in ("--preset", "tiny")]


def rnnkit_command(processes: int, *args: str) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "rnnkit", *args]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "rnnkit",
        *args,
    ]


def run(processes: int, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        rnnkit_command(processes, *args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def assert_two_processes_train_like_one(cwd: Path, *args: str, steps: int) -> None:
    """`rnnkit ARGS` alone into single/ and as 2 gloo processes into two/: only rank 0 prints, and every step's
    loss and the final weights agree."""
    run(1, cwd, *args, "--out", "single")
    two = run(2, cwd, *args, "--out", "two")
    assert two.stdout.count(f"trained {steps} steps") == 1  # only rank 0 prints
    assert_close(torch.tensor(losses(cwd / "two")), torch.tensor(losses(cwd / "single")), rtol=1e-4, atol=1e-5)
    single, pair = weights(cwd / "single"), weights(cwd / "two")
    for name in single:
        assert_close(pair[name], single[name], rtol=1e-4, atol=1e-5)


def test_sharded_batches_split_the_streams_into_disjoint_rows():
    """Rank r of W reads rows [r·B/W, (r+1)·B/W) of every batch: together the ranks read the global batch once."""
    batches = StreamBatches(torch.arange(200), batch_size=4, seq_len=5)
    shards = [ShardedBatches(batches, Context(rank, 2)) for rank in range(2)]
    for k in range(3):
        inputs, targets = batches[k]
        assert torch.equal(torch.cat([shard[k][0] for shard in shards]), inputs)
        assert torch.equal(torch.cat([shard[k][1] for shard in shards]), targets)
    assert shards[1].batch_size == 2 and len(shards[1]) == len(batches)
    state = [torch.arange(8.0).view(4, 2)]
    assert torch.equal(shards[1].scatter_state(state)[0], state[0][2:])


def test_batch_size_must_divide_among_the_processes():
    with pytest.raises(RnnkitError, match="divisible by the number of processes"):
        ShardedBatches(StreamBatches(torch.arange(200), batch_size=3, seq_len=5), Context(0, 2))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One process for 10 steps, two gloo processes for 10 steps, and two processes for 5 then one to 10."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    run(1, root, *RUN, "--out", "single")
    two = run(2, root, *RUN, "--out", "two")
    assert two.stdout.count("trained 10 steps") == 1  # only rank 0 prints
    run(2, root, *RUN[:-2], "--train.max_steps=5", "--train.eval_interval=5", "--out", "switch")
    run(1, root, *RESUME, "--resume", "switch/last.pt", "--train.max_steps=10")
    return root


def test_two_gloo_processes_train_like_one_with_the_same_global_batch(runs):
    """DDP over 2 CPU processes (gloo): every step's global loss and the final weights match one process."""
    assert_close(torch.tensor(losses(runs / "two")), torch.tensor(losses(runs / "single")), rtol=1e-4, atol=1e-5)
    single, two = weights(runs / "single"), weights(runs / "two")
    assert single.keys() == two.keys()  # no "module." prefix from DDP
    for name in single:
        assert_close(two[name], single[name], rtol=1e-4, atol=1e-5)


def test_resume_with_a_different_number_of_processes(runs):
    """A checkpoint of 2 processes (carried state of all B streams) resumes in 1 and ends where 1 would have."""
    assert_close(torch.tensor(losses(runs / "switch")), torch.tensor(losses(runs / "single")), rtol=1e-4, atol=1e-5)
    single, switched = weights(runs / "single"), weights(runs / "switch")
    for name in single:
        assert_close(switched[name], single[name], rtol=1e-4, atol=1e-5)


def worker_of_rank(agent: subprocess.Popen, rank: int, timeout: float = 120) -> int:
    """The pid of torchrun's worker with RANK=`rank` (a child of the agent, found through /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == agent.pid and f"RANK={rank}".encode() in environ:
                return int(stat.parent.name)
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank} under torchrun (pid {agent.pid})")


def test_a_signal_to_one_process_stops_all_and_rank_0_says_so(tmp_path):
    """SIGTERM to rank 1 alone: both ranks stop after the same step, last.pt holds it, and rank 0 (the one
    that prints) reports the stop and how to resume rather than a finished run."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    flags = [flag for flag in RUN if not flag.startswith("--train.max_steps")]
    agent = subprocess.Popen(
        rnnkit_command(2, *flags, "--train.max_steps=100000", "--out", "run"),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while agent.poll() is None and time.monotonic() < deadline and logged_steps(tmp_path / "run") < 5:
            time.sleep(0.05)
        os.kill(worker_of_rank(agent, 1), signal.SIGTERM)
        stdout, stderr = agent.communicate(timeout=120)
    finally:
        agent.kill()
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr, stderr
    assert "trained" not in stdout, stdout
    steps = len(losses(tmp_path / "run"))
    assert steps >= 5 and torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == steps


def logged_steps(run_dir: Path) -> int:
    """Lines metrics.jsonl holds so far (whole ones: the last may still be being written)."""
    return (run_dir / "metrics.jsonl").read_text().count("\n") if (run_dir / "metrics.jsonl").exists() else 0


def test_a_process_that_loses_another_says_so_in_one_line(monkeypatch):
    """Under torchrun, a rank whose peer stopped gets a gloo 'Connection closed by peer': an error of the run's
    other process, not an internal error of this one."""
    from rnnkit.cli import failure_line

    lost = RuntimeError(
        "[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:2992. This is typically caused by ..."
    )
    assert failure_line(lost) is None  # alone, no peer to lose: a bug
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert failure_line(lost) == ("process 1 of 2: another process of this run stopped; its message says why", 1)


def test_when_rank_0_refuses_the_run_no_process_reports_an_internal_error(tmp_path):
    """Rank 0 refuses an --out that holds a run; rank 1 loses it (or torchrun stops it first): no process calls
    that a bug, and rank 0's one line says what to do."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    run(1, tmp_path, *RUN[:-2], "--train.max_steps=2", "--out", "held")
    result = subprocess.run(
        rnnkit_command(2, *RUN[:-2], "--train.max_steps=2", "--out", "held"),
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode != 0
    assert "rnnkit: error: held already holds" in result.stderr and "internal error" not in result.stderr, result.stderr

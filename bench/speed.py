"""Speed of every cell and path against torch.nn.RNN/LSTM/GRU (cuDNN on GPU), measured side by side in one run.

Configurations (../shared/BENCHMARKS.md, issue #6):
  charlm-2x256   training step of a char-LM: emb 64, 2×256, B=32, T=128, vocab 65, Adam (the CPU targets)
  charlm-2x512   training step of a char-LM: emb 64, 2×512, B=64, T=256, vocab 65, Adam
  charlm-gpu     the same with the gpu preset's sizes: emb 128, 3×512, B=128, T=256
  fastrnns       training step (forward + backward) of one layer, I = H = 512, B = 64, T = 100
  infer-b1/4/16  forward only (no grad) of that layer at B = 1, 4, 16

In each round every candidate (cell × path) is timed right beside torch.nn.LSTM (and, for a standard cell,
its own torch.nn module), in alternating order, so drift in the machine hits both alike; a ratio is taken
from each such pair and the median (and range) over rounds reported. Compilation happens in the warm-up and
is reported apart. Ratios are step time / torch.nn.LSTM's step time (lower is faster) and, for the standard
cells, throughput / their own torch.nn module's throughput. Prints a table and writes JSON:

    python bench/speed.py --configs charlm-2x256,fastrnns,infer-b1,infer-b4,infer-b16 \\
        --json bench/results-speed-cpu.json
    python bench/speed.py --device cuda --configs all --json bench/results-speed-h100.json
"""

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell, ConditionedRNNCell, LSTMState
from rnnkit.kernels import compiled
from rnnkit.models.core import make_core as rnnkit_core
from rnnkit.recurrent import Recurrent, Stacked
from rnnkit.tasks.charlm import ModelConfig

CONFIGS = {
    "charlm-2x256": dict(kind="charlm", E=64, H=256, L=2, B=32, T=128),
    "charlm-2x512": dict(kind="charlm", E=64, H=512, L=2, B=64, T=256),
    "charlm-gpu": dict(kind="charlm", E=128, H=512, L=3, B=128, T=256),  # the gpu preset's sizes
    "fastrnns": dict(kind="layer", E=512, H=512, L=1, B=64, T=100),
    "infer-b1": dict(kind="inference", E=512, H=512, L=1, B=1, T=100),
    "infer-b4": dict(kind="inference", E=512, H=512, L=1, B=4, T=100),
    "infer-b16": dict(kind="inference", E=512, H=512, L=1, B=16, T=100),
}
VOCAB = 65
STANDARD = {"rnn": "torch.nn.RNN", "lstm": "torch.nn.LSTM", "gru": "torch.nn.GRU"}
ANCHOR = "torch.nn.LSTM"  # every ratio's denominator
MIN_SECONDS = 0.2  # the shortest timing: a 10 ms inference step is timed over many steps, not two


class UserLSTMCell(Cell):
    """An LSTM as a user would write it from the notes in plain PyTorch, with nn.Linear layers: rnnkit knows
    nothing about it beyond the Cell contract (init_state, check_step, forward(x, state) -> state)."""

    State = LSTMState

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.input_gates = nn.Linear(input_size, 4 * hidden_size)
        self.hidden_gates = nn.Linear(hidden_size, 4 * hidden_size, bias=False)

    def forward(self, x: Tensor, state: LSTMState) -> LSTMState:
        i, f, g, o = (self.input_gates(x) + self.hidden_gates(state.h)).chunk(4, dim=1)  # each (B, H)
        c = torch.sigmoid(f) * state.c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
        h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
        return LSTMState(h, c)


def make_core(candidate: str, config: dict, device) -> nn.Module:
    """candidate: 'torch.nn.LSTM' etc., or 'CELL/PATH' with PATH one of fused, triton, compiled, reference, or
    compiled-unmerged (the compiled path without rnnkit/kernels/products.py's pass, to measure what it buys).

    Built-in cells come from rnnkit's own model builder; 'gru' is the reset-after form (torch's and cuDNN's),
    'gru-reset-before' the notes' form, 'user-lstm' the UserLSTMCell above, 'conditioned' the tagger's
    ConditionedRNNCell (h_t = g(W_x x_t + W_y y_{t-1} + W_h h_{t-1} + b))."""
    E, H, L = config["E"], config["H"], config["L"]
    if candidate.startswith("torch.nn."):
        return getattr(nn, candidate.removeprefix("torch.nn."))(E, H, L, batch_first=True).to(device)
    cell, path = candidate.split("/")
    path = path.removesuffix("-unmerged")
    if cell == "user-lstm":
        return Stacked([Recurrent(UserLSTMCell(E if i == 0 else H, H), path) for i in range(L)]).to(device)
    if (
        cell == "conditioned"
    ):  # the tagger's cell, its input split into features and an eighth for the previous label's embedding
        sizes = [E if i == 0 else H for i in range(L)]
        return Stacked([Recurrent(ConditionedRNNCell(D - D // 8, D // 8, H), path) for D in sizes]).to(device)
    model = ModelConfig(
        cell=cell.removesuffix("-reset-before"),
        reset_after=not cell.endswith("-reset-before"),
        hidden_size=H,
        num_layers=L,
        dropout=0.0,
        implementation=path,
    )
    return rnnkit_core(model, E).to(device)


class CharLM(nn.Module):
    def __init__(self, core: nn.Module, config: dict):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, config["E"])
        self.core = core
        self.decoder = nn.Linear(config["H"], VOCAB)

    def forward(self, ids: Tensor) -> Tensor:
        return self.decoder(self.core(self.embedding(ids))[0])  # (B, T, V)


def make_step(candidate: str, config: dict, device):
    """A function running one timed unit of work for this candidate and configuration."""
    step = build_step(candidate, config, device)
    if not candidate.endswith("-unmerged"):
        return step

    def unmerged_step():  # compiled.MERGE_PRODUCTS is read when the cell's loop first compiles (the warm-up)
        compiled.MERGE_PRODUCTS = False
        try:
            step()
        finally:
            compiled.MERGE_PRODUCTS = True

    return unmerged_step


def build_step(candidate: str, config: dict, device):
    """The step itself; make_step wraps it for the compiled-unmerged candidates."""
    B, T = config["B"], config["T"]
    generator = torch.Generator().manual_seed(0)
    core = make_core(candidate, config, device)
    if config["kind"] == "charlm":
        model = CharLM(core, config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), 2e-3)
        ids = torch.randint(0, VOCAB, (B, T), generator=generator).to(device)
        targets = torch.randint(0, VOCAB, (B, T), generator=generator).to(device)

        def step():
            loss = F.cross_entropy(model(ids).reshape(-1, VOCAB), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step
    inputs = torch.randn(B, T, config["E"], generator=generator).to(device)
    if config["kind"] == "layer":

        def step():
            core.zero_grad(set_to_none=True)
            core(inputs)[0].square().mean().backward()

        return step

    def step():
        with torch.no_grad():
            core(inputs)

    return step


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def candidates(cells: list[str], paths: list[str], reference_cells: list[str]) -> list[str]:
    names = [ANCHOR] + [STANDARD[c] for c in ("rnn", "gru") if c in cells]
    for cell in cells:
        for path in paths:
            if path == "fused" and cell not in STANDARD:
                continue
            names.append(f"{cell}/{path}")
    return names + [f"{cell}/reference" for cell in reference_cells if f"{cell}/reference" not in names]


def measure(config_name: str, names: list[str], device, rounds: int, steps: int) -> dict:
    config = CONFIGS[config_name]
    stepper, warmup = {}, {}
    for name in names:
        step = make_step(name, config, device)
        started = time.perf_counter()
        step(), step()  # warm-up: compilation, allocator, oneDNN/cuDNN plans
        synchronize(device)
        warmup[name] = time.perf_counter() - started
        stepper[name] = step

    def timed(name: str) -> float:
        """Seconds per step: `steps` steps at a time until MIN_SECONDS have passed."""
        synchronize(device)
        started, count = time.perf_counter(), 0
        while True:
            for _ in range(steps):
                stepper[name]()
            count += steps
            synchronize(device)
            elapsed = time.perf_counter() - started
            if elapsed >= MIN_SECONDS:
                return elapsed / count

    # Each candidate is timed right beside the anchor (and its own torch.nn module), order flipped every
    # round: a ratio compares times a second or two apart, so the drift of a shared machine (which moves
    # by tens of percent over a minute here) mostly cancels, where timing the anchor once per round set it
    # against candidates measured a whole round later.
    seconds = {name: [] for name in names}
    ratios = {name: [] for name in names}
    own_ratios = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names:
            own = STANDARD.get(name.split("/")[0]) if "/" in name else None
            group = [ANCHOR] + [member for member in (own, name) if member in stepper and member != ANCHOR]
            times = {member: timed(member) for member in (group if round_index % 2 == 0 else group[::-1])}
            seconds[name].append(times[name])
            ratios[name].append(times[name] / times[ANCHOR])
            if own in times:
                own_ratios[name].append(times[own] / times[name])
    rows = []
    for name in names:
        median = statistics.median(seconds[name])
        row = {
            "config": config_name,
            "candidate": name,
            "ms": 1e3 * median,
            "tokens_per_s": config["B"] * config["T"] / median,
            "vs_lstm_time": statistics.median(ratios[name]),
            "vs_lstm_time_range": [min(ratios[name]), max(ratios[name])],
            "warmup_s": warmup[name],
            "seconds": seconds[name],
        }
        if own_ratios[name]:
            row["vs_own_throughput"] = statistics.median(own_ratios[name])
        rows.append(row)
    return {"config": config_name, **config, "rows": rows}


def markdown(results: dict) -> str:
    """The README's table: one column per configuration, step time ÷ torch.nn.LSTM's (own torch.nn module's
    throughput ratio in brackets)."""
    configs = results["configs"]
    names = [row["candidate"] for row in configs[0]["rows"]]
    lines = [
        f"{results['machine']}, torch {results['torch']}; cells: step time ÷ torch.nn.LSTM's step time in the same "
        "round, median (range) over the rounds; lower is faster. [Standard cells on the fused and triton paths: "
        "throughput × their own torch.nn module's.]",
        "",
        "| candidate | " + " | ".join(config["config"] for config in configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    for name in names:
        cells = []
        for config in configs:
            row = next(r for r in config["rows"] if r["candidate"] == name)
            own = (
                f" [{row['vs_own_throughput']:.2f}]"
                if "vs_own_throughput" in row and name.endswith(("/fused", "/triton"))
                else ""
            )
            low, high = row["vs_lstm_time_range"]
            cells.append(f"{row['vs_lstm_time']:.2f} ({low:.2f}–{high:.2f}){own}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    anchors = ", ".join(
        f"{c['config']} {next(r for r in c['rows'] if r['candidate'] == ANCHOR)['ms']:.1f} ms" for c in configs
    )
    lines += ["", f"torch.nn.LSTM's step: {anchors}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default="charlm-2x256", help=f"comma-separated, or 'all': {', '.join(CONFIGS)}")
    parser.add_argument("--cells", default="rnn,lstm,gru,gru-reset-before,mut1,mut2,mut3,user-lstm")
    parser.add_argument(
        "--paths",
        default="fused,triton,compiled",
        help="of fused, triton (CUDA only: left out on the CPU), compiled, compiled-unmerged, reference",
    )
    parser.add_argument(
        "--compile-mode",
        default=None,
        help="torch.compile's mode for the compiled path (e.g. reduce-overhead: CUDA graphs)",
    )
    parser.add_argument(
        "--reference-cells", default="lstm,user-lstm", help="cells also timed on the plain reference loop"
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--steps",
        type=int,
        default=2,
        help="timed steps per round per candidate (more for steps shorter than MIN_SECONDS)",
    )
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--markdown", help="only print the README's table from this JSON file (no measuring)")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown) as file:
            print(markdown(json.load(file)))
        return
    configs = list(CONFIGS) if args.configs == "all" else args.configs.split(",")
    paths = [path for path in args.paths.split(",") if path != "triton" or torch.device(args.device).type == "cuda"]
    names = candidates(args.cells.split(","), paths, [c for c in args.reference_cells.split(",") if c])
    compiled.MODE = args.compile_mode
    machine = (
        torch.cuda.get_device_name()
        if torch.device(args.device).type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    results = {"torch": torch.__version__, "device": args.device, "machine": machine, "configs": []}
    print(f"torch {torch.__version__} on {machine}")
    for config_name in configs:
        result = measure(config_name, names, args.device, args.rounds, args.steps)
        results["configs"].append(result)
        print(f"\n{config_name}: {CONFIGS[config_name]}")
        print(f"{'candidate':<26}{'ms':>9}{'tok/s':>10}{'÷ nn.LSTM time':>16}{'× own nn thru':>15}{'warm-up s':>11}")
        for row in result["rows"]:
            own = f"{row['vs_own_throughput']:.3f}" if "vs_own_throughput" in row else ""
            print(
                f"{row['candidate']:<26}{row['ms']:9.1f}{row['tokens_per_s']:10,.0f}{row['vs_lstm_time']:16.3f}{own:>15}{row['warmup_s']:11.1f}"
            )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()

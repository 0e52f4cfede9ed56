"""What the side-by-side benches share: timing ways of doing one thing in alternating rounds, and the JSON they write.

Each round runs every way once (`repeat` calls each), and the order flips every round, so a machine that
speeds up or slows down during the run (another process, a clock) weighs on all of them alike.
"""

import json
import time
from collections.abc import Callable


def alternate(ways: dict[str, Callable[[], object]], rounds: int, repeat: int = 1) -> dict[str, list[float]]:
    """{name: seconds per call, one figure per round}."""
    seconds = {name: [] for name in ways}
    for round_ in range(rounds):
        for name in list(ways) if round_ % 2 == 0 else list(ways)[::-1]:
            started = time.perf_counter()
            for _ in range(repeat):
                ways[name]()
            seconds[name].append((time.perf_counter() - started) / repeat)
    return seconds


def write_json(path: str | None, config: dict, result: dict) -> None:
    if path:
        with open(path, "w") as file:
            json.dump({"config": config, **result}, file, indent=1)

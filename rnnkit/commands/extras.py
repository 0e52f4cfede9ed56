"""Commands a task has besides train, eval and its prediction verb, declared by task name: rnnkit/cli.py's add_task
adds `rnnkit TASK NAME` for each entry of EXTRA_COMMANDS[task.name], and a task without an entry has none.

A table rather than an attribute looked up on the task or its verb module: a misspelt name here is a key that
names no task, which tests/test_minimal_pairs.py catches, never a command silently missing.
"""

from dataclasses import dataclass

from rnnkit.commands.verbs.lm import NextOptions, PairsOptions, ScoreOptions


@dataclass(frozen=True)
class Extra:
    """One further command: its help line, its own settings (each field a flag), and the function that runs it."""

    help: str
    Options: type  # a frozen dataclass of rnnkit.config.option fields: --prime, --out, ...
    run: str  # "module:function" under rnnkit/commands/, imported only when the command runs
    reads_model: bool = True  # CHECKPOINT, --device and --dry-run (an untrained tiny model) as prediction takes them
    writes: bool = False  # takes --overwrite
    dry_run: str = ""  # what --dry-run does, where the command reads no model


LANGUAGE_MODEL = {
    "next": Extra(
        "the probability and rank of chosen next tokens after a prime (is or are?), and the most likely ones",
        NextOptions,
        "lm:next_command",
    ),
    "score": Extra(
        "minimal pairs: how often the model finds the acceptable sentence more likely, by construction",
        ScoreOptions,
        "lm:score_command",
        writes=True,
    ),
}
PAIRS = Extra(
    "generate subject-verb agreement minimal pairs in Penn Treebank's words (Marvin & Linzen's constructions) as TSV",
    PairsOptions,
    "lm:pairs_command",
    reads_model=False,
    writes=True,
    dry_run="two pairs of each construction on standard output; nothing written",
)

EXTRA_COMMANDS: dict[str, dict[str, Extra]] = {
    "charlm": LANGUAGE_MODEL,
    "wordlm": {**LANGUAGE_MODEL, "pairs": PAIRS},
}

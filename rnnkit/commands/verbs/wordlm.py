"""`rnnkit wordlm sample`."""

from rnnkit.commands.verbs.lm import WordOptions as Options
from rnnkit.commands.verbs.lm import dry_run, run

__all__ = ["Options", "dry_run", "run"]

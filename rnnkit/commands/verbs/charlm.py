"""`rnnkit charlm sample`."""

from rnnkit.commands.verbs.lm import CharacterOptions as Options
from rnnkit.commands.verbs.lm import dry_run, run

__all__ = ["Options", "dry_run", "run"]

"""Each task's prediction command (`rnnkit charlm sample`, `rnnkit tagger tag`, ...) as the CLI runs it.

A module here, named as its task, is the command line's side of the task's `predict`: where the inputs
come from and where the results go. It has

    Options                       a frozen dataclass of the command's own flags (--input, --out, --format, ...)
                                  besides the task's Predict settings; each field an rnnkit.config.option
    dry_run(options, scratch)     -> the options --dry-run uses (it may write generated inputs into scratch)
    run(trained, settings, options, out)
                                  reads the inputs, calls trained.task.predict (trained: the rnnkit.trained
                                  Trained of the checkpoint, with its model, vocabularies and config), writes
                                  each result to `out` (standard output) as it comes, and any pictures where
                                  options say

Only this package, rnnkit/cli.py and rnnkit/commands/ print, write files and name flags.
"""

import importlib
from types import ModuleType


def verb_module(task_name: str) -> ModuleType:
    """The prediction command of the task named `task_name`."""
    return importlib.import_module(f"rnnkit.commands.verbs.{task_name}")

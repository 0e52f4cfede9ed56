"""`python -m rnnkit ...` is the `rnnkit` command."""

from rnnkit.cli import main

raise SystemExit(main())

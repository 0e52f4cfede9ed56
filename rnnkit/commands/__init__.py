"""The CLI's commands, one module per task; with rnnkit/cli.py, the only code that prints."""

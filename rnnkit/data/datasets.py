"""The tiny built-in data that every task's `tiny` preset, --dry-run and the tests use: shipped inside
the package, so they run on a fresh clone with no download."""

from rnnkit.data.text import bundled_text

TINY_CHARS = 20_000  # the start of Tiny Shakespeare (public domain): enough for a few batches of a tiny preset


def tiny_text() -> str:
    return bundled_text("shakespeare")[:TINY_CHARS]

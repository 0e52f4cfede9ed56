"""A corpus directory's train, dev (or valid, val) and test files, found by name.

A file belongs to a split when its name holds the split's word on its own: `train.tsv`, `dev.txt`,
`en_ewt-ud-train.conllu.gz`, `ptb.valid.txt`, `val.de.gz`, `wiki.test.tokens` (but not `retrain.txt`). Of several
files for one split, the shortest name is taken (PTB's folder also holds `ptb.char.train.txt`); two
of that length are an error naming both.
"""

import re
from pathlib import Path

from rnnkit.errors import RnnkitError

SPLIT_WORDS = {"train": ("train",), "dev": ("dev", "valid", "val"), "test": ("test",)}


def names_split(name: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"(^|[^a-z]){word}([^a-z]|$)", name.lower()) for word in words)


def split_files(
    directory: Path, needed: tuple[str, ...] = ("train", "dev"), suffixes: tuple[str, ...] = ()
) -> dict[str, Path]:
    """{"train": path, "dev": path, "test": path} for the splits present (only files ending in one of
    `suffixes`, when given); those `needed` are required."""
    directory, found = Path(directory), {}
    files = [p for p in directory.iterdir() if p.is_file() and (not suffixes or p.name.endswith(suffixes))]
    for split, words in SPLIT_WORDS.items():
        matches = [p for p in files if names_split(p.name, words)]
        if not matches:
            continue
        shortest = sorted(p for p in matches if len(p.name) == min(len(m.name) for m in matches))
        if len(shortest) > 1:
            raise RnnkitError(f"{directory}: several {split} files ({', '.join(p.name for p in shortest)}); keep one")
        found[split] = shortest[0]
    if any(split not in found for split in needed):
        raise RnnkitError(
            f"{directory}: expected {' and '.join(f'a {split} file' for split in needed)} in it (named like train.tsv, "
            f"ptb.valid.txt or en_ewt-ud-dev.conllu{'; ending in ' + ', '.join(suffixes) if suffixes else ''}), "
            f"found {', '.join(found) or 'none of them'}"
        )
    return found


def scored_files(path: str) -> dict[str, str]:
    """What `eval --data PATH` scores: {"": path} for a file, {"dev": ..., "test": ...} for a directory."""
    if not Path(path).is_dir():
        return {"": path}
    files = {split: str(file) for split, file in split_files(Path(path), needed=()).items() if split != "train"}
    if not files:
        raise RnnkitError(f"{path}: no dev, valid or test file in the directory to evaluate on")
    return files

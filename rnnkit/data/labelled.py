"""Texts with one label each, for the many-to-one tasks: tables (TSV/CSV) and sentiment treebank trees.

    table   a header (or none), a text column and a label column, by name or 0-based number:
                sentence<TAB>label            (GLUE SST-2)
                it 's a charming journey .<TAB>1
    trees   one PTB-bracketed tree per line, every node labelled (the Stanford Sentiment Treebank):
                (3 (2 It) (4 (2 's) (3 lovely)))      root label 3, words It 's lovely
            each subtree is a labelled phrase as well, which training may use as extra examples.

Label schemes turn the treebank's 0-4 into the classes a task asks for: sst5 keeps five, sst3 maps
0,1 -> negative, 2 -> neutral, 3,4 -> positive, sst2 maps 0,1 -> negative, 3,4 -> positive and drops 2
(GLUE's SST-2 does the same); for a table, sst2 names 0 and 1 negative and positive.
Every problem is an RnnkitError naming the file and line.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import MAX_LINE_CHARS, decoded_blocks, text_lines
from rnnkit.errors import RnnkitError

SCHEMES: dict[str, dict[str, str]] = {
    "sst5": {"0": "very negative", "1": "negative", "2": "neutral", "3": "positive", "4": "very positive"},
    "sst3": {"0": "negative", "1": "negative", "2": "neutral", "3": "positive", "4": "positive"},
    "sst2": {"0": "negative", "1": "negative", "3": "positive", "4": "positive"},  # 2 (neutral) dropped
}
TABLE_SCHEMES = {"sst2": {"0": "negative", "1": "positive"}}  # GLUE's SST-2 table already holds 0/1


@dataclass(frozen=True)
class Example:
    words: list[str]
    label: str
    where: str  # "file:line", for messages


def map_label(label: str, scheme: str, where: str, table: bool = False) -> str | None:
    """The scheme's class for a raw label; None when the scheme drops it; an error when it has no place."""
    if not scheme:
        return label
    mapping = (TABLE_SCHEMES if table else SCHEMES).get(scheme, SCHEMES.get(scheme))
    if mapping is None:
        raise RnnkitError(f"unknown label scheme {scheme!r}; choose sst2, sst3, sst5 or empty (labels as written)")
    if label not in mapping:
        if scheme == "sst2" and label == "2" and not table:
            return None
        raise RnnkitError(
            f"{where}: label {label!r} is not one of the {scheme} scheme's raw labels ({', '.join(sorted(mapping))})"
        )
    return mapping[label]


def column_index(column: str, header: list[str] | None, path: str) -> int:
    """A column named in the header, or a 0-based number."""
    if column.isascii() and column.isdigit():
        return int(column)
    if header is None:
        raise RnnkitError(
            f"{path}: column {column!r} is a name, but the file has no header (name columns by number: 0, 1, ...)"
        )
    if column not in header:
        raise RnnkitError(f"{path}: no column {column!r} in the header (it has {', '.join(map(repr, header))})")
    return header.index(column)


def read_table(
    path: str | Path,
    text_column: str = "sentence",
    label_column: str = "label",
    header: bool = True,
    lowercase: bool = True,
    scheme: str = "",
) -> list[Example]:
    """Rows of a TSV (tab-separated, no quoting, as GLUE's) or a CSV (.csv: comma-separated, quoted fields)."""
    path = str(path)
    tsv = not path.removesuffix(".gz").endswith(".csv")
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS))  # a field may be as long as a line
    reader = csv.reader(
        (line + "\n" for line in text_lines(path)),  # without a byte-order mark: no part of the first column's name
        delimiter="\t" if tsv else ",",
        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
    )
    examples, names = [], None
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if header and names is None:
                names = [name.strip() for name in row]
                text_at, label_at = column_index(text_column, names, path), column_index(label_column, names, path)
                continue
            if names is None and not header:
                names = []
                text_at, label_at = column_index(text_column, None, path), column_index(label_column, None, path)
            if not row or not "".join(row).strip():
                raise RnnkitError(f"{where}: an empty line (every line needs a text and a label)")
            if max(text_at, label_at) >= len(row):
                raise RnnkitError(
                    f"{where}: {len(row)} column(s), but the text is column {text_at} and the label column {label_at}"
                )
            words = (row[text_at].lower() if lowercase else row[text_at]).split()
            if not words:
                raise RnnkitError(f"{where}: the text is empty")
            label = map_label(row[label_at].strip(), scheme, where, table=True)
            if not label:
                raise RnnkitError(f"{where}: the label is empty")
            examples.append(Example(words, label, where))
    except csv.Error as error:
        raise RnnkitError(f"{path}:{reader.line_num}: not a valid {'TSV' if tsv else 'CSV'} line ({error})") from None
    if not examples:
        raise RnnkitError(f"{path}: no rows{' after the header' if header else ''}")
    return examples


TREE_TOKENS = re.compile(r"\(|\)|[^\s()]+")


def parse_tree(line: str, where: str) -> list[tuple[str, list[str]]]:
    """One bracketed tree -> every node's (label, words), the root's first, then its subtrees in order.
    Read with an explicit stack, so a deeply nested tree is no recursion limit."""
    tokens = TREE_TOKENS.findall(line)
    if not tokens or tokens[0] != "(":
        raise RnnkitError(
            f"{where}: expected '(' to open a node, found {tokens[0] if tokens else 'the end of the line'!r}"
        )
    phrases: list[tuple[str, list[str]]] = []
    open_nodes: list[int] = []  # the indices in `phrases` of the nodes not yet closed, innermost last
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token == "(":
            if position + 1 >= len(tokens) or tokens[position + 1] in "()":
                raise RnnkitError(f"{where}: a node must start with its label, as in (3 word)")
            open_nodes.append(len(phrases))
            phrases.append((tokens[position + 1], []))
            position += 2
            continue
        if not open_nodes:
            raise RnnkitError(f"{where}: text after the tree ends: {' '.join(tokens[position : position + 5])!r}")
        if token == ")":
            label, words = phrases[open_nodes.pop()]
            if not words:
                raise RnnkitError(f"{where}: a node with label {label!r} has no words")
            if open_nodes:
                phrases[open_nodes[-1]][1].extend(words)  # a node's words are its children's, in order
        else:
            phrases[open_nodes[-1]][1].append(token)
        position += 1
        if not open_nodes and position < len(tokens):
            raise RnnkitError(f"{where}: text after the tree ends: {' '.join(tokens[position : position + 5])!r}")
    if open_nodes:
        raise RnnkitError(f"{where}: unbalanced brackets (a node is never closed)")
    return phrases


def read_trees(
    path: str | Path, scheme: str = "sst5", phrases: bool = False, lowercase: bool = True, unique: bool = False
) -> list[Example]:
    """One example per tree (its root), or one per labelled phrase too with `phrases` (the roots first
    within each tree); nodes the scheme drops (sst2's neutral) are left out. `unique`: each labelled text
    once, where it first occurs (as the treebank's phrase dictionary holds them: "the" is one example, not
    thousands)."""
    path = str(path)
    examples, seen = [], set()
    # "\n" only: a tree may hold other line-breaking characters
    for number, line in enumerate(text_lines(path), start=1):
        where = f"{path}:{number}"
        if not line.strip():
            raise RnnkitError(f"{where}: an empty line (the file must hold one tree per line)")
        nodes = parse_tree(line, where)
        for label, words in nodes if phrases else nodes[:1]:
            mapped = map_label(label, scheme, where)
            words = [w.lower() for w in words] if lowercase else words
            if mapped is None or (unique and (key := (tuple(words), mapped)) in seen):
                continue
            if unique:
                seen.add(key)
            examples.append(Example(words, mapped, where))
    if not examples:
        raise RnnkitError(f"{path}: no trees with a label the {scheme} scheme keeps")
    return examples


def looks_like_trees(path: str | Path) -> bool:
    """Does the file start with "(" (a treebank) rather than a table row? Reads only its first block."""
    first = next(decoded_blocks(Path(path)), "")
    return first.lstrip().startswith("(")

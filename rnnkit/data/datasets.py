"""The tiny built-in data that every task's `tiny` preset, --dry-run and the tests use: shipped inside
the package or generated, so they run on a fresh clone with no download."""

import random

import torch

from rnnkit.data.text import bundled_text

TINY_CHARS = 20_000  # the start of Tiny Shakespeare (public domain): enough for a few batches of a tiny preset


def tiny_text() -> str:
    return bundled_text("shakespeare")[:TINY_CHARS]


NOUNS = ("film", "movie", "plot", "cast", "script", "story", "ending", "score")
GOOD = ("good", "great", "charming", "moving", "funny", "wonderful", "smart", "fresh")
BAD = ("bad", "dull", "boring", "awful", "tedious", "flat", "silly", "stale")
INTENSIFIERS = ("", "very", "really", "quite", "rather")


def tiny_sentiment(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """`count` generated (sentence, "positive" | "negative") pairs whose label needs word order: a "not"
    flips the adjective after it, and after "but" the second clause decides. Licence-free, learnable in seconds."""
    chooser = random.Random(seed)
    pairs = []
    for _ in range(count):
        positive = chooser.random() < 0.5
        noun, other = chooser.sample(NOUNS, 2)
        pattern = chooser.randrange(3)
        if pattern == 0:  # the film was very good
            adjective = chooser.choice(GOOD if positive else BAD)
            sentence = f"the {noun} was {chooser.choice(INTENSIFIERS)} {adjective}"
        elif pattern == 1:  # the film was not good: negative
            adjective = chooser.choice(BAD if positive else GOOD)
            sentence = f"the {noun} was not {adjective}"
        else:  # a dull plot , but the cast was great: positive
            first, second = chooser.choice(BAD if positive else GOOD), chooser.choice(GOOD if positive else BAD)
            sentence = f"a {first} {noun} , but the {other} was {second}"
        pairs.append((" ".join(sentence.split()), "positive" if positive else "negative"))
    return pairs


def tiny_images(count: int, seed: int = 0, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` generated size×size uint8 images of 10 classes and their labels: class k < 5 is a horizontal bar
    in band k, class k ≥ 5 a vertical bar in band k − 5, shifted, of varying thickness, over faint noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (count,), generator=generator)  # (N,)
    images = torch.randint(0, 40, (count, size, size), generator=generator)  # (N, Y, X): background noise
    band = size // 5
    for n, label in enumerate(labels.tolist()):
        start = (label % 5) * band + int(torch.randint(0, max(1, band - 3), (1,), generator=generator))
        thickness = 2 + int(torch.randint(0, 2, (1,), generator=generator))
        if label < 5:
            images[n, start : start + thickness, 2 : size - 2] = 255
        else:
            images[n, 2 : size - 2, start : start + thickness] = 255
    return images.to(torch.uint8), labels


TAG_WORDS = {
    "DET": ("the", "a", "this"),
    "ADJ": ("big", "small", "red", "old"),
    "NOUN": ("dog", "cat", "book", "run", "film"),
    "PRON": ("they", "we", "you"),
    "VERB": ("see", "like", "book", "run"),
    "VERB3": ("sees", "likes", "books", "runs"),
}


def tiny_tagged(count: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """`count` generated (words, UPOS tags) sentences where "book" and "run" are NOUN after a determiner or
    adjective and VERB after a pronoun: a tagger must read the context. Licence-free, learnable in seconds."""
    chooser = random.Random(seed)
    pick = lambda tag: chooser.choice(TAG_WORDS[tag])  # noqa: E731
    sentences = []
    for _ in range(count):
        if chooser.random() < 0.5:  # the big dog sees a cat .
            pairs = [
                (pick("DET"), "DET"),
                *([(pick("ADJ"), "ADJ")] if chooser.random() < 0.5 else []),
                (pick("NOUN"), "NOUN"),
                (pick("VERB3"), "VERB"),
            ]
        else:  # they book the old film .
            pairs = [(pick("PRON"), "PRON"), (pick("VERB"), "VERB")]
        pairs += [
            (pick("DET"), "DET"),
            *([(pick("ADJ"), "ADJ")] if chooser.random() < 0.5 else []),
            (pick("NOUN"), "NOUN"),
            (".", "PUNCT"),
        ]
        sentences.append(([w for w, _ in pairs], [t for _, t in pairs]))
    return sentences


TINY_LEXICON = {
    "eins": "one",
    "zwei": "two",
    "drei": "three",
    "vier": "four",
    "fünf": "five",
    "rot": "red",
    "blau": "blue",
    "grün": "green",
    "hund": "dog",
    "katze": "cat",
    "haus": "house",
    "baum": "tree",
}


def tiny_parallel(count: int, seed: int = 0, shortest: int = 2, longest: int = 7) -> list[tuple[str, str]]:
    """`count` generated (source, target) sentence pairs: each source word translated by a fixed lexicon and
    the order reversed ("eins hund rot" -> "red dog one"), so target lengths and orders differ from the
    source's and the decoder must attend. Licence-free, learnable in a minute."""
    chooser = random.Random(seed)
    words = sorted(TINY_LEXICON)
    pairs = []
    for _ in range(count):
        source = [chooser.choice(words) for _ in range(chooser.randint(shortest, longest))]
        pairs.append((" ".join(source), " ".join(TINY_LEXICON[w] for w in reversed(source))))
    return pairs

"""Subject-verb agreement minimal pairs from templates (Marvin & Linzen 2018, "Targeted syntactic evaluation of
language models"), in Penn Treebank's words.

Each pair is two sentences that differ in one word, the verb that must agree with the subject; the words
between them (an attractor noun of the other number, a relative clause) test whether a model tracks syntax or
only the nearest noun (the CS224n notes' "the writer of the books is / are"):

    simple                  the author works / the author work
    prepositional_phrase    the author near the senators works / ... work
    subject_relative        the author that likes the senators works / ... work
    object_relative         the author that the senators like works / ... work
    sentential_complement   the senators said the author works / ... work
    vp_coordination         the author writes and works / the author writes and work

Sentences look like PTB's text as Mikolov preprocessed it: lower case, no punctuation, one sentence a line.
Every word below occurs in PTB's training text (tests/test_minimal_pairs.py checks it when the data is there);
the lists ship here, so generating reads no corpus. The same seed gives the same pairs, and each construction
draws from its own generator, so asking for fewer constructions leaves the others' pairs as they were. Pairs
are drawn with replacement: a large count repeats pairs of the small templates (simple has 540 distinct).
"""

import random

from rnnkit.data.minimal_pairs import MinimalPair
from rnnkit.errors import ArgumentError

# (singular, plural): people, so every verb below fits every noun
NOUNS = (
    ("author", "authors"),
    ("executive", "executives"),
    ("analyst", "analysts"),
    ("manager", "managers"),
    ("investor", "investors"),
    ("official", "officials"),
    ("director", "directors"),
    ("lawyer", "lawyers"),
    ("banker", "bankers"),
    ("trader", "traders"),
    ("worker", "workers"),
    ("economist", "economists"),
    ("broker", "brokers"),
    ("farmer", "farmers"),
    ("teacher", "teachers"),
    ("doctor", "doctors"),
    ("student", "students"),
    ("customer", "customers"),
    ("dealer", "dealers"),
    ("senator", "senators"),
    ("pilot", "pilots"),
    ("officer", "officers"),
    ("consultant", "consultants"),
    ("judge", "judges"),
    ("partner", "partners"),
    ("reporter", "reporters"),
    ("writer", "writers"),
)
# (third person singular, plural) present tense; none is also a common noun (talks, votes)
INTRANSITIVE = (
    ("works", "work"),
    ("agrees", "agree"),
    ("worries", "worry"),
    ("wins", "win"),
    ("complains", "complain"),
    ("speaks", "speak"),
    ("writes", "write"),
    ("succeeds", "succeed"),
    ("fails", "fail"),
    ("leaves", "leave"),
)
TRANSITIVE = (
    ("likes", "like"),
    ("knows", "know"),
    ("meets", "meet"),
    ("supports", "support"),
    ("trusts", "trust"),
    ("sees", "see"),
    ("helps", "help"),
    ("blames", "blame"),
    ("fears", "fear"),
    ("watches", "watch"),
    ("represents", "represent"),
    ("opposes", "oppose"),
    ("joins", "join"),
    ("advises", "advise"),
)
PREPOSITIONS = ("near", "behind", "next to", "in front of", "with")
COMPLEMENT_VERBS = (
    "said",
    "thought",
    "knew",
    "believed",
    "claimed",
    "argued",
    "reported",
    "noted",
)  # past: no agreement
FUNCTION_WORDS = ("the", "that", "and")

CONSTRUCTIONS = (
    "simple",
    "prepositional_phrase",
    "subject_relative",
    "object_relative",
    "sentential_complement",
    "vp_coordination",
)


def vocabulary() -> set[str]:
    """Every word a generated sentence can hold."""
    pairs = (*NOUNS, *INTRANSITIVE, *TRANSITIVE)
    phrases = (*PREPOSITIONS, *COMPLEMENT_VERBS, *FUNCTION_WORDS)
    return {word for pair in pairs for word in pair} | {word for phrase in phrases for word in phrase.split()}


def pair_of(construction: str, chooser: random.Random, plural: bool) -> tuple[str, tuple[str, str]]:
    """One pair of a construction: (the words before the verb, the verb's (singular, plural)). The subject is
    plural when `plural`; the attractor is another noun whose number is drawn, so half the attractors match the
    subject's number and half do not."""
    subject_noun = chooser.choice(NOUNS)
    attractor_noun = chooser.choice([noun for noun in NOUNS if noun != subject_noun])
    attractor_plural = chooser.random() < 0.5
    subject, attractor = f"the {subject_noun[plural]}", f"the {attractor_noun[attractor_plural]}"
    verb = chooser.choice(INTRANSITIVE)
    if construction == "simple":  # the author works
        return subject, verb
    if construction == "prepositional_phrase":  # the author near the senators works
        return f"{subject} {chooser.choice(PREPOSITIONS)} {attractor}", verb
    if construction == "subject_relative":  # the author that likes the senators works
        return f"{subject} that {chooser.choice(TRANSITIVE)[plural]} {attractor}", verb
    if construction == "object_relative":  # the author that the senators like works: "like" agrees with senators
        return f"{subject} that {attractor} {chooser.choice(TRANSITIVE)[attractor_plural]}", verb
    if construction == "sentential_complement":  # the senators said the author works
        return f"{attractor} {chooser.choice(COMPLEMENT_VERBS)} {subject}", verb
    first = chooser.choice([other for other in INTRANSITIVE if other != verb])  # vp_coordination
    return f"{subject} {first[plural]} and", verb  # the author writes and works


def agreement_pairs(constructions=CONSTRUCTIONS, count: int = 100, seed: int = 0) -> list[MinimalPair]:
    """`count` pairs of each construction, in the order given; half with a singular subject, half plural.

    >>> agreement_pairs(["simple"], count=2, seed=0)[0]
    MinimalPair(good='the dealer fails', bad='the dealer fail', construction='simple', where='')
    """
    unknown = [name for name in constructions if name not in CONSTRUCTIONS]
    if unknown or not constructions:
        raise ArgumentError(
            "constructions", f"unknown {unknown or 'none given'}; choose from {', '.join(CONSTRUCTIONS)}"
        )
    if count < 1:
        raise ArgumentError("count", f"must be at least 1, got {count}")
    pairs = []
    for construction in constructions:
        chooser = random.Random(f"{seed}:{construction}")  # its own stream: independent of the other constructions
        for k in range(count):
            plural = k % 2 == 1  # alternate, so the numbers are balanced exactly
            before, verb = pair_of(construction, chooser, plural)
            good, bad = verb[plural], verb[not plural]
            pairs.append(MinimalPair(f"{before} {good}", f"{before} {bad}", construction))
    return pairs

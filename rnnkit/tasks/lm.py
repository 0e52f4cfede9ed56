"""What the two language models (charlm, wordlm) share: their data, loss, evaluation and sampling, and the
questions asked of a trained one: the probability of each next token, and which sentence of a minimal pair
it prefers (the CS224n notes' "the writer of the books is / are").

Both read one long sequence of token ids laid out as B contiguous streams (rnnkit/data/batching.py),
predict token t+1 from tokens ≤ t, and carry the state across chunks (TBPTT).
"""

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import option
from rnnkit.data.batching import StreamBatches, WholeText
from rnnkit.data.minimal_pairs import MinimalPair, PairScores, ScoredPair, as_pairs
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.evaluate import bits_per_char, evaluate_lm, evaluating, perplexity
from rnnkit.sample import generate, seeded
from rnnkit.tasks.base import Task
from rnnkit.trained import Trained, one_or_many


@dataclass
class LMData:
    """A corpus ready for training: its vocabularies ({"text": ...}), train and validation ids."""

    vocabularies: dict
    train_ids: Tensor | np.ndarray  # (N_train,): a tensor, or a view of a memory-mapped token file
    val_ids: Tensor | np.ndarray  # (N_val,)
    source: str  # where the text came from, for messages

    @property
    def vocab(self):
        return self.vocabularies["text"]


@dataclass(frozen=True)
class SampleConfig:
    length: int = option(500, "tokens to generate", at_least=0)
    temperature: float = option(0.8, "divide the logits by this (0: argmax)", at_least=0)
    top_k: int = option(0, "draw only from the k most likely tokens (0: all)", at_least=0)
    num_samples: int = option(1, "continuations to generate side by side", at_least=1, below=4097)
    seed: int = option(0, "seed of the sampling generator: the same seed gives the same text", at_least=0, below=2**63)


@dataclass(frozen=True)
class Generated:
    """One continuation: the prime it started from and the text written, prime included, as it reads."""

    prime: str
    text: str


def next_token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of (B, T, V) logits against (B, T) next tokens: a scalar, nats per token."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))  # (B·T, V) against (B·T,)


class FirstChunks:
    """The first `count` chunks of stream batches: what eval_tokens lets a validation during training read."""

    def __init__(self, batches: StreamBatches, count: int):
        self.batches, self.count = batches, min(count, len(batches))
        self.batch_size, self.seq_len, self.carries_state = batches.batch_size, batches.seq_len, batches.carries_state

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int):
        return self.batches[k]

    def targets_in(self, chunks: int) -> int:
        return self.batches.targets_in(min(chunks, self.count))


def validation_batches(ids, what: str, unit: str) -> StreamBatches:
    """Up to 16 streams of up to 256 steps, sized down for short texts."""
    batch_size = max(1, min(16, len(ids) // 64))
    seq_len = min(256, len(ids) // batch_size - 1)
    if seq_len < 1:
        raise RnnkitError(f"{what} has {len(ids)} {unit}; at least 2 are needed to evaluate")
    return StreamBatches(ids, batch_size, seq_len, what, unit)


def whole_text(ids, what: str, unit: str) -> WholeText:
    """What `eval` scores: every token of the text, one stream, the state carried throughout."""
    return WholeText(ids, 256, what, unit)


@dataclass(frozen=True)
class Scored:
    """A text as the model reads it: each token after the first, and the log-probability (nats) the model gave it
    from everything before it. `total` sums them: compare two sentences by it (minimal pairs)."""

    text: str
    tokens: list[str]
    log_probabilities: list[float]

    @property
    def total(self) -> float:
        return sum(self.log_probabilities)


@dataclass(frozen=True)
class NextToken:
    """One token's chance of coming next: its probability under the model's softmax over the whole vocabulary
    after the prime, and its rank there (1: the most likely; tokens of equal probability share a rank)."""

    token: str
    probability: float
    rank: int


@dataclass(frozen=True)
class NextTokens:
    """What the model expects after `prime`: the tokens asked about (in the order asked), the `top` most likely
    (most likely first), the vocabulary's size, and the prime's words it read as <unk> (a word model's)."""

    prime: str
    candidates: list[NextToken]
    top: list[NextToken]
    vocab_size: int
    unknown: list[str]


class TrainedLanguageModel(Trained):
    """A language model from Python: continue a text, or score one."""

    def score(self, texts: str | list[str]) -> Scored | list[Scored]:
        """The log-probability of every token of each text (one text or a list), given the tokens before it.

        >>> a, b = rnnkit.load("runs/ptb").score(["the writer of the books is", "the writer of the books are"])
        >>> a.total > b.total
        True
        """
        items, single = one_or_many(texts, "texts", str, "a text")
        results = list(self.task.score(self.model, self.vocabularies, items))
        return results[0] if single else results

    def next(
        self, prime: str | list[str], words: str | list[str] | None = None, top: int | None = None
    ) -> NextTokens | list[NextTokens]:
        """The probability and rank of each of `words` as the next token after `prime` (one text or a list), and
        the `top` most likely tokens (default 10 when no words are asked about, else none), from the model's
        softmax over its whole vocabulary once it has read the whole prime. A character model's words are
        characters.

        >>> after = rnnkit.load("runs/ptb").next("the writer of the books", words=["is", "are"])
        >>> after.candidates  # rank 1 is the most likely word of the vocabulary
        [NextToken(token='is', probability=..., rank=...), NextToken(token='are', probability=..., rank=...)]
        """
        primes, single = one_or_many(prime, "prime", str, "a text")
        asked = [] if words is None else one_or_many(words, "words", str, "a token")[0]
        if top is None:
            top = 10 if words is None else 0
        if isinstance(top, bool) or not isinstance(top, int):
            raise ArgumentTypeError("top", f"expected a whole number, got {type(top).__name__}")
        if top < 0:
            raise ArgumentError("top", f"must not be negative, got {top}")
        results = [self.task.next_tokens(self.model, self.vocabularies, item, asked, top) for item in primes]
        return results[0] if single else results

    def score_pairs(self, pairs: list) -> PairScores:
        """Which sentence of each minimal pair the model finds more likely: pairs are MinimalPair or tuples
        (acceptable, unacceptable[, construction]); pairs whose sentences are the same are set aside, unscored.

        >>> scores = rnnkit.load("runs/ptb").score_pairs([("the writers are", "the writers is", "simple")])
        >>> scores.accuracy, scores.scored[0].margin  # margin: log p(acceptable) − log p(unacceptable), nats
        (1.0, ...)
        """
        checked = as_pairs(pairs)  # each a MinimalPair, checked before the model runs
        return self.task.score_pairs(self.model, self.vocabularies, checked)

    def sample(self, prime: str | list[str] | None = None, **settings) -> Generated | list[Generated]:
        """Continue `prime` (one text or a list) by `length` tokens drawn at `temperature` (0: the most likely),
        from the `top_k` most likely (0: all), with `seed`; `num_samples` continuations of each prime.

        >>> rnnkit.load("runs/shakespeare").sample("ROMEO:", length=100, temperature=0.8).text
        'ROMEO:\nWhat say you ...'
        """
        default = self.task.default_prime(self.vocabularies)
        primes, single = one_or_many(default if prime is None else prime, "prime", str, "a text")
        chosen = self.settings(settings)
        results = list(self.task.predict(self.model, self.vocabularies, primes, chosen))
        return results[0] if single and chosen.num_samples == 1 else results


class LanguageModel(Task):
    """A language model over a stream of tokens: trained by TBPTT, sampled one token at a time."""

    streams = True
    reads_text = True
    verb = "sample"
    unit = "tokens"
    Predict = SampleConfig
    trained = TrainedLanguageModel
    stream_unit = "tokens"  # what a stream counts in messages ("characters", "words")

    def load_data(self, config, tiny: bool = False, progress=None) -> LMData:
        raise NotImplementedError

    def batches(self, config, data: LMData):
        """Training streams, and validation streams cut to train.eval_tokens (0: all of them)."""
        unit, train = self.stream_unit, config.train
        batches = StreamBatches(data.train_ids, train.batch_size, train.seq_len, f"{data.source} (training part)", unit)
        val = validation_batches(data.val_ids, f"{data.source} (validation part)", unit)
        if train.eval_tokens:
            val = FirstChunks(val, max(1, train.eval_tokens // (val.batch_size * val.seq_len)))
        return batches, val

    def loss(self, model: nn.Module, batch, state) -> tuple:
        """Mean cross-entropy of the next token over the chunk (every position is a real one)."""
        logits, state = model(batch.inputs, state)  # (B, T, V)
        return next_token_loss(logits, batch.targets), state, batch.targets.numel()

    def evaluate(self, model: nn.Module, batches, device="cpu") -> dict:
        """Loss in nats per token, bits per token and perplexity, over every chunk of `batches`."""
        value = evaluate_lm(model, batches, device=device)
        tokens = batches.targets_in(len(batches))
        return {"loss": value, "bits": bits_per_char(value), "perplexity": perplexity(value), "tokens": tokens}

    def dry_run(self, settings: SampleConfig) -> SampleConfig:
        """--dry-run generates a little: at most 50 tokens, at most 4 continuations."""
        return replace(settings, length=min(settings.length, 50), num_samples=min(settings.num_samples, 4))

    def prime_ids(self, vocabularies: dict, prime: str) -> Tensor:
        """The prime as the ids the state is warmed up on (checked: an error names the prime)."""
        raise NotImplementedError

    def show(self, vocabularies: dict, ids: list[int], previous: int | None) -> str:
        """ids as text; previous is the id before them (None at the start)."""
        raise NotImplementedError

    def stream(self, model: nn.Module, vocabularies: dict, prime: str, settings: SampleConfig) -> Iterator[str]:
        """One continuation of `prime` as text as it comes, the prime first (checked before anything is made)."""
        prime_ids = self.prime_ids(vocabularies, prime)  # (P,)
        return self.pieces(model, vocabularies, prime_ids, replace(settings, num_samples=1))

    def pieces(self, model, vocabularies, prime_ids: Tensor, settings: SampleConfig) -> Iterator[str]:
        vocab = vocabularies["text"]
        columns = generate(
            model, vocab, prime_ids, settings.length, settings.temperature, settings.top_k, 1, seeded(settings.seed)
        )
        previous = prime_ids[-1].item()
        yield self.show(vocabularies, prime_ids.tolist(), None)
        for column in columns:
            yield self.show(vocabularies, [vocab.index[column[0]]], previous)
            previous = vocab.index[column[0]]

    def predict(
        self, model: nn.Module, vocabularies: dict, inputs: list[str], settings: SampleConfig
    ) -> Iterator[Generated]:
        """num_samples continuations of each prime in `inputs`, drawn side by side."""
        vocab = vocabularies["text"]
        primes = [(prime, self.prime_ids(vocabularies, prime)) for prime in inputs]  # every prime checked first
        for prime, prime_ids in primes:
            if settings.num_samples == 1:
                yield Generated(prime, "".join(self.pieces(model, vocabularies, prime_ids, settings)))
                continue
            stream = generate(
                model,
                vocab,
                prime_ids,
                settings.length,
                settings.temperature,
                settings.top_k,
                settings.num_samples,
                seeded(settings.seed),
            )
            columns = list(stream)
            for b in range(settings.num_samples):
                ids = prime_ids.tolist() + [vocab.index[column[b]] for column in columns]
                yield Generated(prime, self.show(vocabularies, ids, None))

    def default_prime(self, vocabularies: dict) -> str:
        """What sampling starts from when no prime is given: a prime the vocabulary can read."""
        raise NotImplementedError

    def scored_ids(self, vocabularies: dict, text: str) -> Tensor:
        """The ids `score` reads: the first is context only, every later one is scored."""
        raise NotImplementedError

    @torch.no_grad()
    def score(self, model: nn.Module, vocabularies: dict, texts: list[str]) -> Iterator[Scored]:
        """Each text's tokens and their log-probabilities, one text at a time from the zero state."""
        symbols = vocabularies["text"].symbols
        with evaluating(model):
            device = next(model.parameters()).device
            for k, text in enumerate(texts):
                ids = self.scored_ids(vocabularies, text).to(device)  # (N,)
                if len(ids) < 2:
                    raise ArgumentError(f"texts[{k}]", "has nothing to score (it needs two tokens or more)")
                logits, _ = model(ids[None, :-1], None)  # (1, N - 1, V)
                log_probabilities = torch.log_softmax(logits[0].double(), dim=-1)  # (N - 1, V)
                chosen = log_probabilities.gather(1, ids[1:, None])[:, 0]  # (N - 1,)
                yield Scored(text, [symbols[i] for i in ids[1:].tolist()], chosen.tolist())

    def context_ids(self, vocabularies: dict, prime: str) -> Tensor:
        """The ids `next` reads before predicting: the prime's, which must hold a token (checked)."""
        return self.prime_ids(vocabularies, prime)

    def candidate_id(self, vocabularies: dict, token: str) -> int:
        """The id of a token asked about by `next`; one the vocabulary lacks is an error naming it."""
        raise NotImplementedError

    def unknown_words(self, vocabularies: dict, text: str) -> list[str]:
        """The words of `text` the model reads as <unk>: none, unless the task reads unknown words at all."""
        return []

    @torch.no_grad()
    def next_tokens(
        self, model: nn.Module, vocabularies: dict, prime: str, candidates: list[str], top: int
    ) -> NextTokens:
        """The probability and rank of each candidate as the token after `prime`, and the `top` most likely tokens:
        the softmax over the whole vocabulary at the prime's last step, the state carried through the prime."""
        vocab = vocabularies["text"]
        ids = self.context_ids(vocabularies, prime)  # (P,)
        asked = [self.candidate_id(vocabularies, token) for token in candidates]  # every candidate checked first
        with evaluating(model):
            device = next(model.parameters()).device
            logits, _ = model(ids.to(device)[None], None)  # (1, P, V): the state read through the whole prime
        probabilities = torch.softmax(logits[0, -1].double(), dim=-1).cpu()  # (V,): float64, so they sum to 1

        def entry(i: int) -> NextToken:
            rank = int((probabilities > probabilities[i]).sum()) + 1  # 1 + the tokens strictly more likely
            return NextToken(vocab.symbols[i], probabilities[i].item(), rank)

        best = torch.topk(probabilities, min(top, len(vocab))).indices.tolist()  # (top,): most likely first
        unknown = self.unknown_words(vocabularies, prime)
        return NextTokens(prime, [entry(i) for i in asked], [entry(i) for i in best], len(vocab), unknown)

    def score_pairs(self, model: nn.Module, vocabularies: dict, pairs: list[MinimalPair]) -> PairScores:
        """Each pair's two sentences scored by `score` (total log-probability, nats); a pair whose sentences are
        the same is set aside, and a sentence that cannot be read is an error naming its pair."""
        scored, identical = [], []
        for pair in pairs:
            if pair.good == pair.bad:
                identical.append(pair)
                continue
            totals = []
            for name, sentence in (("acceptable", pair.good), ("unacceptable", pair.bad)):
                try:
                    totals.append(next(self.score(model, vocabularies, [sentence])).total)
                except RnnkitError as error:
                    problem = error.problem if isinstance(error, ArgumentError) else str(error)
                    raise RnnkitError(f"{pair.where or 'a pair'} ({name} sentence): {problem}") from None
            unknown = len(self.unknown_words(vocabularies, pair.good)) + len(self.unknown_words(vocabularies, pair.bad))
            scored.append(ScoredPair(pair, *totals, unknown))
        return PairScores(scored, identical)

    def preview(self, model, data: LMData, config, length: int, seed: int) -> str:
        """A short sample during and after training."""
        settings = replace(SampleConfig(), length=length, seed=seed)
        prime = self.default_prime(data.vocabularies)  # one the text has: not every text has a line break
        return next(iter(self.predict(model, data.vocabularies, [prime], settings))).text.rstrip("\n")

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        raise NotImplementedError

    def encode_text(self, vocabularies: dict, text: str, what: str = "text") -> Tensor:
        raise NotImplementedError

"""Splitting sentences into the tokens a translation model reads and writes, and joining them back.

    Words        tokens are the sentence's whitespace-separated words; joined back with single spaces
    Subwords     byte-pair encoding (Sennrich et al. 2016) learned on the training sentences by
                 sentencepiece (Kudo & Richardson 2018): frequent words stay whole, rare ones split into
                 pieces, so no word of the language is out of vocabulary; "▁" marks a word's start, and
                 decoding the pieces gives the detokenised sentence back

Either kind travels inside the checkpoint (`to_dict`, the BPE model as base64 text, so
torch.load(weights_only=True) reads it) and is never learned again at translation time.
"""

import base64
import io
from collections.abc import Iterable

from rnnkit.errors import RnnkitError


class Words:
    """Whitespace tokens (for text already tokenised, like Multi30k's lower-cased .tok files)."""

    kind = "words"

    def split(self, sentence: str) -> list[str]:
        return sentence.split()

    def join(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def to_dict(self) -> dict:
        return {"kind": self.kind}


class Subwords:
    """Byte-pair encoding by sentencepiece; `learn` it on the training sentences."""

    kind = "bpe"

    def __init__(self, model: bytes):
        import sentencepiece  # a dependency of translation only

        self.model = model
        self.processor = sentencepiece.SentencePieceProcessor()
        try:
            self.processor.LoadFromSerializedProto(model)
        except (RuntimeError, OSError) as error:
            raise RnnkitError(f"not a sentencepiece model ({str(error).strip()[:200]})") from None

    @classmethod
    def learn(cls, sentences: Iterable[str], size: int) -> "Subwords":
        """About `size` pieces (fewer when the sentences hold fewer), every character of the sentences among them."""
        import sentencepiece

        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=model,
                model_type="bpe",
                vocab_size=size,
                hard_vocab_limit=False,
                character_coverage=1.0,
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                unk_id=0,
                num_threads=1,
                minloglevel=3,
            )
        except RuntimeError as error:
            raise RnnkitError(
                f"learning byte-pair encoding failed: {str(error).strip().splitlines()[-1][:200]}"
            ) from None
        return cls(model.getvalue())

    def pieces(self) -> list[str]:
        """Every piece the model knows but its <unk>, in its own order."""
        size = self.processor.GetPieceSize()
        return [self.processor.IdToPiece(i) for i in range(size) if not self.processor.IsUnknown(i)]

    def split(self, sentence: str) -> list[str]:
        return self.processor.EncodeAsPieces(sentence)

    def join(self, tokens: list[str]) -> str:
        return self.processor.DecodePieces(tokens)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": base64.b64encode(self.model).decode("ascii")}


def tokenizer_from_dict(data: dict) -> Words | Subwords:
    if data.get("kind") == Words.kind:
        return Words()
    if data.get("kind") == Subwords.kind and isinstance(data.get("model"), str):
        try:
            model = base64.b64decode(data["model"], validate=True)
        except ValueError:
            raise RnnkitError("a byte-pair encoding's model is not base64 text") from None
        return Subwords(model)
    raise RnnkitError(f"a malformed tokenizer (kind {data.get('kind')!r})")

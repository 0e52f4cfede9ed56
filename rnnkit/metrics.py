"""Classification metrics from a confusion matrix: accuracy, per-class precision, recall and F1, macro F1.

    confusion[i][j] = how many examples of true class i were predicted as class j     (K, K)
    precision_j = confusion[j][j] / column j's sum     recall_i = confusion[i][i] / row i's sum
    F1 = 2·P·R / (P + R), 0 where a class is never predicted or never present
    macro F1 = the mean F1 over the classes that are present or predicted (as scikit-learn's default)

Shared by every task that predicts classes (sentiment, MNIST, tags).
"""

import torch
from torch import Tensor


def confusion_matrix(truth: Tensor, predicted: Tensor, num_classes: int) -> Tensor:
    """(N,) true and (N,) predicted class ids -> (K, K) counts, rows true, columns predicted."""
    flat = truth.long() * num_classes + predicted.long()  # (N,): one bin per (true, predicted) pair
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)  # (K, K)


def classification_metrics(confusion: Tensor, names: list[str]) -> dict:
    """Accuracy, macro F1, and per class precision, recall, F1 and support; plain floats and lists (for JSON)."""
    confusion = confusion.double()
    correct = confusion.diagonal()  # (K,)
    predicted, present = confusion.sum(0), confusion.sum(1)  # (K,) column and row sums
    precision = torch.where(predicted > 0, correct / predicted.clamp(min=1), 0.0)  # (K,)
    recall = torch.where(present > 0, correct / present.clamp(min=1), 0.0)  # (K,)
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0
    )  # (K,)
    total = float(confusion.sum())
    return {
        "accuracy": float(correct.sum()) / total if total else 0.0,
        "macro_f1": float(f1[(present + predicted) > 0].mean())
        if total
        else 0.0,  # over the classes seen (sklearn's default)
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for name, p, r, f, n in zip(names, precision, recall, f1, present)
        },
        "confusion": confusion.long().tolist(),
    }


def metrics_table(metrics: dict) -> str:
    """The per-class figures and the confusion matrix as aligned text, for the CLI."""
    names = list(metrics["per_class"])
    width = max(12, *(len(n) for n in names))
    lines = [f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>9}"]
    for name, row in metrics["per_class"].items():
        lines.append(
            f"{name:<{width}} {row['precision']:>9.3f} {row['recall']:>9.3f} {row['f1']:>9.3f} {row['support']:>9}"
        )
    cell = max(7, *(len(str(v)) for row in metrics["confusion"] for v in row))
    lines.append("confusion (rows true, columns predicted, in the order above)")
    for name, row in zip(names, metrics["confusion"]):
        lines.append(f"{name:<{width}} " + " ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def bleu_scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU (sacrebleu's default 13a tokenisation of the detokenised text, as WMT reports it) and chrF, each
    0-100, with BLEU's signature."""
    from sacrebleu.metrics import BLEU, CHRF  # imported when a task scores text

    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
    }

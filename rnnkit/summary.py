"""A model's parameters, module by module, as Keras's model.summary() counts them.

One row per top-level child of the model (its attribute name and class) with the elements of its parameters,
then the totals, trainable (requires_grad) and not:

    Model: FrameLabeller
    ___________________________________
     Module (type)              Param #
    ===================================
     encoder (ImageEncoder)      12,464
     core (Stacked)              16,896
     dropout (Dropout)                0
     direction_head (Linear)        260
     digit_head (Linear)            650
    ===================================
     Total params: 30,270
     Trainable params: 30,270
     Non-trainable params: 0
    ___________________________________

(the tiny preset's frame labeller). Keras also prints each layer's output shape; that needs an input to run the
model on, and a summary printed before training (or from a checkpoint) has none, so this one counts parameters
only. A tensor held by two modules (a language model's embedding tied to its decoder) is counted once, under the
first module that holds it, so the rows add up to the total. Buffers (a permutation of pixels, batch
statistics) are state, not parameters, and are not counted. Library code: this returns the rows and their
table; rnnkit/commands/ prints it.
"""

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModuleRow:
    """One top-level child of a model (or a parameter the model holds itself)."""

    name: str  # the attribute's name on the model: "encoder"
    kind: str  # its class: "ImageEncoder" ("Parameter" for a tensor the model holds directly)
    parameters: int  # elements of its parameters, each tensor counted once
    trainable: int  # of those, the elements of parameters with requires_grad


@dataclass(frozen=True)
class ModelSummary:
    """A model's rows and totals; str() is the table."""

    model: str  # the model's class: "FrameLabeller"
    rows: tuple[ModuleRow, ...]

    @property
    def total(self) -> int:
        return sum(row.parameters for row in self.rows)

    @property
    def trainable(self) -> int:
        return sum(row.trainable for row in self.rows)

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable

    def __str__(self) -> str:
        cells = [(f"{row.name} ({row.kind})", f"{row.parameters:,}") for row in self.rows]
        totals = [
            f"Total params: {self.total:,}",
            f"Trainable params: {self.trainable:,}",
            f"Non-trainable params: {self.non_trainable:,}",
        ]
        left = max([len("Module (type)"), *(len(name) for name, _ in cells)])
        right = max([len("Param #"), *(len(count) for _, count in cells)])
        width = max([1 + left + 4 + right, *(1 + len(line) for line in totals)])  # a row: " name    count"
        body = [f" {name:<{left}}{count:>{width - 1 - left}}" for name, count in cells]
        return "\n".join(
            [
                f"Model: {self.model}",
                "_" * width,
                f" {'Module (type)':<{left}}{'Param #':>{width - 1 - left}}",
                "=" * width,
                *body,
                "=" * width,
                *(f" {line}" for line in totals),
                "_" * width,
            ]
        )


def summarize(model: nn.Module) -> ModelSummary:
    """The model's parameters per top-level child (in the order they were registered), then those it holds itself."""
    counts: dict[str, list[int]] = {name: [0, 0] for name, _ in model.named_children()}
    kinds = {name: type(child).__name__ for name, child in model.named_children()}
    for name, parameter in model.named_parameters():  # a shared tensor once, under its first name
        owner = name.split(".", 1)[0]  # the child holding it, or the parameter's own name on the model
        kinds.setdefault(owner, "Parameter")
        counted = counts.setdefault(owner, [0, 0])
        counted[0] += parameter.numel()
        counted[1] += parameter.numel() if parameter.requires_grad else 0
    rows = tuple(ModuleRow(name, kinds[name], total, trainable) for name, (total, trainable) in counts.items())
    return ModelSummary(type(model).__name__, rows)

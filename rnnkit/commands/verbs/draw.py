"""`rnnkit draw sample`: digits drawn from the prior; with --out, a grid of them (samples.png) and the drawing
step by step (drawing.gif)."""

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from rnnkit.config import option
from rnnkit.files import atomic_write, output_directory, staged_output
from rnnkit.plots import animated_gif, picture_png
from rnnkit.tasks.draw import SEEDS, Drawing


@dataclass(frozen=True)
class Options:
    seed: int = option(0, "seed of the prior's samples", at_least=0, below=SEEDS)
    out: str = option(
        "", "write DIR/samples.png (a grid) and DIR/drawing.gif (the canvases step by step, write windows in red)"
    )


def dry_run(options: Options, scratch: Path) -> Options:
    return options


def grid_picture(images: torch.Tensor, columns: int = 8, scale: int = 2):
    """Images (N, Y, X) in [0, 1] tiled in a grid, one pixel apart: a Pillow image."""
    from PIL import Image

    N, Y, X = images.shape
    rows = -(-N // columns)
    grid = torch.zeros(rows * (Y + 1), columns * (X + 1))
    for n in range(N):
        r, c = divmod(n, columns)
        grid[r * (Y + 1) : r * (Y + 1) + Y, c * (X + 1) : c * (X + 1) + X] = images[n]
    picture = Image.fromarray((grid * 255).round().to(torch.uint8).numpy())
    return picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)


def drawing_gif(drawing: Drawing, columns: int = 8, scale: int = 3) -> bytes:
    """The canvases step by step, each write window drawn as a red rectangle: one GIF frame per step."""
    from PIL import ImageDraw

    N, T, Y, X = drawing.canvases.shape
    pictures = []
    for t in range(T):
        frame = grid_picture(drawing.canvases[:, t], columns, scale).convert("RGB")
        draw = ImageDraw.Draw(frame)
        for n in range(N if drawing.windows is not None else 0):
            r, c = divmod(n, columns)
            y, x, width = drawing.windows[n, t].tolist()
            half = width / 2
            cx, cy = c * (X + 1) + x, r * (Y + 1) + y
            draw.rectangle(
                [(cx - half) * scale, (cy - half) * scale, (cx + half) * scale, (cy + half) * scale],
                outline=(255, 40, 40),
            )
        pictures.append(frame)
    return animated_gif(pictures, 120)


def run(trained, settings, options: Options, out: TextIO) -> None:
    """Draws settings.count digits from the prior; says where the pictures went (with --out) and the step count."""
    task, model, vocabularies = trained.task, trained.model, trained.vocabularies
    with staged_output(options.out, "samples.png", "--out") as stage:  # both pictures or neither
        if stage is not None:
            output_directory(options.out, "drawing.gif", "--out")  # neither picture replaces an earlier one
        drawing = next(task.predict(model, vocabularies, [options.seed], settings))
        if stage is not None:
            grid = picture_png(grid_picture(drawing.digits))
            atomic_write(stage / "samples.png", lambda handle: handle.write(grid))
            gif = drawing_gif(drawing)
            atomic_write(stage / "drawing.gif", lambda handle: handle.write(gif))
    count, steps = drawing.canvases.shape[:2]
    if options.out:
        where = Path(options.out)
        out.write(f"wrote {where / 'samples.png'} and {where / 'drawing.gif'} ({count} digits, {steps} steps each)\n")
    else:
        out.write(f"drew {count} digits in {steps} steps each; give --out DIR for the pictures\n")

"""The synthetic scenes the tiny shapes checkpoint learns: one flat-coloured shape on a flat background.

A scene is (shape, colour, position, background). Its caption places every word the same way
("a red circle at the top left on a blue background"), so the shape word is always the third word. A fixed
set of combinations is held out of training; the semantic tests ask for those and read the picture back with
simple pixel statistics (read_scene): background = the palette colour most of the border has, object colour
= the commonest other palette colour, position = the anchor nearest the centroid of the object's pixels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# Few, saturated, well-separated colours (RGB 0..255).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
# Anchor of each position as a fraction of the image side (x, y).
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (0.27, 0.27),
    "top right": (0.73, 0.27),
    "bottom left": (0.27, 0.73),
    "bottom right": (0.73, 0.73),
    "centre": (0.5, 0.5),
}
COLOURS = tuple(PALETTE)


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    position: str
    background: str

    @property
    def caption(self) -> str:
        where = "in the centre" if self.position == "centre" else f"at the {self.position}"
        return f"a {self.colour} {self.shape} {where} on a {self.background} background"


def all_scenes() -> list[Scene]:
    return [Scene(s, c, p, b) for s, c, p, b in itertools.product(SHAPES, COLOURS, POSITIONS, COLOURS) if c != b]


def is_held_out(scene: Scene) -> bool:
    """A fixed ~1/7 of the combinations, spread so every pair of attributes still occurs in training."""
    s, c = SHAPES.index(scene.shape), COLOURS.index(scene.colour)
    p, b = list(POSITIONS).index(scene.position), COLOURS.index(scene.background)
    return (s + 2 * c + 3 * p + 5 * b) % 7 == 0


def split() -> tuple[list[Scene], list[Scene]]:
    scenes = all_scenes()
    return [s for s in scenes if not is_held_out(s)], [s for s in scenes if is_held_out(s)]


def render(scene: Scene, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """(size, size, 3) uint8. With rng, the anchor and size jitter a little (training data); without, none."""
    jitter = (lambda scale: float(rng.uniform(-scale, scale))) if rng is not None else (lambda scale: 0.0)
    ax, ay = POSITIONS[scene.position]
    cx, cy = (ax + jitter(0.04)) * size, (ay + jitter(0.04)) * size
    r = (0.19 + jitter(0.025)) * size  # half the shape's extent
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    if scene.shape == "circle":
        mask = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif scene.shape == "square":
        half = r * 0.86
        mask = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    else:  # triangle, apex up
        top, bottom = cy - r, cy + r * 0.8
        mask = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= (y - top) / (bottom - top) * r * 1.05)
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[...] = PALETTE[scene.background]
    image[mask] = PALETTE[scene.colour]
    return image


def nearest_palette(image: np.ndarray) -> np.ndarray:
    """(H, W) index into COLOURS of the nearest palette colour of every pixel."""
    colours = np.array([PALETTE[c] for c in COLOURS], dtype=np.float64)
    d = ((image[..., None, :].astype(np.float64) - colours) ** 2).sum(-1)
    return d.argmin(-1)


def read_scene(image: np.ndarray) -> dict[str, str]:
    """Read colour, background and position back from an (H, W, 3) uint8 image with pixel statistics."""
    h, w, _ = image.shape
    labels = nearest_palette(image)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    background = int(np.bincount(border, minlength=len(COLOURS)).argmax())
    counts = np.bincount(labels.ravel(), minlength=len(COLOURS))
    counts[background] = 0
    colour = int(counts.argmax())
    ys, xs = np.nonzero(labels != background)
    if len(xs) == 0:
        return {"colour": "none", "background": COLOURS[background], "position": "none"}
    cx, cy = (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    return {"colour": COLOURS[colour], "background": COLOURS[background], "position": position}


def agrees(scene: Scene, image: np.ndarray) -> bool:
    read = read_scene(image)
    return (read["colour"], read["background"], read["position"]) == (scene.colour, scene.background, scene.position)

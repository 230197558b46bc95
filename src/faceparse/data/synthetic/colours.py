"""Colour samplers for the synthetic faces. Ranges overlap on purpose (skin-like hair, hair-like
backgrounds, skin-coloured clothes, pale lips) so that no class is a colour lookup."""

from __future__ import annotations

import colorsys

import numpy as np

Colour = tuple[float, float, float]


def hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return (255 * r, 255 * g, 255 * b)


def scale(c: Colour, k: float) -> Colour:
    return (min(255.0, c[0] * k), min(255.0, c[1] * k), min(255.0, c[2] * k))


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(x + (y - x) * t for x, y in zip(a, b))  # type: ignore[return-value]


def skin(rng: np.random.Generator) -> Colour:
    return hsv(rng.uniform(0.015, 0.095), rng.uniform(0.22, 0.62), rng.uniform(0.32, 0.97))


def hair(rng: np.random.Generator) -> Colour:
    kind = rng.choice(6, p=[0.3, 0.3, 0.14, 0.08, 0.08, 0.1])
    if kind == 0:  # black
        return hsv(rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.4), rng.uniform(0.04, 0.2))
    if kind == 1:  # brown
        return hsv(rng.uniform(0.03, 0.1), rng.uniform(0.35, 0.75), rng.uniform(0.18, 0.5))
    if kind == 2:  # blond (overlaps pale skin)
        return hsv(rng.uniform(0.08, 0.15), rng.uniform(0.25, 0.6), rng.uniform(0.55, 0.92))
    if kind == 3:  # red
        return hsv(rng.uniform(0.01, 0.06), rng.uniform(0.55, 0.85), rng.uniform(0.35, 0.75))
    if kind == 4:  # grey / white
        return hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.08), rng.uniform(0.45, 0.9))
    return hsv(rng.uniform(0, 1), rng.uniform(0.45, 0.9), rng.uniform(0.35, 0.9))  # dyed


def any_colour(rng: np.random.Generator) -> Colour:
    return hsv(rng.uniform(0, 1), rng.uniform(0.0, 1.0), rng.uniform(0.08, 0.97))


def scene(rng: np.random.Generator) -> Colour:
    """A background or clothing colour: anything, sometimes skin- or hair-like."""
    pick = rng.uniform()
    if pick < 0.15:
        return skin(rng)
    if pick < 0.3:
        return hair(rng)
    return any_colour(rng)


def lips(rng: np.random.Generator, skin_colour: Colour) -> Colour:
    tone = hsv(rng.uniform(-0.06, 0.03), rng.uniform(0.35, 0.85), rng.uniform(0.3, 0.85))
    return mix(skin_colour, tone, rng.uniform(0.45, 0.95))


def iris(rng: np.random.Generator) -> Colour:
    kind = rng.choice(4, p=[0.5, 0.2, 0.15, 0.15])
    h = (rng.uniform(0.05, 0.1), rng.uniform(0.52, 0.62), rng.uniform(0.22, 0.38), rng.uniform(0, 1))[kind]
    return hsv(h, rng.uniform(0.2, 0.75), rng.uniform(0.15, 0.6))


def sclera(rng: np.random.Generator) -> Colour:
    return hsv(rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.18), rng.uniform(0.7, 0.97))


def metal(rng: np.random.Generator) -> Colour:
    """Jewellery and glasses frames: gold, silver, black, pearl or a colour."""
    kind = rng.choice(5, p=[0.3, 0.25, 0.2, 0.1, 0.15])
    if kind == 0:
        return hsv(rng.uniform(0.1, 0.15), rng.uniform(0.5, 0.85), rng.uniform(0.6, 0.95))
    if kind == 1:
        return hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.08), rng.uniform(0.65, 0.95))
    if kind == 2:
        return hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.3), rng.uniform(0.03, 0.2))
    if kind == 3:
        return hsv(rng.uniform(0.05, 0.15), rng.uniform(0.02, 0.12), rng.uniform(0.85, 1.0))
    return hsv(rng.uniform(0, 1), rng.uniform(0.5, 0.95), rng.uniform(0.3, 0.9))

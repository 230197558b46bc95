"""2-D geometry for the synthetic faces: outlines as (N, 2) point arrays, frames and yaw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 40, start: float = 0.0, stop: float = 2 * np.pi
) -> np.ndarray:
    """Points on an ellipse (angles in radians, y down), `n` of them from start to stop."""
    t = np.linspace(start, stop, n, endpoint=stop - start < 2 * np.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def superellipse(cx: float, cy: float, rx: float, ry: float, power: float, n: int = 48) -> np.ndarray:
    """A rounded rectangle-like closed outline: |x/rx|^p + |y/ry|^p = 1 (p=2 is an ellipse)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / power
    return np.stack([cx + rx * np.sign(c) * np.abs(c) ** e, cy + ry * np.sign(s) * np.abs(s) ** e], axis=1)


def band(centre: np.ndarray, half_width: np.ndarray | float) -> np.ndarray:
    """A closed outline around a polyline, `half_width` either side (per point or constant)."""
    d = np.gradient(centre, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) * np.reshape(half_width, (-1, 1))
    return np.concatenate([centre + normal, (centre - normal)[::-1]])


def mirror(points: np.ndarray) -> np.ndarray:
    """Mirror an outline across x = 0."""
    return points * np.array([-1.0, 1.0])


@dataclass(frozen=True)
class Frame:
    """Local units (x right, y down) -> image pixels: scale, rotate about the origin, translate."""

    origin: tuple[float, float]
    scale: float
    angle: float

    def __call__(self, points: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.angle), np.sin(self.angle)
        rot = np.array([[c, -s], [s, c]]) * self.scale
        return points @ rot.T + np.asarray(self.origin)


def yaw(points: np.ndarray, angle: float, bulge: float, depth: float = 0.0) -> np.ndarray:
    """Turn points lying on a head-shaped surface about the vertical axis.

    A point at x (head half-widths) sits at depth z = bulge * sqrt(1 - x^2) + depth in
    front of the head's axis; after turning by `angle` it is seen at x cos + z sin. So the
    features shift towards one side and the far side's features get narrower.
    """
    x = points[:, 0]
    z = bulge * np.sqrt(np.clip(1.0 - x * x, 0.0, None)) + depth
    out = points.copy()
    out[:, 0] = x * np.cos(angle) + z * np.sin(angle)
    return out

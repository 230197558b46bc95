"""Paint a label mask and a material map together, then render the materials into a photo.

Every shape is painted twice with the same geometry: its class into `mask` and a material id
into `mat`. A material is a colour plus how much fine texture, hair-like streaks and face
shading it gets. Rendering looks the materials up per pixel, so the image and its mask can
never disagree about where a part is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from faceparse.data.synthetic.colours import Colour

# Classes whose pixels take the soft, rounded shading of a head (skin, nose, ears, neck).
_SHADED_LABELS = (1, 2, 8, 9, 17)


@dataclass
class Material:
    colour: Colour
    texture: float = 0.03  # fine mottling (relative brightness)
    streak: float = 0.0  # hair-like vertical streaks
    shade: float = 0.0  # how much the head's rounded shading darkens it
    stripes: tuple[Colour, float, float] | None = None  # (colour, period px, angle rad)


@dataclass
class Canvas:
    size: int
    materials: list[Material] = field(default_factory=lambda: [Material((0.0, 0.0, 0.0), 0.0)])

    def __post_init__(self) -> None:
        self.mask = Image.new("L", (self.size, self.size), 0)
        self.mat = Image.new("L", (self.size, self.size), 0)
        self.lens = Image.new("L", (self.size, self.size), 0)  # tint opacity of glasses lenses
        self._mask = ImageDraw.Draw(self.mask)
        self._mat = ImageDraw.Draw(self.mat)
        self._lens = ImageDraw.Draw(self.lens)
        self.has_lens = False

    def material(
        self,
        colour: Colour,
        texture: float = 0.03,
        streak: float = 0.0,
        shade: float = 0.0,
        stripes: tuple[Colour, float, float] | None = None,
    ) -> int:
        if len(self.materials) >= 256:
            raise RuntimeError("more than 255 materials in one image")
        self.materials.append(Material(colour, texture, streak, shade, stripes))
        return len(self.materials) - 1

    def fill(self, points: np.ndarray, label: int, mat: int) -> None:
        """Fill a closed outline (image pixels) with a class and a material."""
        xy = points.ravel().tolist()
        self._mask.polygon(xy, fill=label)
        self._mat.polygon(xy, fill=mat)

    def stroke(self, points: np.ndarray, width: float, label: int, mat: int, closed: bool = False) -> None:
        """Draw a polyline `width` pixels wide."""
        if closed:
            points = np.vstack([points, points[:1]])
        xy = points.ravel().tolist()
        w = max(1, int(round(width)))
        self._mask.line(xy, fill=label, width=w, joint="curve")
        self._mat.line(xy, fill=mat, width=w, joint="curve")

    def relabel(self, points: np.ndarray, label: int) -> None:
        """Paint only the class (the pixels keep their look), e.g. eyes seen through a lens."""
        self._mask.polygon(points.ravel().tolist(), fill=label)

    def tint(self, points: np.ndarray, opacity: float) -> None:
        self._lens.polygon(points.ravel().tolist(), fill=int(round(255 * opacity)))
        self.has_lens = True

    def render(self, rng: np.random.Generator, background: np.ndarray, head_px: float, tint: Colour) -> np.ndarray:
        """The photo (float32 RGB, unclipped): materials, texture, shading, light, lens tint."""
        s = self.size
        mat = np.asarray(self.mat)
        lut = np.array([m.colour for m in self.materials], np.float32)
        img = lut[mat]
        is_bg = (mat == 0)[..., None]
        img = np.where(is_bg, background, img)

        tex = np.array([m.texture for m in self.materials], np.float32)[mat]
        tex *= _noise(rng, s, (max(2, s // 4), max(2, s // 4)))
        streak = np.array([m.streak for m in self.materials], np.float32)
        if streak.any():
            tex += streak[mat] * _noise(rng, s, (max(2, s // 48), max(2, s // 3)))
        shade_amt = np.array([m.shade for m in self.materials], np.float32)
        if shade_amt.any():
            tex -= shade_amt[mat] * 0.4 * (1.0 - self._head_shading(head_px))
        gx, gy = rng.uniform(-0.35, 0.35, 2)
        ramp = np.linspace(-0.5, 0.5, s, dtype=np.float32)
        tex += np.add.outer(gy * ramp, gx * ramp)
        img *= (1.0 + tex)[..., None]

        for i, m in enumerate(self.materials):
            if m.stripes is not None:
                colour, period, angle = m.stripes
                yy, xx = np.mgrid[0:s, 0:s]
                on = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)) > 0.3) & (mat == i)
                img[on] = np.array(colour, np.float32) * (1.0 + tex[on])[:, None]
        if self.has_lens:
            alpha = np.asarray(self.lens, np.float32)[..., None] / 255.0
            img = img * (1.0 - alpha) + np.array(tint, np.float32) * alpha
        return img

    def _head_shading(self, head_px: float) -> np.ndarray:
        """1 inside the head's skin, falling off smoothly towards its outline (blurred mask)."""
        lut = [0] * 256
        for label in _SHADED_LABELS:
            lut[label] = 255
        small = self.mask.point(lut).reduce(4)
        small = small.filter(ImageFilter.GaussianBlur(max(1.0, 0.12 * head_px / 4)))
        return np.asarray(small.resize((self.size, self.size), Image.BILINEAR), np.float32) / 255.0


def _noise(rng: np.random.Generator, size: int, shape: tuple[int, int]) -> np.ndarray:
    """Smooth unit-variance-ish noise: a random (rows, cols) grid resized to size x size."""
    grid = rng.standard_normal(shape).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.BILINEAR))

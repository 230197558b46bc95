"""Synthetic head-and-shoulders photos with 19-class CelebAMask-HQ label masks.

Each sample is drawn procedurally: a textured background with distractor shapes, hair
(behind and in front of the head), neck and chest, clothes, ears, a face with nose, eyes,
brows, an open mouth between two lips, and - on a fraction of the samples - glasses, a
hat, earrings and a necklace. Position, scale, tilt, a yaw that slides the features
sideways, part shapes and part colours are random (colour ranges overlap between parts, see
colours.py); the photo then gets blur, sensor noise and JPEG compression. So every class
is reachable and a model has to learn shape and context, not a colour table.

Left/right convention: ``l_eye``, ``l_brow`` and ``l_ear`` are the person's own left side,
which for a face looking at the camera is on the image's right (larger x); ``r_*`` are on
the image's left. This is the CelebAMask-HQ naming as we read it. A mirrored face is then
exactly a face of this generator with labels 4<->5, 6<->7, 8<->9 swapped
(``labels.SWAP_LUT``), which is what the flip step does.

Determinism: sample ``index`` of ``split`` for ``seed`` draws only from
``np.random.default_rng([seed, split number, index])``, so a sample does not depend on how
many were made or on which worker made it.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from faceparse.data.layouts import SPLITS
from faceparse.data.png import write_label_png
from faceparse.data.synthetic import colours as C
from faceparse.data.synthetic.canvas import Canvas
from faceparse.data.synthetic.shapes import Frame, band, ellipse, mirror, superellipse, yaw
from faceparse.parallel import parallel_map

# Labels (faceparse.labels.CLASSES order).
SKIN, NOSE, EYE_G, L_EYE, R_EYE, L_BROW, R_BROW, L_EAR, R_EAR = range(1, 10)
MOUTH, U_LIP, L_LIP, HAIR, HAT, EAR_R, NECK_L, NECK, CLOTH = range(10, 19)

# How often the accessories appear (kept high so that a small model can learn them).
P_GLASSES, P_HAT, P_EARRINGS, P_NECKLACE = 0.35, 0.3, 0.4, 0.38


@dataclass(frozen=True)
class Framing:
    """Where heads are put and how they are turned: each field is a (low, high) uniform range."""

    half_width: tuple[float, float] = (0.19, 0.26)  # face half width, x image size
    aspect: tuple[float, float] = (1.22, 1.42)  # face half height / half width
    tilt: tuple[float, float] = (-0.3, 0.3)  # roll, radians
    shift_x: tuple[float, float] = (-0.07, 0.07)  # face centre - image centre, x image size
    centre_y: tuple[float, float] = (0.38, 0.47)  # face centre height, x image size
    yaw: tuple[float, float] = (-0.4, 0.4)  # how far the features slide sideways


# About CelebA-HQ's framing: every dataset the pipeline generates.
CELEBA_FRAMING = Framing()
# A geometry the pipeline never generates (smaller and larger heads, more roll and yaw, further
# off centre, rounder and longer faces), to test how models trained on CELEBA_FRAMING
# generalise: bench/bench_compact.py.
HELD_OUT_FRAMING = Framing(
    half_width=(0.15, 0.31),
    aspect=(1.12, 1.55),
    tilt=(-0.5, 0.5),
    shift_x=(-0.12, 0.12),
    centre_y=(0.35, 0.52),
    yaw=(-0.55, 0.55),
)


@dataclass(frozen=True)
class Head:
    """Where the head is and how it is turned; all part geometry is in head units (a = 1)."""

    frame: Frame  # head units -> pixels (origin at the face centre)
    body: Frame  # body units (same scale) -> pixels, origin at the base of the neck
    turn: float  # yaw in radians; > 0 slides the features towards +x
    b: float  # half height of the face outline (half width is 1)
    jaw: float  # how much the outline narrows towards the chin

    def at(self, pts: np.ndarray, bulge: float = 0.6, depth: float = 0.0) -> np.ndarray:
        """Head-unit points on the face surface -> pixels, after the yaw."""
        return self.frame(yaw(pts, self.turn, bulge, depth))

    def edge(self, y: float) -> float:
        """Half width of the face outline at height y (before the yaw)."""
        t = np.clip(y / self.b, -1.0, 1.0)
        return float(np.sqrt(1.0 - t * t) * (1.0 - self.jaw * max(t, 0.0) ** 2))


@dataclass(frozen=True)
class Features:
    """Face feature placement (head units) shared by several parts."""

    eye_x: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_y: float
    brow_t: float
    nose_y: float
    mouth_y: float

    def brow_top(self) -> float:
        return self.brow_y - self.brow_t - 0.1  # above the highest arch (0.08)


def generate_face(
    size: int = 512, seed: int = 0, split: str = "train", index: int = 0, framing: Framing = CELEBA_FRAMING
) -> tuple[bytes, np.ndarray]:
    """One sample: the JPEG bytes of the photo and its (size, size) uint8 label mask."""
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    canvas = Canvas(size)
    head = _place_head(rng, size, framing)
    feats = _features(rng, head)
    skin = C.skin(rng)
    hair = C.hair(rng)
    hat = rng.uniform() < P_HAT
    glasses = rng.uniform() < P_GLASSES
    earrings = rng.uniform() < P_EARRINGS
    necklace = rng.uniform() < P_NECKLACE

    # Painter's order, back to front. Brows go over the glasses frame: CelebAMask-HQ paints
    # brows over eye_g, and the lens stops short of the brows anyway.
    _distractors(canvas, rng)
    hair_style = _back_hair(canvas, rng, head, hair, force_sides=hat)
    _neck_and_clothes(canvas, rng, head, skin, necklace)
    if hair_style["long"] and rng.uniform() < 0.5:
        _front_locks(canvas, rng, head, hair_style)
    lobes = _ears(canvas, rng, head, skin)
    _face(canvas, head, skin, rng)
    _nose(canvas, rng, head, feats, skin)
    eyes = _eyes(canvas, rng, head, feats)
    _mouth(canvas, rng, head, feats, skin)
    _fringe(canvas, rng, head, feats, hair_style)
    if glasses:
        _glasses(canvas, rng, head, feats, eyes)
    _brows(canvas, rng, head, feats, hair)
    if hat:
        _hat(canvas, rng, head, feats, hair_style)
    if earrings:
        _earrings(canvas, rng, head, lobes)

    img = canvas.render(rng, _background(rng, size), head.frame.scale, C.scale(C.any_colour(rng), 0.6))
    return _camera(rng, img), np.asarray(canvas.mask).copy()


def _camera(rng: np.random.Generator, img: np.ndarray) -> bytes:
    """What a camera adds to the rendered scene: lens blur, sensor noise, JPEG compression."""
    size = img.shape[0]
    photo = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.35, 1.3) * size / 512))
    grain = rng.standard_normal((size, size, 1), dtype=np.float32)  # luminance noise
    noisy = np.asarray(photo, np.float32) + rng.uniform(1.0, 7.0) * grain
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(rng.integers(70, 96)))
    return buf.getvalue()


# --- placement ---------------------------------------------------------------------------


def _place_head(rng: np.random.Generator, size: int, framing: Framing) -> Head:
    a = size * rng.uniform(*framing.half_width)
    b = rng.uniform(*framing.aspect)
    tilt = rng.uniform(*framing.tilt)
    centre = (size * (0.5 + rng.uniform(*framing.shift_x)), size * rng.uniform(*framing.centre_y))
    frame = Frame(centre, a, tilt)
    neck_len = rng.uniform(0.3, 0.55)
    base = frame(np.array([[0.0, b + neck_len]]))[0]
    body = Frame((float(base[0]), float(base[1])), a, 0.3 * tilt + rng.uniform(-0.05, 0.05))
    return Head(frame, body, rng.uniform(*framing.yaw), b, rng.uniform(0.12, 0.35))


def _features(rng: np.random.Generator, head: Head) -> Features:
    eye_y = rng.uniform(-0.14, 0.0)
    nose_y = rng.uniform(0.32, 0.44)
    mouth_y = min(nose_y + rng.uniform(0.25, 0.36), head.b - 0.42)
    return Features(
        eye_x=rng.uniform(0.36, 0.45),
        eye_y=eye_y,
        eye_w=rng.uniform(0.17, 0.23),
        eye_h=rng.uniform(0.075, 0.1),
        brow_y=eye_y - rng.uniform(0.26, 0.33),
        brow_t=rng.uniform(0.045, 0.07),
        nose_y=nose_y,
        mouth_y=mouth_y,
    )


# --- scene -------------------------------------------------------------------------------


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured backdrop: smooth colour blobs over a gradient, sometimes stripes."""
    low = max(8, size // 8)  # smooth, so made small and resized
    n = int(rng.integers(2, 9))
    grid = np.array([C.scene(rng) for _ in range(n * n)], np.uint8).reshape(n, n, 3)
    blobs = np.asarray(Image.fromarray(grid).resize((low, low), Image.BICUBIC), np.float32)
    c0, c1 = np.array(C.scene(rng), np.float32), np.array(C.scene(rng), np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(0, 1, low, dtype=np.float32)
    t = np.clip(np.add.outer(ramp * np.sin(ang), ramp * np.cos(ang)) * 0.7 + 0.15, 0, 1)[..., None]
    w = rng.uniform(0.2, 0.8)
    small = np.clip(w * blobs + (1 - w) * (c0 * (1 - t) + c1 * t), 0, 255).astype(np.uint8)
    bg = np.asarray(Image.fromarray(small).resize((size, size), Image.BILINEAR), np.float32)
    if rng.uniform() < 0.25:
        period = rng.uniform(0.03, 0.15) * size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        ang = rng.uniform(0, np.pi)
        on = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * (2 * np.pi / period)) > 0
        bg[on] = bg[on] * rng.uniform(0.5, 0.9) + np.array(C.scene(rng), np.float32) * 0.3
    return bg


def _distractors(canvas: Canvas, rng: np.random.Generator) -> None:
    """Background objects (label 0) in face-part colours: rectangles, blobs, thick lines."""
    s = canvas.size
    for _ in range(int(rng.integers(0, 6))):
        mat = canvas.material(C.scene(rng), texture=rng.uniform(0.0, 0.08))
        cx, cy = rng.uniform(0, s, 2)
        rx, ry = rng.uniform(0.03, 0.25, 2) * s
        kind = rng.integers(3)
        if kind == 0:
            pts = superellipse(cx, cy, rx, ry, rng.uniform(2, 8), 32)
        elif kind == 1:
            pts = ellipse(cx, cy, rx, ry, 32)
        else:
            pts = np.array([[cx - rx, cy - ry], [cx + rx, cy + ry]])
            canvas.stroke(pts, rng.uniform(0.01, 0.04) * s, 0, mat)
            continue
        turn = rng.uniform(0, np.pi)
        c, si = np.cos(turn), np.sin(turn)
        pts = (pts - (cx, cy)) @ np.array([[c, -si], [si, c]]).T + (cx, cy)
        canvas.fill(pts, 0, mat)


# --- hair, neck, clothes ---------------------------------------------------------------------


def _back_hair(canvas: Canvas, rng: np.random.Generator, head: Head, hair: C.Colour, force_sides: bool) -> dict:
    """Hair behind the head; returns the style the fringe and hat follow."""
    side = rng.uniform(0.1 if force_sides else 0.03, 0.28)
    top = rng.uniform(0.08, 0.35)
    length = rng.choice([rng.uniform(0.1, 0.5), rng.uniform(0.6, 1.2), rng.uniform(1.4, 3.0)], p=[0.35, 0.3, 0.35])
    flare = rng.uniform(0.0, 0.35) if length > 1.0 else 0.0
    arc = ellipse(0.0, -0.05, 1.0 + side, head.b + top, 36, np.pi, 2 * np.pi)
    xs = np.linspace(1.0 + side + flare, -(1.0 + side + flare), 9)
    bottom = np.stack([xs, length + rng.uniform(-0.08, 0.08, 9)], axis=1)
    pts = np.vstack(
        [
            arc,
            [[1.0 + side, 0.0], [1.0 + side + flare, length * 0.7]],
            bottom,
            [[-(1.0 + side + flare), length * 0.7], [-(1.0 + side), 0.0]],
        ]
    )
    mat = canvas.material(hair, texture=0.05, streak=rng.uniform(0.08, 0.2))
    canvas.fill(head.at(pts, bulge=0.1), HAIR, mat)
    return {"side": side, "top": top, "length": length, "long": length > 1.3, "mat": mat}


def _front_locks(canvas: Canvas, rng: np.random.Generator, head: Head, style: dict) -> None:
    """Long hair falling in front of the shoulders."""
    for sgn in (-1.0, 1.0):
        if rng.uniform() < 0.3:
            continue
        x0 = sgn * (0.95 + style["side"] * 0.5)
        ys = np.linspace(0.35, style["length"], 8)
        xs = x0 + sgn * np.linspace(0, rng.uniform(0.05, 0.35), 8)
        width = rng.uniform(0.15, 0.28) * np.linspace(1.0, 0.6, 8)
        canvas.fill(head.at(band(np.stack([xs, ys], 1), width), bulge=0.1), HAIR, style["mat"])


def _neck_and_clothes(canvas: Canvas, rng: np.random.Generator, head: Head, skin: C.Colour, necklace: bool) -> None:
    """Neck and chest skin (label neck), clothes with a round or V neckline, a necklace."""
    w = rng.uniform(0.5, 0.68)
    neck_mat = canvas.material(C.scale(skin, rng.uniform(0.72, 0.9)), texture=0.03, shade=0.6)
    top = head.frame(np.array([[-w, 0.3], [w, 0.3]]))
    chest = head.body(
        np.array(
            [
                [w * 1.05, 0.0],
                [w + 0.5, 0.3],
                [1.7, 0.6],
                [1.7, 4.0],
                [-1.7, 4.0],
                [-1.7, 0.6],
                [-(w + 0.5), 0.3],
                [-w * 1.05, 0.0],
            ]
        )
    )
    canvas.fill(np.vstack([top, chest]), NECK, neck_mat)

    shoulder = rng.uniform(1.9, 2.6)
    depth = rng.uniform(0.12, 0.95)
    slope = rng.uniform(0.3, 0.6)
    outer = np.array(
        [[w + 0.12, -0.03], [w + 0.55, 0.12], [shoulder, slope], [shoulder + 0.3, 1.3], [shoulder + 0.3, 14.0]]
    )
    if rng.uniform() < 0.5:  # round neckline, left to right
        neckline = ellipse(0.0, -0.03, w + 0.12, depth, 16, 0.0, np.pi)[::-1]
    else:  # V neckline
        neckline = np.array([[-(w + 0.12), -0.03], [0.0, depth], [w + 0.12, -0.03]])
    # Right neck -> right shoulder -> bottom -> left shoulder -> left neck -> neckline.
    pts = np.vstack([outer, mirror(outer)[::-1], neckline[1:-1]])
    stripes = None
    if rng.uniform() < 0.3:
        stripes = (C.scene(rng), rng.uniform(0.06, 0.25) * head.frame.scale, rng.uniform(0, np.pi))
    canvas.fill(head.body(pts), CLOTH, canvas.material(C.scene(rng), texture=rng.uniform(0.02, 0.08), stripes=stripes))
    if necklace:
        _necklace(canvas, rng, head, w, depth)


def _necklace(canvas: Canvas, rng: np.random.Generator, head: Head, neck_w: float, depth: float) -> None:
    drop = rng.uniform(0.12, max(0.16, min(0.55, depth * 0.9)))
    t = np.linspace(0, np.pi, 24)
    curve = np.stack([np.cos(t) * neck_w * 0.92, -0.28 + (drop + 0.28) * np.sin(t)], axis=1)
    mat = canvas.material(C.metal(rng), texture=0.06)
    px = head.frame.scale
    if rng.uniform() < 0.5:  # chain
        canvas.stroke(head.body(curve), rng.uniform(0.07, 0.1) * px, NECK_L, mat)
    else:  # beads
        r = rng.uniform(0.045, 0.065)
        for x, y in curve[:: max(1, int(round(r * 40)))]:
            canvas.fill(head.body(ellipse(x, y, r, r, 12)), NECK_L, mat)
    if rng.uniform() < 0.6:  # pendant
        r = rng.uniform(0.06, 0.11)
        canvas.fill(
            head.body(ellipse(0.0, drop + r * 0.8, r * rng.uniform(0.7, 1.0), r, 16)),
            NECK_L,
            canvas.material(C.metal(rng), texture=0.05),
        )


# --- head ----------------------------------------------------------------------------------


def _ears(canvas: Canvas, rng: np.random.Generator, head: Head, skin: C.Colour) -> list[np.ndarray]:
    """Both ears; the far one (yaw) is narrower. Returns each ear lobe's position in pixels."""
    ear_y = rng.uniform(-0.05, 0.12)
    half_h = rng.uniform(0.2, 0.28)
    half_w = rng.uniform(0.12, 0.17)
    colour = C.scale(skin, rng.uniform(0.88, 1.0))
    mat = canvas.material(colour, texture=0.03, shade=0.7)
    inner = canvas.material(C.scale(colour, rng.uniform(0.6, 0.8)), texture=0.03)
    lobes = []
    for sgn, label in ((1.0, L_EAR), (-1.0, R_EAR)):
        f = float(np.clip(1.0 - sgn * 1.3 * np.sin(head.turn), 0.55, 1.4))
        w = half_w * f
        # The face outline's edge after the yaw, the ear root a little behind it (depth -0.1).
        edge = sgn * head.edge(ear_y) * np.cos(head.turn) - 0.1 * np.sin(head.turn)
        cx = edge + sgn * 0.55 * w
        outline = superellipse(cx, ear_y, w, half_h, 2.4, 28)
        outline[:, 1] += np.where(
            outline[:, 1] > ear_y, -0.25 * (outline[:, 1] - ear_y) * (1 - np.abs(outline[:, 0] - cx) / w), 0
        )
        canvas.fill(head.frame(outline), label, mat)
        canvas.fill(head.frame(ellipse(cx + sgn * 0.2 * w, ear_y - 0.03, 0.45 * w, 0.55 * half_h, 16)), label, inner)
        lobes.append(head.frame(np.array([[cx, ear_y + 0.8 * half_h]]))[0])
    return lobes


def _face(canvas: Canvas, head: Head, skin: C.Colour, rng: np.random.Generator) -> None:
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    s = np.sin(t)
    pts = np.stack([np.cos(t) * (1.0 - head.jaw * np.clip(s, 0, None) ** 2), head.b * s], axis=1)
    canvas.fill(head.at(pts, bulge=0.25), SKIN, canvas.material(skin, texture=rng.uniform(0.02, 0.05), shade=1.0))


def _nose(canvas: Canvas, rng: np.random.Generator, head: Head, f: Features, skin: C.Colour) -> None:
    top_w = rng.uniform(0.06, 0.1)
    w = rng.uniform(0.16, 0.24)
    y0, y1 = f.eye_y + 0.02, f.nose_y
    half = np.array(
        [
            [top_w, y0],
            [top_w * 1.3, (y0 + y1) / 2],
            [w * 0.75, y1 - 0.12],
            [w, y1 - 0.03],
            [w * 0.8, y1 + 0.04],
            [w * 0.3, y1 + 0.06],
            [0.0, y1 + 0.045],
        ]
    )
    pts = np.vstack([half, mirror(half[:-1])[::-1]])
    tone = C.scale(skin, rng.uniform(0.84, 0.95))
    canvas.fill(head.at(pts, depth=0.12), NOSE, canvas.material(tone, texture=0.03, shade=0.8))
    ridge = np.array([[0.0, y0 + 0.08], [0.0, y1 - 0.08]])
    canvas.stroke(
        head.at(ridge, depth=0.14),
        0.05 * head.frame.scale,
        NOSE,
        canvas.material(C.scale(skin, rng.uniform(1.02, 1.12)), texture=0.02),
    )
    dark = canvas.material(C.scale(skin, rng.uniform(0.3, 0.5)), texture=0.02)
    for sgn in (-1.0, 1.0):
        canvas.fill(head.at(ellipse(sgn * w * 0.45, y1 + 0.0, 0.065, 0.03, 12), depth=0.12), NOSE, dark)


def _eye_lids(x: np.ndarray, w: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid heights (y down) of an almond-shaped eye at offsets x."""
    u = np.clip(1.0 - (x / w) ** 2, 0.0, None)
    return -h * u**0.75, 0.8 * h * u**0.9


def _eyes(canvas: Canvas, rng: np.random.Generator, head: Head, f: Features) -> list[tuple[np.ndarray, int]]:
    """Both eyes (sclera, iris, pupil, upper lid line). Returns (outline px, label) per eye."""
    white = canvas.material(C.sclera(rng), texture=0.02)
    iris = canvas.material(C.iris(rng), texture=0.06)
    pupil = canvas.material(C.scale(C.iris(rng), 0.2), texture=0.02)
    liner = canvas.material(C.scale(C.hair(rng), 0.5), texture=0.02)
    gaze = rng.uniform(-0.3, 0.3) * f.eye_w
    tilt = rng.uniform(-0.12, 0.12)
    r_iris = f.eye_h * rng.uniform(1.05, 1.3)
    out = []
    for sgn, label in ((1.0, L_EYE), (-1.0, R_EYE)):
        xs = np.linspace(-f.eye_w, f.eye_w, 15)
        up, low = _eye_lids(xs, f.eye_w, f.eye_h)
        almond = np.vstack([np.stack([xs, up], 1), np.stack([xs[::-1][1:-1], low[::-1][1:-1]], 1)])

        def place(p: np.ndarray, sgn: float = sgn) -> np.ndarray:
            c, s = np.cos(sgn * tilt), np.sin(sgn * tilt)
            q = p @ np.array([[c, s], [-s, c]]) + (sgn * f.eye_x, f.eye_y)
            return head.at(q, depth=0.05)

        outline = place(almond)
        canvas.fill(outline, label, white)
        for radius, mat in ((r_iris, iris), (r_iris * 0.45, pupil)):
            disc = ellipse(gaze, 0.0, radius, radius, 24)
            disc[:, 0] = np.clip(disc[:, 0], -f.eye_w * 0.98, f.eye_w * 0.98)
            up_d, low_d = _eye_lids(disc[:, 0], f.eye_w, f.eye_h)
            disc[:, 1] = np.clip(disc[:, 1], up_d, low_d)
            canvas.fill(place(disc), label, mat)
        canvas.stroke(place(np.stack([xs, up], 1)), 0.025 * head.frame.scale, label, liner)
        out.append((outline, label))
    return out


def _brows(canvas: Canvas, rng: np.random.Generator, head: Head, f: Features, hair: C.Colour) -> None:
    colour = C.scale(hair, rng.uniform(0.5, 0.95)) if rng.uniform() < 0.8 else C.scale(C.hair(rng), 0.7)
    mat = canvas.material(colour, texture=0.05, streak=0.1)
    arch = rng.uniform(0.02, 0.08)
    drop = rng.uniform(0.0, 0.04)
    u = np.linspace(0, 1, 12)
    for sgn, label in ((1.0, L_BROW), (-1.0, R_BROW)):
        x_in, x_out = f.eye_x - f.eye_w * 0.95, f.eye_x + f.eye_w * 1.2
        centre = np.stack([sgn * (x_in + (x_out - x_in) * u), f.brow_y - arch * np.sin(np.pi * u * 0.9) + drop * u], 1)
        canvas.fill(head.at(band(centre, f.brow_t * (1.0 - 0.45 * u)), depth=0.04), label, mat)


def _mouth(canvas: Canvas, rng: np.random.Generator, head: Head, f: Features, skin: C.Colour) -> None:
    """An open mouth (inner mouth, sometimes teeth) between upper and lower lip."""
    mw = rng.uniform(0.28, 0.4)
    ow = mw * rng.uniform(0.75, 0.9)
    opening = rng.uniform(0.09, 0.17)
    upper, lower = rng.uniform(0.07, 0.12), rng.uniform(0.09, 0.15)
    smile = rng.uniform(-0.04, 0.1)
    x = np.linspace(-mw, mw, 25)
    bend = -smile * (x / mw) ** 2
    u_open = np.clip(1.0 - (x / ow) ** 2, 0.0, None) ** 0.7
    top_o, bot_o = -opening / 2 * u_open, opening / 2 * u_open
    lip_u = np.clip(1.0 - (x / mw) ** 2, 0.0, None) ** 0.6
    top = top_o - upper * lip_u * (1.0 - 0.3 * np.exp(-((x / (0.15 * mw)) ** 2)))
    bottom = bot_o + lower * lip_u
    y = f.mouth_y + bend

    def place(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        return head.at(np.stack([xs, ys], 1), depth=0.08)

    lip = C.lips(rng, skin)
    canvas.fill(place(np.r_[x, x[::-1]], np.r_[y + top, (y + top_o)[::-1]]), U_LIP, canvas.material(lip, 0.04))
    canvas.fill(
        place(np.r_[x, x[::-1]], np.r_[y + bot_o, (y + bottom)[::-1]]),
        L_LIP,
        canvas.material(C.scale(lip, rng.uniform(1.0, 1.15)), 0.04),
    )
    inner = np.abs(x) <= ow
    xi = x[inner]
    inside = C.hsv(rng.uniform(-0.03, 0.03), rng.uniform(0.4, 0.8), rng.uniform(0.1, 0.4))
    canvas.fill(
        place(np.r_[xi, xi[::-1]], np.r_[(y + top_o)[inner], (y + bot_o)[inner][::-1]]),
        MOUTH,
        canvas.material(inside, 0.03),
    )
    if rng.uniform() < 0.6:
        teeth_low = np.minimum((y + top_o)[inner] + opening * rng.uniform(0.3, 0.5), (y + bot_o)[inner])
        canvas.fill(
            place(np.r_[xi, xi[::-1]], np.r_[(y + top_o)[inner], teeth_low[::-1]]),
            MOUTH,
            canvas.material(C.sclera(rng), 0.02),
        )


def _fringe(canvas: Canvas, rng: np.random.Generator, head: Head, f: Features, style: dict) -> None:
    """Hair over the top of the forehead; the hairline stays above the brows and the ears."""
    xs = np.linspace(-1.05, 1.05, 23)
    line = rng.uniform(-0.95, -0.55) + rng.uniform(0.25, 0.75) * np.abs(xs) ** 3 + rng.uniform(-0.15, 0.15) * xs
    line += rng.uniform(-0.03, 0.03, xs.size)
    line = np.minimum(line, -0.32)
    over_brows = np.abs(xs) <= f.eye_x + f.eye_w * 1.3
    line[over_brows] = np.minimum(line[over_brows], f.brow_top())
    arc = ellipse(0.0, -0.32, 1.0 + 0.8 * style["side"], head.b + 0.9 * style["top"] - 0.27, 30, 0.0, -np.pi)
    canvas.fill(head.at(np.vstack([np.stack([xs, line], 1), arc]), bulge=0.35), HAIR, style["mat"])


def _glasses(
    canvas: Canvas, rng: np.random.Generator, head: Head, f: Features, eyes: list[tuple[np.ndarray, int]]
) -> None:
    """Frames and tinted lenses (label eye_g); the eyes stay labelled as eyes behind the lens."""
    px = head.frame.scale
    frame_w = rng.uniform(0.035, 0.065)
    lw = f.eye_w * rng.uniform(1.3, 1.6)
    room = f.eye_y - f.brow_y - f.brow_t - frame_w / 2 - 0.01  # lens top stays below the brows
    lh = max(min(rng.uniform(0.15, 0.24), room), f.eye_h * 1.3)
    power = rng.choice([2.0, 3.0, 5.0])
    frame = canvas.material(C.metal(rng), texture=0.03)
    opacity = rng.uniform(0.12, 0.45)
    for sgn in (1.0, -1.0):
        cx = sgn * f.eye_x
        lens = head.at(superellipse(cx, f.eye_y + 0.01, lw, lh, power, 40), depth=0.12)
        canvas.relabel(lens, EYE_G)
        canvas.tint(lens, opacity)
        canvas.stroke(lens, frame_w * px, EYE_G, frame, closed=True)
        arm = np.array([[cx + sgn * lw, f.eye_y - 0.02], [sgn * 1.02, f.eye_y - 0.06]])
        canvas.stroke(head.at(arm, depth=0.1), frame_w * 0.8 * px, EYE_G, frame)
    bridge = np.array([[-(f.eye_x - lw), f.eye_y - 0.03], [0.0, f.eye_y - 0.06], [f.eye_x - lw, f.eye_y - 0.03]])
    canvas.stroke(head.at(bridge, depth=0.2), frame_w * px, EYE_G, frame)
    for outline, label in eyes:
        canvas.relabel(outline, label)


def _hat(canvas: Canvas, rng: np.random.Generator, head: Head, f: Features, style: dict) -> None:
    """A beanie, a brimmed hat or a cap, sitting above the brows."""
    brim_y = rng.uniform(-1.0, min(-0.7, f.brow_top() - 0.12))
    top = -(head.b + style["top"] + rng.uniform(0.1, 0.4))
    width = 1.0 + style["side"] * rng.uniform(0.5, 1.0) + rng.uniform(0.02, 0.12)
    mat = canvas.material(C.scene(rng), texture=rng.uniform(0.03, 0.1))
    kind = rng.integers(3)
    crown = np.vstack(
        [[[width, brim_y]], ellipse(0.0, brim_y, width, brim_y - top, 30, 0.0, -np.pi), [[-width, brim_y]]]
    )
    if kind == 1:  # boxy crown
        crown = superellipse(0.0, (brim_y + top) / 2, width * 0.9, (brim_y - top) / 2, 5.0, 40)
    canvas.fill(head.at(crown, bulge=0.3), HAT, mat)
    if kind == 0:  # beanie cuff
        cuff = np.array(
            [
                [-width, brim_y - 0.22],
                [width, brim_y - 0.22],
                [width * 1.02, brim_y + 0.02],
                [-width * 1.02, brim_y + 0.02],
            ]
        )
        canvas.fill(head.at(cuff, bulge=0.3), HAT, canvas.material(C.scale(C.scene(rng), 0.9), 0.06))
    elif kind == 1:  # brim
        brim = ellipse(0.0, brim_y, width * rng.uniform(1.35, 1.8), rng.uniform(0.08, 0.2), 36)
        canvas.fill(head.at(brim, bulge=0.3), HAT, canvas.material(C.scale(canvas.materials[mat].colour, 0.85), 0.05))
    else:  # cap visor
        visor_h = max(0.08, min(0.3, f.brow_top() - 0.06 - brim_y))
        visor = ellipse(0.0, brim_y, width * 0.85, visor_h, 24, 0.0, np.pi)
        canvas.fill(
            head.at(visor, bulge=0.5, depth=0.2), HAT, canvas.material(C.scale(canvas.materials[mat].colour, 0.8), 0.05)
        )


def _earrings(canvas: Canvas, rng: np.random.Generator, head: Head, lobes: list[np.ndarray]) -> None:
    px = head.frame.scale
    mat = canvas.material(C.metal(rng), texture=0.05)
    kind = rng.integers(3)
    r = rng.uniform(0.075, 0.115) * px
    for lobe in lobes:
        x, y = float(lobe[0]), float(lobe[1])
        if kind == 0:  # ball / stud drop
            canvas.fill(ellipse(x, y + r * 0.9, r, r, 16), EAR_R, mat)
        elif kind == 1:  # hoop
            canvas.stroke(ellipse(x, y + r * 1.3, r * 1.3, r * 1.3, 20), 0.06 * px, EAR_R, mat, closed=True)
        else:  # dangle
            canvas.stroke(np.array([[x, y], [x, y + r * 1.5]]), 0.05 * px, EAR_R, mat)
            canvas.fill(ellipse(x, y + r * 2.2, r * 0.75, r, 16), EAR_R, mat)


# --- dataset -----------------------------------------------------------------------------------


def _write_sample(task: tuple[str, str, int, int, int, Framing]) -> str:
    out_dir, split, index, seed, size, framing = task
    jpeg, mask = generate_face(size, seed, split, index, framing)
    stem = f"{split}_{index:05d}"
    root = Path(out_dir) / split
    (root / "images" / f"{stem}.jpg").write_bytes(jpeg)
    write_label_png(root / "masks" / f"{stem}.png", mask)
    return stem


def generate_dataset(
    out_dir: str | Path,
    counts: dict[str, int],
    size: int = 512,
    seed: int = 0,
    threads: int = 1,
    framing: Framing = CELEBA_FRAMING,
) -> dict[str, int]:
    """Write {out_dir}/{split}/images/*.jpg and masks/*.png (test masks too), replacing old splits."""
    out_dir = Path(out_dir)
    for split in SPLITS:
        shutil.rmtree(out_dir / split, ignore_errors=True)
    tasks = []
    for split in SPLITS:
        n = int(counts.get(split, 0))
        if n:
            (out_dir / split / "images").mkdir(parents=True)
            (out_dir / split / "masks").mkdir(parents=True)
        tasks += [(str(out_dir), split, i, seed, size, framing) for i in range(n)]
    for _ in parallel_map(_write_sample, tasks, threads, "synthetic faces"):
        pass
    return {split: int(counts.get(split, 0)) for split in SPLITS}

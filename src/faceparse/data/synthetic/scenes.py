"""Scenes with known truth for faces mode: generated faces pasted into a larger photo.

Each face is a sample of :func:`faceparse.data.synthetic.faces.generate_face` (a square photo and its
mask) put into the scene by a similarity transform (scale, rotation about the crop's centre,
position); the mask is pasted the same way (nearest neighbour), so the scene's mask is the truth of
every pixel (background outside the faces' squares; a later face covers an earlier one). Each
face's landmarks (its mask's class centroids, :func:`faceparse.data.framing.mask_landmarks`) are
carried through its transform: what a perfect detector would report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from faceparse.data.framing import mask_landmarks, pixel_matrix
from faceparse.data.synthetic.faces import generate_face

__all__ = ["Placement", "Scene", "placement_matrix", "compose", "random_scene"]


@dataclass(frozen=True)
class Placement:
    """Where a face's square goes: its centre (scene pixels), its scale and its rotation (degrees,
    counter-clockwise on the screen, as ``cv2.getRotationMatrix2D``)."""

    centre: tuple[float, float]
    scale: float = 1.0
    angle: float = 0.0


@dataclass
class Scene:
    """A scene's photo (BGR), its truth mask, each face's crop -> scene matrix (2 x 3) and landmarks."""

    image: np.ndarray
    mask: np.ndarray
    matrices: list[np.ndarray]
    landmarks: list[dict[str, list[float]]]


def placement_matrix(crop_size: int, placement: Placement) -> np.ndarray:
    """The 2 x 3 affine matrix taking a ``crop_size`` square's pixel coordinates (continuous: pixel i
    spans [i, i + 1)) to the scene's for ``placement``."""
    c = crop_size / 2
    m = cv2.getRotationMatrix2D((c, c), placement.angle, placement.scale)
    m[:, 2] += np.asarray(placement.centre, np.float64) - (c, c)
    return m


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth colour field with fine noise (BGR uint8)."""
    coarse = rng.uniform(40, 215, (4, 5, 3)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field += rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return np.clip(field, 0, 255).astype(np.uint8)


def compose(
    faces: Sequence[tuple[np.ndarray, np.ndarray]],
    placements: Sequence[Placement],
    size: tuple[int, int],
    seed: int = 0,
) -> Scene:
    """A ``size`` (w, h) scene of ``faces`` ((BGR, mask) squares) at ``placements``, in that order."""
    w, h = size
    image = _background(np.random.default_rng(seed), w, h)
    mask = np.zeros((h, w), np.uint8)
    matrices, landmarks = [], []
    for (bgr, labels), placement in zip(faces, placements, strict=True):
        side = labels.shape[0]
        m = placement_matrix(side, placement)
        cv_m = pixel_matrix(m)
        warped = cv2.warpAffine(bgr, cv_m, (w, h), flags=cv2.INTER_LINEAR)
        cover = cv2.warpAffine(np.ones((side, side), np.float32), cv_m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        image = (image * (1 - cover) + warped * cover + 0.5).astype(np.uint8)
        inside = cv2.warpAffine(np.ones((side, side), np.uint8), cv_m, (w, h), flags=cv2.INTER_NEAREST) > 0
        pasted = cv2.warpAffine(labels, cv_m, (w, h), flags=cv2.INTER_NEAREST)
        mask[inside] = pasted[inside]
        points = mask_landmarks(labels)
        landmarks.append({name: [float(v) for v in m @ (x * side, y * side, 1.0)] for name, (x, y) in points.items()})
        matrices.append(m)
    return Scene(image, mask, matrices, landmarks)


def random_scene(
    seed: int,
    size: tuple[int, int],
    faces: int,
    *,
    face_size: int = 512,
    scales: tuple[float, float] = (0.5, 1.0),
    angles: tuple[float, float] = (-30.0, 30.0),
) -> Scene:
    """``faces`` generated faces (val split samples of ``seed``) in a grid of cells over a ``size``
    scene, each at a random scale (within its cell) and rotation about its centre."""
    rng = np.random.default_rng([seed, 7])
    w, h = size
    cols = int(np.ceil(np.sqrt(faces * w / h)))
    rows = int(np.ceil(faces / cols))
    cell = min(w / cols, h / rows)
    samples, placements = [], []
    for i in range(faces):
        jpeg, labels = generate_face(face_size, seed, "val", i)
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        angle = float(rng.uniform(*angles))
        # the rotated square's extent is side * (|cos| + |sin|): keep it inside its cell
        fit = cell / (face_size * (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle)))))
        scale = float(min(rng.uniform(*scales), fit))
        r, c = divmod(i, cols)
        centre = ((c + 0.5) * w / cols, (r + 0.5) * h / rows)
        samples.append((bgr, labels))
        placements.append(Placement(centre, scale, angle))
    return compose(samples, placements, size, seed)

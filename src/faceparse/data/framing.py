"""The `framing` step: where the training faces' eyes, nose and mouth are, measured from the masks.

A model parses faces well at the framing it was trained on. To parse a face in an ordinary photo,
``faceparse-parse --faces`` warps the face so that its landmarks land where the training data's
were (:mod:`faceparse.predict.faces`); this step measures those places: for every training mask,
the centroid of each landmark's classes (the pixel centres' mean, in units of the mask's width and
height), then the mean over the masks that hold the class. With ``flip`` the model also trains on
the mirrored copies (labels swapped), whose centroids are the originals' mirrored: they are
counted too, from the originals, so the framing of a flip-trained model is left/right symmetric.

The record (``results/data/framing.json``) travels with the model: into the ONNX metadata and the
solution's ``solution.json``. Cost: one PNG decode and one ``bincount`` per mask, in processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceparse.labels import CLASSES, NUM_CLASSES
from faceparse.parallel import parallel_map
from faceparse.records import read_mask, split_files, write_json

FORMAT = "faceparse-framing-1"

# Each landmark and the classes whose pixels it is the centroid of. The person's right eye (r_eye)
# is on the image's left; the mouth is the opening and both lips.
LANDMARKS: dict[str, tuple[int, ...]] = {
    "r_eye": (CLASSES.index("r_eye"),),
    "l_eye": (CLASSES.index("l_eye"),),
    "nose": (CLASSES.index("nose"),),
    "mouth": (CLASSES.index("mouth"), CLASSES.index("u_lip"), CLASSES.index("l_lip")),
}
# A mirrored mask's landmark is the original's other one, mirrored.
MIRRORED = {"r_eye": "l_eye", "l_eye": "r_eye", "nose": "nose", "mouth": "mouth"}

__all__ = ["FORMAT", "LANDMARKS", "MIRRORED", "mask_landmarks", "measure_framing", "framing_step", "pixel_matrix"]


def mask_landmarks(mask: np.ndarray) -> dict[str, tuple[float, float]]:
    """Each landmark's class centroid in ``mask`` as (x, y) in units of its width and height (pixel
    centres at (i + 0.5) / size); a landmark whose classes are absent is left out."""
    h, w = mask.shape
    counts = np.bincount(mask.ravel(), minlength=256)[:NUM_CLASSES]
    xs = np.bincount(mask.ravel(), np.tile(np.arange(w, dtype=np.float64), h), minlength=256)[:NUM_CLASSES]
    ys = np.bincount(mask.ravel(), np.repeat(np.arange(h, dtype=np.float64), w), minlength=256)[:NUM_CLASSES]
    points = {}
    for name, classes in LANDMARKS.items():
        n = counts[list(classes)].sum()
        if n:
            points[name] = (
                (xs[list(classes)].sum() / n + 0.5) / w,
                (ys[list(classes)].sum() / n + 0.5) / h,
            )
    return points


def _measure(path: str) -> tuple[dict[str, tuple[float, float]], tuple[int, int]]:
    mask = read_mask(path)
    return mask_landmarks(mask), mask.shape[::-1]


def measure_framing(masks: Sequence[str | Path], *, flip: bool, threads: int = 1) -> dict:
    """The framing record of ``masks`` (see the module's docstring); ``flip``: count each mask's
    mirrored copy too. ``size`` is the masks' most common (width, height), the crop a face is warped
    to; ``points`` are in units of it."""
    if not masks:
        raise ValueError("no training masks to measure the framing from")
    sums = {name: np.zeros(2) for name in LANDMARKS}
    counted = dict.fromkeys(LANDMARKS, 0)
    sizes: Counter = Counter()
    for points, size in parallel_map(_measure, [str(m) for m in masks], threads, "framing", chunksize=64):
        sizes[size] += 1
        for name, (x, y) in points.items():
            sums[name] += (x, y)
            counted[name] += 1
            if flip:
                sums[MIRRORED[name]] += (1.0 - x, y)
                counted[MIRRORED[name]] += 1
    missing = [name for name, n in counted.items() if not n]
    if missing:
        raise ValueError(
            f"no training mask holds {', '.join(missing)} (classes "
            f"{', '.join(CLASSES[c] for name in missing for c in LANDMARKS[name])}): the framing of a face "
            "cannot be measured without them"
        )
    return {
        "format": FORMAT,
        "size": list(sizes.most_common(1)[0][0]),
        "points": {name: [float(v) for v in sums[name] / counted[name]] for name in LANDMARKS},
        "counted": counted,
        "masks": len(masks),
        "flip": bool(flip),
        "units": "fractions of the mask's width and height, pixel centres at (i + 0.5) / size",
        "classes": {name: [CLASSES[c] for c in classes] for name, classes in LANDMARKS.items()},
    }


def framing_step(
    validation_json: str | Path, out_json: str | Path, *, splits: Sequence[str], flip: bool, threads: int = 1
) -> dict:
    """The step: the framing of the training splits' masks (and their mirrored copies with ``flip``)."""
    masks = [m for split in splits for m in split_files(validation_json, split, need_masks=True).masks]
    record = measure_framing(masks, flip=flip, threads=threads)
    record["splits"] = list(splits)
    write_json(out_json, record)
    return record


def pixel_matrix(m: np.ndarray) -> np.ndarray:
    """A 2 x 3 affine matrix between continuous pixel coordinates (pixel i spans [i, i + 1), as the
    framing's points are) made one between OpenCV's pixel indices (pixel i centred at i), for
    ``cv2.warpAffine``: the same map, written for the other convention."""
    out = np.array(m, np.float64)
    out[:, 2] += out[:, :2] @ (0.5, 0.5) - 0.5
    return out

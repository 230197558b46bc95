"""Face detectors with landmarks for faces mode: which finds the faces, how well it places eyes and mouth, how fast.

Candidates (each runs on CPU, its weights inside its PyPI wheel: nothing is downloaded at run time):

- ``haar``            OpenCV's Haar cascades (``cv2.data.haarcascades``, in opencv-python): face boxes
                      from ``haarcascade_frontalface_default.xml``, eyes from ``haarcascade_eye.xml`` in
                      the upper half of each box (the largest hit in the box's left half is ``r_eye``,
                      the person's right eye; in its right half ``l_eye``); no nose or mouth. Grey
                      levels equalised; scale factor 1.1, min neighbours 5 for faces, 3 (OpenCV's
                      default) for eyes;
- ``mediapipe short`` / ``mediapipe full``  mediapipe's legacy ``solutions.face_detection.FaceDetection``
                      (BlazeFace), ``model_selection`` 0 (short range) and 1 (full range),
                      ``min_detection_confidence`` 0.5; keypoints 0-3: right eye, left eye, nose tip,
                      mouth centre;
- ``faceparse (mediapipe full + tiles)``  what ``faceparse-parse --faces`` runs
                      (:class:`faceparse.predict.faces.FaceDetector`): the full-range model on the
                      whole photo and, over 1280 pixels on a side, on overlapping tiles;
- ``mtcnn``           facenet-pytorch's ``MTCNN(keep_all=True)``: eyes, nose tip, the mouth's corners
                      (their mean is the mouth centre).

A candidate whose import fails is reported as "not installed" and skipped.

Image sets:

- ``grace_hopper``    matplotlib's sample portrait (512 x 600, one real face), against hand-placed eye
                      centres (:data:`GRACE_HOPPER_EYES`);
- ``scenes 1024x768`` ``--scenes`` synthetic scenes of 1024 x 768, 4 faces each at scales 0.5-1.0
                      (:func:`faceparse.data.synthetic.scenes.random_scene`, seeds 0..n-1);
- ``big 4000x3000``  ``--big`` synthetic scenes of 4000 x 3000, 6 faces each at scales 1.0-2.5.

The synthetic faces are generated at 512 px (inter-ocular distance ~100 px at scale 1) and rotated
by up to +-30 degrees; their truth is the class centroids of their masks. A detection matches a true
face when both its eyes lie within 0.5 x the true inter-ocular distance (IOD) of the true eyes
(one-to-one, closest pairs first); unmatched detections (including boxes without two eyes) are false
positives. Errors of matched faces are fractions of the IOD: eyes (mean of the two) and mouth
against the mask centroids; the nose separately, as detectors report the nose *tip* and the truth is
the nose region's centroid. Time is per photo (BGR array in, landmarks out): the median over the
set (grace_hopper: over 5 calls), after :data:`WARMUP` calls on its first photo; the first of those
is reported too (set-up for that image size included; for grace_hopper, the set run first, also
the detector's first call in the process).

Prints markdown tables; writes JSON (``--out``). Run from the repository root; ``make setup``
installs mediapipe, and facenet-pytorch (not a dependency of the project) goes into a scratch
folder without its dependencies, which pin an old torch::

    .venv/bin/python -m pip install --no-deps --target /tmp/fnp facenet-pytorch==2.6.0
    PYTHONPATH=/tmp/fnp .venv/bin/python bench/bench_detectors.py
    .venv/bin/python bench/bench_detectors.py --scenes 5 --big 1   # without MTCNN
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

Point = tuple[float, float]
Detect = Callable[[np.ndarray], list["Detection"]]

# Untimed calls before timing: MTCNN's first calls on CPU take 1-3 s each (torch sets up its kernels
# for each new input shape of its image pyramid) and settle by the third or fourth.
WARMUP = 3

# Hand truth for grace_hopper.jpg (pixel-index coordinates: pixel (0, 0) centred at (0, 0)): the centre
# of each dark iris/pupil, read from 5x and 12x zoomed crops with a pixel grid and checked against the
# centroid of the darkest 12% of grey levels in a 34 x 20 window around each eye ((222.2, 188.4) and
# (304.1, 186.2)), then marked on a zoomed crop and inspected. The subject looks slightly to her left,
# so the irises sit a little off the centres of the eye openings. IOD ~81 px.
GRACE_HOPPER_EYES: dict[str, Point] = {"r_eye": (223.0, 189.0), "l_eye": (304.0, 186.0)}

# What each candidate adds to the lock (which pins numpy 1.26.4, protobuf 7.36.2, opencv-python 4.11,
# torch 2.14.1, torchvision 0.29.1, pillow 13.0.0): wheel size from `pip download --no-deps` (Linux x86_64,
# CPython 3.11) and the wheel METADATA's Requires-Dist.
WHEELS: dict[str, dict[str, Any]] = {
    "haar": {"wheel": "none (in opencv-python 4.11.0.86)", "bytes": 0, "requires": []},
    "mediapipe": {
        "wheel": "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
        "bytes": 35_622_638,
        "requires": [
            "absl-py",
            "attrs>=19.1.0",
            "flatbuffers>=2.0",
            "jax",
            "jaxlib",
            "matplotlib",
            "numpy<2",
            "opencv-contrib-python",
            "protobuf<5,>=4.25.3",
            "sounddevice>=0.4.4",
            "sentencepiece",
        ],
    },
    "mtcnn": {
        "wheel": "facenet_pytorch-2.6.0-py3-none-any.whl",
        "bytes": 1_881_930,
        "requires": [
            "numpy<2.0.0,>=1.24.0",
            "Pillow<10.3.0,>=10.2.0",
            "requests<3.0.0,>=2.0.0",
            "torch<2.3.0,>=2.2.0",
            "torchvision<0.18.0,>=0.17.0",
            "tqdm<5.0.0,>=4.0.0",
        ],
    },
}


@dataclass
class Detection:
    """One face: its box (x0, y0, x1, y1), score and landmarks (any of r_eye, l_eye, nose, mouth)."""

    box: tuple[float, float, float, float]
    score: float
    points: dict[str, Point] = field(default_factory=dict)


@dataclass
class Photo:
    """A test photo (BGR) and its true faces' landmarks (scene pixels)."""

    name: str
    image: np.ndarray
    truth: list[dict[str, Point]]


# --- candidates ----------------------------------------------------------------------------------


def haar() -> Detect:
    """OpenCV's frontal-face cascade, then the eye cascade in the upper half of each face."""
    faces = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    eyes = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")

    def detect(bgr: np.ndarray) -> list[Detection]:
        grey = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        out = []
        for x, y, w, h in faces.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30)):
            upper = grey[y : y + h // 2, x : x + w]
            found = eyes.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=3, minSize=(w // 10, w // 10))
            centres = [(x + ex + ew / 2, y + ey + eh / 2, ew * eh) for ex, ey, ew, eh in found]
            # the largest eye in each half of the box (the cascade often fires twice on one eye)
            right = max((c for c in centres if c[0] < x + w / 2), key=lambda c: c[2], default=None)
            left = max((c for c in centres if c[0] >= x + w / 2), key=lambda c: c[2], default=None)
            points: dict[str, Point] = {}
            if right is not None and left is not None:
                points = {"r_eye": right[:2], "l_eye": left[:2]}
            out.append(Detection((float(x), float(y), float(x + w), float(y + h)), 1.0, points))
        return out

    return detect


def mediapipe(model_selection: int) -> Detect:
    """mediapipe's legacy BlazeFace solution; keypoints are relative to the image's size."""
    from mediapipe.python.solutions.face_detection import FaceDetection

    solution = FaceDetection(model_selection=model_selection, min_detection_confidence=0.5)
    names = ("r_eye", "l_eye", "nose", "mouth")

    def detect(bgr: np.ndarray) -> list[Detection]:
        h, w = bgr.shape[:2]
        result = solution.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        out = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            box = (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)
            keys = d.location_data.relative_keypoints
            points = {name: (k.x * w, k.y * h) for name, k in zip(names, keys)}
            out.append(Detection(box, float(d.score[0]), points))
        return out

    return detect


def mtcnn() -> Detect:
    """facenet-pytorch's MTCNN on CPU; the mouth centre is the mean of its two corners."""
    from facenet_pytorch import MTCNN
    from PIL import Image

    model = MTCNN(keep_all=True, device="cpu")

    def detect(bgr: np.ndarray) -> list[Detection]:
        boxes, scores, marks = model.detect(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), landmarks=True)
        if boxes is None:
            return []
        out = []
        for box, score, m in zip(boxes, scores, marks):
            m = np.asarray(m, np.float64)
            points = {"r_eye": tuple(m[0]), "l_eye": tuple(m[1]), "nose": tuple(m[2]), "mouth": tuple(m[3:5].mean(0))}
            out.append(Detection(tuple(float(v) for v in box), float(score), points))
        return out

    return detect


def faceparse_detector() -> Detect:
    """What faces mode runs: mediapipe's full-range model on the whole photo and, on a photo over 1280
    pixels on a side, on overlapping tiles too (:class:`faceparse.predict.faces.FaceDetector`)."""
    from faceparse.predict.faces import FaceDetector

    detector = FaceDetector()

    def detect(bgr: np.ndarray) -> list[Detection]:
        return [Detection(f.box, f.score, dict(f.landmarks)) for f in detector.detect(bgr)]

    return detect


CANDIDATES: dict[str, tuple[str, Callable[[], Detect]]] = {
    "haar": ("haar", haar),
    "mediapipe short": ("mediapipe", lambda: mediapipe(0)),
    "mediapipe full": ("mediapipe", lambda: mediapipe(1)),
    "faceparse (mediapipe full + tiles)": ("mediapipe", faceparse_detector),
    "mtcnn": ("mtcnn", mtcnn),
}


# --- image sets and scoring ----------------------------------------------------------------------


def grace_hopper() -> list[Photo]:
    """matplotlib's sample portrait with its hand-placed eyes."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [Photo("grace_hopper", cv2.imread(str(path), cv2.IMREAD_COLOR), [dict(GRACE_HOPPER_EYES)])]


def scenes(count: int, size: tuple[int, int], faces: int, scales: tuple[float, float]) -> list[Photo]:
    """``count`` synthetic scenes (seeds 0..count-1) with their faces' mask-centroid landmarks."""
    from faceparse.data.synthetic.scenes import random_scene

    out = []
    for seed in range(count):
        s = random_scene(seed, size, faces, scales=scales, angles=(-30.0, 30.0))
        truth = [{k: (float(v[0]), float(v[1])) for k, v in face.items()} for face in s.landmarks]
        out.append(Photo(f"scene{seed}_{size[0]}x{size[1]}", s.image, truth))
    return out


def _dist(a: Point, b: Point) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def match(detections: list[Detection], truth: list[dict[str, Point]]) -> list[tuple[Detection, dict[str, Point]]]:
    """One-to-one pairs whose eyes are both within 0.5 x the true IOD, closest (mean eye error) first."""
    pairs = []
    for i, d in enumerate(detections):
        if "r_eye" not in d.points or "l_eye" not in d.points:
            continue
        for j, t in enumerate(truth):
            iod = _dist(t["r_eye"], t["l_eye"])
            errors = [_dist(d.points[e], t[e]) for e in ("r_eye", "l_eye")]
            if max(errors) <= 0.5 * iod:
                pairs.append((sum(errors) / 2 / iod, i, j))
    used_d: set[int] = set()
    used_t: set[int] = set()
    out = []
    for _, i, j in sorted(pairs):
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            out.append((detections[i], truth[j]))
    return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate(detect: Detect, photos: list[Photo], repeats: int = 1) -> dict[str, Any]:
    """Detect on every photo (after ``WARMUP`` calls on the first, each photo timed ``repeats`` times);
    counts, relative errors, the median time and the first call's time."""
    t0 = time.perf_counter()
    detect(photos[0].image)
    first = time.perf_counter() - t0
    for _ in range(WARMUP - 1):
        detect(photos[0].image)
    tp = fp = misses = no_eyes = 0
    eye, mouth, nose, eye_px, times = [], [], [], [], []
    per_photo = []
    for photo in photos:
        for _ in range(repeats):
            t0 = time.perf_counter()
            found = detect(photo.image)
            times.append(time.perf_counter() - t0)
        pairs = match(found, photo.truth)
        tp += len(pairs)
        fp += len(found) - len(pairs)
        misses += len(photo.truth) - len(pairs)
        no_eyes += sum("r_eye" not in d.points for d in found)
        for d, t in pairs:
            iod = _dist(t["r_eye"], t["l_eye"])
            px = (_dist(d.points["r_eye"], t["r_eye"]) + _dist(d.points["l_eye"], t["l_eye"])) / 2
            eye_px.append(px)
            eye.append(px / iod)
            for name, errors in (("mouth", mouth), ("nose", nose)):
                if name in d.points and name in t:
                    errors.append(_dist(d.points[name], t[name]) / iod)
        per_photo.append(
            {
                "photo": photo.name,
                "faces": len(photo.truth),
                "detections": [asdict(d) for d in found],
                "matched": len(pairs),
                "seconds": statistics.median(times[-repeats:]),
            }
        )
    return {
        "photos": len(photos),
        "faces": sum(len(p.truth) for p in photos),
        "tp": tp,
        "misses": misses,
        "fp": fp,
        "boxes_without_eyes": no_eyes,
        "eye_error_iod": _mean(eye),
        "mouth_error_iod": _mean(mouth),
        "nose_error_iod": _mean(nose),
        "eye_error_px": _mean(eye_px),
        "median_seconds": statistics.median(times),
        "first_call_seconds": first,
        "per_photo": per_photo,
    }


# --- report --------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table: one row per candidate and image set."""
    head = "| candidate | set | photos | faces | found (TP) | missed | FP | eye err /IOD | mouth err /IOD "
    head += "| nose tip-centroid /IOD | eye err px | ms/photo (median) | first call ms |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, sets in results.items():
        if "error" in sets:
            lines.append(f"| {name} | {sets['error']} |" + " |" * 11)
            continue
        for set_name, r in sets.items():
            found = f"{r['tp']}" + (f" ({r['boxes_without_eyes']} boxes w/o eyes)" if r["boxes_without_eyes"] else "")
            lines.append(
                f"| {name} | {set_name} | {r['photos']} | {r['faces']} | {found} | {r['misses']} | {r['fp']} "
                f"| {_f(r['eye_error_iod'])} | {_f(r['mouth_error_iod'])} | {_f(r['nose_error_iod'])} "
                f"| {_f(r['eye_error_px'], 1)} | {r['median_seconds'] * 1000:.0f} "
                f"| {r['first_call_seconds'] * 1000:.0f} |"
            )
    return "\n".join(lines)


def wheels_table() -> str:
    """What each candidate adds: its wheel and declared dependencies."""
    lines = ["| candidate | wheel | size | Requires-Dist |", "|---|---|---|---|"]
    for name, w in WHEELS.items():
        size = f"{w['bytes'] / 2**20:.1f} MiB" if w["bytes"] else "0"
        lines.append(f"| {name} | {w['wheel']} | {size} | {', '.join(w['requires']) or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenes", type=int, default=20, help="1024x768 scenes, 4 faces each (default 20)")
    parser.add_argument("--big", type=int, default=3, help="4000x3000 scenes, 6 faces each (default 3)")
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_detectors.json"))
    args = parser.parse_args(argv)

    sets = {"grace_hopper": grace_hopper()}
    if args.scenes:
        sets["scenes 1024x768"] = scenes(args.scenes, (1024, 768), 4, (0.5, 1.0))
    if args.big:
        sets["big 4000x3000"] = scenes(args.big, (4000, 3000), 6, (1.0, 2.5))

    results: dict[str, dict[str, Any]] = {}
    for name in args.candidates:
        _, make = CANDIDATES[name]
        try:
            detect = make()
        except ImportError as e:
            results[name] = {"error": f"not installed ({e})"}
            continue
        results[name] = {}
        for set_name, photos in sets.items():
            # a single photo is timed 5 times: one call's time is too noisy on a shared machine
            results[name][set_name] = evaluate(detect, photos, 5 if len(photos) == 1 else 1)
            print(f"{name}: {set_name} done", file=sys.stderr, flush=True)

    gh = {
        name: {
            "exactly_one_face": len(r["grace_hopper"]["per_photo"][0]["detections"]) == 1,
            "eye_error_px": r["grace_hopper"]["eye_error_px"],
        }
        for name, r in results.items()
        if "grace_hopper" in r
    }
    print(table(results))
    print()
    print(
        "grace_hopper: "
        + "; ".join(
            f"{n}: one face {v['exactly_one_face']}, eye error {_f(v['eye_error_px'], 1)} px" for n, v in gh.items()
        )
    )
    print()
    print(wheels_table())

    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "opencv": cv2.__version__,
        "grace_hopper_eyes": GRACE_HOPPER_EYES,
        "sets": {k: [p.name for p in v] for k, v in sets.items()},
        "grace_hopper": gh,
        "results": results,
        "wheels": WHEELS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

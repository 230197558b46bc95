"""Faces mode of ``faceparse-parse``: find every face, warp it to the training framing, parse, paste back.

A model parses faces at the framing it was trained on: the places of the eyes and mouth that the
framing step measured in the training masks (:mod:`faceparse.data.framing`), which travel with the
model. For each face of a photo:

1. **landmarks**: the built-in detector's (:class:`FaceDetector`: MediaPipe's full-range BlazeFace,
   whose weights ship inside its wheel; large photos are also searched in overlapping tiles), or
   the user's (``--landmarks FILE``, :func:`read_landmarks`);
2. **align**: the similarity transform (scale, rotation, shift) that takes the face's eyes and
   mouth closest, in least squares, to the framing's (:func:`similarity`) - the nose is not used:
   a detector's nose point is the tip, the framing's the middle of the nose class;
3. **parse**: the warped square (the framing's size, bilinear, edges replicated) through the
   model with its TTA, as a photo is parsed (:meth:`faceparse.predict.photo_parser.Parser.probabilities`);
4. **paste back**: the class probabilities warped back by the inverse transform (bilinear), in
   row strips of the face's footprint, and argmaxed there.

Combining: a pixel is background unless a face's square covers it and that face gives it a
class other than background; where several faces' squares overlap, the face whose class is the
more probable there wins. A photo with no face (or none kept) is all background and listed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceparse.data.framing import pixel_matrix
from faceparse.labels import NUM_CLASSES
from faceparse.predict.photo_parser import STRIP_VALUES, ModelError, Parser

# The landmarks the alignment fits (the person's right eye is on the image's left).
ALIGN_POINTS = ("r_eye", "l_eye", "mouth")
# Landmarks a face may carry: the fitted ones and the nose (reported, not fitted).
POINTS = ("r_eye", "l_eye", "nose", "mouth")

__all__ = [
    "ALIGN_POINTS",
    "POINTS",
    "Face",
    "LandmarksError",
    "similarity",
    "read_landmarks",
    "FaceDetector",
    "Framing",
    "FaceParser",
    "FacesMode",
]


class LandmarksError(ValueError):
    """A ``--landmarks`` file that cannot be used (one line, exit status 2)."""


@dataclass
class Face:
    """A face in a photo: its landmarks (photo pixels, continuous: pixel i spans [i, i + 1)), its box
    (x0, y0, x1, y1) and score when a detector found it."""

    landmarks: dict[str, tuple[float, float]]
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    source: str = "detector"


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity matrix (scale, rotation, shift; no reflection) taking the (n, 2) points
    ``src`` closest to ``dst`` in least squares."""
    a = np.zeros((2 * len(src), 4))
    a[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))])
    a[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))])
    (c, s, tx, ty), *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    return np.array([[c, -s, tx], [s, c, ty]])


# ---------------------------------------------------------------------------
# Landmarks given by the user


def _point(value, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    ):
        raise LandmarksError(f"{where}: expected [x, y] (two finite numbers, photo pixels), got {value!r}")
    return float(value[0]), float(value[1])


def read_landmarks(path: str | Path) -> dict[str, list[Face]]:
    """A landmarks file: ``{"photo.jpg": [{"r_eye": [x, y], "l_eye": [x, y], "mouth": [x, y],
    "nose": [x, y]}, ...], ...}`` - per photo (its file name), a list of faces; ``nose`` is optional;
    ``r_eye`` is the person's right eye (on the image's left); x, y in the photo's pixels as it is
    shown (after its EXIF orientation), the top-left corner of the photo at (0, 0)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise LandmarksError(f"--landmarks {path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise LandmarksError(f"--landmarks {path}: expected an object of photo name -> list of faces")
    faces: dict[str, list[Face]] = {}
    for name, entries in data.items():
        if not isinstance(entries, list):
            raise LandmarksError(f"--landmarks {path}: {name}: expected a list of faces, got {type(entries).__name__}")
        faces[name] = []
        for i, entry in enumerate(entries):
            where = f"--landmarks {path}: {name} face {i}"
            if not isinstance(entry, dict):
                raise LandmarksError(f"{where}: expected an object of landmark -> [x, y]")
            missing = [p for p in ALIGN_POINTS if p not in entry]
            unknown = sorted(set(entry) - set(POINTS))
            if missing or unknown:
                raise LandmarksError(
                    f"{where}: "
                    + "; ".join(
                        part
                        for part in (
                            f"missing {', '.join(missing)}" if missing else "",
                            f"unknown {', '.join(unknown)} (known: {', '.join(POINTS)})" if unknown else "",
                        )
                        if part
                    )
                )
            points = {p: _point(entry[p], f"{where} {p}") for p in POINTS if p in entry}
            faces[name].append(Face(points, source="landmarks file"))
    return faces


# ---------------------------------------------------------------------------
# The built-in detector


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """MediaPipe's native code writes to file descriptor 2 on import and on its first graph (absl,
    TensorFlow Lite's delegate, a protobuf warning): kept off the user's terminal."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _tiles(w: int, h: int, side: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Square windows of ``side`` (clipped to the photo) covering it, overlapping by ``overlap``."""
    step = max(1, int(side * (1 - overlap)))

    def starts(n: int) -> list[int]:
        if n <= side:
            return [0]
        return sorted({*range(0, n - side, step), n - side})

    return [(x, y, min(x + side, w), min(y + side, h)) for y in starts(h) for x in starts(w)]


class FaceDetector:
    """MediaPipe's full-range face detector (BlazeFace; box, score and six keypoints, of which the
    eyes, the nose tip and the mouth centre are used), run on the whole photo and, on a photo over
    :attr:`TILE` pixels on a side, also on overlapping square tiles of :attr:`TILE` pixels, then of
    twice that, and so on while a tile is smaller than the photo - the detector sees its input at
    192 x 192, where a face of a 12 MP group photo is a few pixels, and a tile holds whole only the
    faces up to a quarter of its side; detections of one face (boxes overlapping by more than
    :attr:`SAME_FACE` IoU) keep the best."""

    TILE = 1280
    SAME_FACE = 0.3

    def __init__(self, min_score: float = 0.5):
        try:
            with _quiet_stderr():
                from mediapipe.python.solutions import face_detection
        except ImportError as err:
            raise ModelError(
                f"faces mode needs mediapipe (installed by make setup: {err}); or give --landmarks FILE"
            ) from err
        self.min_score = float(min_score)
        self._module = face_detection
        self._graph = None
        self.description = f"MediaPipe face detection, full range, score >= {self.min_score:g}"

    def _detect(self, rgb: np.ndarray, x0: int, y0: int) -> list[Face]:
        if self._graph is None:
            with _quiet_stderr():
                self._graph = self._module.FaceDetection(model_selection=1, min_detection_confidence=self.min_score)
        h, w = rgb.shape[:2]
        with _quiet_stderr():  # TensorFlow Lite's and absl's notes on the first run
            result = self._graph.process(rgb)
        faces = []
        for det in result.detections or []:
            box = det.location_data.relative_bounding_box
            kp = det.location_data.relative_keypoints
            points = {
                name: (x0 + kp[i].x * w, y0 + kp[i].y * h) for i, name in enumerate(("r_eye", "l_eye", "nose", "mouth"))
            }
            faces.append(
                Face(
                    points,
                    (
                        x0 + box.xmin * w,
                        y0 + box.ymin * h,
                        x0 + (box.xmin + box.width) * w,
                        y0 + (box.ymin + box.height) * h,
                    ),
                    float(det.score[0]),
                )
            )
        return faces

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """Every face found in a BGR photo, best score first."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        found = self._detect(rgb, 0, 0)
        side = self.TILE
        while side < max(h, w):  # a face a quarter of a tile's side lies whole in one of its tiles
            for x0, y0, x1, y1 in _tiles(w, h, side):
                found += self._detect(np.ascontiguousarray(rgb[y0:y1, x0:x1]), x0, y0)
            side *= 2
        kept: list[Face] = []
        for face in sorted(found, key=lambda f: -f.score):
            if all(_iou(face.box, k.box) <= self.SAME_FACE for k in kept):
                kept.append(face)
        return kept

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


# ---------------------------------------------------------------------------
# Alignment, parsing and pasting back


@dataclass(frozen=True)
class Framing:
    """The training framing (a framing record of :mod:`faceparse.data.framing`): the square crop's
    size and the landmarks' places in it (crop pixels, continuous)."""

    size: tuple[int, int]
    points: dict[str, tuple[float, float]]
    record: dict = field(repr=False, compare=False)

    @classmethod
    def from_record(cls, record: dict, where: str) -> Framing:
        try:
            w, h = (int(v) for v in record["size"])
            points = {p: (float(record["points"][p][0]) * w, float(record["points"][p][1]) * h) for p in ALIGN_POINTS}
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"{where}: not a framing record of the framing step ({err!r})") from err
        return cls((w, h), points, record)

    @classmethod
    def read(cls, path: str | Path) -> Framing:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ModelError(f"--framing {path}: not a readable framing record ({err})") from err
        return cls.from_record(record, f"--framing {path}")


class FaceParser:
    """``parse(bgr, faces) -> (labels, records)``: the labels of every face in ``faces`` pasted into
    one (H, W) mask, and per face what was done (see :meth:`parse`)."""

    def __init__(self, parser: Parser, framing: Framing, *, min_size: float = 0.0, largest: bool = False):
        self.parser = parser
        self.framing = framing
        self.min_size = float(min_size)
        self.largest = bool(largest)

    def _fitted_points(self, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The face's eyes and mouth (photo) and the framing's (crop), as (3, 2) arrays."""
        src = np.array([face.landmarks[p] for p in ALIGN_POINTS], np.float64)
        dst = np.array([self.framing.points[p] for p in ALIGN_POINTS], np.float64)
        return src, dst

    def transform(self, face: Face) -> np.ndarray | None:
        """The photo -> crop similarity of ``face`` (continuous coordinates); None when its eyes, or
        an eye and the mouth, are less than a pixel apart (no transform to fit)."""
        src, dst = self._fitted_points(face)
        if min(np.hypot(*(src[1] - src[0])), np.hypot(*(src[2] - src[0]))) < 1:
            return None
        return similarity(src, dst)

    def face_size(self, m: np.ndarray) -> float:
        """The side of a face's square in the photo (photo pixels): the framing's size over the scale."""
        return max(self.framing.size) / math.hypot(m[0, 0], m[1, 0])

    def crop(self, bgr: np.ndarray, m: np.ndarray) -> np.ndarray:
        """The face's square at the training framing (bilinear; outside the photo: its edge repeated)."""
        return cv2.warpAffine(
            bgr, pixel_matrix(m), self.framing.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def _footprint(self, m: np.ndarray, h: int, w: int) -> tuple[int, int, int, int] | None:
        """The photo pixels (x0, y0, x1, y1) whose centres may fall inside the face's square."""
        cw, ch = self.framing.size
        corners = np.array([[0, 0, 1], [cw, 0, 1], [0, ch, 1], [cw, ch, 1]], np.float64)
        corners = corners @ cv2.invertAffineTransform(m).T
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def paste(self, probs: np.ndarray, m: np.ndarray, labels: np.ndarray, best: np.ndarray) -> None:
        """Warp a face's (19, h, w) crop probabilities back into the photo's ``labels`` where they
        give a class other than background more probable than ``best`` (updated), in row strips."""
        box = self._footprint(m, *labels.shape)
        if box is None:
            return
        x0, y0, x1, y1 = box
        cw, ch = self.framing.size
        planes = np.ascontiguousarray(probs.transpose(1, 2, 0))
        ones = np.ones((ch, cw), np.uint8)
        step = max(1, STRIP_VALUES // (NUM_CLASSES * (x1 - x0)))
        for ys in range(y0, y1, step):
            ye = min(ys + step, y1)
            # strip pixel (i, j) is photo pixel (x0 + i, ys + j): strip -> crop, in OpenCV's pixel indices
            shift = np.array([[1, 0, x0], [0, 1, ys], [0, 0, 1]], np.float64)
            to_crop = pixel_matrix(m) @ shift
            size = (x1 - x0, ye - ys)
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            strip = cv2.warpAffine(planes, to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
            inside = cv2.warpAffine(ones, to_crop, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
            strip = strip.reshape(ye - ys, x1 - x0, NUM_CLASSES)
            cls = strip.argmax(axis=2)
            conf = np.take_along_axis(strip, cls[..., None], axis=2)[..., 0]
            win = inside & (cls != 0) & (conf > best[ys:ye, x0:x1])
            labels[ys:ye, x0:x1][win] = cls[win]
            best[ys:ye, x0:x1][win] = conf[win]

    def record(self, face: Face, m: np.ndarray | None) -> dict:
        """What parse.json says of a face aligned by ``m`` (None: it cannot be), before it is parsed."""
        found = {
            "box": None if face.box is None else [round(v, 2) for v in face.box],
            "landmarks": {p: [round(v, 2) for v in xy] for p, xy in face.landmarks.items()},
            "score": face.score,
            "source": face.source,
        }
        if m is None:
            skipped = "its eyes and mouth are less than a pixel apart: it cannot be aligned"
            return {**found, "size": 0.0, "parsed": False, "skipped": skipped}
        scale = math.hypot(m[0, 0], m[1, 0])
        src, dst = self._fitted_points(face)
        misfit = np.sqrt(np.mean(np.sum((np.c_[src, np.ones(len(src))] @ m.T - dst) ** 2, axis=1)))
        return {
            **found,
            "transform": {
                "photo_to_crop": m.round(6).tolist(),
                "crop_size": list(self.framing.size),
                "scale": scale,
                "angle_degrees": math.degrees(math.atan2(m[1, 0], m[0, 0])),
                # RMS distance of the aligned eyes and mouth from the framing's, over its eye distance:
                # a face turned far sideways, or a wrong landmark, shows here
                "misfit": float(misfit / np.hypot(*np.subtract(dst[1], dst[0]))),
            },
            "size": self.face_size(m),
            "parsed": True,
        }

    def parse(self, bgr: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, list[dict]]:
        """(H, W) uint8 labels of ``faces`` in the BGR photo, and a record per face (:meth:`record`)
        saying whether it was parsed, else why not: landmarks less than a pixel apart, not the
        largest face (``largest``), smaller than ``min_size``."""
        h, w = bgr.shape[:2]
        labels = np.zeros((h, w), np.uint8)
        best = np.zeros((h, w), np.float32)
        matrices = [self.transform(face) for face in faces]
        records = [self.record(face, m) for face, m in zip(faces, matrices)]
        order = sorted(range(len(records)), key=lambda i: -records[i]["size"])
        for rank, i in enumerate(order):
            record = records[i]
            if not record["parsed"]:
                continue
            if self.largest and rank > 0:
                record.update(parsed=False, skipped="not the largest face (--largest-face)")
            elif record["size"] < self.min_size:
                record.update(parsed=False, skipped=f"smaller than --min-face {self.min_size:g} pixels")
            else:
                m = matrices[i]
                self.paste(self.parser.probabilities(self.crop(bgr, m)), m, labels, best)
        return labels, records


class FacesMode:
    """What ``faceparse-parse --faces`` does with each photo: its faces from the landmarks file when
    it lists the photo (by file name), else from the detector (made on first use), parsed by
    ``face_parser``."""

    def __init__(
        self,
        face_parser: FaceParser,
        landmarks: dict[str, list[Face]] | None = None,
        min_score: float = 0.5,
    ):
        self.face_parser = face_parser
        self.landmarks = landmarks or {}
        self.min_score = min_score
        self._detector: FaceDetector | None = None

    def prepare(self, names: Sequence[str]) -> None:
        """Before any photo (file ``names``) is parsed: the detector is loaded when some photo is not
        in the landmarks file (:class:`ModelError` when it cannot be)."""
        if self._detector is None and set(names) - set(self.landmarks):
            self._detector = FaceDetector(self.min_score)

    def labels(self, bgr: np.ndarray, name: str) -> tuple[np.ndarray, list[dict]]:
        """The photo's labels and its faces' records (:meth:`FaceParser.parse`); call
        :meth:`prepare` first."""
        faces = self.landmarks[name] if name in self.landmarks else self._detector.detect(bgr)
        return self.face_parser.parse(bgr, faces)

    def describe(self) -> dict:
        """The summary's account of faces mode."""
        return {
            "framing": self.face_parser.framing.record,
            "detector": None if self._detector is None else self._detector.description,
            "landmarks_file_photos": len(self.landmarks),
            "min_face": self.face_parser.min_size,
            "largest_face_only": self.face_parser.largest,
            "combine": "background unless a face's square gives a class; overlaps: the more probable class",
        }

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()

"""Faces mode of ``faceparse-parse`` against the whole-photo resize, and what each face costs.

    .venv/bin/python bench/bench_faces.py --model results/models/compact/export/compact.onnx

1. **Scores**: scenes of generated val faces (:func:`faceparse.data.synthetic.scenes.random_scene`,
   1024 x 768, four faces at 0.5-1.0x their 512 px and up to 30 degrees) parsed three ways - the
   whole photo resized to the model's input, faces mode with the generator's landmarks, and faces
   mode with the built-in detector - scored over every pixel as evaluate scores a split (mIoU over
   the 19 classes, mF1 over the 18 foreground ones: :mod:`faceparse.predict.metrics`).
2. **Cost**: a 12 MP scene (4000 x 3000, six faces at 1.0-2.5x): the detector on the whole photo
   (with its tiles), then per face the warp, the model with its TTA and the paste back; the peak of
   numpy's allocations (tracemalloc) during the faces-mode parse and the process's peak RSS.

The model's TTA is the one recorded in the ONNX file. Prints a markdown table; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from faceparse.data.synthetic.scenes import random_scene
from faceparse.predict import metrics
from faceparse.predict.faces import Face, FaceDetector, FaceParser, Framing
from faceparse.predict.photo_parser import OnnxBackend, Parser


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """mIoU and mF1 as evaluate scores a split (:mod:`faceparse.predict.metrics`)."""
    result = metrics.scores(metrics.confusion_matrix(truth, pred))
    return {"mIoU": round(result["mIoU"], 2), "mF1": round(result["mF1"], 2)}


def given(scene) -> list[Face]:
    return [Face({k: tuple(v) for k, v in lm.items()}, source="generator") for lm in scene.landmarks]


def bench_scores(parser: Parser, faces: FaceParser, detector: FaceDetector, n: int) -> dict:
    preds: dict[str, list[np.ndarray]] = {"whole photo": [], "faces, given landmarks": [], "faces, detector": []}
    truth, found, total = [], 0, 0
    for seed in range(n):
        scene = random_scene(seed, (1024, 768), 4)
        detected = detector.detect(scene.image)
        found += len(detected)
        total += len(scene.landmarks)
        preds["whole photo"].append(parser.parse(scene.image))
        preds["faces, given landmarks"].append(faces.parse(scene.image, given(scene))[0])
        preds["faces, detector"].append(faces.parse(scene.image, detected)[0])
        truth.append(scene.mask)
    t = np.stack(truth)
    return {
        "scenes": n,
        "faces": total,
        "detections": found,
        **{name: scores(np.stack(p), t) for name, p in preds.items()},
    }


def bench_cost(parser: Parser, faces: FaceParser, detector: FaceDetector) -> dict:
    scene = random_scene(1, (4000, 3000), 6, scales=(1.0, 2.5))
    bgr = scene.image
    detector.detect(bgr)  # warm-up (the graph's first run)
    start = time.perf_counter()
    detected = detector.detect(bgr)
    detect_s = time.perf_counter() - start
    labels = np.zeros(bgr.shape[:2], np.uint8)
    best = np.zeros(bgr.shape[:2], np.float32)
    per_face = []
    for face in detected:
        m = faces.transform(face)
        t0 = time.perf_counter()
        crop = faces.crop(bgr, m)
        t1 = time.perf_counter()
        probs = parser.probabilities(crop)
        t2 = time.perf_counter()
        faces.paste(probs, m, labels, best)
        t3 = time.perf_counter()
        per_face.append({"size": faces.face_size(m), "warp": t1 - t0, "parse": t2 - t1, "paste": t3 - t2})
    tracemalloc.start()
    start = time.perf_counter()
    faces.parse(bgr, detected)
    parse_s = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "photo": [4000, 3000],
        "faces": len(scene.landmarks),
        "detected": len(detected),
        "detect_s": detect_s,
        "per_face_mean": {k: float(np.mean([f[k] for f in per_face])) for k in ("warp", "parse", "paste")},
        "face_sizes": [round(f["size"]) for f in per_face],
        "faces_parse_s": parse_s,
        "photo_bytes": bgr.nbytes,
        "numpy_peak_bytes": peak,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("results/models/compact/export/compact.onnx"))
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    backend = OnnxBackend(args.model, args.threads)
    parser = Parser(backend, backend.tta["scales"], backend.tta["flip"])
    faces = FaceParser(parser, Framing.from_record(backend.framing, str(args.model)))
    detector = FaceDetector()
    result = {
        "model": str(args.model),
        "tta": backend.tta,
        "scores": bench_scores(parser, faces, detector, args.scenes),
        "cost": bench_cost(parser, faces, detector),
    }
    detector.close()
    s, c = result["scores"], result["cost"]
    print(f"scenes: {s['scenes']} x 1024x768, {s['faces']} faces, {s['detections']} detections")
    print("| method | mIoU | mF1 |\n|---|---|---|")
    for name in ("whole photo", "faces, given landmarks", "faces, detector"):
        print(f"| {name} | {s[name]['mIoU']:.2f} | {s[name]['mF1']:.2f} |")
    f = c["per_face_mean"]
    print(
        f"\n12 MP, {c['faces']} faces ({c['detected']} detected, squares {c['face_sizes']} px): detect "
        f"{c['detect_s']:.2f} s; per face warp {f['warp'] * 1000:.0f} ms, parse {f['parse']:.2f} s, paste "
        f"{f['paste'] * 1000:.0f} ms; faces-mode parse {c['faces_parse_s']:.1f} s; numpy peak "
        f"{c['numpy_peak_bytes'] / 2**20:.0f} MB (photo {c['photo_bytes'] / 2**20:.0f} MB); "
        f"max RSS {c['max_rss_mb']:.0f} MB"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

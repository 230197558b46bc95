"""The export's check: the ONNX model's masks against PyTorch's on the val split."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from faceparse.mm.pipelines import config_test_pipeline, without_annotations
from faceparse.predict.models import load_model
from faceparse.predict.photo_parser import OnnxBackend, Parser, read_image
from faceparse.predict.runner import run_split
from faceparse.records import SplitFiles, evenly_spaced, split_files

__all__ = ["PARITY_THRESHOLD", "parity"]

PARITY_THRESHOLD = 99.9  # percent of val pixels on which the ONNX masks must equal PyTorch's


def _spread(files: SplitFiles, max_images: int | None) -> SplitFiles:
    """At most ``max_images`` images of ``files``, evenly spaced over the split (all when None)."""
    if max_images is None or max_images >= len(files.names):
        return files
    keep = evenly_spaced(len(files.names), max_images)
    return SplitFiles(files.split, tuple(files.names[i] for i in keep), tuple(files.images[i] for i in keep), None)


def parity(
    onnx_path: str | Path,
    config: str | Path,
    checkpoint: str | Path,
    validation_json: str | Path,
    *,
    split: str = "val",
    max_images: int | None = None,
    threads: int = 1,
    threshold: float = PARITY_THRESHOLD,
) -> dict:
    """Masks of the ONNX model (single scale, :mod:`faceparse.predict.photo_parser`) vs PyTorch's on ``split``.

    PyTorch's masks are the evaluate step's plain pass (:func:`faceparse.predict.runner.run_split`,
    the config's test pipeline, mmseg's ``test_step``); the ONNX model gets the same image
    resized the same way, and its logits are resized back and argmaxed by the photo parser.
    ``max_images`` bounds the CPU time on a large split (evenly spaced images).
    """
    all_files = split_files(validation_json, split)
    files = _spread(all_files, max_images)
    model, cfg = load_model(config, checkpoint, "cpu")
    torch.set_num_threads(max(1, int(threads)))
    parser = Parser(OnnxBackend(onnx_path, threads), scales=[1.0], flip=False)
    agree = total = 0
    per_image: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_split(model, files, without_annotations(config_test_pipeline(cfg)), out_dir=tmp, batch_size=4, workers=0)
        torch_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for name, image in tqdm(
            list(zip(files.names, files.images)),
            desc="parity (onnxruntime)",
            unit="img",
            file=sys.stderr,
            mininterval=2.0,
        ):
            ours = parser.parse(read_image(image))
            ref = np.asarray(Image.open(Path(tmp) / f"{name}.png"))
            same = int((ours == ref).sum())
            agree, total = agree + same, total + ref.size
            per_image.append((100.0 * same / ref.size, name))
        onnx_seconds = time.perf_counter() - start
    percent = 100.0 * agree / max(total, 1)
    return {
        "split": split,
        "images": len(files.names),
        "split_images": len(all_files.names),
        "pixels": total,
        "agreeing_pixels": agree,
        "agreement_percent": percent,
        "worst_image": {"name": min(per_image)[1], "agreement_percent": min(per_image)[0]},
        "threshold_percent": threshold,
        "passed": percent >= threshold,
        "seconds": {"pytorch": torch_seconds, "onnxruntime": onnx_seconds},
        "threads": threads,
        "reference": "faceparse.predict.runner.run_split (mmseg test_step, config test pipeline), no TTA",
        "onnx": "faceparse.predict.photo_parser.Parser, onnxruntime CPUExecutionProvider, scale 1.0, no flip",
    }

"""Export a selected model to ONNX, checked at several sizes and against PyTorch on val (:mod:`.parity`).

The exported graph (opset 17, TorchScript exporter):

- input ``image``: float32 ``(N, 3, H, W)``, **RGB**, values 0..255 - the photo
  resized to the model's input size (the config's test ``Resize``; recorded in
  the model's metadata). The model's own normalisation (the config's
  ``data_preprocessor`` mean/std, and its channel order) is inside the graph.
- output ``logits``: float32 ``(N, 19, H, W)``, class scores at the input's
  size; the caller resizes them back to the photo, softmaxes or argmaxes
  (:mod:`faceparse.predict.photo_parser` does all three, with TTA).

Batch, height and width are dynamic. The TorchScript exporter can export
UPerHead's pyramid pooling (``AdaptiveAvgPool2d`` to 1, 2, 3, 6) only for a
fixed input size ("input size not accessible" with dynamic axes), so the
exported copy of the model replaces every adaptive average pool with
:class:`ShapeAgnosticAdaptiveAvgPool2d`: the same bins, written as averaging
matrices computed from the input's shape. Every export is run by onnxruntime
at three sizes (batch 2) and compared with PyTorch before it is kept
(``dynamic_sizes`` in the metadata).

A ``faceparse`` entry in the ONNX model's ``metadata_props`` (JSON) records
the classes, the left/right pairs, the input size and resize rule, the
normalisation, the TTA configured at export time, the training framing (the
framing step's record: where a face's eyes, nose and mouth go, for
``faceparse-parse --faces``) and the source checkpoint, so that
``python -m faceparse.predict.parse`` needs nothing but the ``.onnx`` file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from faceparse.labels import CLASSES, LR_PAIRS
from faceparse.mm.pipelines import input_resize, normalisation
from faceparse.predict.exportable import exportable
from faceparse.predict.models import load_model, model_paths
from faceparse.predict.parity import PARITY_THRESHOLD, parity
from faceparse.predict.photo_parser import METADATA_KEY, ort_session
from faceparse.records import Selection, read_json, split_files, write_json

__all__ = ["OPSET", "export_onnx", "export_model"]

log = logging.getLogger(__name__)

OPSET = 17


def _check_sizes(h: int, w: int) -> list[list[int]]:
    """(h, w) sizes an export is checked at: the example's, a larger one and a non-square one that no
    backbone stride divides."""
    return [[h, w], [h + 32, w + 32], [h * 3 // 4 + 5, w + 13]]


def export_onnx(
    model,
    cfg,
    path: str | Path,
    *,
    example_size: Sequence[int],
    tta: dict | None = None,
    source: dict | None = None,
    framing: dict | None = None,
    threads: int = 1,
) -> dict:
    """Export ``model`` (a loaded segmentor) to ``path``; return the metadata written into it.

    ``example_size`` (h, w) is the traced example's size. The export is then run
    by onnxruntime at several sizes and batch 2 and compared with PyTorch
    (max |logit| difference); a graph that does not follow the input's shape
    (a size baked in by tracing) fails here, not in a user's hands.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = exportable(model, cfg)
    example = torch.rand(1, 3, int(example_size[0]), int(example_size[1])) * 255
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes},
        )
    session = ort_session(path, threads)
    checks = []
    for h, w in _check_sizes(int(example_size[0]), int(example_size[1])):
        x = torch.rand(2, 3, h, w) * 255
        with torch.no_grad():
            ref = wrapper(x).numpy()
        got = session.run(["logits"], {"image": x.numpy()})[0]
        if got.shape != ref.shape:
            raise RuntimeError(f"{path}: at input {h}x{w} onnxruntime returns {got.shape}, PyTorch {ref.shape}")
        diff = float(np.abs(got - ref).max())
        scale = float(np.abs(ref).max()) or 1.0
        if diff > 1e-3 * scale + 1e-4:
            raise RuntimeError(
                f"{path}: the export does not follow the input's shape: at {h}x{w} its logits "
                f"differ from PyTorch's by up to {diff:.3g} (logits up to {scale:.3g})"
            )
        checks.append({"size": [h, w], "batch": 2, "max_abs_logit_diff": diff})
    norm = normalisation(cfg)
    meta = {
        "format": "faceparse-onnx-1",
        "input": {
            "name": "image",
            "layout": "NCHW",
            "dtype": "float32",
            "channel_order": "RGB",
            "range": [0, 255],
            "dynamic": ["batch", "height", "width"],
        },
        "output": {
            "name": "logits",
            "layout": "NCHW",
            "size": "the input's (H, W)",
            "meaning": "class scores before softmax",
        },
        "normalisation": {**norm, "in_graph": True},
        "resize": input_resize(cfg),
        "align_corners": wrapper.align_corners,
        "classes": list(CLASSES),
        "swap_pairs": [list(p) for p in LR_PAIRS],
        "tta": tta,
        "framing": framing,
        "opset": OPSET,
        "adaptive_pools_replaced": wrapper.pools_replaced,
        "dynamic_sizes": checks,
        "source": source or {},
    }
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    log.info(
        "exported %s (%d adaptive pools replaced); dynamic sizes checked: %s",
        path,
        wrapper.pools_replaced,
        [c["size"] for c in checks],
    )
    return meta


def export_model(
    best_json: str | Path,
    train_json: str | Path,
    validation_json: str | Path,
    *,
    onnx_path: str | Path,
    parity_json: str | Path,
    tta: dict | None = None,
    framing_json: str | Path | None = None,
    max_images: int | None = None,
    threads: int = 1,
) -> dict:
    """The export step: ONNX file + parity record of a selected model; fails below the threshold."""
    config, checkpoint = model_paths(best_json, train_json)
    model, cfg = load_model(config, checkpoint, "cpu")
    resize = input_resize(cfg)
    if resize["scale"] is not None:
        example = resize["scale"][::-1]
    else:
        with Image.open(split_files(validation_json, "val").images[0]) as im:
            example = [im.height, im.width]
    start = time.perf_counter()
    meta = export_onnx(
        model,
        cfg,
        onnx_path,
        example_size=example,
        tta=tta,
        framing=read_json(framing_json) if framing_json is not None else None,
        threads=threads,
        source={"config": str(config), "checkpoint": str(checkpoint), "iter": Selection.read(best_json).iter},
    )
    export_seconds = time.perf_counter() - start
    record = parity(onnx_path, config, checkpoint, validation_json, max_images=max_images, threads=threads)
    record.update(
        {
            "onnx": str(onnx_path),
            "onnx_bytes": Path(onnx_path).stat().st_size,
            "export_seconds": export_seconds,
            "opset": meta["opset"],
            "dynamic_axes": meta["input"]["dynamic"],
            "dynamic_sizes": meta["dynamic_sizes"],
            "input_resize": meta["resize"],
            "normalisation": meta["normalisation"],
            "source": meta["source"],
            "parse": "python -m faceparse.predict.parse IN_DIR OUT_DIR --model " + str(onnx_path),
        }
    )
    write_json(parity_json, record)
    if not record["passed"]:
        raise RuntimeError(
            f"{onnx_path}: ONNX masks agree with PyTorch's on {record['agreement_percent']:.3f}% "
            f"of {record['split']} pixels, below {PARITY_THRESHOLD}% (details in {parity_json})"
        )
    log.info(
        "%s: parity %.5f%% of %d %s pixels", onnx_path, record["agreement_percent"], record["pixels"], record["split"]
    )
    return record

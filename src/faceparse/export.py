"""Export a selected model to ONNX and check the export against PyTorch.

The exported graph (opset 17, TorchScript exporter):

- input ``image``: float32 ``(N, 3, H, W)``, **RGB**, values 0..255 - the photo
  resized to the model's input size (the config's test ``Resize``; recorded in
  the model's metadata). The model's own normalisation (the config's
  ``data_preprocessor`` mean/std, and its channel order) is inside the graph.
- output ``logits``: float32 ``(N, 19, H, W)``, class scores at the input's
  size; the caller resizes them back to the photo, softmaxes or argmaxes
  (:mod:`faceparse.parse` does all three, with TTA).

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
normalisation, the TTA configured at export time and the source checkpoint, so
that ``python -m faceparse.parse`` needs nothing but the ``.onnx`` file.
"""
from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faceparse.labels import CLASSES, LR_PAIRS
from faceparse.parse import METADATA_KEY, ort_session  # the reader's side, which runs without torch

log = logging.getLogger(__name__)

OPSET = 17
PARITY_THRESHOLD = 99.9  # percent of val pixels on which the ONNX masks must equal PyTorch's

__all__ = ["ShapeAgnosticAdaptiveAvgPool2d", "ExportableSegmentor", "exportable", "input_resize",
           "export_onnx", "parity", "export_model", "METADATA_KEY", "PARITY_THRESHOLD"]


def _pool_matrix(n, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, n) averaging matrix of adaptive average pooling over a length-``n`` axis.

    Bin ``i`` covers ``[floor(i*n/out), ceil((i+1)*n/out))``, as in PyTorch's
    ``adaptive_avg_pool``. ``n`` may be a traced size: the matrix then follows
    the input's shape in the exported graph.
    """
    i = torch.arange(out, device=like.device)
    start = torch.div(i * n, out, rounding_mode="floor")
    end = torch.div((i + 1) * n + out - 1, out, rounding_mode="floor")
    j = torch.arange(n, device=like.device)
    member = ((j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])).to(like.dtype)
    return member / member.sum(dim=1, keepdim=True)


class ShapeAgnosticAdaptiveAvgPool2d(torch.nn.Module):
    """``AdaptiveAvgPool2d`` as two matrix products whose matrices follow the input's shape."""

    def __init__(self, output_size):
        super().__init__()
        size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if any(s is None for s in size):
            raise ValueError(f"AdaptiveAvgPool2d output size {output_size}: None (keep the input size) "
                             "is not supported in an export")
        self.out_h, self.out_w = int(size[0]), int(size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = _pool_matrix(x.shape[2], self.out_h, x)
        cols = _pool_matrix(x.shape[3], self.out_w, x)
        return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _replace_adaptive_pools(module: torch.nn.Module) -> int:
    replaced = 0
    for name, child in module.named_children():
        if isinstance(child, torch.nn.AdaptiveAvgPool2d):
            setattr(module, name, ShapeAgnosticAdaptiveAvgPool2d(child.output_size))
            replaced += 1
        else:
            replaced += _replace_adaptive_pools(child)
    return replaced


class ExportableSegmentor(torch.nn.Module):
    """An mmseg ``EncoderDecoder`` as ``RGB 0..255 image -> logits at the input's size``.

    The same computation as the segmentor's ``test_step`` in ``whole`` mode
    (normalise, backbone, neck, decode head, bilinear resize to the input),
    without the data samples, so that it can be traced.
    """

    def __init__(self, segmentor, mean: Sequence[float], std: Sequence[float], model_wants_bgr: bool):
        super().__init__()
        self.segmentor = copy.deepcopy(segmentor).eval()
        self.pools_replaced = _replace_adaptive_pools(self.segmentor)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.model_wants_bgr = model_wants_bgr
        self.align_corners = bool(self.segmentor.decode_head.align_corners)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.flip(1) if self.model_wants_bgr else image
        x = (x - self.mean) / self.std
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=self.align_corners)


def _normalisation(cfg) -> dict:
    pre = cfg.model.get("data_preprocessor") or {}
    if pre.get("mean") is None or pre.get("std") is None:
        raise ValueError("config: model.data_preprocessor has no mean/std to put into the exported graph")
    # mmseg loads BGR; bgr_to_rgb (or rgb_to_bgr) swaps before normalising, so the model sees RGB
    swaps = bool(pre.get("bgr_to_rgb", False) or pre.get("rgb_to_bgr", False))
    return {"mean": [float(v) for v in pre["mean"]], "std": [float(v) for v in pre["std"]],
            "model_channel_order": "RGB" if swaps else "BGR"}


def input_resize(cfg) -> dict:
    """The model's input size: ``{"scale": [w, h] or None, "keep_ratio": bool}`` from the test
    pipeline's ``Resize`` (None: photos are used at their own size)."""
    from faceparse.mm.pipelines import config_test_pipeline

    resizes = [t for t in config_test_pipeline(cfg) if t.get("type") in ("Resize", "mmseg.Resize")]
    if not resizes or resizes[0].get("scale") is None:
        return {"scale": None, "keep_ratio": True}
    scale = resizes[0]["scale"]
    scale = [int(scale), int(scale)] if isinstance(scale, int) else [int(s) for s in scale]
    return {"scale": scale, "keep_ratio": bool(resizes[0].get("keep_ratio", False))}


def exportable(model, cfg) -> ExportableSegmentor:
    """The exportable form of a loaded segmentor (see :func:`faceparse.predict.models.load_model`)."""
    mode = (cfg.model.get("test_cfg") or {}).get("mode", "whole")
    if mode != "whole":
        raise ValueError(f"config: test_cfg.mode={mode!r}; only 'whole' inference can be exported")
    norm = _normalisation(cfg)
    return ExportableSegmentor(model, norm["mean"], norm["std"], norm["model_channel_order"] == "BGR").cpu().eval()


def _check_sizes(h: int, w: int) -> list[list[int]]:
    """(h, w) sizes an export is checked at: the example's, a larger one and a non-square one that no
    backbone stride divides."""
    return [[h, w], [h + 32, w + 32], [h * 3 // 4 + 5, w + 13]]


def export_onnx(model, cfg, path: str | Path, *, example_size: Sequence[int], tta: dict | None = None,
                source: dict | None = None, threads: int = 1) -> dict:
    """Export ``model`` (a loaded segmentor) to ``path``; return the metadata written into it.

    ``example_size`` (h, w) is the traced example's size. The export is then run
    by onnxruntime at several sizes and batch 2 and compared with PyTorch
    (max |logit| difference); a graph that does not follow the input's shape
    (a size baked in by tracing) fails here, not in a user's hands.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = exportable(model, cfg)
    example = torch.rand(1, 3, int(example_size[0]), int(example_size[1])) * 255
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": axes, "logits": axes})
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
            raise RuntimeError(f"{path}: the export does not follow the input's shape: at {h}x{w} its logits "
                               f"differ from PyTorch's by up to {diff:.3g} (logits up to {scale:.3g})")
        checks.append({"size": [h, w], "batch": 2, "max_abs_logit_diff": diff})
    norm = _normalisation(cfg)
    meta = {
        "format": "faceparse-onnx-1",
        "input": {"name": "image", "layout": "NCHW", "dtype": "float32", "channel_order": "RGB",
                  "range": [0, 255], "dynamic": ["batch", "height", "width"]},
        "output": {"name": "logits", "layout": "NCHW", "size": "the input's (H, W)",
                   "meaning": "class scores before softmax"},
        "normalisation": {**norm, "in_graph": True},
        "resize": input_resize(cfg),
        "align_corners": wrapper.align_corners,
        "classes": list(CLASSES),
        "swap_pairs": [list(p) for p in LR_PAIRS],
        "tta": tta,
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
    log.info("exported %s (%d adaptive pools replaced); dynamic sizes checked: %s", path,
             wrapper.pools_replaced, [c["size"] for c in checks])
    return meta


def _spread(files, max_images: int | None):
    """At most ``max_images`` images of ``files``, evenly spaced over the split (all when None)."""
    from faceparse.records import SplitFiles

    n = len(files.names)
    if max_images is None or max_images >= n:
        return files
    keep = np.linspace(0, n - 1, max_images).round().astype(int)
    return SplitFiles(files.split, tuple(files.names[i] for i in keep), tuple(files.images[i] for i in keep), None)


def parity(onnx_path: str | Path, config: str | Path, checkpoint: str | Path, validation_json: str | Path, *,
           split: str = "val", max_images: int | None = None, threads: int = 1,
           threshold: float = PARITY_THRESHOLD) -> dict:
    """Masks of the ONNX model (single scale, :mod:`faceparse.parse`) vs PyTorch's on ``split``.

    PyTorch's masks are the evaluate step's plain pass (:func:`faceparse.predict.runner.run_split`,
    the config's test pipeline, mmseg's ``test_step``); the ONNX model gets the same image
    resized the same way, and its logits are resized back and argmaxed by faceparse.parse.
    ``max_images`` bounds the CPU time on a large split (evenly spaced images).
    """
    from faceparse.mm.pipelines import config_test_pipeline, without_annotations
    from faceparse.predict.models import load_model
    from faceparse.predict.runner import run_split
    from faceparse.parse import OnnxBackend, Parser, read_image
    from faceparse.records import split_files

    all_files = split_files(validation_json, split)
    files = _spread(all_files, max_images)
    model, cfg = load_model(config, checkpoint, "cpu")
    torch.set_num_threads(max(1, int(threads)))
    parser = Parser(OnnxBackend(onnx_path, threads), scales=[1.0], flip=False)
    agree = total = 0
    per_image: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_split(model, files, without_annotations(config_test_pipeline(cfg)), out_dir=tmp, batch_size=4,
                  workers=0)
        torch_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for name, image in zip(files.names, files.images):
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
        "onnx": "faceparse.parse.Parser, onnxruntime CPUExecutionProvider, scale 1.0, no flip",
    }


def export_model(best_json: str | Path, train_json: str | Path, validation_json: str | Path, *,
                 onnx_path: str | Path, parity_json: str | Path, tta: dict | None = None,
                 max_images: int | None = None, threads: int = 1) -> dict:
    """The export step: ONNX file + parity record of a selected model; fails below the threshold."""
    from faceparse.predict.models import load_model, model_paths
    from faceparse.records import Selection, split_files, write_json

    config, checkpoint = model_paths(best_json, train_json)
    model, cfg = load_model(config, checkpoint, "cpu")
    resize = input_resize(cfg)
    if resize["scale"] is not None:
        example = resize["scale"][::-1]
    else:
        with Image.open(split_files(validation_json, "val").images[0]) as im:
            example = [im.height, im.width]
    start = time.perf_counter()
    meta = export_onnx(model, cfg, onnx_path, example_size=example, tta=tta, threads=threads,
                       source={"config": str(config), "checkpoint": str(checkpoint), "iter": Selection.read(best_json).iter})
    export_seconds = time.perf_counter() - start
    record = parity(onnx_path, config, checkpoint, validation_json, max_images=max_images, threads=threads)
    record.update({
        "onnx": str(onnx_path),
        "onnx_bytes": Path(onnx_path).stat().st_size,
        "export_seconds": export_seconds,
        "opset": meta["opset"],
        "dynamic_axes": meta["input"]["dynamic"],
        "dynamic_sizes": meta["dynamic_sizes"],
        "input_resize": meta["resize"],
        "normalisation": meta["normalisation"],
        "source": meta["source"],
        "parse": "python -m faceparse.parse IN_DIR OUT_DIR --model " + str(onnx_path),
    })
    write_json(parity_json, record)
    if not record["passed"]:
        raise RuntimeError(f"{onnx_path}: ONNX masks agree with PyTorch's on {record['agreement_percent']:.3f}% "
                           f"of {record['split']} pixels, below {PARITY_THRESHOLD}% (details in {parity_json})")
    log.info("%s: parity %.5f%% of %d %s pixels", onnx_path, record["agreement_percent"], record["pixels"],
             record["split"])
    return record


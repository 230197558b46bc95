"""The later editions' code submission: a selected CompactFaceNet checkpoint as a folder that runs
with PyTorch, OpenCV, Pillow and numpy alone.

:func:`build_solution` writes ``{out_dir}/``:

- ``run.py``: ``python run.py --input IMAGE --output MASK.png --weights ckpt.pth``, a verbatim
  copy of :mod:`faceparse.predict.solution_run` (the template is code, linted and tested as such);
- ``compact.py``: a byte-identical copy of :mod:`faceparse.networks.compact` (imports only torch);
- ``ckpt.pth``: ``{"state_dict": ...}`` of the plain network (:func:`faceparse.mm.compact.plain_state_dict`);
- ``solution.json``: what run.py needs to predict what the pipeline predicted - the network's
  arguments (the config's ``model.backbone`` but ``type``), the input resize, the mean/std the run
  normalised with (the dumped config's: the stats step's, or an override), the channel order, the
  test-time padding, ``align_corners``, the TTA (scales, flip, the left/right swap) and the
  training framing (:mod:`faceparse.data.framing`: where a face's eyes, nose and mouth go);
- ``Readme.txt``: each file, the parameter count, the libraries, how to run it, the val scores.

Only a model whose backbone is ``CompactFaceBackbone``, with a test pipeline and a segmentor
run.py reproduces, can have one (:func:`solution_problem` says why not, in one line). Before the
folder is moved into place, its run.py parses val images and must agree with the evaluate step's
TTA masks on at least :data:`PARITY_THRESHOLD` percent of their pixels. The folder is written
beside its place and renamed into it: a failed build leaves nothing.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import PIL
import torch
from mmengine.config import Config

from faceparse.labels import CLASSES, SWAP
from faceparse.mm.compact import CompactFaceBackbone, plain_state_dict
from faceparse.mm.compat import open_checkpoint
from faceparse.mm.pipelines import config_test_pipeline, input_resize, normalisation
from faceparse.model_configs import pretrained_sources
from faceparse.networks import compact as network_module
from faceparse.networks.compact import CompactFaceNet
from faceparse.predict import postprocess as postprocess_module
from faceparse.records import Selection, TrainSummary, evenly_spaced, read_json, read_mask, split_files, write_json

log = logging.getLogger(__name__)

__all__ = [
    "BACKBONE",
    "PARITY_THRESHOLD",
    "TEMPLATE",
    "NETWORK_FILE",
    "solution_problem",
    "solution_settings",
    "load_run",
    "build_solution",
]

BACKBONE = CompactFaceBackbone.__name__
TEMPLATE = Path(__file__).with_name("solution_run.py")
NETWORK_FILE = Path(network_module.__file__)
# The clean-up of the TTA masks, copied beside run.py when the config asks for one (numpy and OpenCV only).
POSTPROCESS_FILE = Path(postprocess_module.__file__)
PARITY_THRESHOLD = 99.9  # percent of val pixels run.py must label as the evaluate step did
# The test pipeline run.py reproduces: transforms and the arguments each may have.
_TRANSFORMS = {
    "LoadImageFromFile": {"type"},
    "Resize": {"type", "scale", "scale_factor", "keep_ratio"},
    "LoadAnnotations": {"type", "reduce_zero_label"},
    "PackSegInputs": {"type"},
}


def solution_problem(cfg: Config) -> str | None:
    """Why run.py cannot reproduce the predictions of ``cfg`` (a resolved model config), or None."""
    model = cfg.model
    backbone = (model.get("backbone") or {}).get("type")
    if backbone != BACKBONE:
        return (
            f"its backbone is {backbone}, not {BACKBONE}: only a CompactFaceNet model (configs/compact.py) "
            "has a solution folder"
        )
    head = (model.get("decode_head") or {}).get("type")
    if model.get("type") != "EncoderDecoder" or model.get("neck") or head != "LogitsHead":
        return (
            f"the segmentor is {model.get('type')} with neck {model.get('neck')} and head {head}, not "
            "an EncoderDecoder with a LogitsHead and no neck"
        )
    if (model.get("test_cfg") or {}).get("mode", "whole") != "whole":
        return f"test_cfg.mode={model.test_cfg.mode!r}; run.py runs whole-image inference only"
    pre = model.get("data_preprocessor") or {}
    if pre.get("type") != "SegDataPreProcessor":
        return f"data_preprocessor {pre.get('type')}, not SegDataPreProcessor"
    for step in config_test_pipeline(cfg):
        extra = set(step) - _TRANSFORMS.get(step.get("type"), set())
        if step.get("type") not in _TRANSFORMS or extra:
            return (
                f"its test pipeline has {dict(step)}; run.py reproduces only {', '.join(_TRANSFORMS)} "
                "with their default arguments (Resize: scale, keep_ratio)"
            )
    return None


def solution_settings(cfg: Config, scales: Sequence[float], flip: bool, postprocess: Mapping | None = None) -> dict:
    """``solution.json`` without its parameter count and source: how run.py builds the network and
    prepares a photo, from the resolved config, and the TTA and clean-up of the evaluate and predict
    steps (``postprocess``: null when the config asks for none)."""
    pre = cfg.model.data_preprocessor
    norm = normalisation(cfg)
    test_cfg = pre.get("test_cfg")
    padding = None
    if test_cfg:
        size = test_cfg.get("size")
        padding = {
            "size": [int(s) for s in size] if size is not None else None,
            "size_divisor": test_cfg.get("size_divisor"),
            "pad_val": float(pre.get("pad_val", 0)),
        }
    return {
        "format": "faceparse-solution-1",
        "network": "CompactFaceNet",
        "network_file": "compact.py",
        "network_kwargs": {k: v for k, v in cfg.to_dict()["model"]["backbone"].items() if k != "type"},
        "resize": input_resize(cfg),
        "normalisation": {
            "mean": norm["mean"],
            "std": norm["std"],
            "bgr_to_rgb": bool(pre.get("bgr_to_rgb", False) or pre.get("rgb_to_bgr", False)),
            "model_channel_order": norm["model_channel_order"],
        },
        "test_padding": padding,
        "align_corners": bool(cfg.model.decode_head.get("align_corners", False)),
        "tta": {
            "scales": [float(s) for s in scales],
            "flip": bool(flip),
            "swap": [int(c) for c in SWAP],
            "merge": "mean of softmax probabilities (mirrored views un-mirrored, left/right channels swapped)",
        },
        "postprocess": (
            {"file": POSTPROCESS_FILE.name, **wanted} if (wanted := postprocess_module.requested(postprocess)) else None
        ),
        "classes": list(CLASSES),
    }


def load_run(folder: str | Path):
    """The ``run.py`` of a solution folder as a module (its ``compact.py`` imported from beside it)."""
    folder = Path(folder)
    spec = importlib.util.spec_from_file_location(f"faceparse_solution_run_{abs(hash(folder))}", folder / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("compact", None)  # a network file of another folder imported before
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the folder
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = write_bytecode
    return module


def _parity(folder: Path, validation_json: str | Path, val_pred: Path, max_images: int, split: str) -> dict:
    """run.py's TTA labels of up to ``max_images`` images of ``split`` (the one the evaluate step
    scored: val, or dev when val has no masks) against the evaluate step's masks."""
    run = load_run(folder)
    settings = json.loads((folder / "solution.json").read_text())
    net = run.load_network(folder / "ckpt.pth", settings)
    files = split_files(validation_json, split)
    picked = evenly_spaced(len(files.names), max_images)
    same = total = 0
    for i in picked:
        expected = read_mask(val_pred / f"{files.names[i]}.png")
        got = run.parse(net, run.read_image(files.images[i]), settings)
        if got.shape != expected.shape:
            raise RuntimeError(f"{files.images[i]}: run.py's mask is {got.shape}, the evaluate step's {expected.shape}")
        same += int((got == expected).sum())
        total += expected.size
    agreement = 100.0 * same / max(total, 1)
    return {
        "split": split,
        "images": len(picked),
        "pixels": total,
        "agreement_percent": agreement,
        "threshold_percent": PARITY_THRESHOLD,
        "passed": agreement >= PARITY_THRESHOLD,
    }


def _score(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _readme(model: str, settings: dict, metrics: dict, selection: Selection, pretrained: list[str]) -> str:
    tta = settings["tta"]
    plain, aug = metrics["no_tta"], metrics["tta"]
    held_out = {True: " - NOT held out: the model also trained on val", False: "", None: ""}[
        metrics.get("train_on_val")
    ]
    resize = settings["resize"]
    if resize["scale"] is None:
        size = "its own size"
    else:
        size = f"{resize['scale'][0]}x{resize['scale'][1]} (WxH)"
        size = f"fit into {size}, keeping its aspect ratio" if resize["keep_ratio"] else size
    norm = settings["normalisation"]
    lines = [
        f"faceparse solution: model {model}, CompactFaceNet, {settings['parameters']:,} parameters",
        "",
        "Files",
        "  run.py         the program (needs compact.py and solution.json beside it)",
        "  compact.py     the network in plain PyTorch (class CompactFaceNet; imports only torch)",
        f"  ckpt.pth       the weights: {{'state_dict': CompactFaceNet's state dict}} "
        f"(iteration {selection.iter} of the training run)",
        "  solution.json  the network's arguments, the preprocessing and the test-time augmentation run.py uses",
        "  Readme.txt     this file",
        "",
        f"Parameters: {settings['parameters']:,} (sum(p.numel() for p in model.parameters()))",
        "Pretrained weights: " + ("none (trained from scratch)" if not pretrained else "; ".join(pretrained)),
        "",
        "Libraries (third-party; the versions it was built and checked with):",
        f"  torch {torch.__version__.split('+')[0]}, numpy {np.__version__}, opencv-python {cv2.__version__}, "
        f"Pillow {PIL.__version__}",
        "",
        "How to run",
        "  python run.py --input IMAGE --output MASK.png --weights ckpt.pth",
        "  writes MASK.png: single channel (mode L), the photo's size, values 0..18 (CelebAMask-HQ classes).",
        "  Options: --device cuda (default cpu); --no-tta (one view at scale 1, faster).",
        "  A folder:  mkdir -p masks && for f in images/*.jpg; do",
        '               python run.py --input "$f" --output "masks/$(basename "${f%.*}").png" --weights ckpt.pth; done',
        "",
        "What run.py does (what the faceparse pipeline's predict step did)",
        f"  - reads the photo with OpenCV (BGR) and resizes it bilinearly to {size};",
        f"  - {'swaps to RGB, ' if norm['bgr_to_rgb'] else ''}normalises with mean {norm['mean']} "
        f"and std {norm['std']};",
        "  - runs the network; resizes its class scores bilinearly to the network's input, then to the photo;",
        f"  - test-time augmentation: scales {tta['scales']}"
        f"{', each also mirrored (left/right eye, brow and ear channels swapped back)' if tta['flip'] else ''};",
        "    the softmax probabilities of all views averaged, the argmax is the label.",
        *(
            [
                f"  - cleans the mask (postprocess.py): regions of one class under {pp['min_area']} pixels take "
                f"their surroundings' class, then a {pp['majority']}x{pp['majority']} majority filter (0: off).",
            ]
            if (pp := settings.get("postprocess"))
            else []
        ),
        "",
        f"Validation scores, percent ({metrics.get('images')} {metrics.get('split', 'val')} images{held_out}):",
        "             mIoU    mF1",
        f"  no TTA   {_score(plain.get('mIoU')):>6}  {_score(plain.get('mF1')):>6}",
        f"  TTA      {_score(aug.get('mIoU')):>6}  {_score(aug.get('mF1')):>6}",
        "  mIoU: mean IoU over the 19 classes; mF1: mean F1 over the 18 foreground classes.",
        "",
    ]
    return "\n".join(lines)


def build_solution(
    model: str,
    best_json: str | Path,
    train_json: str | Path,
    metrics_json: str | Path,
    validation_json: str | Path,
    val_pred: str | Path,
    *,
    out_dir: str | Path,
    parity_json: str | Path,
    scales: Sequence[float],
    flip: bool,
    postprocess: Mapping | None = None,
    framing_json: str | Path | None = None,
    parity_images: int = 20,
    threads: int = 1,
) -> dict:
    """Write the solution folder ``out_dir`` of a selected model and its ``parity_json`` record.

    ``parity_images`` val images are parsed by the folder's run.py (``threads`` torch threads) and
    compared with the evaluate step's TTA masks (``val_pred``). Raises ValueError (one line) for a
    model run.py cannot reproduce, FileExistsError when ``out_dir`` exists, and RuntimeError when
    run.py agrees with those masks on fewer than :data:`PARITY_THRESHOLD` percent of the pixels;
    nothing is written then.
    """
    out_dir = Path(out_dir)
    torch.set_num_threads(max(1, int(threads)))
    selection = Selection.read(best_json)
    config = TrainSummary.read(train_json).config
    cfg = Config.fromfile(config, import_custom_modules=False)
    problem = solution_problem(cfg)
    if problem is not None:
        raise ValueError(f"model {model}: no solution folder: {problem}")
    settings = solution_settings(cfg, scales, flip, postprocess)
    net = CompactFaceNet(**settings["network_kwargs"])
    state = plain_state_dict(open_checkpoint(selection.checkpoint)["state_dict"])
    net.load_state_dict(state, strict=True)
    settings["parameters"] = sum(p.numel() for p in net.parameters())
    settings["source"] = {"model": model, "iter": selection.iter, "checkpoint": Path(selection.checkpoint).name}
    # where the training faces' eyes, nose and mouth are (faceparse.data.framing): for aligning photos
    settings["framing"] = read_json(framing_json) if framing_json is not None else None
    if out_dir.exists():
        raise FileExistsError(f"{out_dir}: exists; remove it to build the solution folder again")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        shutil.copyfile(TEMPLATE, tmp / "run.py")
        shutil.copyfile(NETWORK_FILE, tmp / settings["network_file"])
        if settings["postprocess"]:
            shutil.copyfile(POSTPROCESS_FILE, tmp / settings["postprocess"]["file"])
        torch.save(
            {"state_dict": {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}}, tmp / "ckpt.pth"
        )
        (tmp / "solution.json").write_text(json.dumps(settings, indent=2) + "\n")
        pretrained = pretrained_sources(cfg.to_dict())  # as the rules check it: load_from included
        metrics = read_json(metrics_json)
        (tmp / "Readme.txt").write_text(_readme(model, settings, metrics, selection, pretrained))
        record = _parity(tmp, validation_json, Path(val_pred), parity_images, metrics.get("split", "val"))
        record.update(folder=str(out_dir), parameters=settings["parameters"], source=settings["source"])
        if not record["passed"]:
            raise RuntimeError(
                f"{out_dir}: run.py agrees with the evaluate step's masks on "
                f"{record['agreement_percent']:.3f}% of {record['pixels']} pixels of "
                f"{record['images']} val images, below {PARITY_THRESHOLD}%"
            )
        for path in tmp.iterdir():
            path.chmod(0o644)
        tmp.chmod(0o755)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json(parity_json, record)
    log.info(
        "%s: %s parameters; run.py agrees with the evaluate step on %.4f%% of %d val pixels (%d images)",
        out_dir,
        f"{settings['parameters']:,}",
        record["agreement_percent"],
        record["pixels"],
        record["images"],
    )
    return record

"""Run a trained mmseg model over a split: predicted masks, confusion matrices, metrics.

The model is the one the train step dumped (``train/config.py``) with the
selected checkpoint (``best.json``), built by ``mmseg.apis.init_model``. The
data path is the config's own test pipeline (or, with TTA, the
``TestTimeAug`` pipeline of :func:`faceparse.mm.tta.tta_pipeline`) in a
``torch`` DataLoader with mmengine's ``pseudo_collate``, and the model runs
through its ``test_step`` (data preprocessor included) - the same code path
as ``Runner.test()``. What is added per batch: ground-truth masks read by the
loader workers, a confusion matrix accumulated on the model's device, and
PNG encoding in a small thread pool so the model never waits on the disk.
:func:`run_views` is that loop for any labelling function of one or more
views of each batch (:mod:`faceparse.ensemble` runs its members through it).
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceparse.labels import CLASSES, LR_PAIRS, NUM_CLASSES
from faceparse.metrics import metrics_table_html, scores_to_json
from faceparse.records import SplitFiles, Selection, TrainSummary, read_mask, split_files, write_json

log = logging.getLogger(__name__)

__all__ = [
    "load_model", "config_test_pipeline", "without_annotations", "build_loader", "tta_model",
    "run_split", "run_views", "use_threads", "metrics_record", "write_metrics", "evaluate", "predict",
    "unscored", "evaluate_model", "predict_model", "model_paths",
]

# A batch's labels from its collated views (one per pipeline): (B, H, W) class ids at the images' size.
LabelFn = Callable[[list], torch.Tensor]


# ---------------------------------------------------------------------------
# Model and data


def _register() -> None:
    """Import the faceparse mmseg extensions (transforms, TTA model, checkpoint compat)."""
    import faceparse.mm  # noqa: F401  - registers custom modules, allow-lists checkpoint globals
    import faceparse.mm.compat
    import faceparse.mm.tta  # noqa: F401

    faceparse.mm.compat.apply()


def default_device() -> str:
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def load_model(config: str | Path, checkpoint: str | Path | None, device: str | None = None):
    """(model, cfg): the segmentor of ``config`` with ``checkpoint`` loaded, in eval mode.

    The model is built with every pretrained loading switched off
    (:func:`faceparse.mm.backbone.pretrained_off`): the checkpoint holds all
    weights, so inference needs neither the hub nor the training's local
    backbone file. The returned ``cfg`` is the file's, unchanged.
    """
    from mmengine.config import Config
    from mmseg.apis import init_model

    from faceparse.mm.backbone import pretrained_off

    _register()
    cfg = Config.fromfile(str(config))
    build_cfg = copy.deepcopy(cfg)
    build_cfg.model = pretrained_off(cfg.model)
    model = init_model(build_cfg, str(checkpoint) if checkpoint else None, device=device or default_device())
    model.eval()
    return model, cfg


def config_test_pipeline(cfg) -> list[dict]:
    """The config's test pipeline (what ``Runner.test()`` would run)."""
    if cfg.get("test_dataloader") and cfg.test_dataloader.get("dataset", {}).get("pipeline"):
        pipeline = cfg.test_dataloader.dataset.pipeline
    elif cfg.get("test_pipeline"):
        pipeline = cfg.test_pipeline
    else:
        raise KeyError("config has neither test_dataloader.dataset.pipeline nor test_pipeline")
    return [dict(t) for t in pipeline]


def without_annotations(pipeline: Sequence[dict]) -> list[dict]:
    """Drop ``LoadAnnotations``: ground truth is read separately (test images have none)."""
    return [dict(t) for t in pipeline if t.get("type") != "LoadAnnotations"]


class _SplitDataset(torch.utils.data.Dataset):
    """Items: (one pipeline output per pipeline, ground-truth mask or None, index).

    Several pipelines serve an ensemble whose members test at different sizes: each
    member gets its own view of the same image in the same batch.
    """

    def __init__(self, files: SplitFiles, pipelines: Sequence[Sequence[dict]]):
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope

        init_default_scope("mmseg")
        self.files = files
        self.pipelines = [Compose(list(p)) for p in pipelines]

    def __len__(self) -> int:
        return len(self.files.images)

    def __getitem__(self, i: int):
        views = tuple(p(dict(img_path=self.files.images[i], reduce_zero_label=False, seg_fields=[]))
                      for p in self.pipelines)
        gt = read_mask(self.files.masks[i]) if self.files.masks is not None else None
        return views, gt, i


def _collate(batch):
    from mmengine.dataset import pseudo_collate

    views = [pseudo_collate([b[0][k] for b in batch]) for k in range(len(batch[0][0]))]
    return views, [b[1] for b in batch], [b[2] for b in batch]


def _size_batches(files: SplitFiles, batch_size: int) -> list[list[int]]:
    """Batches of images of one size (mmseg's test preprocessor stacks without padding)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, path in enumerate(files.images):
        with Image.open(path) as im:
            groups.setdefault(im.size, []).append(i)
    batches = [idx[k:k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]
    return sorted(batches, key=lambda b: b[0])


def build_loader(files: SplitFiles, pipelines: Sequence[Sequence[dict]], batch_size: int, workers: int):
    dataset = _SplitDataset(files, pipelines)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=_size_batches(files, batch_size),
        num_workers=workers,
        collate_fn=_collate,
        persistent_workers=False,
    )


def tta_model(model, **kwargs):
    """Wrap a segmentor in :class:`faceparse.mm.tta.FaceSegTTAModel`."""
    _register()
    from faceparse.mm.tta import FaceSegTTAModel

    return FaceSegTTAModel(module=model, **kwargs).eval()


# ---------------------------------------------------------------------------
# The loop


class _PngWriter:
    """Encode and write 'L' PNGs in background threads (PIL releases the GIL while encoding)."""

    def __init__(self, out_dir: Path | None, threads: int = 2, max_pending: int = 64):
        self.out_dir = out_dir
        self.pool = ThreadPoolExecutor(max_workers=threads) if out_dir is not None else None
        self.pending: list[Future] = []
        self.max_pending = max_pending
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)

    def submit(self, name: str, mask: np.ndarray) -> None:
        if self.pool is None:
            return
        if len(self.pending) >= self.max_pending:
            self._drain(self.max_pending // 2)
        self.pending.append(self.pool.submit(_save_png, mask, self.out_dir / f"{name}.png"))

    def _drain(self, keep: int = 0) -> None:
        while len(self.pending) > keep:
            self.pending.pop(0).result()

    def close(self) -> None:
        if self.pool is not None:
            self._drain()
            self.pool.shutdown()


def _save_png(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask, mode="L").save(path)


def run_split(model, files: SplitFiles, pipeline: Sequence[dict], *, out_dir: str | Path | None = None,
              batch_size: int = 8, workers: int = 2, num_classes: int = NUM_CLASSES) -> dict:
    """Predict every image of ``files`` with ``model`` (a segmentor or a TTA model).

    ``pipeline`` is a test pipeline (for a segmentor) or a ``TestTimeAug``
    pipeline (for a TTA model) without ``LoadAnnotations``. See :func:`run_views`.
    """
    def labels(views: list) -> torch.Tensor:
        return torch.stack([s.pred_sem_seg.data[0] for s in model.test_step(views[0])])

    return run_views(labels, files, [pipeline], device=next(model.parameters()).device, out_dir=out_dir,
                     batch_size=batch_size, workers=workers, num_classes=num_classes)


def run_views(labels: LabelFn, files: SplitFiles, pipelines: Sequence[Sequence[dict]], *, device,
              out_dir: str | Path | None = None, batch_size: int = 8, workers: int = 2,
              num_classes: int = NUM_CLASSES) -> dict:
    """Label every image of ``files`` batch by batch: ``labels`` gets one collated view per
    pipeline and returns (B, H, W) class ids on ``device``.

    Writes ``{out_dir}/{name}.png`` (mode 'L', the image's size) when ``out_dir`` is
    given. Returns ``{"confusion": (C, C) int64 array or None, "images", "seconds"}``.
    """
    out = Path(out_dir) if out_dir is not None else None
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    has_truth = files.masks is not None
    loader = build_loader(files, pipelines, batch_size, workers)
    writer = _PngWriter(out)
    seen = 0
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for views, truths, indices in loader:
                pred = labels(views)  # one size per batch (see _size_batches)
                if has_truth:
                    for truth, i in zip(truths, indices):
                        if truth.shape != pred.shape[1:]:
                            raise ValueError(f"{files.masks[i]}: mask {truth.shape} vs image {tuple(pred.shape[1:])}")
                    t = torch.from_numpy(np.stack(truths)).to(device).long().ravel()
                    valid = t < num_classes  # ignore values (e.g. 255) are not counted
                    confusion += torch.bincount(t[valid] * num_classes + pred.ravel()[valid],
                                                minlength=num_classes * num_classes)
                if out is not None:
                    masks = pred.to(torch.uint8).cpu().numpy()
                    for mask, i in zip(masks, indices):
                        writer.submit(files.names[i], mask)
                seen += len(indices)
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    log.info("%s: %d images in %.1f s (%.2f images/s)", files.split, seen, seconds, seen / max(seconds, 1e-9))
    return {
        "confusion": confusion.view(num_classes, num_classes).cpu().numpy() if has_truth else None,
        "images": seen,
        "seconds": seconds,
    }


# ---------------------------------------------------------------------------
# Steps


def use_threads(model, threads: int) -> int:
    """Data-loader workers for ``threads`` cores; on the CPU torch gets the same number of threads."""
    threads = max(1, int(threads))
    if next(model.parameters()).device.type == "cpu":
        torch.set_num_threads(threads)
    return min(threads, 8)


def _tta_config(scales: Sequence[float], flip: bool) -> dict:
    return {
        "model": "FaceSegTTAModel",
        "scales": [float(s) for s in scales],
        "flip": bool(flip),
        "swap_pairs": [list(p) for p in LR_PAIRS] if flip else [],
        "merge": "mean of softmax probabilities (flipped predictions un-flipped and left/right channels swapped)",
    }


def metrics_record(plain: dict, tta: dict, *, split: str, images: int, scales: Sequence[float], flip: bool,
                   train_on_val: bool | None, source: dict, device: str, batch_size: int) -> dict:
    """The ``val_metrics.json`` record of a model or an ensemble: scores without and with TTA
    (results of :func:`run_views`), the TTA used, and ``source`` (what predicted: a model's
    ``config`` and ``checkpoint``, or an ensemble's ``members``)."""
    return {
        "no_tta": scores_to_json(plain["confusion"], CLASSES),
        "tta": scores_to_json(tta["confusion"], CLASSES),
        "tta_config": _tta_config(scales, flip),
        "split": split,
        "train_on_val": train_on_val,
        "images": images,
        **source,
        "seconds": {"no_tta": plain["seconds"], "tta": tta["seconds"]},
        "device": device,
        "batch_size": batch_size,
        "units": "percent; null = class absent from truth and prediction (left out of the means)",
    }


def write_metrics(metrics: dict, metrics_json: str | Path, table_html: str | Path | None = None) -> None:
    """``val_metrics.json`` (and optionally its HTML table), and the scores in the log."""
    write_json(metrics_json, metrics)
    if table_html is not None:
        Path(table_html).write_text(metrics_table_html(metrics, f"{metrics['split']} scores"))
    log.info("%s mIoU %.2f -> %.2f with TTA; mF1 %.2f -> %.2f", metrics["split"], metrics["no_tta"]["mIoU"],
             metrics["tta"]["mIoU"], metrics["no_tta"]["mF1"], metrics["tta"]["mF1"])


def evaluate(config: str | Path, checkpoint: str | Path, validation_json: str | Path, *,
             pred_dir: str | Path, metrics_json: str | Path, scales: Sequence[float], flip: bool,
             table_html: str | Path | None = None, split: str = "val", batch_size: int = 8,
             threads: int = 2, device: str | None = None, train_on_val: bool | None = None) -> dict:
    """Score ``split`` without and with TTA; write the TTA masks and ``val_metrics.json``.

    ``threads``: data-loader workers (and torch's CPU threads when on the CPU).
    ``train_on_val``: whether the model was trained on val (recorded: its val
    scores are then not held out; None: unknown).
    """
    files = split_files(validation_json, split, need_masks=True)
    model, cfg = load_model(config, checkpoint, device)
    workers = use_threads(model, threads)
    base = without_annotations(config_test_pipeline(cfg))
    from faceparse.mm.tta import tta_pipeline

    log.info("%s: %d images, no TTA", split, len(files.names))
    plain = run_split(model, files, base, batch_size=batch_size, workers=workers)
    log.info("%s: TTA scales=%s flip=%s", split, list(scales), flip)
    tta = run_split(tta_model(model), files, tta_pipeline(base, scales, flip, with_annotations=False),
                    out_dir=pred_dir, batch_size=batch_size, workers=workers)
    metrics = metrics_record(plain, tta, split=split, images=len(files.names), scales=scales, flip=flip,
                             train_on_val=train_on_val,
                             source={"config": str(config), "checkpoint": str(checkpoint)},
                             device=str(next(model.parameters()).device), batch_size=batch_size)
    write_metrics(metrics, metrics_json, table_html)
    return metrics


def predict(config: str | Path, checkpoint: str | Path, validation_json: str | Path, *,
            pred_dir: str | Path, scales: Sequence[float], flip: bool, split: str = "test",
            batch_size: int = 8, threads: int = 2, device: str | None = None) -> dict:
    """Write TTA masks ``{pred_dir}/{name}.png`` for every image of ``split``."""
    files = unscored(split_files(validation_json, split))
    model, cfg = load_model(config, checkpoint, device)
    workers = use_threads(model, threads)
    from faceparse.mm.tta import tta_pipeline

    pipeline = tta_pipeline(without_annotations(config_test_pipeline(cfg)), scales, flip, with_annotations=False)
    result = run_split(tta_model(model), files, pipeline, out_dir=pred_dir, batch_size=batch_size, workers=workers)
    return {"split": split, "images": result["images"], "seconds": result["seconds"],
            "tta_config": _tta_config(scales, flip)}


def unscored(files: SplitFiles) -> SplitFiles:
    """``files`` without masks: predict writes masks and scores nothing."""
    return SplitFiles(files.split, files.names, files.images, None)


def model_paths(best_json: str | Path, train_json: str | Path) -> tuple[str, str]:
    """(config, checkpoint) of a trained model from its train.json and best.json records."""
    checkpoint = Selection.read(best_json).checkpoint
    config = TrainSummary.read(train_json).config
    if not Path(config).exists():
        raise FileNotFoundError(f"{train_json}: dumped config {config} is missing")
    if not Path(checkpoint).exists():
        raise FileNotFoundError(f"{best_json}: checkpoint {checkpoint} is missing")
    return config, checkpoint


def evaluate_model(best_json, train_json, validation_json, **kwargs) -> dict:
    config, checkpoint = model_paths(best_json, train_json)
    return evaluate(config, checkpoint, validation_json, train_on_val=TrainSummary.read(train_json).train_on_val,
                    **kwargs)


def predict_model(best_json, train_json, validation_json, **kwargs) -> dict:
    config, checkpoint = model_paths(best_json, train_json)
    return predict(config, checkpoint, validation_json, **kwargs)

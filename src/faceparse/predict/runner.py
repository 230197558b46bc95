"""Stream a split through a labelling function, batch by batch: masks written, confusion summed.

The data path is each member's own test pipeline (or, with TTA, the ``TestTimeAug``
pipeline of :func:`faceparse.mm.tta.tta_pipeline`) in a ``torch`` DataLoader with
mmengine's ``pseudo_collate``; the model runs through its ``test_step`` (data
preprocessor included) - the same code path as ``Runner.test()``. What is added per
batch: ground-truth masks read by the loader workers, a confusion matrix accumulated
on the model's device, and PNG encoding in a small thread pool so the model never
waits on the disk.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image
from tqdm import tqdm

from faceparse.labels import NUM_CLASSES
from faceparse.records import SplitFiles, read_mask

log = logging.getLogger(__name__)

__all__ = ["LabelFn", "build_loader", "run_views", "run_split", "use_threads", "unscored"]

# A batch's labels from its collated views (one per pipeline): (B, H, W) class ids at the images' size.
LabelFn = Callable[[list], torch.Tensor]


class _SplitDataset(torch.utils.data.Dataset):
    """Items: (one pipeline output per pipeline, ground-truth mask or None, index).

    Several pipelines serve an ensemble whose members test at different sizes: each
    member gets its own view of the same image in the same batch.
    """

    def __init__(self, files: SplitFiles, pipelines: Sequence[Sequence[dict]]):
        init_default_scope("mmseg")
        self.files = files
        self.pipelines = [Compose(list(p)) for p in pipelines]

    def __len__(self) -> int:
        return len(self.files.images)

    def __getitem__(self, i: int):
        views = tuple(
            p(dict(img_path=self.files.images[i], reduce_zero_label=False, seg_fields=[])) for p in self.pipelines
        )
        gt = read_mask(self.files.masks[i]) if self.files.masks is not None else None
        return views, gt, i


def _collate(batch):
    views = [pseudo_collate([b[0][k] for b in batch]) for k in range(len(batch[0][0]))]
    return views, [b[1] for b in batch], [b[2] for b in batch]


def _size_batches(files: SplitFiles, batch_size: int) -> list[list[int]]:
    """Batches of images of one size (mmseg's test preprocessor stacks without padding)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, path in enumerate(files.images):
        with Image.open(path) as im:
            groups.setdefault(im.size, []).append(i)
    batches = [idx[k : k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]
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


def run_split(
    model,
    files: SplitFiles,
    pipeline: Sequence[dict],
    *,
    out_dir: str | Path | None = None,
    batch_size: int = 8,
    workers: int = 2,
    num_classes: int = NUM_CLASSES,
) -> dict:
    """Predict every image of ``files`` with ``model`` (a segmentor or a TTA model).

    ``pipeline`` is a test pipeline (for a segmentor) or a ``TestTimeAug``
    pipeline (for a TTA model) without ``LoadAnnotations``. See :func:`run_views`.
    """

    def labels(views: list) -> torch.Tensor:
        return torch.stack([s.pred_sem_seg.data[0] for s in model.test_step(views[0])])

    return run_views(
        labels,
        files,
        [pipeline],
        device=next(model.parameters()).device,
        out_dir=out_dir,
        batch_size=batch_size,
        workers=workers,
        num_classes=num_classes,
    )


def run_views(
    labels: LabelFn,
    files: SplitFiles,
    pipelines: Sequence[Sequence[dict]],
    *,
    device,
    out_dir: str | Path | None = None,
    batch_size: int = 8,
    workers: int = 2,
    num_classes: int = NUM_CLASSES,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """Label every image of ``files`` batch by batch: ``labels`` gets one collated view per
    pipeline and returns (B, H, W) class ids on ``device``; ``postprocess`` then cleans each
    (H, W) uint8 mask (:mod:`faceparse.predict.postprocess`) before it is scored and written.

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
    bar = tqdm(total=len(files.images), desc=files.split, unit="img", file=sys.stderr, mininterval=2.0)
    try:
        with torch.inference_mode():
            for views, truths, indices in loader:
                pred = labels(views)  # one size per batch (see _size_batches)
                if postprocess is not None:
                    cleaned = [postprocess(m) for m in pred.to(torch.uint8).cpu().numpy()]
                    pred = torch.from_numpy(np.stack(cleaned)).to(device).long()
                if has_truth:
                    for truth, i in zip(truths, indices):
                        if truth.shape != pred.shape[1:]:
                            raise ValueError(f"{files.masks[i]}: mask {truth.shape} vs image {tuple(pred.shape[1:])}")
                    t = torch.from_numpy(np.stack(truths)).to(device).long().ravel()
                    valid = t < num_classes  # ignore values (e.g. 255) are not counted
                    confusion += torch.bincount(
                        t[valid] * num_classes + pred.ravel()[valid], minlength=num_classes * num_classes
                    )
                if out is not None:
                    masks = pred.to(torch.uint8).cpu().numpy()
                    for mask, i in zip(masks, indices):
                        writer.submit(files.names[i], mask)
                seen += len(indices)
                bar.update(len(indices))
    finally:
        bar.close()
        writer.close()
    seconds = time.perf_counter() - start
    log.info("%s: %d images in %.1f s (%.2f images/s)", files.split, seen, seconds, seen / max(seconds, 1e-9))
    return {
        "confusion": confusion.view(num_classes, num_classes).cpu().numpy() if has_truth else None,
        "images": seen,
        "seconds": seconds,
    }


def use_threads(model, threads: int) -> int:
    """Data-loader workers for ``threads`` cores; on the CPU torch gets the same number of threads."""
    threads = max(1, int(threads))
    if next(model.parameters()).device.type == "cpu":
        torch.set_num_threads(threads)
    return min(threads, 8)


def unscored(files: SplitFiles) -> SplitFiles:
    """``files`` without masks: predict writes masks and scores nothing."""
    return SplitFiles(files.split, files.names, files.images, None)

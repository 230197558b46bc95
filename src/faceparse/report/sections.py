"""Report sections: each ``*_section`` function reads the pipeline's records (through
:mod:`faceparse.records`) and writes every figure (:mod:`faceparse.report.figures`) and table
(:mod:`faceparse.report.tables`) of one report section. Step scripts call them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from faceparse.deliver.colourise import overlay
from faceparse.labels import NUM_CLASSES, colour_mask
from faceparse.parallel import parallel_map
from faceparse.predict.metrics import confusion_matrix, scores
from faceparse.records import (
    Selection,
    TrainSummary,
    evenly_spaced,
    flip_files,
    read_index,
    read_json,
    read_mask,
    split_files,
)
from faceparse.report import tables
from faceparse.report.figures import (
    class_frequency_figure,
    confusion_figure,
    error_map,
    image_grid_figure,
    score_bars_figure,
    thumb_mask,
    thumb_rgb,
    training_curves_figure,
)
from faceparse.train.scalars import read_scalars

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data


def data_section(
    validation_json: str | Path,
    flip_json: str | Path | None,
    stats_json: str | Path,
    *,
    samples_png: str | Path,
    summary_html: str | Path,
    class_frequency_png: str | Path | None = None,
    count: int = 4,
    split: str = "train",
    source_json: str | Path | None = None,
    framing_json: str | Path | None = None,
) -> dict:
    """The data section: a grid of sample images and colour masks (original and flipped), the
    per-split counts / class frequencies / normalisation stats / training framing as an HTML table, and the class
    frequencies (validate's counts) as a bar chart. Without ``flip_json`` (training without the
    flipped set) the grid shows the originals only."""
    validation_json = Path(validation_json)
    files = split_files(validation_json, split, need_masks=True)
    flip = read_json(flip_json) if flip_json else {}
    flipped = flip_files(flip_json) if flip_json else None
    flipped_at = {name: i for i, name in enumerate(flipped.names)} if flipped else {}
    rows, row_titles = [], []
    for i in evenly_spaced(len(files.names), count):
        name = files.names[i]
        row = [thumb_rgb(files.images[i]), colour_mask(thumb_mask(files.masks[i]))]
        j = flipped_at.get(f"{name}_flip")
        if j is not None and Path(flipped.images[j]).exists():
            row += [thumb_rgb(flipped.images[j]), colour_mask(thumb_mask(flipped.masks[j]))]
        rows.append(row)
        row_titles.append(name)
    title = f"{split} samples: image and label mask" + (", original and flipped" if flip else "")
    image_grid_figure(
        rows,
        samples_png,
        title=title,
        col_titles=["image", "mask", "flipped image", "flipped mask (L/R swapped)"],
        row_titles=row_titles,
    )
    index = read_index(validation_json)
    if class_frequency_png:
        class_frequency_figure(
            {s: e["class_pixels"] for s, e in index["splits"].items() if "class_pixels" in e}, class_frequency_png
        )
    stats = read_json(stats_json)
    source = read_json(source_json) if source_json and Path(source_json).exists() else None
    Path(summary_html).parent.mkdir(parents=True, exist_ok=True)
    framing = read_json(framing_json) if framing_json else None
    Path(summary_html).write_text(tables.data_summary_html(index, stats, flip, source, framing))
    return {"samples": len(rows), "flipped": sum(len(r) == 4 for r in rows)}


# ----------------------------------------------------------------------------- training


def training_section(train_json: str | Path, best_json: str | Path, *, curves_png: str | Path, model: str) -> dict:
    """Loss / val mIoU / lr curves of one model, the selected checkpoint marked.

    The val mIoU comes from mmengine's log (percent, as mmseg logs it), else from
    ``train.json``'s ``val`` list; the selected point is read off the same series,
    so the marker sits on the curve whatever unit the markers use.
    """
    train = TrainSummary.read(train_json)
    best = Selection.read(best_json)
    train_rows, val_rows = read_scalars(train.work_dir)
    val_points = [(r["step"], float(r["mIoU"])) for r in val_rows]
    if not val_points:
        val_points = [(int(v["iter"]), float(v["mIoU"])) for v in train.val if v.get("mIoU") is not None]
    val_points.sort()
    sel_iter = int(best.iter)
    on_curve = dict(val_points).get(sel_iter)
    selected = (sel_iter, on_curve if on_curve is not None else best.mIoU)
    training_curves_figure(
        train_rows, val_points, curves_png, model=model, selected=selected, held_out=not train.train_on_val
    )
    return {"train_rows": len(train_rows), "val_points": len(val_points), "selected_iter": sel_iter}


# ----------------------------------------------------------------------------- evaluation


def _image_score(item: tuple[str, str, str]) -> dict:
    """Per-image scores of one prediction: mIoU over the classes in its truth or prediction."""
    name, truth_path, pred_path = item
    truth, pred = read_mask(truth_path), read_mask(pred_path)
    if truth.shape != pred.shape:
        raise ValueError(f"{pred_path}: prediction {pred.shape} vs truth {truth.shape}")
    result = scores(confusion_matrix(truth, np.minimum(pred, NUM_CLASSES - 1)))
    return {"name": name, "mIoU": result["mIoU"], "acc": result["aAcc"]}


def per_image_scores(
    validation_json: str | Path, pred_dir: str | Path, split: str = "val", threads: int = 1
) -> list[dict]:
    """``[{"name", "mIoU", "acc"}]`` for every image of ``split`` with a prediction in ``pred_dir``."""
    files = split_files(validation_json, split, need_masks=True)
    pred_dir = Path(pred_dir)
    items = [
        (n, m, str(pred_dir / f"{n}.png")) for n, m in zip(files.names, files.masks) if (pred_dir / f"{n}.png").exists()
    ]
    if len(items) < len(files.names):
        log.warning(
            "%s: %d of %d %s images have no prediction",
            pred_dir,
            len(files.names) - len(items),
            len(files.names),
            split,
        )
    return list(parallel_map(_image_score, items, threads, desc=f"per-image IoU ({split})"))


def worst_images_figure(
    validation_json: str | Path,
    pred_dir: str | Path,
    image_scores: Sequence[dict],
    path: str | Path,
    *,
    model: str,
    count: int = 6,
    split: str = "val",
) -> Path:
    """The ``count`` images of ``split`` with the lowest per-image mIoU: image | truth | prediction | errors."""
    files = split_files(validation_json, split, need_masks=True)
    where = {n: i for i, n in enumerate(files.names)}
    worst = sorted((s for s in image_scores if not math.isnan(s["mIoU"])), key=lambda s: s["mIoU"])[:count]
    rows, cell_titles = [], []
    for s in worst:
        i = where[s["name"]]
        image = thumb_rgb(files.images[i])
        size = (image.shape[1], image.shape[0])
        truth = np.asarray(Image.fromarray(read_mask(files.masks[i])).resize(size, Image.Resampling.NEAREST))
        pred = np.asarray(
            Image.fromarray(read_mask(Path(pred_dir) / f"{s['name']}.png")).resize(size, Image.Resampling.NEAREST)
        )
        labelled = truth < NUM_CLASSES  # ignore pixels (255) are neither right nor wrong
        wrong = float(np.mean(truth[labelled] != pred[labelled]) * 100) if labelled.any() else 0.0
        rows.append([image, colour_mask(truth), colour_mask(pred), error_map(image, truth, pred)])
        cell_titles.append([f"{s['name']}", "truth", f"prediction: mIoU {s['mIoU']:.1f}", f"errors: {wrong:.1f}% px"])
    return image_grid_figure(
        rows,
        path,
        title=f"{model}: the {len(rows)} worst {split} images (per-image mIoU)",
        col_titles=["image", "truth", "prediction", "errors"],
        cell_titles=cell_titles,
    )


def evaluation_section(
    metrics_json: str | Path,
    validation_json: str | Path,
    pred_dir: str | Path,
    *,
    bars_png: str | Path,
    confusion_png: str | Path,
    worst_png: str | Path,
    table_html: str | Path,
    model: str,
    count: int = 6,
    threads: int = 1,
) -> dict:
    """Per-class IoU/F1 bars (no TTA vs TTA), the row-normalised confusion heatmap, the grid of the
    worst images, and the numbers (per class and per image) as an HTML table, of one model, on the
    split the metrics were scored on (val, or dev when val has no masks)."""
    metrics = read_json(metrics_json)
    split = metrics.get("split", "val")
    score_bars_figure(metrics, bars_png, model=model)
    key = "tta" if "tta" in metrics else "no_tta"
    variant = "with TTA" if key == "tta" else "no TTA"
    confusion_figure(
        np.array(metrics[key]["confusion"]),
        confusion_png,
        title=f"{model}: confusion on {split}, {variant} (row-normalised, %)",
    )
    image_scores = per_image_scores(validation_json, pred_dir, split=split, threads=threads)
    worst_images_figure(validation_json, pred_dir, image_scores, worst_png, model=model, count=count, split=split)
    Path(table_html).parent.mkdir(parents=True, exist_ok=True)
    Path(table_html).write_text(tables.evaluation_html(metrics, image_scores, model=model))
    return {"images": len(image_scores), "confusion": key}


# ----------------------------------------------------------------------------- submission


def submission_section(
    validation_json: str | Path,
    pred_dir: str | Path,
    check_json: str | Path,
    zip_path: str | Path,
    *,
    grid_png: str | Path,
    check_html: str | Path,
    model: str,
    count: int = 8,
    split: str = "test",
) -> dict:
    """A grid of test images with their predicted masks, and the submission check as an HTML table."""
    files = split_files(validation_json, split)
    pred_dir = Path(pred_dir)
    picks = [i for i in evenly_spaced(len(files.names), count) if (pred_dir / f"{files.names[i]}.png").exists()]
    rows, cell_titles, row, titles = [], [], [], []
    for i in picks:
        image = thumb_rgb(files.images[i])
        size = (image.shape[1], image.shape[0])
        pred = np.asarray(
            Image.fromarray(read_mask(pred_dir / f"{files.names[i]}.png")).resize(size, Image.Resampling.NEAREST)
        )
        row += [image, colour_mask(pred), overlay(image, pred)]
        titles += [files.names[i], "prediction", "overlay"]
        if len(row) == 6:
            rows.append(row)
            cell_titles.append(titles)
            row, titles = [], []
    if row:
        rows.append(row)
        cell_titles.append(titles)
    image_grid_figure(rows, grid_png, title=f"{model}: test predictions (the submitted masks)", cell_titles=cell_titles)
    check = read_json(check_json)
    Path(check_html).parent.mkdir(parents=True, exist_ok=True)
    Path(check_html).write_text(tables.check_html(check, zip_path=str(zip_path), model=model))
    return {"shown": len(picks)}

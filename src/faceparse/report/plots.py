"""Figures for the report: small PNGs (matplotlib Agg, ~100 dpi, 256-colour) a person reads at a glance.

Each ``*_figure`` function takes plain data and writes one PNG; each
``*_section`` function takes the pipeline's files (the records of
faceparse.records) and writes every figure and table of one report section.
Step scripts call the ``*_section`` functions.
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from PIL import Image  # noqa: E402

from faceparse.colourise import overlay  # noqa: E402  (part of this module's API)
from faceparse.labels import CLASSES, NUM_CLASSES, PALETTE, colourise  # noqa: E402
from faceparse.metrics import confusion_matrix, scores  # noqa: E402
from faceparse.parallel import parallel_map  # noqa: E402
from faceparse.records import (Selection, TrainSummary, read_index, read_json, read_mask,  # noqa: E402
                               split_files)
from faceparse.report import tables  # noqa: E402
from faceparse.scalars import read_scalars  # noqa: E402  (part of this module's API)

log = logging.getLogger(__name__)

__all__ = [
    "DPI", "THUMB", "save_figure", "quantize", "image_grid_figure", "training_curves_figure", "score_bars_figure",
    "confusion_figure", "runtimes_figure", "read_scalars", "per_image_scores", "overlay",
    "data_section", "training_section", "evaluation_section", "submission_section",
]

DPI = 100
THUMB = 160  # pixels per image tile in the grids
NO_TTA_COLOUR = "#a6a6a6"
TTA_COLOUR = "#1f5fa8"
ERROR_COLOUR = (255, 0, 64)

plt.rcParams.update({
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.titlesize": 11,
    "axes.spines.top": False, "axes.spines.right": False,
})


# ----------------------------------------------------------------------------- basics

def save_figure(fig, path: str | Path, colours: int | None = 256) -> Path:
    """Save ``fig`` as a PNG at :data:`DPI`, reduced to ``colours`` palette entries (None: full RGB)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as im:
        im = im.convert("RGB")
        if colours:
            im = quantize(im, colours)
        im.save(path, format="PNG", optimize=True)
    log.info("wrote %s (%d bytes)", path, path.stat().st_size)
    return path


def quantize(image: Image.Image, colours: int = 256) -> Image.Image:
    """``image`` reduced to ``colours`` palette entries that include the 19 class colours (and
    the error colour, white) exactly: pixels of those colours keep them, so masks and legends
    stay true; everything else gets the nearest of an adaptive (median-cut) palette."""
    fixed = list(dict.fromkeys([*PALETTE, ERROR_COLOUR, (255, 255, 255)]))
    free = max(1, min(256, colours) - len(fixed))
    rgb = image.convert("RGB")
    adaptive = rgb.quantize(colors=free, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    entries = fixed + [tuple(adaptive.getpalette()[i:i + 3]) for i in range(0, 3 * free, 3)]
    flat = [v for colour in entries for v in colour]
    palette = Image.new("P", (1, 1))
    palette.putpalette(flat + [0] * (768 - len(flat)))
    index = np.array(rgb.quantize(palette=palette, dither=Image.Dither.NONE))
    pixels = np.asarray(rgb).astype(np.int32)
    code = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    for i, (r, g, b) in enumerate(fixed):  # PIL's palette mapping is approximate: pin exact colours
        index[code == ((r << 16) | (g << 8) | b)] = i
    out = Image.fromarray(index.astype(np.uint8), mode="P")
    out.putpalette(flat)
    return out


def _thumb_rgb(path: str | Path, size: int = THUMB) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im)


def _thumb_mask(path: str | Path, size: int = THUMB) -> np.ndarray:
    """A label mask scaled to fit ``size`` (nearest neighbour: labels stay labels)."""
    mask = read_mask(path)
    scale = size / max(mask.shape)
    if scale >= 1:
        return mask
    shape = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    return np.asarray(Image.fromarray(mask).resize(shape, Image.Resampling.NEAREST))


def error_map(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """A dimmed grey copy of ``image`` with the wrongly predicted pixels in :data:`ERROR_COLOUR`."""
    grey = (image.astype(np.float32).mean(axis=2, keepdims=True) * 0.6 + 40).repeat(3, axis=2)
    out = grey.astype(np.uint8)
    wrong = (truth != pred) & (truth < NUM_CLASSES)
    out[wrong] = ERROR_COLOUR
    return out


def palette_handles(classes: Sequence[int] | None = None) -> list[Patch]:
    ids = range(NUM_CLASSES) if classes is None else classes
    return [Patch(facecolor=np.array(PALETTE[i]) / 255, edgecolor="0.3", linewidth=0.5,
                  label=f"{i} {CLASSES[i]}") for i in ids]


def _class_swatches(ax, positions: Sequence[float], y: float = -0.035) -> None:
    """Palette-coloured squares under the x tick labels of ``ax`` (one per class)."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.scatter(positions, [y] * len(positions), marker="s", s=30, c=np.array(PALETTE) / 255,
               edgecolors="0.3", linewidths=0.5, transform=trans, clip_on=False, zorder=5)


# ----------------------------------------------------------------------------- figures

def image_grid_figure(rows: Sequence[Sequence[np.ndarray]], path: str | Path, *, title: str,
                      col_titles: Sequence[str] = (), row_titles: Sequence[str] = (),
                      cell_titles: Sequence[Sequence[str]] | None = None, legend: bool = True) -> Path:
    """A grid of image tiles (rows x columns) with titles and a palette legend below."""
    nrows = len(rows)
    ncols = max((len(r) for r in rows), default=1)
    legend_h = 0.75 if legend else 0.0
    fig, axes = plt.subplots(nrows or 1, ncols, squeeze=False,
                             figsize=(ncols * 1.75, (nrows or 1) * 1.85 + 0.45 + legend_h))
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(row):
                ax.imshow(row[c], interpolation="nearest")
            else:
                ax.axis("off")
            if cell_titles is not None and c < len(cell_titles[r]) and cell_titles[r][c]:
                ax.set_title(cell_titles[r][c], fontsize=7)
            elif r == 0 and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=8)
            if c == 0 and r < len(row_titles):
                ax.set_ylabel(row_titles[r], fontsize=7)
    if not rows:
        axes[0][0].axis("off")
        axes[0][0].text(0.5, 0.5, "no images", ha="center", va="center")
    fig.suptitle(title)
    if legend:
        fig.legend(handles=palette_handles(), loc="lower center", ncol=min(7, max(3, ncols * 2)),
                   fontsize=6.5, frameon=False, handlelength=1.0, columnspacing=0.8)
    bottom = legend_h / fig.get_figheight() + 0.01
    fig.tight_layout(rect=(0, bottom, 1, 1 - 0.12 / fig.get_figheight()))
    return save_figure(fig, path)


def training_curves_figure(train_rows: Sequence[dict], val_points: Sequence[tuple[int, float]], path: str | Path,
                           *, model: str, selected: tuple[int, float | None] | None = None,
                           held_out: bool = True) -> Path:
    """Loss, val mIoU and learning rate over iterations, the selected checkpoint marked
    (``held_out=False``: val was trained on, and the title says so)."""
    fig, (ax_loss, ax_miou, ax_lr) = plt.subplots(3, 1, sharex=True, figsize=(7, 7.2),
                                                  gridspec_kw={"height_ratios": [3, 3, 1.6]})
    # the heads' losses (decode.loss_ce, aux.loss_ce, ...) when there is more than one
    loss_keys = sorted({k for row in train_rows for k in row if "loss" in k and k != "loss"})
    loss_keys = loss_keys if len(loss_keys) > 1 else []
    marker = "." if len(train_rows) < 30 else None
    if any("loss" in row for row in train_rows):
        it = [row["step"] for row in train_rows if "loss" in row]
        ax_loss.plot(it, [row["loss"] for row in train_rows if "loss" in row], color="black", lw=1.4,
                     marker=marker, label="loss (total)")
    for key in loss_keys:
        pts = [(row["step"], row[key]) for row in train_rows if key in row]
        ax_loss.plot(*zip(*pts), lw=0.9, alpha=0.8, label=key)
    if train_rows:
        ax_loss.legend(loc="upper right")
    else:
        ax_loss.text(0.5, 0.5, "no training loss logged", transform=ax_loss.transAxes,
                     ha="center", va="center", color="0.4")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("Training loss")
    ax_loss.grid(alpha=0.3)

    if val_points:
        its, mious = zip(*val_points)
        ax_miou.plot(its, mious, marker="o", ms=4, color=TTA_COLOUR, label="val mIoU (no TTA)")
    else:
        ax_miou.text(0.5, 0.5, "no validation scores", transform=ax_miou.transAxes, ha="center",
                     va="center", color="0.4")
    ax_miou.set_ylabel("val mIoU (%)")
    ax_miou.set_title("Validation mIoU" + ("" if held_out else " (NOT held out: val was trained on)"))
    ax_miou.grid(alpha=0.3)

    lr_pts = [(row["step"], row["lr"]) for row in train_rows if "lr" in row]
    if lr_pts:
        ax_lr.plot(*zip(*lr_pts), color="tab:green", lw=1.2, marker=marker)
        lrs = [v for _, v in lr_pts if v > 0]
        if lrs and max(lrs) / min(lrs) > 20:
            ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("iteration")
    ax_lr.set_title("Learning rate")
    ax_lr.grid(alpha=0.3)

    if selected is not None:
        sel_iter, sel_miou = selected
        for ax in (ax_loss, ax_miou, ax_lr):
            ax.axvline(sel_iter, color="crimson", ls="--", lw=1)
        label = f"selected: iter {sel_iter}" + (f", mIoU {sel_miou:.2f}" if sel_miou is not None else "")
        if sel_miou is not None:
            ax_miou.plot([sel_iter], [sel_miou], marker="*", ms=14, color="crimson", ls="none", label=label)
        else:
            ax_miou.plot([], [], color="crimson", ls="--", label=label)
        ax_miou.legend(loc="lower right")
    fig.suptitle(f"{model}: training")
    fig.tight_layout()
    return save_figure(fig, path)


def _values(block: dict, key: str) -> np.ndarray:
    per_class = block.get(key, {})
    return np.array([np.nan if per_class.get(c) is None else float(per_class[c]) for c in CLASSES])


def score_bars_figure(metrics: dict, path: str | Path, *, model: str) -> Path:
    """Per-class IoU and F1 bars, without and with test-time augmentation."""
    x = np.arange(NUM_CLASSES)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.6))
    variants = [(k, lbl, col) for k, lbl, col in (("no_tta", "no TTA", NO_TTA_COLOUR), ("tta", "TTA", TTA_COLOUR))
                if k in metrics]
    width = 0.8 / max(1, len(variants))
    for ax, key, mean_key in ((axes[0], "IoU", "mIoU"), (axes[1], "F1", "mF1")):
        for i, (variant, label, colour) in enumerate(variants):
            vals = _values(metrics[variant], key)
            mean = metrics[variant].get(mean_key)
            mean_txt = f" ({mean_key} {mean:.2f})" if mean is not None else ""
            ax.bar(x + (i - (len(variants) - 1) / 2) * width, np.nan_to_num(vals), width, color=colour,
                   label=label + mean_txt, edgecolor="white", linewidth=0.3)
            for xi in x[np.isnan(vals)]:
                ax.text(xi + (i - (len(variants) - 1) / 2) * width, 1, "n/a", rotation=90, ha="center",
                        va="bottom", fontsize=6, color="0.4")
        ax.set_xticks(x)
        ax.set_xticklabels(CLASSES, rotation=45, ha="right")
        ax.tick_params(axis="x", pad=9)
        _class_swatches(ax, x)
        ax.set_ylim(0, 119)
        ax.set_yticks(range(0, 101, 20))
        ax.set_xlim(-0.6, NUM_CLASSES - 0.4)
        ax.set_ylabel(f"{key} (%)")
        ax.set_title(f"Per-class {key} on val" + (" (F1 mean over the 18 foreground classes)" if key == "F1" else ""))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper center", ncol=2, framealpha=0.9, borderaxespad=0.2)
    held_out = "" if not metrics.get("train_on_val") else " (NOT held out: val was trained on)"
    fig.suptitle(f"{model}: validation scores, no TTA vs TTA{held_out}")
    fig.tight_layout()
    return save_figure(fig, path)


def confusion_figure(confusion: np.ndarray, path: str | Path, *, title: str) -> Path:
    """Row-normalised confusion matrix (each true class's pixels sum to 100 %) as a heatmap."""
    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(rows > 0, confusion / rows, np.nan)
    fig, ax = plt.subplots(figsize=(8.4, 7.4))
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.85")
    im = ax.imshow(norm * 100, cmap=cmap, vmin=0, vmax=100, interpolation="nearest")
    n = confusion.shape[0]
    for t in range(n):
        for p in range(n):
            v = norm[t, p]
            if not np.isnan(v) and v >= 0.005:
                ax.text(p, t, f"{v * 100:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v > 0.55 else "black")
    names = list(CLASSES[:n])
    ax.set_xticks(range(n))
    ax.set_xticklabels(names, rotation=60, ha="right")
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{name} (absent)" if rows[i, 0] == 0 else name for i, name in enumerate(names)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for spine in ax.spines.values():
        spine.set_visible(False)
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("% of the true class's pixels")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def runtimes_figure(steps: Sequence[dict], path: str | Path) -> Path:
    """Horizontal bars: wall-clock seconds of each step (from the benchmark files)."""
    steps = sorted(steps, key=lambda s: s["s"])
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.26 * max(1, len(steps))))
    if steps:
        ax.barh(range(len(steps)), [s["s"] for s in steps], color=TTA_COLOUR)
        ax.set_yticks(range(len(steps)))
        ax.set_yticklabels([s["step"] for s in steps], fontsize=7)
        top = max(s["s"] for s in steps)
        for i, s in enumerate(steps):
            ax.text(s["s"] + top * 0.01, i, _duration(s["s"]), va="center", fontsize=7)
        ax.set_xlim(0, top * 1.15 or 1)
    else:
        ax.text(0.5, 0.5, "no benchmark files", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("wall-clock seconds")
    ax.set_title("Run time per step (benchmarks/*.tsv)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


# ----------------------------------------------------------------------------- data

def _flipped_image(flip: dict, flip_json: Path, name: str) -> Path | None:
    base = flip_json.parent
    image_dir = Path(flip["image_dir"])
    if not image_dir.is_absolute() and not image_dir.exists():
        image_dir = base / image_dir
    path = image_dir / f"{name}{flip.get('image_suffix', '.jpg')}"
    if path.exists():
        return path
    found = sorted(image_dir.glob(f"{name}.*"))  # the flip step may fall back to .png per image
    return found[0] if found else None


def _flipped_mask(flip: dict, flip_json: Path, name: str) -> Path:
    mask_dir = Path(flip["mask_dir"])
    if not mask_dir.is_absolute() and not mask_dir.exists():
        mask_dir = flip_json.parent / mask_dir
    return mask_dir / f"{name}.png"


def _spread(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n)`` (deterministic)."""
    if n <= count:
        return list(range(n))
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)}) if count > 1 else [0]


def data_section(validation_json: str | Path, flip_json: str | Path | None, stats_json: str | Path, *,
                 samples_png: str | Path, summary_html: str | Path, count: int = 4, split: str = "train",
                 source_json: str | Path | None = None) -> dict:
    """The data section: a grid of sample images and colour masks (original and flipped), and the
    per-split counts / class frequencies / normalisation stats as an HTML table. Without
    ``flip_json`` (training without the flipped set) the grid shows the originals only."""
    validation_json = Path(validation_json)
    files = split_files(validation_json, split, need_masks=True)
    flip = read_json(flip_json) if flip_json else {}
    flip_names = set(flip.get("names", []))
    rows, row_titles = [], []
    for i in _spread(len(files.names), count):
        name = files.names[i]
        row = [_thumb_rgb(files.images[i]), colourise(_thumb_mask(files.masks[i]))]
        fname = f"{name}_flip"
        fimage = _flipped_image(flip, Path(flip_json), fname) if fname in flip_names else None
        if fimage is not None:
            row += [_thumb_rgb(fimage), colourise(_thumb_mask(_flipped_mask(flip, Path(flip_json), fname)))]
        rows.append(row)
        row_titles.append(name)
    title = f"{split} samples: image and label mask" + (", original and flipped" if flip else "")
    image_grid_figure(rows, samples_png, title=title,
                      col_titles=["image", "mask", "flipped image", "flipped mask (L/R swapped)"],
                      row_titles=row_titles)
    index = read_index(validation_json)
    stats = read_json(stats_json)
    source = read_json(source_json) if source_json and Path(source_json).exists() else None
    Path(summary_html).parent.mkdir(parents=True, exist_ok=True)
    Path(summary_html).write_text(tables.data_summary_html(index, stats, flip, source))
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
    training_curves_figure(train_rows, val_points, curves_png, model=model, selected=selected,
                           held_out=not train.train_on_val)
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


def per_image_scores(validation_json: str | Path, pred_dir: str | Path, split: str = "val",
                     threads: int = 1) -> list[dict]:
    """``[{"name", "mIoU", "acc"}]`` for every image of ``split`` with a prediction in ``pred_dir``."""
    files = split_files(validation_json, split, need_masks=True)
    pred_dir = Path(pred_dir)
    items = [(n, m, str(pred_dir / f"{n}.png")) for n, m in zip(files.names, files.masks)
             if (pred_dir / f"{n}.png").exists()]
    if len(items) < len(files.names):
        log.warning("%s: %d of %d %s images have no prediction", pred_dir, len(files.names) - len(items),
                    len(files.names), split)
    return list(parallel_map(_image_score, items, threads, desc=f"per-image IoU ({split})"))


def worst_images_figure(validation_json: str | Path, pred_dir: str | Path, image_scores: Sequence[dict],
                        path: str | Path, *, model: str, count: int = 6, split: str = "val") -> Path:
    """The ``count`` val images with the lowest per-image mIoU: image | truth | prediction | errors."""
    files = split_files(validation_json, split, need_masks=True)
    where = {n: i for i, n in enumerate(files.names)}
    worst = sorted((s for s in image_scores if not math.isnan(s["mIoU"])), key=lambda s: s["mIoU"])[:count]
    rows, cell_titles = [], []
    for s in worst:
        i = where[s["name"]]
        image = _thumb_rgb(files.images[i])
        size = (image.shape[1], image.shape[0])
        truth = np.asarray(Image.fromarray(read_mask(files.masks[i])).resize(size, Image.Resampling.NEAREST))
        pred = np.asarray(Image.fromarray(read_mask(Path(pred_dir) / f"{s['name']}.png"))
                          .resize(size, Image.Resampling.NEAREST))
        labelled = truth < NUM_CLASSES  # ignore pixels (255) are neither right nor wrong
        wrong = float(np.mean(truth[labelled] != pred[labelled]) * 100) if labelled.any() else 0.0
        rows.append([image, colourise(truth), colourise(pred), error_map(image, truth, pred)])
        cell_titles.append([f"{s['name']}", "truth", f"prediction: mIoU {s['mIoU']:.1f}",
                            f"errors: {wrong:.1f}% px"])
    return image_grid_figure(rows, path, title=f"{model}: the {len(rows)} worst val images (per-image mIoU)",
                             col_titles=["image", "truth", "prediction", "errors"], cell_titles=cell_titles)


def evaluation_section(metrics_json: str | Path, validation_json: str | Path, pred_dir: str | Path, *,
                       bars_png: str | Path, confusion_png: str | Path, worst_png: str | Path,
                       table_html: str | Path, model: str, count: int = 6, threads: int = 1) -> dict:
    """Per-class IoU/F1 bars (no TTA vs TTA), the row-normalised confusion heatmap, the grid of the
    worst val images, and the numbers (per class and per image) as an HTML table, of one model."""
    metrics = read_json(metrics_json)
    score_bars_figure(metrics, bars_png, model=model)
    key = "tta" if "tta" in metrics else "no_tta"
    variant = "with TTA" if key == "tta" else "no TTA"
    confusion_figure(np.array(metrics[key]["confusion"]), confusion_png,
                     title=f"{model}: confusion on val, {variant} (row-normalised, %)")
    image_scores = per_image_scores(validation_json, pred_dir, threads=threads)
    worst_images_figure(validation_json, pred_dir, image_scores, worst_png, model=model, count=count)
    Path(table_html).parent.mkdir(parents=True, exist_ok=True)
    Path(table_html).write_text(tables.evaluation_html(metrics, image_scores, model=model))
    return {"images": len(image_scores), "confusion": key}


# ----------------------------------------------------------------------------- submission

def submission_section(validation_json: str | Path, pred_dir: str | Path, check_json: str | Path,
                       zip_path: str | Path, *, grid_png: str | Path, check_html: str | Path, model: str,
                       count: int = 8, split: str = "test") -> dict:
    """A grid of test images with their predicted masks, and the submission check as an HTML table."""
    files = split_files(validation_json, split)
    pred_dir = Path(pred_dir)
    picks = [i for i in _spread(len(files.names), count) if (pred_dir / f"{files.names[i]}.png").exists()]
    rows, cell_titles, row, titles = [], [], [], []
    for i in picks:
        image = _thumb_rgb(files.images[i])
        size = (image.shape[1], image.shape[0])
        pred = np.asarray(Image.fromarray(read_mask(pred_dir / f"{files.names[i]}.png"))
                          .resize(size, Image.Resampling.NEAREST))
        row += [image, colourise(pred), overlay(image, pred)]
        titles += [files.names[i], "prediction", "overlay"]
        if len(row) == 6:
            rows.append(row)
            cell_titles.append(titles)
            row, titles = [], []
    if row:
        rows.append(row)
        cell_titles.append(titles)
    image_grid_figure(rows, grid_png, title=f"{model}: test predictions (the submitted masks)",
                      cell_titles=cell_titles)
    check = read_json(check_json)
    Path(check_html).parent.mkdir(parents=True, exist_ok=True)
    Path(check_html).write_text(tables.check_html(check, zip_path=str(zip_path), model=model))
    return {"shown": len(picks)}

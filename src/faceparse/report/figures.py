"""Report figures: small PNGs (matplotlib Agg, ~100 dpi, 256-colour) a person reads at a glance.

Each ``*_figure`` function takes plain data (arrays, rows, scores) and writes one PNG;
:mod:`faceparse.report.sections` reads the pipeline's records and calls them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from PIL import Image  # noqa: E402

from faceparse.labels import CLASSES, NUM_CLASSES, PALETTE  # noqa: E402
from faceparse.records import read_mask  # noqa: E402
from faceparse.report.tables import duration_text  # noqa: E402

log = logging.getLogger(__name__)

DPI = 100
THUMB = 160  # pixels per image tile in the grids
NO_TTA_COLOUR = "#a6a6a6"
TTA_COLOUR = "#1f5fa8"
ERROR_COLOUR = (255, 0, 64)

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "figure.titlesize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


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
    entries = fixed + [tuple(adaptive.getpalette()[i : i + 3]) for i in range(0, 3 * free, 3)]
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


def thumb_rgb(path: str | Path, size: int = THUMB) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im)


def thumb_mask(path: str | Path, size: int = THUMB) -> np.ndarray:
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
    return [
        Patch(facecolor=np.array(PALETTE[i]) / 255, edgecolor="0.3", linewidth=0.5, label=f"{i} {CLASSES[i]}")
        for i in ids
    ]


def _class_swatches(ax, positions: Sequence[float], y: float = -0.035) -> None:
    """Palette-coloured squares under the x tick labels of ``ax`` (one per class)."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.scatter(
        positions,
        [y] * len(positions),
        marker="s",
        s=30,
        c=np.array(PALETTE) / 255,
        edgecolors="0.3",
        linewidths=0.5,
        transform=trans,
        clip_on=False,
        zorder=5,
    )


# ----------------------------------------------------------------------------- figures


def image_grid_figure(
    rows: Sequence[Sequence[np.ndarray]],
    path: str | Path,
    *,
    title: str,
    col_titles: Sequence[str] = (),
    row_titles: Sequence[str] = (),
    cell_titles: Sequence[Sequence[str]] | None = None,
    legend: bool = True,
) -> Path:
    """A grid of image tiles (rows x columns) with titles and a palette legend below."""
    nrows = len(rows)
    ncols = max((len(r) for r in rows), default=1)
    legend_h = 0.75 if legend else 0.0
    fig, axes = plt.subplots(
        nrows or 1, ncols, squeeze=False, figsize=(ncols * 1.75, (nrows or 1) * 1.85 + 0.45 + legend_h)
    )
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
        fig.legend(
            handles=palette_handles(),
            loc="lower center",
            ncol=min(7, max(3, ncols * 2)),
            fontsize=6.5,
            frameon=False,
            handlelength=1.0,
            columnspacing=0.8,
        )
    bottom = legend_h / fig.get_figheight() + 0.01
    fig.tight_layout(rect=(0, bottom, 1, 1 - 0.12 / fig.get_figheight()))
    return save_figure(fig, path)


def class_frequency_figure(class_pixels: dict[str, Sequence[int]], path: str | Path) -> Path:
    """Bars of each class's share of the pixels, per labelled split, in the palette colours, log scale."""
    splits = list(class_pixels)
    x = np.arange(len(CLASSES))
    width = 0.8 / max(1, len(splits))
    colours = [tuple(c / 255 for c in rgb) for rgb in PALETTE]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, split in enumerate(splits):
        counts = np.asarray(class_pixels[split], np.float64)
        share = counts / max(counts.sum(), 1.0)
        bars = ax.bar(
            x + (i - (len(splits) - 1) / 2) * width,
            np.where(share > 0, share, np.nan),
            width,
            color=colours,
            edgecolor="0.45",
            linewidth=0.6,
            hatch=(None, "///", "..")[i % 3],
            label=f"{split} ({int(counts.sum()):,} px)",
        )
        for bar, s in zip(bars, share):
            if s == 0:
                ax.annotate(
                    "0",
                    (bar.get_x() + bar.get_width() / 2, 0),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_yscale("log")
    ax.set_xticks(x, CLASSES, rotation=45, ha="right")
    ax.set_ylabel("share of pixels (log)")
    ax.set_title("Class frequency per split")
    legend = ax.legend(frameon=False)
    for handle in legend.legend_handles:
        handle.set_facecolor("white")
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def training_curves_figure(
    train_rows: Sequence[dict],
    val_points: Sequence[tuple[int, float]],
    path: str | Path,
    *,
    model: str,
    selected: tuple[int, float | None] | None = None,
    held_out: bool = True,
) -> Path:
    """Loss, val mIoU and learning rate over iterations, the selected checkpoint marked
    (``held_out=False``: val was trained on, and the title says so)."""
    fig, (ax_loss, ax_miou, ax_lr) = plt.subplots(
        3, 1, sharex=True, figsize=(7, 7.2), gridspec_kw={"height_ratios": [3, 3, 1.6]}
    )
    # the heads' losses (decode.loss_ce, aux.loss_ce, ...) when there is more than one
    loss_keys = sorted({k for row in train_rows for k in row if "loss" in k and k != "loss"})
    loss_keys = loss_keys if len(loss_keys) > 1 else []
    marker = "." if len(train_rows) < 30 else None
    if any("loss" in row for row in train_rows):
        it = [row["step"] for row in train_rows if "loss" in row]
        ax_loss.plot(
            it,
            [row["loss"] for row in train_rows if "loss" in row],
            color="black",
            lw=1.4,
            marker=marker,
            label="loss (total)",
        )
    for key in loss_keys:
        pts = [(row["step"], row[key]) for row in train_rows if key in row]
        ax_loss.plot(*zip(*pts), lw=0.9, alpha=0.8, label=key)
    if train_rows:
        ax_loss.legend(loc="upper right")
    else:
        ax_loss.text(
            0.5, 0.5, "no training loss logged", transform=ax_loss.transAxes, ha="center", va="center", color="0.4"
        )
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("Training loss")
    ax_loss.grid(alpha=0.3)

    if val_points:
        its, mious = zip(*val_points)
        ax_miou.plot(its, mious, marker="o", ms=4, color=TTA_COLOUR, label="val mIoU (no TTA)")
    else:
        ax_miou.text(
            0.5, 0.5, "no validation scores", transform=ax_miou.transAxes, ha="center", va="center", color="0.4"
        )
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
    variants = [
        (k, lbl, col)
        for k, lbl, col in (("no_tta", "no TTA", NO_TTA_COLOUR), ("tta", "TTA", TTA_COLOUR))
        if k in metrics
    ]
    width = 0.8 / max(1, len(variants))
    for ax, key, mean_key in ((axes[0], "IoU", "mIoU"), (axes[1], "F1", "mF1")):
        for i, (variant, label, colour) in enumerate(variants):
            vals = _values(metrics[variant], key)
            mean = metrics[variant].get(mean_key)
            mean_txt = f" ({mean_key} {mean:.2f})" if mean is not None else ""
            ax.bar(
                x + (i - (len(variants) - 1) / 2) * width,
                np.nan_to_num(vals),
                width,
                color=colour,
                label=label + mean_txt,
                edgecolor="white",
                linewidth=0.3,
            )
            for xi in x[np.isnan(vals)]:
                ax.text(
                    xi + (i - (len(variants) - 1) / 2) * width,
                    1,
                    "n/a",
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    color="0.4",
                )
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
                ax.text(
                    p, t, f"{v * 100:.0f}", ha="center", va="center", fontsize=6, color="white" if v > 0.55 else "black"
                )
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
            ax.text(s["s"] + top * 0.01, i, duration_text(s["s"]), va="center", fontsize=7)
        ax.set_xlim(0, top * 1.15 or 1)
    else:
        ax.text(0.5, 0.5, "no benchmark files", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("wall-clock seconds")
    ax.set_title("Run time per step (benchmarks/*.tsv)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)

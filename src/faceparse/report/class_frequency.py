"""The class-frequency figure of the report, from the class counts validate records in the dataset
index (the report's figure style: Agg, small PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from faceparse.labels import CLASSES, PALETTE
from faceparse.records import read_index


def class_frequency_plot(validation_json: str | Path, out: str | Path) -> None:
    """Bars of each class's share of the pixels, per labelled split, in the palette colours, log scale."""
    from faceparse.report.figures import plt, save_figure  # matplotlib (Agg) only when plotting

    index = read_index(validation_json)
    class_pixels = {s: e["class_pixels"] for s, e in index["splits"].items() if "class_pixels" in e}
    splits = list(class_pixels)
    x = np.arange(len(CLASSES))
    width = 0.8 / max(1, len(splits))
    colours = [tuple(c / 255 for c in rgb) for rgb in PALETTE]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, split in enumerate(splits):
        counts = np.asarray(class_pixels[split], np.float64)
        share = counts / max(counts.sum(), 1.0)
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, np.where(share > 0, share, np.nan), width,
                      color=colours, edgecolor="0.45", linewidth=0.6, hatch=(None, "///", "..")[i % 3],
                      label=f"{split} ({int(counts.sum()):,} px)")
        for bar, s in zip(bars, share):
            if s == 0:
                ax.annotate("0", (bar.get_x() + bar.get_width() / 2, 0), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(x, CLASSES, rotation=45, ha="right")
    ax.set_ylabel("share of pixels (log)")
    ax.set_title("Class frequency per split")
    legend = ax.legend(frameon=False)
    for handle in legend.legend_handles:
        handle.set_facecolor("white")
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out)

"""The leaderboard: every model and ensemble side by side, best val mIoU (with TTA) first.

The scores are those evaluate wrote: on val, or on the dev split carved out of train when val
has no masks; the table and figure name the split the metrics files record.

One row per entry: val mIoU and mF1 without and with TTA, the per-class IoU with TTA, the
selected iteration, the training time (the train job's benchmark; an ensemble's is its
members' sum) and whether the val scores are held out (``train_on_val`` in val_metrics.json).
Written as one HTML table and one PNG figure (scores as bars, per-class IoU as a heatmap).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from faceparse.labels import CLASSES
from faceparse.records import Selection, TrainSummary, read_json
from faceparse.report import tables
from faceparse.report.figures import NO_TTA_COLOUR, TTA_COLOUR, plt, save_figure
from faceparse.report.provenance import read_benchmark

__all__ = ["leaderboard_rows", "scored_split", "leaderboard_html", "leaderboard_figure", "write_leaderboard"]


def _train_seconds(tsv: str | Path) -> float | None:
    record = read_benchmark(tsv) if Path(tsv).is_file() else None
    return record["s"] if record else None


def _scores(metrics: dict) -> dict:
    plain, tta = metrics.get("no_tta", {}), metrics.get("tta", {})
    return {
        "mIoU_no_tta": plain.get("mIoU"),
        "mIoU_tta": tta.get("mIoU"),
        "mF1_no_tta": plain.get("mF1"),
        "mF1_tta": tta.get("mF1"),
        "IoU_tta": [tta.get("IoU", {}).get(c) for c in CLASSES],
        "train_on_val": metrics.get("train_on_val"),
        "split": metrics.get("split", "val"),
    }


def scored_split(rows: Sequence[dict]) -> str:
    """The split the rows were scored on (``val``, ``dev``; ``val/dev`` if they differ)."""
    return "/".join(sorted({r["split"] for r in rows}, reverse=True)) or "val"


def leaderboard_rows(models: Mapping[str, Mapping], ensembles: Mapping[str, Mapping] | None = None) -> list[dict]:
    """Rows, best first (val mIoU with TTA, then without; missing scores last).

    ``models[name]``: ``metrics`` (val_metrics.json), ``best`` (best.json), ``train_benchmark``
    (benchmarks/models/{name}/train.tsv), optionally ``train`` (train.json: the parameter count).
    ``ensembles[name]``: ``metrics`` and ``members`` (model names); an ensemble's weights are
    read from its val_metrics.json, its parameters are its members'.
    """
    rows = {}
    for name, files in models.items():
        selection = Selection.read(files["best"])
        parameters = TrainSummary.read(files["train"]).parameters if files.get("train") else None
        rows[name] = {
            "name": name,
            "kind": "model",
            "iter": selection.iter,
            "select_iter": str(selection.iter),
            "train_seconds": _train_seconds(files["train_benchmark"]),
            "parameters": parameters,
            **_scores(read_json(files["metrics"])),
        }
    for name, files in (ensembles or {}).items():
        metrics = read_json(files["metrics"])
        members = metrics["ensemble"]["members"]
        missing = [m for m in files["members"] if m not in rows]
        if missing:
            raise ValueError(f"{files['metrics']}: ensemble {name} has members {missing} without a leaderboard row")
        seconds = [rows[m]["train_seconds"] for m in files["members"]]
        parameters = [rows[m]["parameters"] for m in files["members"]]
        rows[name] = {
            "name": name,
            "kind": "ensemble",
            "iter": None,
            "members": [(m["model"], m["weight"]) for m in members],
            "select_iter": " + ".join(f"{m}@{rows[m]['iter']}" for m in files["members"]),
            "train_seconds": None if None in seconds else sum(seconds),
            "parameters": None if None in parameters else sum(parameters),
            **_scores(metrics),
        }

    def key(row: dict) -> tuple:
        return tuple(-v if v is not None else math.inf for v in (row["mIoU_tta"], row["mIoU_no_tta"]))

    return sorted(rows.values(), key=key)


def _held_out(train_on_val: bool | None) -> str:
    if train_on_val is None:
        return "unknown"
    return '<span class="bad">no (trained on val)</span>' if train_on_val else "yes"


def _entry(row: dict) -> str:
    if row["kind"] == "model":
        return f"<b>{tables.esc(row['name'])}</b>"
    members = ", ".join(f"{tables.esc(m)} ×{w:.2f}" for m, w in row["members"])
    return f"<b>{tables.esc(row['name'])}</b> <span class='muted'>(ensemble: {members})</span>"


def leaderboard_html(rows: Sequence[dict]) -> str:
    """The leaderboard as one HTML table."""
    header = [
        "rank",
        "model",
        "mIoU no TTA",
        "mIoU TTA",
        "mF1 no TTA",
        "mF1 TTA",
        "parameters",
        "selected iteration",
        "training time",
        "val held out",
        *(f"IoU {c}" for c in CLASSES),
    ]
    body_rows = [
        [
            tables.num(i + 1),
            _entry(r),
            tables.num(r["mIoU_no_tta"]),
            tables.num(r["mIoU_tta"]),
            tables.num(r["mF1_no_tta"]),
            tables.num(r["mF1_tta"]),
            tables.num(r.get("parameters")),
            tables.esc(r["select_iter"]),
            tables.duration_text(r["train_seconds"]),
            _held_out(r["train_on_val"]),
            *(tables.num(v) for v in r["IoU_tta"]),
        ]
        for i, r in enumerate(rows)
    ]
    numeric = (0, 2, 3, 4, 5, 6, 8, *range(10, 10 + len(CLASSES)))
    split = scored_split(rows)
    notes = (
        f"<p>Scores on {split} in %, best mIoU with TTA first; mIoU over the 19 classes, mF1 over the 18 foreground "
        "classes; per-class IoU with TTA. Parameters: sum(p.numel() for p in model.parameters()), as the "
        "challenge counts them (an ensemble's: its members'). Training time: the model's last train job "
        "(benchmarks/); an ensemble's is the sum of its members'. An ensemble averages its members' TTA probabilities "
        "(×: normalised weights). <i>val held out: no</i> means the model saw the val images in training, "
        "so its val scores do not measure unseen faces.</p>"
    )
    if "dev" in split:
        notes += (
            "<p>dev: images carved out of train for checkpoint selection (val has no masks); no model "
            "trained on them.</p>"
        )
    return tables.page(
        f"Leaderboard: models and ensembles on {split}", notes + tables.table(header, body_rows, numeric)
    )


def leaderboard_figure(rows: Sequence[dict], path: str | Path) -> Path:
    """Bars of val mIoU and mF1 (no TTA, TTA) per entry, best first, and a per-class IoU heatmap."""
    import numpy as np

    n = len(rows)
    labels = [
        r["name"] + (" (ensemble)" if r["kind"] == "ensemble" else "") + (" *" if r["train_on_val"] else "")
        for r in rows
    ]
    fig, (bars, heat) = plt.subplots(
        2, 1, figsize=(10, 2.6 + 1.35 * n), gridspec_kw={"height_ratios": [max(1.0, 0.9 * n), max(1.0, 0.45 * n) + 0.8]}
    )
    y = np.arange(n)
    series = [
        ("mIoU_no_tta", "mIoU no TTA", NO_TTA_COLOUR, None),
        ("mIoU_tta", "mIoU TTA", TTA_COLOUR, None),
        ("mF1_no_tta", "mF1 no TTA", NO_TTA_COLOUR, "//"),
        ("mF1_tta", "mF1 TTA", TTA_COLOUR, "//"),
    ]
    height = 0.8 / len(series)
    for k, (key, label, colour, hatch) in enumerate(series):
        values = np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)
        offset = (k - (len(series) - 1) / 2) * height
        bars.barh(
            y + offset,
            np.nan_to_num(values),
            height,
            color=colour,
            hatch=hatch,
            edgecolor="white",
            linewidth=0.3,
            label=label,
        )
        for yi, v in zip(y, values):
            if not np.isnan(v):
                bars.text(v + 0.5, yi + offset, f"{v:.1f}", va="center", fontsize=6)
    bars.set_yticks(y)
    bars.set_yticklabels(labels)
    bars.invert_yaxis()  # best on top
    bars.set_xlim(0, 132)  # room on the right for the legend
    bars.set_xticks(range(0, 101, 20))
    split = scored_split(rows)
    bars.set_xlabel(f"{split} score (%)")
    bars.legend(loc="center right", framealpha=0.9)
    bars.set_title(
        f"Leaderboard on {split}, best mIoU with TTA first"
        + ("  (* not held out: trained on val)" if any(r["train_on_val"] for r in rows) else "")
    )
    iou = np.array([[np.nan if v is None else v for v in r["IoU_tta"]] for r in rows], dtype=float)
    image = heat.imshow(np.ma.masked_invalid(iou), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), v in np.ndenumerate(iou):
        if not np.isnan(v):
            heat.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if v < 60 else "black")
    heat.set_xticks(range(len(CLASSES)))
    heat.set_xticklabels(CLASSES, rotation=45, ha="right")
    heat.set_yticks(y)
    heat.set_yticklabels(labels)
    heat.set_title("Per-class IoU with TTA (%)")
    fig.colorbar(image, ax=heat, fraction=0.025, pad=0.01)
    fig.tight_layout()
    return save_figure(fig, path)


def write_leaderboard(
    models: Mapping[str, Mapping], ensembles: Mapping[str, Mapping], *, table_html: str | Path, figure_png: str | Path
) -> list[dict]:
    """:func:`leaderboard_rows` as the HTML table and the PNG figure."""
    rows = leaderboard_rows(models, ensembles)
    Path(table_html).parent.mkdir(parents=True, exist_ok=True)
    Path(table_html).write_text(leaderboard_html(rows))
    leaderboard_figure(rows, figure_png)
    return rows

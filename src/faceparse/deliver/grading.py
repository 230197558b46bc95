"""The later editions' grading zip: one archive with everything a participant hands in.

Grading wants a short report (model, losses, processing, val F-score, parameter count), the
predicted test masks, all the code, the checkpoint and a ``Readme.txt``. Every fact the report
needs is already in the run's records, so :func:`report_facts` reads them (``train.json``,
``best.json``, the evaluate step's scores, the run's dumped config, the train job's benchmark,
the solution's parity) and :func:`report_markdown` writes a draft from those facts alone: the
numbers in it are the records' (a test holds it to that), the wording is the participant's to edit.

:func:`build_grading_zip` writes ``{model}_grading.zip``::

    Readme.txt              what is where, how to run the solution
    report/report.md        the draft (and report.html, its rendering, with the figures beside)
    report/facts.json       the facts the draft states, as read from the records
    masks/{stem}.png        the test masks (the masks archive's members, unchanged)
    solution/...            run.py, the network file, ckpt.pth, solution.json, Readme.txt
    code/...                the project as it ran (tracked and untracked-but-not-ignored files)

and checks it before it is kept: every part present, the masks exactly the masks archive's
(checked against the test images by the package step), the checkpoint the solution's, the
solution's parity passed, the archive readable (CRCs). It is written beside its place and
renamed into it: a failed build leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from faceparse.deliver.package import add_entry
from faceparse.labels import CLASSES
from faceparse.records import atomic_path, read_json, write_json

__all__ = ["GradingError", "report_facts", "report_markdown", "render_html", "build_grading_zip"]

log = logging.getLogger(__name__)

_SOLUTION_FILES = ("run.py", "ckpt.pth", "solution.json", "Readme.txt")


class GradingError(ValueError):
    """The grading zip would be incomplete or wrong; nothing was written."""


def _transform(step: Mapping) -> str:
    args = ", ".join(f"{k}={v}" for k, v in step.items() if k != "type")
    return f"{step['type']}({args})" if args else str(step["type"])


def report_facts(
    model: str,
    *,
    train_json: str | Path,
    best_json: str | Path,
    metrics_json: str | Path,
    parity_json: str | Path,
    benchmark_tsv: str | Path | None,
    masks_check_json: str | Path,
    max_params: int | None,
    tta: Mapping,
    code: Mapping,
) -> dict:
    """What the report states, read from the run's records (nothing computed anew)."""
    from mmengine.config import Config

    from faceparse.report.provenance import read_benchmark

    train, best, metrics = read_json(train_json), read_json(best_json), read_json(metrics_json)
    parity, masks = read_json(parity_json), read_json(masks_check_json)
    model_dir = Path(train_json).parent
    cfg = Config.fromfile(str(model_dir / train["config"]), import_custom_modules=False)
    backbone = dict(cfg.model.backbone)
    losses = cfg.model.decode_head.get("loss_decode") or []
    losses = [losses] if isinstance(losses, Mapping) else list(losses)
    pipeline = cfg.get("train_pipeline") or cfg.train_dataloader.dataset.pipeline
    bench = read_benchmark(benchmark_tsv) if benchmark_tsv and Path(benchmark_tsv).is_file() else None
    scores = {which: metrics[which] for which in ("no_tta", "tta") if which in metrics}
    facts = {
        "model": model,
        "network": {
            "backbone": backbone.pop("type"),
            "arguments": backbone,
            "head": cfg.model.decode_head.type,
            "parameters": train["parameters"],
            "max_params": max_params,
            "pretrained": False,
        },
        "losses": [
            {"type": loss["type"], "weight": loss.get("loss_weight", 1.0), "class_weight": loss.get("class_weight")}
            for loss in losses
        ],
        "normalisation": {
            "mean": list(cfg.model.data_preprocessor.mean),
            "std": list(cfg.model.data_preprocessor.std),
        },
        "augmentation": [_transform(step) for step in pipeline],
        "tta": {"scales": list(tta["scales"]), "flip": bool(tta["flip"])},
        "schedule": {
            "optimizer": _transform(cfg.optim_wrapper.optimizer),
            "lr_schedule": [_transform(s) for s in cfg.get("param_scheduler") or []],
            "max_iters": train["max_iters"],
            "batch_size": cfg.train_dataloader.batch_size,
            "training_seconds": bench["s"] if bench else None,
        },
        "selection": {"metric": best["metric"], "split": best["split"], "iter": best["iter"], "score": best["score"]},
        "scores": {
            "split": best["split"],
            **{which: {"mF1": s["mF1"], "mIoU": s["mIoU"], "mF1_19": s.get("mF1_19")} for which, s in scores.items()},
        },
        "class_f1": {
            name: {which: s["F1"][name] for which, s in scores.items() if "F1" in s}
            for name in CLASSES
            if any("F1" in s for s in scores.values())
        },
        "test_masks": masks["files"],
        "parity": {
            "images": parity["images"],
            "agreement_percent": parity["agreement_percent"],
            "passed": parity["passed"],
        },
        "code": {"commit": code.get("commit"), "dirty": code.get("dirty")},
    }
    return json.loads(json.dumps(facts))  # as facts.json holds them (tuples as lists)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_markdown(facts: Mapping, figures: Sequence[str] = ()) -> str:
    """The report draft, in Markdown, from ``facts`` alone (figures: file names beside it)."""
    net, sched, sel, scores = facts["network"], facts["schedule"], facts["selection"], facts["scores"]
    split = scores["split"]
    budget = f" (the rules allow fewer than {net['max_params']:,})" if net["max_params"] else ""
    minutes = f"{sched['training_seconds'] / 60:.1f} min" if sched["training_seconds"] else "not recorded"
    lines = [
        f"# Face parsing: {facts['model']} (report draft)",
        "",
        f"*Drafted by faceparse from the run's records on {dt.date.today().isoformat()}: check and edit it "
        "before handing it in.*",
        "",
        "## Model",
        "",
        f"- Network: {net['backbone']} with a {net['head']} head, trained from scratch (no pretrained weights).",
        f"- Parameters: **{net['parameters']:,}**, counted as `sum(p.numel() for p in model.parameters())`{budget}.",
        "- Arguments: " + ", ".join(f"{k}={v}" for k, v in net["arguments"].items()) + ".",
        "",
        "## Losses",
        "",
        *[
            f"- {loss['type']}, weight {loss['weight']}"
            + (
                " (per-class weights: " + ", ".join(str(w) for w in loss["class_weight"]) + ")"
                if loss["class_weight"]
                else ""
            )
            for loss in facts["losses"]
        ],
        "",
        "## Data processing and augmentation",
        "",
        "- Normalisation: mean "
        + ", ".join(f"{v:.3f}" for v in facts["normalisation"]["mean"])
        + "; std "
        + ", ".join(f"{v:.3f}" for v in facts["normalisation"]["std"])
        + " (RGB, from the training images).",
        "- Training pipeline: " + " -> ".join(facts["augmentation"]) + ".",
        f"- Test-time augmentation: scales {', '.join(str(s) for s in facts['tta']['scales'])}"
        + ("; horizontal flip with the left/right classes swapped back." if facts["tta"]["flip"] else "; no flip."),
        "",
        "## Training",
        "",
        f"- Optimiser: {sched['optimizer']}.",
        f"- Learning rate: {' then '.join(sched['lr_schedule']) or 'constant'}.",
        f"- {sched['max_iters']:,} iterations of batch {sched['batch_size']}; training time {minutes}.",
        f"- Checkpoint selected by {sel['metric']} on {split}: iteration {sel['iter']:,} ({sel['metric']} "
        f"{_pct(sel['score'])}).",
        "",
        f"## Results on {split}",
        "",
        "| | mF1 | mF1 (19 classes) | mIoU |",
        "|---|---:|---:|---:|",
    ]
    for which, label in (("no_tta", "without TTA"), ("tta", "with TTA")):
        if which in scores:
            s = scores[which]
            lines.append(f"| {label} | {_pct(s['mF1'])} | {_pct(s['mF1_19'])} | {_pct(s['mIoU'])} |")
    if facts["class_f1"]:
        lines += ["", f"### F1 per class on {split}", "", "| class | without TTA | with TTA |", "|---|---:|---:|"]
        for name, f1 in facts["class_f1"].items():
            lines.append(f"| {name} | {_pct(f1.get('no_tta'))} | {_pct(f1.get('tta'))} |")
    for figure, caption in zip(
        figures, ("Training curves", "Predictions on val (photo, truth where val has masks, prediction, overlay)")
    ):
        lines += ["", f"## {caption}", "", f"![{caption}]({figure})"]
    parity = facts["parity"]
    code = facts["code"]
    commit = (code["commit"] or "no git commit")[:12] + (" with uncommitted changes" if code["dirty"] else "")
    lines += [
        "",
        "## Submission",
        "",
        f"- `masks/`: {facts['test_masks']} test masks (single-channel PNG, values 0..18).",
        f"- `solution/`: `run.py` and the checkpoint; it labels {parity['images']} {split} images as the pipeline "
        f"did on {parity['agreement_percent']:.2f}% of the pixels.",
        f"- `code/`: the project as it ran ({commit}).",
        "",
    ]
    return "\n".join(lines)


def render_html(markdown_text: str, title: str) -> str:
    """The draft as a standalone HTML page (figures referenced beside it)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = "body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.4}table{border-collapse:collapse}"
    style += "td,th{border:1px solid #ccc;padding:2px 8px}img{max-width:100%}"
    return f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>' + (
        f"<body>{body}</body></html>\n"
    )


def _readme(model: str, facts: Mapping) -> str:
    split = facts["scores"]["split"]
    tta = facts["scores"].get("tta") or facts["scores"].get("no_tta") or {}
    return "\n".join(
        [
            f"Face parsing submission: {model}",
            "",
            "report/report.md, report/report.html  the report (a draft made from the run's records: edit it)",
            f"masks/                               the {facts['test_masks']} predicted test masks (PNG, values 0..18)",
            "solution/                            run.py, the network file, ckpt.pth, solution.json, Readme.txt",
            "code/                                the code that trained the model (README.md says how to run it)",
            "",
            f"Parameters: {facts['network']['parameters']:,}. {split} mF1 {_pct(tta.get('mF1'))}, "
            f"mIoU {_pct(tta.get('mIoU'))} (with TTA).",
            "",
            "Run the solution (PyTorch, OpenCV, Pillow and numpy):",
            "  python solution/run.py --input IMAGE.jpg --output MASK.png --weights solution/ckpt.pth",
            "",
        ]
    )


def build_grading_zip(
    model: str,
    zip_path: str | Path,
    check_json: str | Path,
    *,
    facts: Mapping,
    masks_zip: str | Path,
    solution_dir: str | Path,
    figures: Mapping[str, str | Path],
    code_root: str | Path,
    code_files: Sequence[str],
) -> dict:
    """Write ``zip_path`` (layout in the module's docstring) and ``check_json``, after checking it.

    ``figures``: name in the report folder -> file. Raises :class:`GradingError` (nothing
    written) when a part is missing or wrong."""
    solution_dir, code_root = Path(solution_dir), Path(code_root)
    problems = [f"{solution_dir / n}: missing" for n in _SOLUTION_FILES if not (solution_dir / n).is_file()]
    if not facts["parity"]["passed"]:
        problems.append(f"{solution_dir}: run.py did not pass its parity check")
    problems += [f"{path}: missing" for path in figures.values() if not Path(path).is_file()]
    if not code_files:
        problems.append(f"{code_root}: no code files found")
    if problems:
        raise GradingError("grading zip refused: " + "; ".join(problems))
    markdown_text = report_markdown(facts, list(figures))
    with zipfile.ZipFile(masks_zip) as masks:
        mask_members = {i.filename: (i.CRC, i.file_size) for i in masks.infolist() if not i.is_dir()}
        mask_data = {name: masks.read(name) for name in sorted(mask_members)}
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            add_entry(zf, "Readme.txt", _readme(model, facts).encode())
            add_entry(zf, "report/report.md", markdown_text.encode())
            add_entry(zf, "report/report.html", render_html(markdown_text, f"{model}: report draft").encode())
            add_entry(zf, "report/facts.json", _json_bytes(facts))
            for name, path in figures.items():
                add_entry(zf, f"report/{name}", Path(path).read_bytes())
            for name, data in mask_data.items():
                add_entry(zf, name, data)
            for path in sorted(p for p in solution_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
                add_entry(zf, f"solution/{path.relative_to(solution_dir).as_posix()}", path.read_bytes())
            for rel in code_files:
                add_entry(zf, f"code/{rel}", (code_root / rel).read_bytes())
        summary = _check(tmp, mask_members, solution_dir, code_files, list(figures))
    summary["zip"] = str(zip_path)
    write_json(check_json, summary)
    log.info("%s: %s bytes (%s)", zip_path, f"{summary['zip_bytes']:,}", summary["parts"])
    return summary


def _json_bytes(data) -> bytes:
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode()


def _check(
    zip_file: Path, mask_members: Mapping, solution_dir: Path, code_files: Sequence[str], figures: Sequence[str]
) -> dict:
    """The written zip read back: every part there and intact; raises :class:`GradingError`."""
    with zipfile.ZipFile(zip_file) as zf:
        bad = zf.testzip()
        infos = {i.filename: i for i in zf.infolist()}
    problems = [f"{bad}: CRC error"] if bad else []
    wanted = ["Readme.txt", "report/report.md", "report/report.html", "report/facts.json"]
    wanted += [f"report/{f}" for f in figures] + [f"solution/{n}" for n in _SOLUTION_FILES]
    wanted += [f"code/{f}" for f in code_files]
    problems += [f"{name}: missing" for name in wanted if name not in infos]
    masks = {n: (i.CRC, i.file_size) for n, i in infos.items() if n.startswith("masks/")}
    if masks != dict(mask_members):
        problems.append(f"masks/: {len(masks)} files that are not the masks archive's {len(mask_members)}")
    ckpt = infos.get("solution/ckpt.pth")
    if ckpt is not None and ckpt.file_size != (solution_dir / "ckpt.pth").stat().st_size:
        problems.append("solution/ckpt.pth: not the solution's checkpoint")
    if problems:
        raise GradingError("grading zip refused: " + "; ".join(problems))

    def part_bytes(prefix: str) -> int:
        return sum(i.compress_size for n, i in infos.items() if n.startswith(prefix))

    return {
        "ok": True,
        "zip_bytes": zip_file.stat().st_size,
        "parts": {
            "masks": len(masks),
            "solution": sum(1 for n in infos if n.startswith("solution/")),
            "code": len(code_files),
            "report": sum(1 for n in infos if n.startswith("report/")),
        },
        "bytes": {part: part_bytes(f"{part}/") for part in ("masks", "solution", "code", "report")},
        "checked": ["every part present", "masks = the masks archive's", "solution parity passed", "CRCs"],
    }

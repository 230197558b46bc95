"""Self-contained HTML tables for the report (the report shows .html results in a frame)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from faceparse.labels import CLASSES, PALETTE

__all__ = [
    "page",
    "table",
    "data_summary_html",
    "evaluation_html",
    "check_html",
    "provenance_html",
    "held_out_note",
    "duration_text",
]


def duration_text(seconds: float | None) -> str:
    """A run time for a person: ``41.0 s``, ``3.2 min``, ``1.25 h``; ``n/a`` when unknown."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


NOT_HELD_OUT = (
    "These val scores are not held out: the model was trained on the val images too "
    "(train_on_val: true). They show how well it fits its training data, not how it does on "
    "unseen faces; only the test set (Codalab) measures that."
)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 13px;
       color: #222; margin: 12px 16px; }
h1 { font-size: 18px; margin: 0 0 8px; } h2 { font-size: 15px; margin: 18px 0 6px; }
h3 { font-size: 13px; margin: 12px 0 4px; }
table { border-collapse: collapse; margin: 4px 0 10px; }
th, td { border: 1px solid #d0d0d0; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f7; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.mean td { font-weight: 600; background: #f7f7f7; }
.sw { display: inline-block; width: 11px; height: 11px; border: 1px solid #555; margin-right: 5px;
      vertical-align: -1px; }
.ok { color: #176f2c; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
.up { color: #176f2c; } .down { color: #b00020; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 6px 8px; overflow-x: auto; max-width: 100%; }
.muted { color: #666; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def swatch(class_id: int) -> str:
    r, g, b = PALETTE[class_id]
    return f'<span class="sw" style="background: rgb({r},{g},{b})"></span>'


def table(
    header: Sequence[str] | None,
    rows: Iterable[Sequence],
    numeric: Sequence[int] = (),
    row_class: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are already-escaped HTML, ``numeric`` columns align right; no header
    row when ``header`` is None (a key/value table: the first column is bold)."""
    out = ["<table>" + ("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" if header else "")]
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        cells = "".join(
            f'<td class="n">{c}</td>'
            if j in numeric
            else f"<th>{c}</th>"
            if header is None and j == 0
            else f"<td>{c}</td>"
            for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def kv_table(items: dict) -> str:
    rows = []
    for key, value in items.items():
        if isinstance(value, (dict, list)):
            cell = f"<pre>{esc(json.dumps(value, indent=1))}</pre>"
        else:
            cell = f"<code>{esc(value)}</code>"
        rows.append([esc(key), cell])
    return table(["key", "value"], rows)


def _class_name(i: int) -> str:
    return f"{swatch(i)}{i} {esc(CLASSES[i])}"


# ----------------------------------------------------------------------------- data


def data_summary_html(
    index: dict, stats: dict, flip: dict | None = None, source: dict | None = None, framing: dict | None = None
) -> str:
    splits = index.get("splits", {})
    rows = []
    for split, entry in splits.items():
        size = entry.get("size")
        pixels = entry.get("class_pixels")
        rows.append(
            [
                esc(split),
                num(int(entry.get("images", len(entry.get("names", []))))),
                "yes" if entry.get("mask_dir") else "no",
                esc(f"{size[0]}x{size[1]}") if size else "n/a",
                num(int(sum(pixels))) if pixels else "n/a",
            ]
        )
    body = [
        f"<p>Layout <code>{esc(index.get('layout'))}</code>, root <code>{esc(index.get('root'))}</code>.</p>",
        "<h2>Images per split</h2>",
        table(["split", "images", "masks", "size (HxW, most common)", "labelled pixels"], rows, numeric=(1, 4)),
    ]
    if flip:
        n_flip = flip.get("images", len(flip.get("names", [])))
        body.append(
            f"<p>Offline horizontally flipped training copies (left/right labels swapped): "
            f"<b>{num(int(n_flip))}</b>.</p>"
        )
    else:
        body.append("<p>No offline flipped copies (config <code>flip: false</code>).</p>")
    labelled = [s for s, e in splits.items() if e.get("class_pixels")]
    if labelled:
        totals = {s: sum(splits[s]["class_pixels"]) or 1 for s in labelled}
        freq_rows = [
            [_class_name(i)] + [num(splits[s]["class_pixels"][i] / totals[s] * 100, 3) for s in labelled]
            for i in range(len(CLASSES))
        ]
        body += [
            "<h2>Class frequency (% of labelled pixels)</h2>",
            table(["class"] + labelled, freq_rows, numeric=range(1, len(labelled) + 1)),
        ]
    body += [
        "<h2>Normalisation statistics (0-255 RGB, used by training and inference)</h2>",
        table(
            ["", "R", "G", "B"],
            [
                ["mean"] + [num(float(v), 3) for v in stats.get("mean", [])],
                ["std"] + [num(float(v), 3) for v in stats.get("std", [])],
            ],
            numeric=(1, 2, 3),
        ),
        f"<p class='muted'>computed over {num(int(stats.get('images', 0)))} images.</p>",
    ]
    if framing:
        w, h = framing["size"]
        body += [
            "<h2>Training framing (where <code>faceparse-parse --faces</code> puts a face's landmarks)</h2>",
            table(
                ["landmark", "x", "y", f"x, y in a {w}x{h} crop"],
                [
                    [esc(name), num(x, 3), num(y, 3), esc(f"{x * w:.1f}, {y * h:.1f}")]
                    for name, (x, y) in framing["points"].items()
                ],
                numeric=(1, 2),
            ),
            f"<p class='muted'>class centroids of {num(int(framing['masks']))} training masks"
            + (", mirrored copies counted" if framing.get("flip") else "")
            + " (fractions of the width and height).</p>",
        ]
    if source:
        body += ["<h2>Source (what produced the data)</h2>", kv_table(source)]
    return page("Data summary", "\n".join(body))


# ----------------------------------------------------------------------------- evaluation


def _delta(a, b) -> str:
    if a is None or b is None:
        return "n/a"
    d = b - a
    cls = "up" if d > 0.005 else "down" if d < -0.005 else ""
    return f'<span class="{cls}">{d:+.2f}</span>'


def held_out_note(train_on_val: bool | None) -> str:
    """A warning paragraph when val was trained on, else nothing."""
    return f'<p class="bad">{esc(NOT_HELD_OUT)}</p>' if train_on_val else ""


def evaluation_html(metrics: dict, image_scores: Sequence[dict] = (), *, model: str) -> str:
    """The evaluation numbers: split-level and per-class IoU/F1 without and with TTA, the TTA
    configuration, and each val image's own mIoU (worst first)."""
    plain, tta = metrics.get("no_tta", {}), metrics.get("tta", {})
    confusion = (tta or plain).get("confusion")
    pixels = [sum(row) for row in confusion] if confusion else [None] * len(CLASSES)
    summary = [
        [esc(label), num(plain.get(k)), num(tta.get(k)), _delta(plain.get(k), tta.get(k))]
        for k, label in (
            ("mIoU", "mIoU (19 classes)"),
            ("mF1", "mF1 (18 foreground classes)"),
            ("aAcc", "pixel accuracy"),
        )
    ]
    per_class = []
    for i, name in enumerate(CLASSES):
        ia, ib = plain.get("IoU", {}).get(name), tta.get("IoU", {}).get(name)
        fa, fb = plain.get("F1", {}).get(name), tta.get("F1", {}).get(name)
        per_class.append(
            [
                _class_name(i),
                num(ia),
                num(ib),
                _delta(ia, ib),
                num(fa),
                num(fb),
                _delta(fa, fb),
                num(pixels[i]) if pixels[i] is not None else "n/a",
            ]
        )
    body = [
        held_out_note(metrics.get("train_on_val")),
        "<p>Scores in % on the val split, from one confusion matrix summed over all its images; "
        "Δ = TTA − no TTA; <i>n/a</i>: the class is in neither truth nor prediction.</p>",
        table(["", "no TTA", "TTA", "Δ"], summary, numeric=(1, 2, 3)),
        "<h2>Per class</h2>",
        table(
            ["class", "IoU no TTA", "IoU TTA", "Δ", "F1 no TTA", "F1 TTA", "Δ", "true pixels"],
            per_class,
            numeric=(1, 2, 3, 4, 5, 6, 7),
        ),
    ]
    if metrics.get("tta_config"):
        body += ["<h2>TTA configuration</h2>", kv_table(metrics["tta_config"])]
    valid = sorted(
        (s for s in image_scores if s["mIoU"] is not None and not math.isnan(s["mIoU"])), key=lambda s: s["mIoU"]
    )
    if valid:
        vals = [s["mIoU"] for s in valid]
        body += [
            "<h2>Per image (TTA predictions, worst first)</h2>",
            "<p class='muted'>each image scored alone: the mean IoU over the classes in its truth or its "
            "prediction.</p>",
            table(
                ["images", "min", "median", "mean", "max"],
                [[num(len(vals)), num(vals[0]), num(vals[len(vals) // 2]), num(sum(vals) / len(vals)), num(vals[-1])]],
                numeric=(0, 1, 2, 3, 4),
            ),
            table(
                ["rank", "image", "mIoU", "pixel accuracy"],
                [
                    [num(i + 1), f"<code>{esc(s['name'])}</code>", num(s["mIoU"]), num(s.get("acc"))]
                    for i, s in enumerate(valid)
                ],
                numeric=(0, 2, 3),
            ),
        ]
    return page(f"{model}: validation scores", "\n".join(body))


# ----------------------------------------------------------------------------- submission


def check_html(check: dict, *, zip_path: str, model: str) -> str:
    ok = check.get("ok", not check.get("problems"))
    status = '<span class="ok">passed</span>' if ok else '<span class="bad">FAILED</span>'
    items = {k: v for k, v in check.items() if k not in ("names", "problems")}
    body = [f"<p>Submission <code>{esc(zip_path)}</code>: the check {status}.</p>", kv_table(items)]
    if check.get("problems"):
        body += ["<h2>Problems</h2>", "<pre>" + esc("\n".join(check["problems"][:200])) + "</pre>"]
    return page(f"{model}: submission check", "\n".join(body))


# ----------------------------------------------------------------------------- provenance


def _rgb(values) -> str:
    return "(" + ", ".join(num(float(v)) for v in values) + ")" if values else "n/a"


def _short(sha: str | None, n: int = 16) -> str:
    return f"<code title='{esc(sha)}'>{esc(sha[:n])}…</code>" if sha else "n/a"


def provenance_html(prov: dict) -> str:
    """The provenance record as one page: code, data, models, config, environment, run times, outputs."""
    body = [
        "<p>What produced these results: code, data, config, checkpoints; "
        "the full record is <code>results/provenance/provenance.json</code>.</p>"
    ]
    body += _code_section(prov.get("code", {}), prov.get("created", ""))
    body += _data_section(prov.get("data", {}))
    body.append("<h2>Models and submissions</h2>")
    for name, m in prov.get("models", {}).items():
        body += _model_section(name, m)
    for name, e in prov.get("ensembles", {}).items():
        body += _ensemble_section(name, e)
    body += [
        "<h2>Resolved workflow config</h2>",
        f"<pre>{esc(prov.get('config_yaml') or json.dumps(prov.get('config'), indent=2))}</pre>",
    ]
    body += _environment_section(prov.get("environment", {}), prov.get("runtimes", []), prov.get("outputs", {}))
    return page("Provenance", "\n".join(body))


def _code_section(code: dict, created: str) -> list[str]:
    dirty = code.get("dirty")
    dirty_txt = (
        '<span class="bad">yes (uncommitted changes)</span>'
        if dirty
        else '<span class="ok">no</span>'
        if dirty is not None
        else "unknown (not a git checkout)"
    )
    return [
        "<h2>Code</h2>",
        table(
            None,
            [
                ["git commit", f"<code>{esc(code.get('commit') or 'n/a')}</code>"],
                ["branch", esc(code.get("branch") or "n/a")],
                ["working tree dirty", dirty_txt],
                [
                    "changed files",
                    esc(", ".join(code.get("changed", [])[:20]) or "none")
                    + (" …" if code.get("changed_count", 0) > 20 else ""),
                ],
                [
                    "code fingerprint",
                    f"<code>{esc(code.get('sha256'))}</code>"
                    f" <span class='muted'>({num(code.get('files', 0))} files under "
                    f"{esc(', '.join(code.get('paths', [])))})</span>",
                ],
                ["snakemake", esc(code.get("snakemake") or "n/a")],
                ["created", esc(created)],
            ],
        ),
    ]


def _data_section(data: dict) -> list[str]:
    split_rows = [
        [esc(s), num(v["files"]), num(v["bytes"]), f"<code>{esc(v['sha256'])}</code>"]
        for s, v in data.get("splits", {}).items()
    ]
    split_rows.append(
        [
            "<b>all</b>",
            num(data.get("files", 0)),
            num(data.get("bytes", 0)),
            f"<code><b>{esc(data.get('sha256'))}</b></code>",
        ]
    )
    return [
        "<h2>Dataset fingerprint</h2>",
        "<p class='muted'>sha256 over the sorted (relative name, size, content sha256) of every image and "
        "mask in <code>results/data/validation.json</code>.</p>",
        f"<p>Layout <code>{esc(data.get('layout'))}</code>, root <code>{esc(data.get('root'))}</code>; "
        f"normalisation mean {_rgb(data.get('stats', {}).get('mean'))}, "
        f"std {_rgb(data.get('stats', {}).get('std'))} (0-255 RGB).</p>",
        table(["split", "files", "bytes", "sha256"], split_rows, numeric=(1, 2)),
    ]


def _model_section(name: str, m: dict) -> list[str]:
    ckpt, val = m.get("checkpoint", {}), m.get("val", {})
    sub = m.get("submission") or {}
    resolved = m.get("resolved_config", {})
    rows = [
        [
            "config",
            f"<code>{esc(m.get('config_file'))}</code> → resolved <code>{esc(resolved.get('path'))}</code>"
            f" (sha256 <code>{esc(resolved.get('sha256'))}</code>)",
        ],
        ["checkpoint", f"<code>{esc(ckpt.get('path'))}</code> ({num(ckpt.get('bytes'))} bytes)"],
        ["checkpoint sha256", f"<code>{esc(ckpt.get('sha256'))}</code>"],
        ["parameters", num(m.get("parameters"))],
        [
            "selected",
            f"iteration {num(m.get('iter'))} of {num(m.get('max_iters'))} by val "
            f"{esc(m.get('select_metric') or 'mIoU')} during training "
            f"{num(m.get('select_score', m.get('select_mIoU')))}",
        ],
        [
            "val mIoU",
            f"{num(val.get('mIoU_no_tta'))} without TTA, {num(val.get('mIoU_tta'))} with TTA"
            + (' <span class="bad">(not held out: trained on val)</span>' if val.get("train_on_val") else ""),
        ],
        ["val mF1", f"{num(val.get('mF1_no_tta'))} without TTA, {num(val.get('mF1_tta'))} with TTA"],
    ]
    if sub:
        rows += [
            ["submission", f"<code>{esc(sub.get('path'))}</code> ({num(sub.get('bytes'))} bytes)"],
            ["submission sha256", f"<code>{esc(sub.get('sha256'))}</code>"],
        ]
    rows += _deliverable_rows(m.get("deliverables") or {})
    body = [f"<h3>{esc(name)}</h3>", held_out_note(val.get("train_on_val")), table(None, rows)]
    if resolved.get("text"):
        body.append(
            f"<details><summary>the resolved mmseg config of {esc(name)}</summary>"
            f"<pre>{esc(resolved['text'])}</pre></details>"
        )
    return body


def _passed(ok) -> str:
    return '<span class="ok">passed</span>' if ok else '<span class="bad">failed</span>'


def _deliverable_rows(deliverables: dict) -> list[list[str]]:
    """The later editions' deliverables with their checks: the masks archive, the solution's
    parity, the grading zip's contents and size."""
    rows = []
    if masks := deliverables.get("masks"):
        rows.append(
            [
                "masks archive",
                f"<code>{esc(masks.get('zip'))}</code>: {num(masks.get('files'))} masks "
                f"({esc(', '.join(masks.get('checked', [])))}), {num(masks.get('zip_bytes'))} bytes, "
                + _passed(masks.get("ok")),
            ]
        )
    if parity := deliverables.get("solution"):
        rows.append(
            [
                "solution folder",
                f"<code>{esc(parity.get('folder'))}</code>: run.py agrees with the pipeline on "
                f"{num(parity.get('agreement_percent'))}% of the pixels of {num(parity.get('images'))} "
                f"{esc(parity.get('split'))} images (at least {num(parity.get('threshold_percent'))}%), "
                + _passed(parity.get("passed")),
            ]
        )
    if grading := deliverables.get("grading"):
        parts = ", ".join(f"{esc(k)} {num(v)}" for k, v in (grading.get("parts") or {}).items())
        rows.append(
            [
                "grading zip",
                f"<code>{esc(grading.get('zip'))}</code>: {num(grading.get('zip_bytes'))} bytes ({parts} files), "
                + _passed(grading.get("ok")),
            ]
        )
    return rows


def _ensemble_section(name: str, e: dict) -> list[str]:
    val, sub = e.get("val", {}), e.get("submission") or {}
    members = ", ".join(
        f"{esc(m['model'])} ×{m['weight']:.3f} (<code>{esc(Path(m['checkpoint']).name)}</code>)"
        for m in e.get("members") or []
    )
    rows = [
        ["members", members],
        ["val mIoU", f"{num(val.get('mIoU_no_tta'))} without TTA, {num(val.get('mIoU_tta'))} with TTA"],
        ["val mF1", f"{num(val.get('mF1_no_tta'))} without TTA, {num(val.get('mF1_tta'))} with TTA"],
        ["submission", f"<code>{esc(sub.get('path'))}</code> ({num(sub.get('bytes'))} bytes)"],
        ["submission sha256", f"<code>{esc(sub.get('sha256'))}</code>"],
    ]
    return [f"<h3>{esc(name)} (ensemble)</h3>", held_out_note(val.get("train_on_val")), table(None, rows)]


def _environment_section(env: dict, steps: list[dict], outputs: dict) -> list[str]:
    pkg_rows = [
        [esc(k), f"<code>{esc(v) if v else '<i>not installed</i>'}</code>"] for k, v in env.get("packages", {}).items()
    ]
    body = [
        "<h2>Environment</h2>",
        table(None, [[esc(k), esc(v)] for k, v in env.items() if k != "packages"]),
        table(["package", "version"], pkg_rows),
    ]
    total = sum(s["s"] for s in steps)
    run_rows = [
        [
            esc(s["step"]),
            num(s["s"], 1),
            esc(s.get("h:m:s", "")),
            num(s.get("max_rss")),
            num(s.get("cpu_time"), 1),
            num(s.get("runs")),
        ]
        for s in steps
    ]
    body += [
        f"<h2>Run time per step (benchmarks/, total {num(total, 1)} s)</h2>",
        table(["step", "seconds", "h:m:s", "max RSS (MB)", "CPU seconds", "runs"], run_rows, numeric=(1, 3, 4, 5)),
    ]
    if outputs:
        body += [
            "<h2>Outputs</h2>",
            table(
                ["file", "bytes", "sha256"],
                [[f"<code>{esc(p)}</code>", num(o["bytes"]), _short(o["sha256"])] for p, o in outputs.items()],
                numeric=(1,),
            ),
        ]
    return body

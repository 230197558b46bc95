"""The report stage: figures and tables from fabricated pipeline outputs, and (slow) the real
`snakemake --report` of a finished demo run, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _pipeline import run_snakemake
from faceparse.labels import NUM_CLASSES, SWAP_LUT
from faceparse.predict.metrics import confusion_matrix, scores_to_json
from faceparse.records import read_mask
from faceparse.report import figures, sections, tables
from faceparse.train.scalars import read_scalars

REPO = Path(__file__).resolve().parents[1]
# The finished pipeline run the report tests read (default: this checkout, after `make demo`).
RUN_DIR = Path(os.environ.get("FACEPARSE_RUN_DIR", REPO))


# ----------------------------------------------------------------------------- fabricated outputs


def _face_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A crude face: background, cloth, neck, skin, hair and the small parts, all 19 classes over a few masks."""
    mask = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    c = size / 2 + rng.integers(-size // 16, size // 16 + 1)
    mask[yy > size * 0.8] = 18
    mask[(abs(xx - c) < size * 0.12) & (yy > size * 0.6)] = 17
    face = ((xx - c) / (size * 0.28)) ** 2 + ((yy - size * 0.45) / (size * 0.35)) ** 2 < 1
    mask[(yy < size * 0.35) & (((xx - c) / (size * 0.34)) ** 2 + ((yy - size * 0.4) / (size * 0.4)) ** 2 < 1)] = 13
    mask[face & (yy >= size * 0.2)] = 1
    parts = [
        (4, -0.1, 0.38, 0.04),
        (5, 0.1, 0.38, 0.04),
        (6, -0.1, 0.32, 0.03),
        (7, 0.1, 0.32, 0.03),
        (8, -0.3, 0.45, 0.04),
        (9, 0.3, 0.45, 0.04),
        (2, 0.0, 0.48, 0.04),
        (11, 0.0, 0.58, 0.03),
        (12, 0.0, 0.63, 0.03),
        (10, 0.0, 0.605, 0.015),
    ]
    for label, dx, cy, r in parts:
        mask[(xx - c - dx * size) ** 2 + (yy - cy * size) ** 2 < (r * size) ** 2] = label
    extra = rng.integers(0, 4)
    if extra == 0:
        mask[(yy < size * 0.12) & (abs(xx - c) < size * 0.3)] = 14
    elif extra == 1:
        mask[(abs(yy - size * 0.38) < size * 0.015) & (abs(xx - c) < size * 0.2)] = 3
    elif extra == 2:
        mask[(xx - c + 0.3 * size) ** 2 + (yy - 0.52 * size) ** 2 < (0.015 * size) ** 2] = 15
        mask[(abs(xx - c) < size * 0.1) & (abs(yy - size * 0.75) < size * 0.02)] = 16
    return mask


def _photo(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    base = rng.integers(60, 200, size=(NUM_CLASSES, 3))
    img = base[mask] + rng.normal(0, 8, size=mask.shape + (3,))
    return np.clip(img, 0, 255).astype(np.uint8)


def fabricate(root: Path, model: str = "toy", size: int = 64, counts=(6, 5, 4), seed: int = 0) -> dict:
    """Write what the data/train/evaluate/submission stages would have written, in miniature."""
    rng = np.random.default_rng(seed)
    index = {"root": str(root / "source"), "layout": "synthetic", "splits": {}}
    for split, n in zip(("train", "val", "test"), counts):
        img_dir, mask_dir = root / "source" / split / "images", root / "source" / split / "masks"
        img_dir.mkdir(parents=True)
        pixels = np.zeros(NUM_CLASSES, np.int64)
        names = [f"{split}{i:03d}" for i in range(n)]
        for name in names:
            mask = _face_mask(rng, size)
            Image.fromarray(_photo(rng, mask)).save(img_dir / f"{name}.jpg", quality=90)
            if split != "test":
                mask_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(mask_dir / f"{name}.png")
                pixels += np.bincount(mask.ravel(), minlength=NUM_CLASSES)
        index["splits"][split] = {
            "image_dir": str(img_dir),
            "mask_dir": str(mask_dir) if split != "test" else None,
            "image_suffix": ".jpg",
            "names": names,
            "images": n,
            "size": [size, size],
            **({"class_pixels": pixels.tolist()} if split != "test" else {}),
        }
    data = root / "data"
    data.mkdir()
    (data / "validation.json").write_text(json.dumps(index))
    flip_img, flip_mask = data / "flipped" / "images", data / "flipped" / "masks"
    flip_img.mkdir(parents=True)
    flip_mask.mkdir(parents=True)
    for name in index["splits"]["train"]["names"]:
        with Image.open(root / "source" / "train" / "images" / f"{name}.jpg") as im:
            im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flip_img / f"{name}_flip.jpg")
        mask = np.asarray(Image.open(root / "source" / "train" / "masks" / f"{name}.png"))
        Image.fromarray(SWAP_LUT[mask[:, ::-1]]).save(flip_mask / f"{name}_flip.png")
    (data / "flip.json").write_text(
        json.dumps(
            {
                "image_dir": str(flip_img),
                "mask_dir": str(flip_mask),
                "image_suffix": ".jpg",
                "names": [f"{n}_flip" for n in index["splits"]["train"]["names"]],
                "images": counts[0],
            }
        )
    )
    (data / "stats.json").write_text(
        json.dumps({"mean": [120.1, 110.2, 100.3], "std": [50.0, 51.0, 52.0], "images": counts[0]})
    )
    (root / "source" / "source.json").write_text(json.dumps({"generator": "test", "seed": seed}))

    mdir = root / "models" / model
    work = mdir / "train"
    for stamp, steps in (("20260101_000000", range(10, 110, 10)), ("20260101_010000", range(100, 210, 10))):
        vis = work / stamp / "vis_data"
        vis.mkdir(parents=True)
        lines = []
        for it in steps:
            lines.append(
                {
                    "lr": 0.01 * (1 - it / 220) ** 0.9,
                    "loss": 3.0 / (1 + it / 50),
                    "decode.loss_ce": 2.0 / (1 + it / 50),
                    "aux.loss_ce": 1.0 / (1 + it / 50),
                    "iter": it,
                    "step": it,
                }
            )
            if it % 50 == 0:
                lines.append({"aAcc": 80.0, "mIoU": 30.0 + it / 10, "mAcc": 40.0, "step": it})
        (vis / "scalars.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ckpts = []
    for it in (100, 200):
        (work / f"iter_{it}.pth").write_bytes(rng.bytes(1000))
        ckpts.append(str(work / f"iter_{it}.pth"))
    (work / "config.py").write_text("model = dict(type='EncoderDecoder')\n")
    (mdir / "train.json").write_text(
        json.dumps(
            {
                "work_dir": str(work),
                "config": str(work / "config.py"),
                "checkpoints": ckpts,
                "max_iters": 200,
                "val": [
                    {"iter": 50, "mIoU": 35.0},
                    {"iter": 100, "mIoU": 40.0},
                    {"iter": 150, "mIoU": 45.0},
                    {"iter": 200, "mIoU": 50.0},
                ],
            }
        )
    )
    (mdir / "best.json").write_text(json.dumps({"checkpoint": ckpts[1], "iter": 200, "mIoU": 50.0}))

    val_pred = mdir / "val_pred"
    val_pred.mkdir()
    conf_plain = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    conf_tta = np.zeros_like(conf_plain)
    for i, name in enumerate(index["splits"]["val"]["names"]):
        truth = np.asarray(Image.open(root / "source" / "val" / "masks" / f"{name}.png"))
        pred = truth.copy()
        noise = rng.random(truth.shape) < 0.05 * (i + 1)
        pred[noise] = rng.integers(0, NUM_CLASSES, size=int(noise.sum()))
        Image.fromarray(pred).save(val_pred / f"{name}.png")
        conf_tta += confusion_matrix(truth, pred)
        worse = pred.copy()
        worse[rng.random(truth.shape) < 0.05] = 1
        conf_plain += confusion_matrix(truth, worse)
    (mdir / "val_metrics.json").write_text(
        json.dumps(
            {
                "no_tta": scores_to_json(conf_plain),
                "tta": scores_to_json(conf_tta),
                "tta_config": {"scales": [0.75, 1.0, 1.25], "flip": True},
            }
        )
    )
    test_pred = mdir / "test_pred"
    test_pred.mkdir()
    for name in index["splits"]["test"]["names"]:
        Image.fromarray(_face_mask(rng, size)).save(test_pred / f"{name}.png")
    sub = root / "submission"
    sub.mkdir()
    with zipfile.ZipFile(sub / f"{model}.zip", "w") as zf:
        for p in sorted(test_pred.iterdir()):
            zf.write(p, p.name)
    (sub / f"{model}.check.json").write_text(
        json.dumps(
            {
                "ok": True,
                "split": "test",
                "zip": str(sub / f"{model}.zip"),
                "files": counts[2],
                "zip_bytes": 1,
                "sha256": "0" * 64,
                "modes": {"L": counts[2]},
                "sizes": {f"{size}x{size}": counts[2]},
                "max_value": 18,
                "checked": ["count", "names"],
            }
        )
    )
    return {
        "validation": data / "validation.json",
        "flip": data / "flip.json",
        "stats": data / "stats.json",
        "source": root / "source" / "source.json",
        "train": mdir / "train.json",
        "best": mdir / "best.json",
        "metrics": mdir / "val_metrics.json",
        "val_pred": val_pred,
        "test_pred": test_pred,
        "zip": sub / f"{model}.zip",
        "check": sub / f"{model}.check.json",
        "model": model,
    }


@pytest.fixture(scope="module")
def fab(tmp_path_factory) -> dict:
    return fabricate(tmp_path_factory.mktemp("fab"))


def _png(path: Path, max_bytes: int = 400_000) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size < max_bytes, (path, path.stat().st_size if path.exists() else None)
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


# ----------------------------------------------------------------------------- sections


def test_data_section(fab, tmp_path):
    framing = {"size": [512, 512], "points": {"r_eye": [0.4, 0.41], "l_eye": [0.6, 0.41]}, "masks": 7, "flip": True}
    (tmp_path / "framing.json").write_text(json.dumps(framing))
    out = sections.data_section(
        fab["validation"],
        fab["flip"],
        fab["stats"],
        samples_png=tmp_path / "s.png",
        summary_html=tmp_path / "s.html",
        class_frequency_png=tmp_path / "f.png",
        count=3,
        source_json=fab["source"],
        framing_json=tmp_path / "framing.json",
    )
    assert out == {"samples": 3, "flipped": 3}
    w, h = _png(tmp_path / "s.png")
    assert w > 400 and h > 400
    assert _png(tmp_path / "f.png")[0] >= 800  # the class frequencies validate counted
    html = (tmp_path / "s.html").read_text()
    for needle in (
        "Images per split",
        "train",
        "val",
        "test",
        "Class frequency",
        "l_eye",
        "120.100",
        "Offline",
        "generator",
        "Training framing",
        "204.8, 209.9",  # l_eye in the 512 x 512 crop
        "7 training masks, mirrored copies counted",
    ):
        assert needle in html, needle


def test_data_section_without_flip(fab, tmp_path):
    out = sections.data_section(
        fab["validation"], None, fab["stats"], samples_png=tmp_path / "s.png", summary_html=tmp_path / "s.html", count=2
    )
    assert out == {"samples": 2, "flipped": 0}
    assert "flip: false" in (tmp_path / "s.html").read_text()


def test_read_scalars_merges_resumed_runs(fab):
    train = json.loads(fab["train"].read_text())
    rows, val = read_scalars(train["work_dir"])
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[0] == 10 and steps[-1] == 200
    assert [v["step"] for v in val] == [50, 100, 150, 200]
    assert all("loss" in r and "lr" in r for r in rows)


def test_training_section(fab, tmp_path):
    out = sections.training_section(fab["train"], fab["best"], curves_png=tmp_path / "c.png", model="toy")
    assert out == {"train_rows": 20, "val_points": 4, "selected_iter": 200}
    _png(tmp_path / "c.png")


def test_training_section_marks_the_selected_point_on_the_logged_curve(fab, tmp_path, monkeypatch):
    """best.json / train.json may hold mIoU as a fraction while mmengine logs percent: the marker
    is taken from the plotted (logged) series."""
    best = json.loads(fab["best"].read_text()) | {"iter": 150, "mIoU": 0.45}
    (tmp_path / "best.json").write_text(json.dumps(best))
    seen = {}
    monkeypatch.setattr(sections, "training_curves_figure", lambda rows, val, path, **kw: seen.update(val=val, **kw))
    sections.training_section(fab["train"], tmp_path / "best.json", curves_png=tmp_path / "c.png", model="toy")
    assert seen["selected"] == (150, 45.0)
    assert dict(seen["val"])[150] == 45.0


def test_training_section_without_logs(fab, tmp_path):
    train = json.loads(fab["train"].read_text())
    train["work_dir"] = str(tmp_path / "nowhere")
    (tmp_path / "train.json").write_text(json.dumps(train))
    out = sections.training_section(tmp_path / "train.json", fab["best"], curves_png=tmp_path / "c.png", model="toy")
    assert out["train_rows"] == 0 and out["val_points"] == 4
    _png(tmp_path / "c.png")


def test_per_image_scores_rank_the_noisiest_last(fab):
    scores = sections.per_image_scores(fab["validation"], fab["val_pred"], threads=2)
    assert [s["name"] for s in scores] == json.loads(fab["validation"].read_text())["splits"]["val"]["names"]
    mious = [s["mIoU"] for s in scores]
    assert mious == sorted(mious, reverse=True)  # the fabricated noise grows with the index
    assert all(0 < m <= 100 for m in mious)


def test_evaluation_section(fab, tmp_path):
    out = sections.evaluation_section(
        fab["metrics"],
        fab["validation"],
        fab["val_pred"],
        bars_png=tmp_path / "b.png",
        confusion_png=tmp_path / "c.png",
        worst_png=tmp_path / "w.png",
        table_html=tmp_path / "p.html",
        model="toy",
        count=3,
        threads=1,
    )
    assert out == {"images": 5, "confusion": "tta"}
    for name in ("b.png", "c.png", "w.png"):
        _png(tmp_path / name)
    html = (tmp_path / "p.html").read_text()
    metrics = json.loads(fab["metrics"].read_text())
    for needle in (
        "Per class",
        "l_eye",
        f"{metrics['tta']['mIoU']:.2f}",
        f"{metrics['no_tta']['mIoU']:.2f}",
        "TTA configuration",
        "Per image",
    ):
        assert needle in html, needle
    assert html.index("val004") < html.index("val000")  # worst first


def test_confusion_figure_handles_absent_classes(tmp_path):
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    conf[0, 0], conf[1, 1], conf[1, 2] = 100, 80, 20
    figures.confusion_figure(conf, tmp_path / "c.png", title="t")
    _png(tmp_path / "c.png")


def test_submission_section(fab, tmp_path):
    out = sections.submission_section(
        fab["validation"],
        fab["test_pred"],
        fab["check"],
        fab["zip"],
        grid_png=tmp_path / "g.png",
        check_html=tmp_path / "c.html",
        model="toy",
        count=3,
    )
    assert out == {"shown": 3}
    _png(tmp_path / "g.png")
    html = (tmp_path / "c.html").read_text()
    assert "passed" in html and "toy.zip" in html


def test_palette_mode_masks_keep_their_labels(tmp_path):
    """A palette ('P') PNG mask is read as label indices, not as the grey of its colours."""
    mask = np.arange(NUM_CLASSES, dtype=np.uint8).repeat(20).reshape(1, -1).repeat(10, axis=0)
    im = Image.fromarray(mask, mode="L").convert("P")
    im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 11) % 256)])
    im.save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode == "P"
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask)
    thumb = figures.thumb_mask(tmp_path / "m.png", size=190)
    assert thumb.shape == (5, 190) and set(np.unique(thumb)) <= set(range(NUM_CLASSES))


def test_check_html_lists_problems():
    html = tables.check_html({"ok": False, "problems": ["a.png: missing"]}, zip_path="x.zip", model="m")
    assert "FAILED" in html and "a.png: missing" in html


def test_html_escapes_names():
    html = tables.page("<t>", tables.table(["h"], [[tables.esc("<script>")]]))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_quantize_keeps_the_class_colours(fab, tmp_path):
    """Grids mix photos with masks: the 256-colour PNG still has every palette colour."""
    sections.data_section(
        fab["validation"],
        fab["flip"],
        fab["stats"],
        samples_png=tmp_path / "s.png",
        summary_html=tmp_path / "s.html",
        count=4,
    )
    from faceparse.labels import PALETTE

    pixels = np.unique(np.asarray(Image.open(tmp_path / "s.png").convert("RGB")).reshape(-1, 3), axis=0)
    for colour in PALETTE:  # the legend shows all 19, within the renderer's rounding
        assert np.abs(pixels.astype(int) - colour).max(axis=1).min() <= 2, colour


def test_figures_are_small_and_legible(fab, tmp_path):
    """All grids/charts at 100 dpi, palette-reduced: a few hundred KB at most."""
    figures.score_bars_figure(json.loads(fab["metrics"].read_text()), tmp_path / "b.png", model="toy")
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "P" and 600 < im.width < 1200
    assert (tmp_path / "b.png").stat().st_size < 150_000


# ----------------------------------------------------------------------------- the real report

REPORT_SECTIONS = {
    # category -> the files it must show ({model}: once per model)
    "Data": ["class_frequency.png", "samples.png", "summary.html"],
    "Training": ["training_curves.png"],
    "Evaluation": ["val_scores.png", "val_confusion.png", "val_worst.png", "val_table.html"],
    "Submission": ["{model}.zip", "test_predictions.png", "submission_check.html"],
    "Leaderboard": ["leaderboard.html", "leaderboard.png"],
    "Export": ["parity.json"],
    "Provenance": ["provenance.json", "provenance.html", "runtimes.png"],
}


def _finished_models(run_dir: Path) -> list[str]:
    """The models of a finished pipeline run in ``run_dir`` (empty when there is none)."""
    import yaml

    if not (run_dir / "results" / "provenance" / "provenance.json").is_file():
        return []
    return list(yaml.safe_load((run_dir / "config.yaml").read_text())["models"])


def _js_var(html: str, script_id: str, name: str):
    match = re.search(rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert match, f"report.html has no {name}"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def report_zip(request, tmp_path_factory) -> tuple[Path, list[str], Path]:
    """`snakemake --report` of the finished run in this checkout (after `make demo`), else of
    the tiny end-to-end run (conftest's ``tiny_run``): the report zip, its models, the work dir."""
    models = _finished_models(RUN_DIR)
    run_dir = RUN_DIR
    if not models:
        run_dir = request.getfixturevalue("tiny_run")
        models = _finished_models(run_dir)
    out = tmp_path_factory.mktemp("report") / "report.zip"
    proc = run_snakemake(run_dir, "--report", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, models, run_dir


@pytest.mark.slow
def test_report_zip_has_every_section(report_zip):
    path, models, run_dir = report_zip
    assert path.stat().st_size < 10_000_000, f"the report is {path.stat().st_size / 1e6:.1f} MB"
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        html = zf.read("report/report.html").decode()
        results = _js_var(html, "results", "results")
        categories = _js_var(html, "categories", "categories")
        for entry in results.values():  # every result's file is in the zip, none empty
            member = f"report/{entry['data_uri']}"
            assert member in names, member
            assert zf.getinfo(member).file_size > 0, member
    shown = {cat: {Path(p).name for files in subcats.values() for p in files} for cat, subcats in categories.items()}
    for cat, wanted in REPORT_SECTIONS.items():
        assert cat in shown, f"category {cat} missing (have {sorted(shown)})"
        for model in models:
            for name in wanted:
                assert name.format(model=model) in shown[cat], f"{cat}: {name.format(model=model)}"
    # captions are rendered from rst (no docutils error), with the model filled in
    captions = [e["caption"] for e in results.values()]
    assert not any("system-message" in c for c in captions)
    for model in models:
        assert any(model in c for c in captions)
    # the landing text explains the pipeline and the metrics
    desc = _js_var(html, "workflow-desc", "workflow_desc")
    assert "system-message" not in desc
    for needle in ("Pipeline", "mIoU", "mF1", "TTA", "Provenance"):
        assert needle in desc, needle
    # the provenance record names the commit, the data and every checkpoint
    prov = json.loads((run_dir / "results" / "provenance" / "provenance.json").read_text())
    assert len(prov["data"]["sha256"]) == 64 and set(prov["models"]) == set(models)
    for model in models:
        assert len(prov["models"][model]["checkpoint"]["sha256"]) == 64
    assert prov["runtimes"], "no benchmark files collected"


@pytest.mark.slow
def test_report_opens_in_headless_chromium(report_zip, tmp_path, chromium):
    import _browser as browser

    path, models, _ = report_zip
    found = browser.check_report(path, chromium=chromium)
    for cat in REPORT_SECTIONS:
        info = found["categories"].get(cat)
        assert info is not None, f"{cat} not rendered"
        assert info["rows"] == info["expected"] > 0, (cat, info)
    missing = {p: r for p, r in found["results"].items() if r["loaded"] in ("error", "empty")}
    assert not missing, missing
    images = [r for r in found["results"].values() if r["mime"].startswith("image/")]
    assert len(images) >= 2 + 5 * len(models)
    shot = browser.screenshot(
        path, tmp_path / "shot.png", category="Evaluation", result="val_scores.png", chromium=chromium
    )
    _png(shot, max_bytes=1_000_000)

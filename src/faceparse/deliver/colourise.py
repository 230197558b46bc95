"""Colour previews of predicted masks: palette images, overlays and contact sheets.

For each split (``val`` with ground truth, ``test`` without) and each image
``{stem}``, under ``{out_dir}/{split}/``:

- ``{stem}.png``          the predicted mask in the CelebAMask-HQ palette;
- ``{stem}_overlay.jpg``  the photo with the prediction blended on top
                          (background pixels left as they are);
- ``{stem}_gt.png``       the ground-truth mask in the palette (val only).

Plus ``{out_dir}/{split}_grid.jpg``: the first few images as rows of
photo | ground truth | prediction | overlay, for the report, and a
``done.json`` summary (counts, predicted pixels per class).
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from faceparse.labels import CLASSES, NUM_CLASSES, colour_mask as palette
from faceparse.parallel import parallel_map
from faceparse.records import read_mask, split_files, write_json

log = logging.getLogger(__name__)

__all__ = ["overlay", "colourise_split", "colourise", "contact_sheet"]


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the palette colours of ``mask`` onto an RGB ``image``; background stays untouched."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"overlay: image {image.shape[:2]} vs mask {mask.shape}")
    colour = palette(mask).astype(np.float32)
    out = image.astype(np.float32)
    fg = mask > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colour[fg]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _one(item: tuple, out_dir: str, alpha: float) -> list[int]:
    """Write the previews of one image; return its predicted pixels per class."""
    name, image_path, pred_path, mask_path = item
    out = Path(out_dir)
    pred = read_mask(pred_path)
    with Image.open(image_path) as im:
        image = np.asarray(im.convert("RGB"))
    Image.fromarray(palette(pred)).save(out / f"{name}.png")
    Image.fromarray(overlay(image, pred, alpha)).save(out / f"{name}_overlay.jpg", quality=90)
    if mask_path is not None:
        Image.fromarray(palette(read_mask(mask_path))).save(out / f"{name}_gt.png")
    return np.bincount(np.minimum(pred.ravel(), NUM_CLASSES), minlength=NUM_CLASSES + 1).tolist()


def colourise_split(
    validation_json: str | Path,
    split: str,
    pred_dir: str | Path,
    out_dir: str | Path,
    threads: int = 1,
    alpha: float = 0.5,
    with_truth: bool = True,
) -> dict:
    """Previews for every image of ``split``; ``out_dir`` is replaced. Returns a summary."""
    files = split_files(validation_json, split)
    pred_dir, out_dir = Path(pred_dir), Path(out_dir)
    preds = [pred_dir / f"{n}.png" for n in files.names]
    missing = [str(p) for p in preds if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{split}: {len(missing)} predicted masks missing, e.g. {missing[:5]}")
    masks = files.masks if (with_truth and files.masks is not None) else [None] * len(files.names)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    items = list(zip(files.names, files.images, [str(p) for p in preds], masks))
    counts = np.zeros(NUM_CLASSES + 1, dtype=np.int64)
    fn = functools.partial(_one, out_dir=str(out_dir), alpha=alpha)
    for c in parallel_map(fn, items, threads, desc=f"colourise {split}"):
        counts += np.asarray(c, dtype=np.int64)
    total = int(counts.sum())
    return {
        "images": len(items),
        "dir": str(out_dir),
        "with_truth": masks[0] is not None if masks else False,
        "predicted_pixels": {name: int(v) for name, v in zip(CLASSES, counts[:NUM_CLASSES])},
        "predicted_fraction": {
            name: (float(v) / total if total else 0.0) for name, v in zip(CLASSES, counts[:NUM_CLASSES])
        },
        "out_of_range_pixels": int(counts[NUM_CLASSES]),
    }


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], tile: int = 160) -> Image.Image:
    """A grid image: one row per image, one column per view, with column titles."""
    header = 18
    cols = len(titles)
    sheet = Image.new("RGB", (cols * tile, header + len(rows) * tile), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(titles):
        draw.text((c * tile + 4, 3), title, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, view in enumerate(row):
            thumb = Image.fromarray(view).resize((tile, tile), Image.NEAREST if view.ndim == 2 else Image.BILINEAR)
            sheet.paste(thumb.convert("RGB"), (c * tile, header + r * tile))
    return sheet


def _grid(validation_json, split: str, pred_dir: Path, path: Path, count: int, alpha: float, with_truth: bool) -> None:
    files = split_files(validation_json, split)
    truth = with_truth and files.masks is not None
    titles = ["image"] + (["truth"] if truth else []) + ["prediction", "overlay"]
    rows = []
    for i, name in enumerate(files.names[:count]):
        with Image.open(files.images[i]) as im:
            image = np.asarray(im.convert("RGB"))
        pred = read_mask(pred_dir / f"{name}.png")
        row = [image]
        if truth:
            row.append(palette(read_mask(files.masks[i])))
        row += [palette(pred), overlay(image, pred, alpha)]
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, titles).save(path, quality=90)


def colourise(
    validation_json: str | Path,
    preds: dict[str, str | Path],
    out_dir: str | Path,
    done_json: str | Path,
    grids: dict[str, str | Path] | None = None,
    threads: int = 1,
    alpha: float = 0.5,
    grid_images: int = 8,
) -> dict:
    """Previews of every split in ``preds`` ({split: prediction folder}) under ``out_dir/{split}``.

    Ground truth is drawn for splits that have masks. ``grids`` ({split: path})
    adds a contact sheet per split. Writes ``done_json`` last.
    """
    out_dir = Path(out_dir)
    summary: dict = {"alpha": alpha, "palette": "CelebAMask-HQ (faceparse.labels.PALETTE)", "splits": {}}
    for split, pred_dir in preds.items():
        log.info("colourise %s from %s", split, pred_dir)
        summary["splits"][split] = colourise_split(
            validation_json, split, pred_dir, out_dir / split, threads=threads, alpha=alpha
        )
        if grids and split in grids:
            _grid(validation_json, split, Path(pred_dir), Path(grids[split]), grid_images, alpha, True)
            summary["splits"][split]["grid"] = str(grids[split])
    write_json(done_json, summary)
    return summary

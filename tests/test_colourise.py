"""Colour previews: palette masks, overlays, contact sheets, done.json."""

import json

import numpy as np
import pytest
from PIL import Image

from faceparse.deliver.colourise import colourise, overlay
from faceparse.labels import PALETTE

H, W = 32, 40


def _split(tmp_path, split, n, with_masks):
    images = tmp_path / "data" / split / "images"
    images.mkdir(parents=True)
    masks = tmp_path / "data" / split / "masks"
    preds = tmp_path / "pred" / split
    preds.mkdir(parents=True)
    names = [f"{split}{i}" for i in range(n)]
    for name in names:
        Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(images / f"{name}.jpg")
        pred = np.zeros((H, W), np.uint8)
        pred[:, : W // 2] = 4  # l_eye on the left half
        Image.fromarray(pred, mode="L").save(preds / f"{name}.png")
        if with_masks:
            masks.mkdir(exist_ok=True)
            Image.fromarray(np.full((H, W), 1, np.uint8), mode="L").save(masks / f"{name}.png")
    entry = {
        "image_dir": str(images),
        "mask_dir": str(masks) if with_masks else None,
        "image_suffix": ".jpg",
        "names": names,
        "images": n,
        "size": [H, W],
    }
    return entry, preds


def test_overlay_leaves_background():
    image = np.full((2, 2, 3), 200, np.uint8)
    mask = np.array([[0, 1], [0, 1]], np.uint8)
    out = overlay(image, mask, alpha=0.5)
    assert (out[:, 0] == 200).all()
    np.testing.assert_allclose(out[0, 1], (np.array(PALETTE[1]) + 200) / 2, atol=1)
    with pytest.raises(ValueError):
        overlay(image, np.zeros((3, 3), np.uint8))


def test_colourise_both_splits(tmp_path):
    val, val_pred = _split(tmp_path, "val", 3, True)
    test, test_pred = _split(tmp_path, "test", 2, False)
    index = tmp_path / "validation.json"
    index.write_text(json.dumps({"root": "", "layout": "mini", "splits": {"val": val, "test": test}}))
    out = tmp_path / "colour"
    (out / "val").mkdir(parents=True)
    (out / "val" / "stale.png").write_bytes(b"old")
    done = out / "done.json"
    grids = {"val": out / "val_grid.jpg", "test": out / "test_grid.jpg"}
    summary = colourise(index, {"val": val_pred, "test": test_pred}, out, done, grids=grids, threads=2)

    assert json.loads(done.read_text()) == json.loads(json.dumps(summary))
    assert summary["splits"]["val"]["images"] == 3 and summary["splits"]["test"]["images"] == 2
    assert summary["splits"]["val"]["predicted_pixels"]["l_eye"] == 3 * H * W // 2
    assert not (out / "val" / "stale.png").exists()
    pal = np.asarray(Image.open(out / "val" / "val0.png"))
    assert pal.shape == (H, W, 3)
    assert tuple(pal[0, 0]) == PALETTE[4] and tuple(pal[0, -1]) == PALETTE[0]
    assert tuple(np.asarray(Image.open(out / "val" / "val0_gt.png"))[0, 0]) == PALETTE[1]
    assert (out / "val" / "val2_overlay.jpg").exists()
    assert not (out / "test" / "test0_gt.png").exists()
    assert Image.open(out / "test" / "test1_overlay.jpg").size == (W, H)
    assert Image.open(grids["val"]).size[0] == 4 * 160  # image | truth | prediction | overlay
    assert Image.open(grids["test"]).size[0] == 3 * 160


def test_missing_prediction(tmp_path):
    val, val_pred = _split(tmp_path, "val", 2, True)
    (val_pred / "val1.png").unlink()
    index = tmp_path / "validation.json"
    index.write_text(json.dumps({"root": "", "layout": "mini", "splits": {"val": val}}))
    with pytest.raises(FileNotFoundError, match="1 predicted masks missing"):
        colourise(index, {"val": val_pred}, tmp_path / "c", tmp_path / "c" / "done.json")

"""Evaluate and predict with a tiny mmseg model: masks, metrics, parity with mmseg's own inference."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mmcv.ops")
import torch  # noqa: E402

from faceparse.inference import (config_test_pipeline, evaluate, evaluate_model, load_model,  # noqa: E402
                                 predict, run_split, without_annotations)
from faceparse.labels import CLASSES  # noqa: E402
from faceparse.metrics import confusion_matrix  # noqa: E402
from faceparse.splitfiles import split_files  # noqa: E402

from _tiny_segmentor import SIZE, write_checkpoint, write_config, write_index, write_split  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    config = write_config(root / "config.py")
    checkpoint = write_checkpoint(root / "iter_10.pth")
    index = write_index(root, {
        "val": write_split(root, "val", 5, with_masks=True),
        "test": write_split(root, "test", 5, with_masks=False, odd_size=True),
    })
    return root, config, checkpoint, index


def test_evaluate_writes_masks_and_metrics(setup, tmp_path):
    root, config, checkpoint, index = setup
    pred_dir, metrics_json = tmp_path / "val_pred", tmp_path / "val_metrics.json"
    table = tmp_path / "val_metrics.html"
    metrics = evaluate(config, checkpoint, index, pred_dir=pred_dir, metrics_json=metrics_json,
                       table_html=table, scales=[0.75, 1.0, 1.25], flip=True, batch_size=2, threads=1,
                       device="cpu")
    assert json.loads(metrics_json.read_text()) == json.loads(json.dumps(metrics))
    files = split_files(index, "val")
    assert sorted(p.stem for p in pred_dir.iterdir()) == list(files.names)
    tta_confusion = np.zeros((19, 19), np.int64)
    for name, mask_path in zip(files.names, files.masks):
        im = Image.open(pred_dir / f"{name}.png")
        assert im.mode == "L" and im.size == (SIZE, SIZE)
        pred = np.asarray(im)
        assert pred.max() < 19
        tta_confusion += confusion_matrix(np.asarray(Image.open(mask_path)), pred)
    # the confusion matrix is the one of the written masks (ignore pixels left out)
    assert metrics["tta"]["confusion"] == tta_confusion.tolist()
    assert metrics["no_tta"]["pixels"] == metrics["tta"]["pixels"] == 5 * (SIZE * SIZE - 4)
    for key in ("no_tta", "tta"):
        assert set(metrics[key]) >= {"mIoU", "mF1", "IoU", "F1", "confusion"}
        assert list(metrics[key]["IoU"]) == list(CLASSES)
    assert metrics["tta_config"]["scales"] == [0.75, 1.0, 1.25] and metrics["tta_config"]["flip"] is True
    assert "<table>" in table.read_text()


def test_no_tta_matches_mmseg_inference_model(setup):
    """The plain pass predicts exactly what mmseg.apis.inference_model predicts."""
    from mmseg.apis import inference_model

    root, config, checkpoint, index = setup
    model, cfg = load_model(config, checkpoint, "cpu")
    files = split_files(index, "val")
    out = root / "plain_pred"
    run_split(model, files, without_annotations(config_test_pipeline(cfg)), out_dir=out, batch_size=3, workers=0)
    for name, image in zip(files.names, files.images):
        ref = inference_model(model, image).pred_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{name}.png")), ref)


def test_predict_test_split_mixed_sizes(setup, tmp_path):
    root, config, checkpoint, index = setup
    pred_dir = tmp_path / "test_pred"
    summary = predict(config, checkpoint, index, pred_dir=pred_dir, scales=[1.0, 1.5], flip=True,
                      batch_size=4, threads=2, device="cpu")
    assert summary["images"] == 5
    files = split_files(index, "test")
    for name, image in zip(files.names, files.images):
        im = Image.open(pred_dir / f"{name}.png")
        assert im.mode == "L" and im.size == Image.open(image).size
        assert np.asarray(im).max() < 19
    assert Image.open(pred_dir / "test_04.png").size == (SIZE, 48)


def test_evaluate_model_from_markers(setup, tmp_path):
    root, config, checkpoint, index = setup
    best, train = tmp_path / "best.json", tmp_path / "train.json"
    best.write_text(json.dumps({"checkpoint": str(checkpoint), "iter": 10, "mIoU": 1.0}))
    train.write_text(json.dumps({"work_dir": str(root), "config": str(config), "checkpoints": [str(checkpoint)],
                                 "max_iters": 10, "val": []}))
    metrics = evaluate_model(best, train, index, pred_dir=tmp_path / "p", metrics_json=tmp_path / "m.json",
                             scales=[1.0], flip=False, batch_size=8, threads=1, device="cpu")
    # one view, no flip: TTA is the plain prediction
    assert metrics["tta"]["confusion"] == metrics["no_tta"]["confusion"]
    train.write_text(json.dumps({"work_dir": str(root), "config": str(root / "nope.py")}))
    with pytest.raises(FileNotFoundError, match="nope.py"):
        evaluate_model(best, train, index, pred_dir=tmp_path / "q", metrics_json=tmp_path / "n.json",
                       scales=[1.0], flip=False, device="cpu")


def test_confusion_on_device_matches_numpy(setup):
    root, config, checkpoint, index = setup
    model, cfg = load_model(config, checkpoint, "cpu")
    files = split_files(index, "val")
    result = run_split(model, files, without_annotations(config_test_pipeline(cfg)), batch_size=2, workers=0)
    total = np.zeros((19, 19), np.int64)
    from mmseg.apis import inference_model

    for image, mask in zip(files.images, files.masks):
        pred = inference_model(model, image).pred_sem_seg.data[0].numpy()
        total += confusion_matrix(np.asarray(Image.open(mask)), pred)
    np.testing.assert_array_equal(result["confusion"], total)
    assert torch.get_num_threads() >= 1

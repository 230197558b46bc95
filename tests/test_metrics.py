"""Metrics from a summed confusion matrix: IoU, F1, their means, NaN for absent classes."""

import json
import math

import numpy as np
import pytest

from faceparse.labels import CLASSES, NUM_CLASSES
from faceparse.predict.metrics import confusion_matrix, scores, scores_to_json


def test_hand_made_three_classes():
    # rows: truth, columns: prediction
    c = np.array([[50, 5, 5], [10, 20, 0], [0, 0, 10]])
    s = scores(c)
    # class 0: TP 50, FN 10, FP 10 -> IoU 50/70, F1 100/120
    # class 1: TP 20, FN 10, FP 5  -> IoU 20/35, F1 40/55
    # class 2: TP 10, FN 0,  FP 5  -> IoU 10/15, F1 20/25
    iou = np.array([50 / 70, 20 / 35, 10 / 15]) * 100
    f1 = np.array([100 / 120, 40 / 55, 20 / 25]) * 100
    np.testing.assert_allclose(s["IoU"], iou)
    np.testing.assert_allclose(s["F1"], f1)
    assert s["mIoU"] == pytest.approx(iou.mean())
    assert s["mF1"] == pytest.approx(f1[1:].mean())  # background excluded
    assert s["aAcc"] == pytest.approx(80 / 100 * 100)
    assert s["pixels"] == 100


def test_absent_class_is_nan_and_left_out():
    c = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    c[0, 0] = 100
    c[1, 1] = 30
    c[1, 2] = 10  # class 2 predicted but never true: IoU 0, counted
    s = scores(c)
    assert s["IoU"][2] == 0
    assert np.isnan(s["IoU"][3]) and np.isnan(s["F1"][3])
    assert s["mIoU"] == pytest.approx((100 + 75 + 0) / 3)
    assert s["mF1"] == pytest.approx((2 * 30 / 70 * 100 + 0) / 2)
    j = scores_to_json(c)
    assert j["IoU"]["eye_g"] is None and j["F1"]["eye_g"] is None
    assert list(j["IoU"]) == list(CLASSES)
    json.dumps(j, allow_nan=False)  # valid JSON
    assert j["confusion"][1][2] == 10


def test_confusion_from_masks_ignores_out_of_range_truth():
    truth = np.array([[0, 1, 255], [4, 5, 5]], dtype=np.uint8)
    pred = np.array([[0, 1, 3], [5, 5, 5]], dtype=np.uint8)
    c = confusion_matrix(truth, pred)
    assert c.shape == (NUM_CLASSES, NUM_CLASSES)
    assert c.sum() == 5
    assert c[4, 5] == 1 and c[5, 5] == 2 and c[0, 0] == 1 and c[1, 1] == 1
    with pytest.raises(ValueError):
        confusion_matrix(truth, np.full_like(pred, 19))


def test_perfect_and_empty():
    c = np.diag(np.arange(1, NUM_CLASSES + 1))
    s = scores(c)
    assert s["mIoU"] == pytest.approx(100) and s["mF1"] == pytest.approx(100)
    e = scores(np.zeros((NUM_CLASSES, NUM_CLASSES)))
    assert math.isnan(e["mIoU"]) and math.isnan(e["aAcc"])
    assert scores_to_json(np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=int))["mIoU"] is None

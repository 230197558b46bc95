"""The optional clean-up of TTA masks: small regions relabelled by their surroundings, a majority
filter; the same function in the pipeline and, copied, in the solution folder."""

from __future__ import annotations

import numpy as np
import pytest

from faceparse.predict.postprocess import majority_filter, postprocess, remove_small_regions
from faceparse.predict.steps import postprocess_fn


def _face() -> np.ndarray:
    """Skin (1) with hair (13) above and an eye (4) of 36 pixels inside."""
    labels = np.ones((40, 40), np.uint8)
    labels[:10] = 13
    labels[20:26, 10:16] = 4
    return labels


def test_a_speck_takes_its_surroundings_class_and_large_regions_stay():
    labels = _face()
    labels[30, 30] = 7  # a one-pixel speck of brow in the skin
    labels[2:4, 2:4] = 1  # a 4-pixel hole of skin in the hair
    cleaned = remove_small_regions(labels, min_area=10)
    expected = _face()
    assert (cleaned == expected).all()
    assert (remove_small_regions(labels, min_area=0) == labels).all()  # off
    assert (remove_small_regions(labels, min_area=37)[20:26, 10:16] == 1).all()  # the eye is under 37 px


def test_a_speck_takes_the_nearest_class_at_the_image_edge():
    labels = _face()
    labels[12:14, 0] = 5  # at the left edge, in the skin, three rows below the hair
    labels[0, 20:22] = 5  # at the top edge, in the hair
    cleaned = remove_small_regions(labels, min_area=3)
    assert (cleaned[12:14, 0] == 1).all() and (cleaned[0, 20:22] == 13).all()


def test_a_mask_of_only_small_regions_is_left_as_it_is():
    labels = np.zeros((4, 4), np.uint8)
    labels[2:, 2:] = 3
    assert (remove_small_regions(labels, min_area=100) == labels).all()


def test_the_majority_filter_smooths_and_keeps_its_own_class_on_a_tie():
    labels = _face()
    labels[30, 30] = 7
    filtered = majority_filter(labels, 3)
    assert filtered[30, 30] == 1 and (filtered[:10] == 13).all() and (filtered[10:20] == 1).all()
    assert (filtered[21:25, 11:15] == 4).all()  # the eye stays (its corners round off: 4 of 9)
    assert filtered[20, 10] == 1
    three = np.array([[0, 0, 0], [1, 2, 3], [4, 5, 6]], np.uint8)  # the centre's window: 3 zeros, 1 of each other
    assert majority_filter(three, 3)[1, 1] == 0
    tie = np.array([[0, 0, 0], [0, 2, 2], [2, 2, 7]], np.uint8)  # 4 zeros, 4 twos: the centre's class wins
    assert majority_filter(tie, 3)[1, 1] == 2
    checker = (np.indices((5, 5)).sum(0) % 2).astype(np.uint8)
    assert (majority_filter(checker, 1) == checker).all()  # size 1: off


def test_postprocess_is_both_in_order_and_the_config_switches_it():
    labels = _face()
    labels[30, 30] = 7
    both = postprocess(labels, 10, 3)
    assert (both == majority_filter(remove_small_regions(labels, 10), 3)).all() and both[30, 30] == 1
    assert postprocess_fn({}) is None and postprocess_fn({"min_area": 0, "majority": 0}) is None
    clean = postprocess_fn({"min_area": 10, "majority": 0})
    assert (clean(labels) == _face()).all()


@pytest.mark.parametrize("size", [(512, 512), (333, 257)])
def test_it_keeps_shape_dtype_and_class_range_at_full_size(size):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 19, size=size, dtype=np.uint8)
    out = postprocess(labels, 50, 5)
    assert out.shape == labels.shape and out.dtype == np.uint8 and out.max() <= 18

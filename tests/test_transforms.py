"""RandomFlipSwapLR: the mirrored mask swaps the left/right labels."""

import numpy as np
import pytest

from faceparse.labels import LR_PAIRS


def _sample():
    img = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    # an asymmetric mask: person's left eye (4) and left brow (6) on the image's left,
    # right ear (9) on the image's right, skin and background elsewhere
    mask = np.array([[4, 1, 0, 9], [6, 1, 1, 0]], dtype=np.uint8)
    return img, mask


def test_flip_swaps_left_right_labels():
    from mmseg.registry import TRANSFORMS

    import faceparse.mm  # noqa: F401  registers the transform

    img, mask = _sample()
    flip = TRANSFORMS.build(dict(type="RandomFlipSwapLR", prob=1.0))
    out = flip({"img": img.copy(), "gt_seg_map": mask.copy(), "seg_fields": ["gt_seg_map"]})
    assert out["flip"] is True and out["flip_direction"] == "horizontal"
    np.testing.assert_array_equal(out["img"], img[:, ::-1])
    np.testing.assert_array_equal(out["gt_seg_map"], [[8, 0, 1, 5], [0, 1, 1, 7]])
    assert out["gt_seg_map"].flags["C_CONTIGUOUS"] and out["gt_seg_map"].dtype == np.uint8
    # flipping twice gives the original back
    again = flip(dict(out))
    np.testing.assert_array_equal(again["gt_seg_map"], mask)
    np.testing.assert_array_equal(again["img"], img)


def test_no_flip_and_probability():
    from faceparse.mm.transforms import RandomFlipSwapLR

    img, mask = _sample()
    out = RandomFlipSwapLR(prob=0.0)({"img": img.copy(), "gt_seg_map": mask.copy()})
    assert out["flip"] is False
    np.testing.assert_array_equal(out["gt_seg_map"], mask)
    np.random.seed(0)
    t = RandomFlipSwapLR(prob=0.3)
    flips = [t({"img": img.copy(), "gt_seg_map": mask.copy()})["flip"] for _ in range(2000)]
    assert 0.25 < np.mean(flips) < 0.35
    with pytest.raises(ValueError):
        RandomFlipSwapLR(prob=1.5)


def test_other_dtypes_and_pairs():
    from faceparse.mm.transforms import swap_left_right

    mask = np.array([[4, 5, 6, 7, 8, 9, 255]], dtype=np.int64)
    np.testing.assert_array_equal(swap_left_right(mask), [[5, 4, 7, 6, 9, 8, 255]])
    np.testing.assert_array_equal(swap_left_right(mask, pairs=[(4, 5)]), [[5, 4, 6, 7, 8, 9, 255]])
    assert LR_PAIRS == ((4, 5), (6, 7), (8, 9))


def test_in_mmseg_pipeline():
    """Built by type name in an mmseg pipeline: the packed ground truth is flipped and swapped."""
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope

    import faceparse.mm  # noqa: F401

    init_default_scope("mmseg")
    img, mask = _sample()
    pipeline = Compose([dict(type="RandomFlipSwapLR", prob=1.0), dict(type="PackSegInputs")])
    packed = pipeline(
        {
            "img": img.copy(),
            "gt_seg_map": mask.copy(),
            "seg_fields": ["gt_seg_map"],
            "img_shape": img.shape[:2],
            "ori_shape": img.shape[:2],
        }
    )
    gt = packed["data_samples"].gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(gt, [[8, 0, 1, 5], [0, 1, 1, 7]])
    assert packed["data_samples"].metainfo["flip"] is True

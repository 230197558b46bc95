"""The synthetic face generator: deterministic, every class reachable, one left/right convention."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from faceparse.data.source import make_source
from faceparse.data.synthetic import generate_dataset, generate_face
from faceparse.labels import LR_PAIRS, NUM_CLASSES, SWAP_LUT


@pytest.fixture(scope="module")
def samples() -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in range(24):
        jpeg, mask = generate_face(192, seed=1, split="train", index=i)
        out.append((np.asarray(Image.open(io.BytesIO(jpeg))), mask))
    return out


def test_same_seed_same_sample_other_seed_other_sample():
    a = generate_face(128, seed=3, split="val", index=5)
    b = generate_face(128, seed=3, split="val", index=5)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    for other in (
        generate_face(128, seed=4, split="val", index=5),
        generate_face(128, seed=3, split="train", index=5),
        generate_face(128, seed=3, split="val", index=6),
    ):
        assert not np.array_equal(a[1], other[1])


def test_dataset_does_not_depend_on_worker_count(tmp_path):
    counts = {"train": 3, "val": 2, "test": 1}
    generate_dataset(tmp_path / "a", counts, size=64, seed=7, threads=1)
    generate_dataset(tmp_path / "b", counts, size=64, seed=7, threads=2)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 2 * sum(counts.values())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_images_and_masks_are_well_formed(samples):
    for image, mask in samples:
        assert image.shape == (192, 192, 3) and image.dtype == np.uint8
        assert mask.shape == (192, 192) and mask.dtype == np.uint8 and mask.max() < NUM_CLASSES


def test_every_class_appears(samples):
    present = set()
    for _, mask in samples:
        present |= set(np.unique(mask).tolist())
    assert present == set(range(NUM_CLASSES))


def test_core_parts_on_every_face_accessories_on_a_fraction(samples):
    core = (1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 18)
    for _, mask in samples:
        counts = np.bincount(mask.ravel(), minlength=NUM_CLASSES)
        assert all(counts[c] > 0 for c in core), [c for c in core if counts[c] == 0]
    for accessory in (3, 14, 15, 16):  # eye_g, hat, ear_r, neck_l
        share = np.mean([np.any(mask == accessory) for _, mask in samples])
        assert 0.1 <= share <= 0.7, (accessory, share)


def _centroid_x(mask: np.ndarray, label: int) -> float:
    return float(np.nonzero(mask == label)[1].mean())


def test_left_parts_are_on_the_image_right_and_flip_keeps_the_convention(samples):
    """l_* is the person's left = image right; a mirrored mask with labels swapped agrees."""
    for _, mask in samples:
        for m in (mask, SWAP_LUT[mask[:, ::-1]]):
            for left, right in LR_PAIRS:
                assert _centroid_x(m, left) > _centroid_x(m, right)


def test_parts_are_not_minuscule(samples):
    """At 512 px an eye, a brow and an ear cover a few hundred pixels (a 256 px model still sees them)."""
    scale = (512 / 192) ** 2
    for label in (4, 6, 8, 10):
        areas = [np.sum(mask == label) * scale for _, mask in samples]
        assert np.median(areas) > 300, (label, np.median(areas))


def test_source_replaces_old_splits(tmp_path):
    out = tmp_path / "source"
    cfg = {"seed": 0, "size": 64, "counts": {"train": 3, "val": 1, "test": 1}}
    make_source("synthetic", out, out / "source.json", synthetic=cfg)
    cfg["counts"] = {"train": 2, "val": 1, "test": 1}
    info = make_source("synthetic", out, out / "source.json", synthetic=cfg)
    assert info["splits"] == {"train": 2, "val": 1, "test": 1}
    assert sorted(p.name for p in (out / "train" / "images").iterdir()) == ["train_00000.jpg", "train_00001.jpg"]
    assert len(list((out / "train" / "masks").iterdir())) == 2
    assert (out / "test" / "masks").is_dir()


def _face_width(mask: np.ndarray) -> float:
    """Horizontal extent of the skin, as a fraction of the image width."""
    cols = np.flatnonzero((mask == 1).any(axis=0))
    return (cols[-1] - cols[0] + 1) / mask.shape[1]


def test_held_out_framing_draws_heads_the_pipeline_never_draws():
    """The held-out framing (a generalisation test) changes only where heads are and how they
    turn: the same sample otherwise, heads both smaller and larger than any generated before."""
    from faceparse.data.synthetic.faces import CELEBA_FRAMING, HELD_OUT_FRAMING

    default = generate_face(128, seed=0, split="test", index=2)
    explicit = generate_face(128, seed=0, split="test", index=2, framing=CELEBA_FRAMING)
    assert default[0] == explicit[0]
    widths = {
        framing: [_face_width(generate_face(128, seed=0, split="test", index=i, framing=framing)[1]) for i in range(16)]
        for framing in (CELEBA_FRAMING, HELD_OUT_FRAMING)
    }
    usual, held_out = widths[CELEBA_FRAMING], widths[HELD_OUT_FRAMING]
    assert min(held_out) < min(usual) and max(held_out) > max(usual)
    assert (
        HELD_OUT_FRAMING.half_width[0]
        < CELEBA_FRAMING.half_width[0]
        < CELEBA_FRAMING.half_width[1]
        < HELD_OUT_FRAMING.half_width[1]
    )

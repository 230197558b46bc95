"""Ensembles of tiny models: one member equals the model bit for bit, the mean is the weighted
mean of the members' TTA probabilities, and config mistakes are refused by name.

That an ensemble of two trained tiny models scores at least its better member is checked on
the synthetic val set of the end-to-end run (tests/test_leaderboard.py), where the models are
trained; the models here have random weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from faceparse.ensemble import (Member, check_ensembles, combined_train_on_val, normalised_weights)

pytest.importorskip("mmcv.ops")
import torch  # noqa: E402

from _tiny_segmentor import write_checkpoint, write_config, write_index, write_split  # noqa: E402
from faceparse.records import split_files  # noqa: E402

SCALES, FLIP = [0.75, 1.0], True


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    config = write_config(root / "config.py")
    members = [Member(name, str(config), str(write_checkpoint(root / f"{name}.pth", seed=seed)), False)
               for name, seed in (("a", 0), ("b", 1))]
    index = write_index(root, {
        "val": write_split(root, "val", 5, with_masks=True),
        "test": write_split(root, "test", 3, with_masks=False, odd_size=True),
    })
    return root, members, index


def _masks(folder, names) -> dict[str, np.ndarray]:
    return {n: np.asarray(Image.open(folder / f"{n}.png")) for n in names}


def test_one_member_equals_the_model_bit_for_bit(setup, tmp_path):
    from faceparse.ensemble import evaluate_ensemble, predict_ensemble
    from faceparse.inference import evaluate, predict

    root, (a, _), index = setup
    common = dict(scales=SCALES, flip=FLIP, batch_size=2, threads=1, device="cpu")
    single = evaluate(a.config, a.checkpoint, index, pred_dir=tmp_path / "m_val", metrics_json=tmp_path / "m.json",
                      **common)
    ens = evaluate_ensemble([a], None, index, pred_dir=tmp_path / "e_val", metrics_json=tmp_path / "e.json",
                            **common)
    names = split_files(index, "val").names
    single_masks, ens_masks = _masks(tmp_path / "m_val", names), _masks(tmp_path / "e_val", names)
    for name in names:
        np.testing.assert_array_equal(ens_masks[name], single_masks[name], err_msg=name)
    for key in ("no_tta", "tta"):
        assert ens[key] == single[key], key
    assert ens["ensemble"]["members"] == [{"model": "a", "config": a.config, "checkpoint": a.checkpoint,
                                           "weight": 1.0}]
    # the same record format: every key of a model's val_metrics.json but config/checkpoint
    assert set(single) - {"config", "checkpoint"} == set(ens) - {"ensemble"}
    assert json.loads((tmp_path / "e.json").read_text())["train_on_val"] is False

    predict(a.config, a.checkpoint, index, pred_dir=tmp_path / "m_test", **common)
    predict_ensemble([a], [3.0], index, pred_dir=tmp_path / "e_test", **common)
    test_names = split_files(index, "test").names
    single_test, ens_test = _masks(tmp_path / "m_test", test_names), _masks(tmp_path / "e_test", test_names)
    for name in test_names:  # mixed sizes: the last image is 48 x 64
        np.testing.assert_array_equal(ens_test[name], single_test[name], err_msg=name)


def test_labels_are_the_weighted_mean_of_member_probabilities(setup):
    """Two members: the label is the argmax of w_a * P_a + w_b * P_b, P the member's face-aware TTA
    probabilities (FaceSegTTAModel with keep_probs), and differs from both members somewhere."""
    from faceparse.ensemble import Ensemble
    from faceparse.inference import build_loader

    root, members, index = setup
    ensemble = Ensemble(members, [3, 1], "cpu")
    assert ensemble.weights == [0.75, 0.25]
    files = split_files(index, "val")
    views, _, _ = next(iter(build_loader(files, ensemble.pipelines(True, SCALES, FLIP), 5, 0)))
    with torch.inference_mode():
        labels = ensemble.labels(tta=True)(views)
        probs = [torch.stack([s.seg_logits.data for s in m.test_step(v)]) for m, v in zip(ensemble.tta_models, views)]
    assert labels.shape == (5, 64, 64)
    np.testing.assert_array_equal(labels.numpy(), (0.75 * probs[0] + 0.25 * probs[1]).argmax(dim=1).numpy())
    for p in probs:  # each member alone labels some pixels otherwise
        assert (p.argmax(dim=1) != labels).any()


def test_config_mistakes_are_named():
    models = ["a", "b"]
    check_ensembles({"ab": {"models": ["a", "b"], "weights": [1, 2]}, "only_a": {"models": ["a"]}}, models)
    with pytest.raises(ValueError, match=r"ensembles\.x\.models: \['c'\] not among the configured models"):
        check_ensembles({"x": {"models": ["a", "c"]}}, models)
    with pytest.raises(ValueError, match=r"ensembles\.a: the name is also a model's"):
        check_ensembles({"a": {"models": ["a", "b"]}}, models)
    with pytest.raises(ValueError, match=r"ensembles\.y\.weights: 1 weights for 2 models"):
        check_ensembles({"y": {"models": ["a", "b"], "weights": [1]}}, models)


def test_weights_and_held_out():
    assert normalised_weights(None, 4) == [0.25] * 4
    assert normalised_weights([2, 6], 2) == [0.25, 0.75]
    with pytest.raises(ValueError, match="positive"):
        normalised_weights([1, 0], 2)

    def member(flag):
        return Member("m", "c.py", "c.pth", flag)

    assert combined_train_on_val([member(False), member(False)]) is False
    assert combined_train_on_val([member(False), member(True)]) is True
    assert combined_train_on_val([member(False), member(None)]) is None

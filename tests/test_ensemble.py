"""Ensembles of tiny models: two trained members and their ensemble on synthetic faces, one
member equals the model bit for bit, the mean is the weighted mean of the members' TTA
probabilities, and config mistakes are refused by name."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from faceparse.predict.models import Member, combined_train_on_val, normalised_weights
from faceparse.workflow import check_ensembles

pytest.importorskip("mmcv.ops")
import torch  # noqa: E402

from _tiny_segmentor import model_cfg, tiny_test_pipeline, write_checkpoint, write_config, write_index, write_split  # noqa: E402
from faceparse.records import split_files  # noqa: E402

SCALES, FLIP = [0.75, 1.0], True


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    config = write_config(root / "config.py")
    members = [
        Member(name, str(config), str(write_checkpoint(root / f"{name}.pth", seed=seed)), False)
        for name, seed in (("a", 0), ("b", 1))
    ]
    index = write_index(
        root,
        {
            "val": write_split(root, "val", 5, with_masks=True),
            "test": write_split(root, "test", 3, with_masks=False, odd_size=True),
        },
    )
    return root, members, index


def _masks(folder, names) -> dict[str, np.ndarray]:
    return {n: np.asarray(Image.open(folder / f"{n}.png")) for n in names}


def test_one_member_equals_the_model_bit_for_bit(setup, tmp_path):
    from faceparse.predict.steps import evaluate, predict

    root, (a, _), index = setup
    common = dict(scales=SCALES, flip=FLIP, batch_size=2, threads=1, device="cpu")
    single = evaluate([a], index, pred_dir=tmp_path / "m_val", metrics_json=tmp_path / "m.json", **common)
    ens = evaluate(
        [a], index, as_ensemble=True, pred_dir=tmp_path / "e_val", metrics_json=tmp_path / "e.json", **common
    )
    names = split_files(index, "val").names
    single_masks, ens_masks = _masks(tmp_path / "m_val", names), _masks(tmp_path / "e_val", names)
    for name in names:
        np.testing.assert_array_equal(ens_masks[name], single_masks[name], err_msg=name)
    for key in ("no_tta", "tta"):
        assert ens[key] == single[key], key
    assert ens["ensemble"]["members"] == [{"model": "a", "config": a.config, "checkpoint": a.checkpoint, "weight": 1.0}]
    # the same record format: every key of a model's val_metrics.json but config/checkpoint
    assert set(single) - {"config", "checkpoint"} == set(ens) - {"ensemble"}
    assert json.loads((tmp_path / "e.json").read_text())["train_on_val"] is False

    predict([a], index, pred_dir=tmp_path / "m_test", **common)
    predict([a], index, weights=[3.0], pred_dir=tmp_path / "e_test", **common)
    test_names = split_files(index, "test").names
    single_test, ens_test = _masks(tmp_path / "m_test", test_names), _masks(tmp_path / "e_test", test_names)
    for name in test_names:  # mixed sizes: the last image is 48 x 64
        np.testing.assert_array_equal(ens_test[name], single_test[name], err_msg=name)


def test_labels_are_the_weighted_mean_of_member_probabilities(setup):
    """Two members: the label is the argmax of w_a * P_a + w_b * P_b, P the member's face-aware TTA
    probabilities (FaceSegTTAModel with keep_probs), and differs from both members somewhere."""
    from faceparse.predict.models import Ensemble
    from faceparse.predict.runner import build_loader

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


# ----------------------------------------------------------------------------- trained members

FACE = 64  # synthetic faces of 64x64, the tiny model's test size (no resize)


def _faces(split: str, count: int) -> list[tuple[bytes, np.ndarray]]:
    from faceparse.data.synthetic import generate_face

    return [generate_face(FACE, seed=5, split=split, index=i) for i in range(count)]


def _train_member(cfg, train: list[tuple[bytes, np.ndarray]], seed: int, steps: int, path) -> str:
    """The tiny segmentor trained ``steps`` AdamW steps of 4 random faces, from seed ``seed``."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    init_default_scope("mmseg")
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=3e-3))
    # BGR, as LoadImageFromFile gives it to the data preprocessor
    images = [
        torch.from_numpy(np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"))[..., ::-1].copy()).permute(2, 0, 1)
        for jpg, _ in train
    ]
    masks = [torch.from_numpy(mask)[None].long() for _, mask in train]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        pick = rng.choice(len(train), 4, replace=False)
        model.train_step(
            {
                "inputs": [images[i] for i in pick],
                "data_samples": [SegDataSample(gt_sem_seg=PixelData(data=masks[i])) for i in pick],
            },
            optim,
        )
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny segmentors (output stride 8) trained from two seeds on 24 synthetic faces, and 8
    val faces in a dataset index."""
    from mmengine.config import Config

    root = tmp_path_factory.mktemp("ensemble_trained")
    cfg = model_cfg()
    cfg.backbone.update(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
    cfg.data_preprocessor.size_divisor = 32
    config = root / "config.py"
    Config(dict(default_scope="mmseg", model=cfg, test_pipeline=tiny_test_pipeline())).dump(str(config))
    val = root / "val"
    (val / "images").mkdir(parents=True)
    (val / "masks").mkdir()
    names = []
    for i, (jpg, mask) in enumerate(_faces("val", 8)):
        names.append(f"face{i}")
        (val / "images" / f"face{i}.jpg").write_bytes(jpg)
        Image.fromarray(mask).save(val / "masks" / f"face{i}.png")
    index = write_index(
        root,
        {
            "val": {
                "image_dir": str(val / "images"),
                "mask_dir": str(val / "masks"),
                "image_suffix": ".jpg",
                "names": names,
            }
        },
    )
    train = _faces("train", 24)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic wherever it runs
    try:
        members = [
            Member(name, str(config), _train_member(cfg, train, seed, 300, root / f"{name}.pth"), False)
            for name, seed in (("a", 0), ("b", 1))
        ]
    finally:
        torch.set_num_threads(threads)
    return root, members, index


def test_trained_members_ensemble_is_their_weighted_mean(trained, tmp_path):
    """On trained members that disagree, evaluate writes, per val image, the argmax of
    the weighted mean of the members' face-aware TTA probabilities, and its record scores exactly
    those masks. (Whether an ensemble beats its better member depends on how the members happen
    to train: not a property of the code, so not asserted.)"""
    from faceparse.predict.metrics import confusion_matrix, scores
    from faceparse.predict.models import Ensemble
    from faceparse.predict.runner import build_loader
    from faceparse.predict.steps import evaluate

    root, members, index = trained
    record = evaluate(
        members,
        index,
        weights=[2.0, 1.0],
        pred_dir=tmp_path / "ab_val",
        metrics_json=tmp_path / "ab.json",
        scales=[1.0],
        flip=True,
        batch_size=8,
        threads=1,
        device="cpu",
    )
    files = split_files(index, "val")
    written = _masks(tmp_path / "ab_val", files.names)

    ensemble = Ensemble(members, None, "cpu")  # each member's own TTA probabilities, all images at once
    views, _, _ = next(iter(build_loader(files, ensemble.pipelines(True, [1.0], True), len(files.names), 0)))
    with torch.inference_mode():
        probs = [
            torch.stack([s.seg_logits.data for s in model.test_step(view)])
            for model, view in zip(ensemble.tta_models, views)
        ]
    expected = (probs[0] * (2 / 3)).add_(probs[1], alpha=1 / 3).argmax(dim=1).numpy()
    assert (probs[0].argmax(dim=1) != probs[1].argmax(dim=1)).any()  # the members do disagree
    truth = []
    for i, name in enumerate(files.names):
        np.testing.assert_array_equal(written[name], expected[i], err_msg=name)
        truth.append(np.asarray(Image.open(files.masks[i])))
    confusion = confusion_matrix(np.stack(truth), np.stack([written[n] for n in files.names]))
    assert record["tta"]["mIoU"] == pytest.approx(scores(confusion)["mIoU"], abs=1e-6)


def test_schema_refuses_bad_ensembles():
    from snakemake.utils import validate

    from _pipeline import ROOT

    schema = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")

    def config(name="pair", **spec):
        return {
            "models": {"a": {"config": "configs/demo_tiny.py"}, "b": {"config": "configs/demo_tiny.py"}},
            "ensembles": {name: {"models": ["a", "b"], **spec}},
        }

    good = config(weights=[2, 1])
    validate(good, schema)
    assert good["ensembles"]["pair"]["weights"] == [2, 1]
    for bad, message in (
        (config(name="a/../b"), "does not match"),
        (config(name="x\n"), "does not match"),
        (config(weights=[1, 0]), "less than or equal to the minimum"),
        (config(models=[]), "should be non-empty|is too short"),
        (config(models=["a", "a"]), "non-unique|has non-unique elements"),
        (config(extra=1), "Additional properties"),
    ):
        with pytest.raises(Exception, match=message):
            validate(bad, schema)

"""Evaluate and predict with a tiny mmseg model: masks, metrics, parity with mmseg's own inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mmcv.ops")
import torch  # noqa: E402

from _tiny_segmentor import SIZE, write_checkpoint, write_config, write_index, write_split  # noqa: E402
from faceparse.labels import CLASSES  # noqa: E402
from faceparse.mm.pipelines import config_test_pipeline, without_annotations  # noqa: E402
from faceparse.predict.metrics import confusion_matrix  # noqa: E402
from faceparse.predict.models import CheckpointMismatch, Member, load_model, read_member  # noqa: E402
from faceparse.predict.runner import run_split  # noqa: E402
from faceparse.predict.steps import evaluate, predict  # noqa: E402
from faceparse.records import split_files  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    config = write_config(root / "config.py")
    checkpoint = write_checkpoint(root / "iter_10.pth")
    index = write_index(
        root,
        {
            "val": write_split(root, "val", 5, with_masks=True),
            "test": write_split(root, "test", 5, with_masks=False, odd_size=True),
        },
    )
    return root, config, checkpoint, index


def test_evaluate_writes_masks_and_metrics(setup, tmp_path):
    root, config, checkpoint, index = setup
    pred_dir, metrics_json = tmp_path / "val_pred", tmp_path / "val_metrics.json"
    table = tmp_path / "val_metrics.html"
    metrics = evaluate(
        [Member("m", str(config), str(checkpoint))],
        index,
        pred_dir=pred_dir,
        metrics_json=metrics_json,
        table_html=table,
        scales=[0.75, 1.0, 1.25],
        flip=True,
        batch_size=2,
        threads=1,
        device="cpu",
    )
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


@pytest.mark.parametrize("change", ["renamed", "reshaped", "extra"])
def test_checkpoint_that_does_not_fit_the_network_is_refused(setup, tmp_path, change):
    """A network changed after training (a layer renamed, resized or added) must not predict with
    random weights where the checkpoint no longer fits: loading names the checkpoint and the keys."""
    root, config, checkpoint, index = setup
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = ckpt["state_dict"]
    key = "decode_head.conv_seg.weight"
    if change == "renamed":
        state["decode_head.classifier.weight"] = state.pop(key)
    elif change == "reshaped":
        state[key] = state[key][:, :4]
    else:
        state["backbone.extra.weight"] = torch.zeros(3)
    changed = tmp_path / "changed.pth"
    torch.save(ckpt, changed)
    with pytest.raises(CheckpointMismatch, match=r"changed\.pth does not fit the network of .*config\.py") as err:
        load_model(config, changed, "cpu")
    assert (
        "decode_head.classifier.weight"
        if change == "renamed"
        else key
        if change == "reshaped"
        else "backbone.extra.weight"
    ) in str(err.value)
    model, _ = load_model(config, checkpoint, "cpu")  # the checkpoint as trained loads, every weight
    loaded, saved = model.state_dict(), torch.load(checkpoint, weights_only=False)["state_dict"]
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_predict_test_split_mixed_sizes(setup, tmp_path):
    root, config, checkpoint, index = setup
    pred_dir = tmp_path / "test_pred"
    summary = predict(
        [Member("m", str(config), str(checkpoint))],
        index,
        pred_dir=pred_dir,
        scales=[1.0, 1.5],
        flip=True,
        batch_size=4,
        threads=2,
        device="cpu",
    )
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
    train.write_text(
        json.dumps(
            {"work_dir": str(root), "config": str(config), "checkpoints": [str(checkpoint)], "max_iters": 10, "val": []}
        )
    )
    metrics = evaluate(
        [read_member("m", best, train)],
        index,
        pred_dir=tmp_path / "p",
        metrics_json=tmp_path / "m.json",
        scales=[1.0],
        flip=False,
        batch_size=8,
        threads=1,
        device="cpu",
    )
    # one view, no flip: TTA is the plain prediction
    assert metrics["tta"]["confusion"] == metrics["no_tta"]["confusion"]
    train.write_text(
        json.dumps(
            {"work_dir": str(root), "config": str(root / "nope.py"), "checkpoints": [str(checkpoint)], "max_iters": 10}
        )
    )
    with pytest.raises(FileNotFoundError, match="nope.py"):
        read_member("m", best, train)


def test_run_views_holds_one_batch_at_a_time(setup):
    """Labelling sees batches of at most batch_size images of one size, one view per pipeline."""
    from faceparse.predict.runner import run_views

    root, config, checkpoint, index = setup
    files = split_files(index, "test")  # 4 images of 64x64 and one of 48x64
    pipeline = without_annotations(config_test_pipeline(load_model(config, checkpoint, "cpu")[1]))
    seen = []

    def labels(views):
        assert len(views) == 2
        shapes = {tuple(x.shape) for view in views for x in view["inputs"]}
        seen.append((len(views[0]["inputs"]), shapes))
        return torch.zeros((len(views[0]["inputs"]), *next(iter(shapes))[1:]), dtype=torch.long)

    result = run_views(labels, files, [pipeline, pipeline], device="cpu", batch_size=3, workers=0)
    assert result["images"] == 5 and result["confusion"] is None
    assert [n for n, _ in seen] == [3, 1, 1] and all(len(shapes) == 1 for _, shapes in seen)


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


# ---------------------------------------------------------------------------
# The seed's model shape offline: inference loads no pretrained weights

SEED_TINY = """
_base_ = [{seed!r}]
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(model_name='convnext_atto', pretrained=True, pretrained_file={weights!r}, drop_path_rate=0.1),
    decode_head=dict(in_channels=[40, 80, 160, 320], channels=16),
    auxiliary_head=dict(in_channels=160, channels=8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRotate', prob=0.5, degree=25),
    dict(type='RandomResize', scale=crop_size, ratio_range=(1.0, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
"""

# Run with the hub offline and an empty HF cache: the training config (pretrained
# from the hub, or from a local file that is gone) cannot be built, evaluate and
# predict of its checkpoint still work.
OFFLINE_SCRIPT = """
import json, sys
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
import faceparse.mm
from faceparse.predict.models import Member
from faceparse.predict.steps import evaluate, predict

config, checkpoint, index, out = sys.argv[1:]
cfg = Config.fromfile(config)
init_default_scope('mmseg')
refused = {}
for name, backbone in (('file', cfg.model.backbone), ('hub', {**cfg.model.backbone, 'pretrained_file': None})):
    try:
        MODELS.build(backbone)
    except Exception as exc:
        refused[name] = type(exc).__name__
common = dict(scales=[1.0, 1.5], flip=True, batch_size=2, threads=1, device='cpu')
members = [Member('m', config, checkpoint)]
metrics = evaluate(members, index, pred_dir=out + '/val', metrics_json=out + '/val.json', **common)
summary = predict(members, index, pred_dir=out + '/test', split='val', **common)
print(json.dumps({'refused': refused, 'mIoU': metrics['tta']['mIoU'], 'predicted': summary['images']}))
"""


@pytest.fixture(scope="module")
def seed_trained(tmp_path_factory):
    """A seed-shaped model (ConvNeXt-atto backbone, small heads) trained 2 iterations from a local weights file."""
    import timm

    from faceparse.train.step import train
    from test_train import SEED, make_tiny_dataset

    root = tmp_path_factory.mktemp("seed_offline")
    torch.manual_seed(0)
    weights = root / "convnext_atto_local.pth"
    torch.save(timm.create_model("convnext_atto", pretrained=False).state_dict(), weights)
    config = root / "seed_tiny.py"
    config.write_text(SEED_TINY.format(seed=str(SEED), weights=str(weights)))
    data = make_tiny_dataset(root / "data", counts={"train": 2, "val": 2})
    summary = train(
        config,
        data["validation"],
        data["stats"],
        root / "train.json",
        root / "train",
        overrides={"train_cfg.max_iters": 2, "train_cfg.val_interval": 2, "default_hooks.checkpoint.interval": 2},
        threads=1,
    )
    return root, summary, weights, data


def test_pretrained_file_loads_local_weights(seed_trained):
    from faceparse.mm.backbone import TimmFeatureBackbone

    root, summary, weights, data = seed_trained
    state = torch.load(weights)
    backbone = TimmFeatureBackbone("convnext_atto", pretrained_file=str(weights), out_norms=True)
    assert torch.equal(backbone.timm_model.stem_0.weight, state["stem.0.weight"])
    assert torch.equal(backbone.timm_model.stages_2.blocks[5].mlp.fc1.weight, state["stages.2.blocks.5.mlp.fc1.weight"])
    # the dumped training config still names the file; training loaded it
    assert str(weights) in Path(summary["config"]).read_text()


def test_seed_inference_offline_without_backbone_file(seed_trained, tmp_path):
    import os
    import subprocess
    import sys

    root, summary, weights, data = seed_trained
    moved = weights.rename(weights.with_suffix(".gone"))
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                OFFLINE_SCRIPT,
                summary["config"],
                summary["checkpoints"][-1],
                str(data["validation"]),
                str(tmp_path),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        moved.rename(weights)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # building the training config needs the file, or the hub: both refused here
    assert out["refused"] == {"file": "FileNotFoundError", "hub": "LocalEntryNotFoundError"}, out
    assert 0.0 <= out["mIoU"] <= 100.0 and out["predicted"] == 2
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["val000.png", "val001.png"]


def test_pretrained_off_switches_every_loading_off():
    from mmengine.config import ConfigDict

    from faceparse.mm.backbone import pretrained_off

    cfg = ConfigDict(
        type="EncoderDecoder",
        pretrained="open-mmlab://resnet50",
        backbone=dict(
            type="TimmFeatureBackbone",
            model_name="x",
            pretrained=True,
            pretrained_file="/w.pth",
            init_cfg=dict(type="Pretrained", checkpoint="c"),
        ),
        auxiliary_head=[dict(type="FCNHead", init_cfg=dict(type="Normal", std=0.01))],
    )
    off = pretrained_off(cfg)
    assert off.pretrained is None and off.backbone.pretrained is False
    assert "pretrained_file" not in off.backbone and off.backbone.init_cfg is None
    assert off.auxiliary_head[0].init_cfg == dict(type="Normal", std=0.01)
    assert cfg.backbone.pretrained is True and cfg.backbone.pretrained_file == "/w.pth"  # a copy

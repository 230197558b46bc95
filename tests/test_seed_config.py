"""The seed port (ConvNeXt-XL + UPerNet) builds and trains one iteration on tiny inputs on the CPU;
the seed run configs reproduce the seed's TTA and plan."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from test_train import REPO, SEED, make_tiny_dataset

CLASS_WEIGHT = [0.95, 0.95, 0.95, 1, 1, 1, 1.05, 1.05, 1.05, 1.05, 1, 1, 1, 0.95, 1.05, 1.5, 2, 1, 1.05]
# docs/seed-recipe.md: the final TTA, the checkpoint, the normalisation
SEED_TTA = {"scales": [0.5, 0.75, 1.0, 1.25, 1.5], "flip": False}
SEED_MEAN, SEED_STD = [132.529, 106.677, 92.839], [77.060, 69.735, 68.295]
RUN_SEED, RUN_IMPROVED = REPO / "configs" / "runs" / "seed.yaml", REPO / "configs" / "runs" / "seed_improved.yaml"


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    from faceparse.mm.config import build_config

    root = tmp_path_factory.mktemp("seed")
    data = make_tiny_dataset(root / "data", counts={"train": 2, "val": 1})
    return build_config(
        SEED,
        data["validation"],
        data["stats"],
        flip=data["flip"],
        work_dir=root / "work",
        gpus=0,
        overrides={"model.backbone.pretrained": False, "model.data_preprocessor.size": (64, 64)},
    )


def test_seed_recipe(cfg):
    """The facts of docs/seed-recipe.md, as config values."""
    m = cfg.model
    assert m.backbone.model_name == "convnext_xlarge.fb_in22k" and m.backbone.drop_path_rate == 0.4
    assert m.backbone.out_indices == (0, 1, 2, 3) and m.backbone.ls_init_value == 1.0
    head, aux = m.decode_head, m.auxiliary_head
    assert head.type == "UPerHead" and head.channels == 512 and head.pool_scales == (1, 2, 3, 6)
    assert head.dropout_ratio == 0.1 and head.in_channels == [256, 512, 1024, 2048]
    assert aux.type == "FCNHead" and aux.in_index == 2 and aux.channels == 256
    for h, ce_weight in ((head, 1.0), (aux, 0.4)):
        ce, lovasz = h.loss_decode
        # mmseg's CrossEntropyLoss with these weights fails on 255 pixels; same value otherwise
        assert ce.type == "ClassWeightedCrossEntropyLoss" and ce.class_weight == CLASS_WEIGHT
        assert ce.loss_weight == ce_weight
        assert lovasz.type == "LovaszLoss" and lovasz.loss_weight == 2.0 and lovasz.reduction == "none"
    opt = cfg.optim_wrapper
    assert opt.optimizer == dict(type="AdamW", lr=8e-5, betas=(0.9, 0.999), weight_decay=0.05)
    assert opt.paramwise_cfg == dict(num_layers=12, decay_rate=0.9, decay_type="stage_wise")
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, poly.type, poly.power, poly.end) == ("LinearLR", 1500, "PolyLR", 1.0, 160000)
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_cfg.val_interval == 8000
    assert cfg.default_hooks.checkpoint.interval == 8000 and cfg.train_dataloader.batch_size == 4
    types = [t["type"] for t in cfg.train_pipeline]
    assert types == [
        "LoadImageFromFile",
        "LoadAnnotations",
        "RandomRotate",
        "RandomResize",
        "RandomCrop",
        "RandomFlipSwapLR",
        "PhotoMetricDistortion",
        "PackSegInputs",
    ]
    assert cfg.train_pipeline[5]["prob"] == 0.0  # flipped copies come from flip.json instead
    assert len(cfg.train_dataloader.dataset.datasets) == 2  # train + flipped train


def test_seed_pipeline_output(cfg):
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope

    import faceparse.mm  # noqa: F401

    init_default_scope("mmseg")
    ds = cfg.train_dataloader.dataset.datasets[0]
    stem = open(ds.ann_file).read().split()[0]
    packed = Compose(cfg.train_pipeline)(
        {
            "img_path": f"{ds.data_prefix.img_path}/{stem}.jpg",
            "seg_map_path": f"{ds.data_prefix.seg_map_path}/{stem}.png",
            "reduce_zero_label": False,
            "seg_fields": [],
        }
    )
    assert tuple(packed["inputs"].shape) == (3, 512, 512)
    assert set(np.unique(packed["data_samples"].gt_sem_seg.data.numpy())) <= set(range(19)) | {255}


@pytest.mark.slow
def test_one_training_iteration(cfg):
    """390M parameters: build, layer-decay optimizer, one fp32 step at 64x64 (batch 2)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import faceparse.mm  # noqa: F401

    init_default_scope("mmseg")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    assert 380e6 < n_params < 420e6
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {n: g["lr"] for g in wrapper.optimizer.param_groups for n in g["param_names"]}
    assert lrs["backbone.timm_model.stem_0.weight"] == pytest.approx(8e-5 * 0.9**13)
    assert lrs["backbone.timm_model.stages_2.blocks.26.mlp.fc1.weight"] == pytest.approx(8e-5 * 0.9**10)
    assert lrs["decode_head.conv_seg.weight"] == pytest.approx(8e-5)

    rng = np.random.default_rng(0)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, 19, (1, 64, 64))).long())
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)], data_samples=samples)
    before = model.decode_head.conv_seg.weight.detach().clone()
    losses = model.train_step(data, wrapper)
    assert {"decode.loss_ce", "decode.loss_lovasz", "aux.loss_ce", "aux.loss_lovasz"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(before, model.decode_head.conv_seg.weight)


def test_run_configs_reproduce_and_improve_the_seed():
    seed, improved = yaml.safe_load(RUN_SEED.read_text()), yaml.safe_load(RUN_IMPROVED.read_text())
    assert seed["tta"] == SEED_TTA  # 5 scales, no flip: exactly the seed's final submission
    ((name, model),) = seed["models"].items()
    assert model["config"] == "configs/seed_convnext_xl.py" and model["select_iter"] == 72000
    assert seed["train_on_val"] is True and seed["flip"] is True
    assert model["overrides"] == {"model.data_preprocessor.mean": SEED_MEAN, "model.data_preprocessor.std": SEED_STD}
    # the improved run differs in the face-aware flip TTA and the exact stats only, under its own name
    ((other_name, other),) = improved["models"].items()
    assert other_name != name and other["overrides"] == {}
    assert improved["tta"] == {**SEED_TTA, "flip": True}
    assert {k: v for k, v in improved.items() if k not in ("tta", "models")} == {
        k: v for k, v in seed.items() if k not in ("tta", "models")
    }
    assert {k: v for k, v in other.items() if k != "overrides"} == {k: v for k, v in model.items() if k != "overrides"}


@pytest.mark.parametrize("run_config", [RUN_SEED, RUN_IMPROVED], ids=["seed", "improved"])
def test_run_config_plans(run_config, tmp_path):
    """`snakemake -n` with the run config alone (--replace-workflow-config) on a mini layout."""
    root = tmp_path / "mini"
    for split, kinds in (("train", ("images", "masks")), ("val", ("images", "masks")), ("test", ("images",))):
        for kind in kinds:
            (root / split / kind).mkdir(parents=True)
            (root / split / kind / f"a.{'jpg' if kind == 'images' else 'png'}").touch()
    snakemake = os.path.join(os.path.dirname(sys.executable), "snakemake")
    result = subprocess.run(
        [
            snakemake,
            "-n",
            "-s",
            str(REPO / "workflow" / "Snakefile"),
            "-d",
            str(tmp_path / "work"),
            "--cores",
            "16",
            "--resources",
            "gpu=1",
            "--configfile",
            str(run_config),
            "--replace-workflow-config",
            "--config",
            f"data_root={root}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    model = next(iter(yaml.safe_load(run_config.read_text())["models"]))
    assert f"results/models/{model}/train.json" in text and f"results/submission/{model}.zip" in text

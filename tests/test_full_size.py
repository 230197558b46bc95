"""Every shipped model config trains one full-size iteration through its own pipeline on the CPU
(512x512 images, batch 2, pretrained weights off), with ignored (255) pixels in the labels."""

import time

import numpy as np
import pytest
import torch

from _pipeline import ROOT
from test_train import DEMO, SEED, make_tiny_dataset

COMPACT, COMPACT_512 = ROOT / "configs" / "compact.py", ROOT / "configs" / "compact_512.py"
COMPACT_LARGE = ROOT / "configs" / "compact_large.py"
# (config, the overrides that turn pretrained loading off, the classifier's weight)
CONFIGS = {
    "seed_convnext_xl": (SEED, {"model.backbone.pretrained": False}, "decode_head.conv_seg.weight"),
    "demo_tiny": (DEMO, {"model.backbone.pretrained": False}, "decode_head.conv_seg.weight"),
    "compact": (COMPACT, {}, "backbone.net.classifier.weight"),
    "compact_large": (COMPACT_LARGE, {}, "backbone.net.classifier.weight"),
    "compact_512": (COMPACT_512, {}, "backbone.net.classifier.weight"),
}


@pytest.fixture(scope="module")
def full_size_data(tmp_path_factory):
    # 512x512 like the challenge; the bottom 160 rows of every mask are unlabelled (255), so every
    # crop of either pipeline holds some
    return make_tiny_dataset(tmp_path_factory.mktemp("full"), counts={"train": 2, "val": 1}, size=512, ignored_rows=160)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_full_size_iteration_with_ignored_pixels(name, full_size_data, tmp_path):
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    import faceparse.mm  # noqa: F401
    from faceparse.mm.config import build_config

    config, pretrained_off, classifier = CONFIGS[name]
    cfg = build_config(
        config,
        full_size_data["validation"],
        full_size_data["stats"],
        work_dir=tmp_path,
        gpus=0,
        overrides={**pretrained_off, "train_dataloader.batch_size": 2},
    )
    init_default_scope("mmseg")
    torch.manual_seed(0)
    np.random.seed(0)  # mmcv's random transforms
    dataset = DATASETS.build(cfg.train_dataloader.dataset)  # the config's own train pipeline
    batch = pseudo_collate([dataset[i] for i in range(cfg.train_dataloader.batch_size)])
    labels = torch.stack([s.gt_sem_seg.data for s in batch["data_samples"]])
    assert (labels == 255).any() and set(np.unique(labels.numpy())) <= set(range(19)) | {255}

    model = MODELS.build(cfg.model)
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    head = model.get_parameter(classifier)
    before = head.detach().clone()
    start = time.monotonic()
    losses = model.train_step(batch, wrapper)
    print(f"{config.name}: input {tuple(batch['inputs'][0].shape)}, one iteration {time.monotonic() - start:.1f} s")
    assert all(torch.isfinite(v) for v in losses.values()) and losses["decode.loss_ce"] > 0
    assert not torch.equal(before, head.detach())

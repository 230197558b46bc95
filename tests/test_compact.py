"""The compact model: under the later editions' budget, plain PyTorch, the same network in mmseg."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
import torch

from _pipeline import ROOT
from faceparse.model_configs import load_config
from faceparse.networks.compact import CompactFaceNet
from faceparse.workflow import check_rules

BUDGET = 1_821_085
NET_FILE = ROOT / "src" / "faceparse" / "networks" / "compact.py"
CONFIG = ROOT / "configs" / "compact.py"
LARGE = ROOT / "configs" / "compact_large.py"  # the GPU widths: a last decoder stage at full size
CONFIGS = pytest.mark.parametrize("config", [CONFIG, LARGE], ids=["compact", "compact_large"])
TRAINING_STACK = ("faceparse", "mmseg", "mmcv", "mmengine", "timm", "onnxruntime")


def _segmentor(config=CONFIG):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import faceparse.mm  # noqa: F401  registers CompactFaceBackbone, LogitsHead

    init_default_scope("mmseg")
    return MODELS.build(load_config(config).model)


def _net_kwargs(config=CONFIG) -> dict:
    backbone = dict(load_config(config).model.backbone)
    backbone.pop("type")
    return backbone


def test_the_network_file_imports_only_torch():
    tree = ast.parse(NET_FILE.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "torch"}, imported


def test_the_network_file_runs_without_the_training_stack(tmp_path):
    """Copied alone into a folder, it builds and runs where faceparse, mmseg, mmcv, mmengine,
    timm and onnxruntime cannot be imported."""
    (tmp_path / "compact.py").write_bytes(NET_FILE.read_bytes())
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {TRAINING_STACK!r}:\n"
        "            raise ImportError(f'{name} is not available to the grader')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    script = (
        blocker + "import torch\nfrom compact import CompactFaceNet\n"
        "net = CompactFaceNet().eval()\n"
        "print(tuple(net.segment(torch.zeros(1, 3, 100, 76)).shape))\n"
    )
    for name in TRAINING_STACK:
        script += (
            f"\ntry:\n    import {name}\nexcept ImportError:\n    pass\nelse:\n"
            f"    raise SystemExit('{name} imported')\n"
        )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "(1, 19, 100, 76)"


@CONFIGS
def test_under_the_budget_by_the_challenges_own_count(config):
    net = CompactFaceNet(**_net_kwargs(config))
    count = sum(p.numel() for p in net.parameters())
    assert count < BUDGET
    # the segmentor mmseg trains has exactly the network's parameters (the head has none)
    segmentor = _segmentor(config)
    assert sum(p.numel() for p in segmentor.parameters()) == count
    assert list(segmentor.decode_head.parameters()) == []


def test_the_rules_accept_the_compact_models_and_they_load_nothing_pretrained():
    rules = {"max_params": BUDGET, "pretrained": False, "ensembles": False}
    models = {name: {"config": f"configs/{name}.py"} for name in ("compact", "compact_large", "compact_512")}
    check_rules({"models": models, "rules": rules, "ensembles": {}}, ROOT)


@pytest.mark.parametrize("size", [(192, 192), (100, 76), (33, 65)])
def test_logits_at_full_size_and_segment_at_the_input_size(size):
    """The sub-pixel classifier works at 1/2 and gives logits at twice that size: the input's
    size when it is even; segment cuts an odd size's extra row or column."""
    net = CompactFaceNet().eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits, segmented = net(x), net.segment(x)
    assert logits.shape == (2, 19, 2 * -(-size[0] // 2), 2 * -(-size[1] // 2))
    assert torch.equal(segmented, logits[..., : size[0], : size[1]])


@pytest.mark.parametrize("size", [(192, 192), (100, 76), (33, 65)])
def test_the_full_size_decoder_gives_logits_at_the_input_size(size):
    net = CompactFaceNet(**_net_kwargs(LARGE)).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits, segmented = net(x), net.segment(x)
    assert logits.shape == (2, 19, *size) and torch.equal(segmented, logits)


def test_the_full_size_decoder_needs_full_size_features():
    with pytest.raises(ValueError, match="full_res_decoder needs full_res"):
        CompactFaceNet(full_res_decoder=True)


def test_the_sub_pixel_logits_start_as_a_nearest_upsampling():
    """ICNR: at initialisation the four logits of each 2x2 block are equal (no checkerboard);
    training then moves them apart."""
    net = CompactFaceNet().eval()
    with torch.no_grad():
        logits = net(torch.randn(1, 3, 64, 96))
    blocks = logits.unfold(2, 2, 2).unfold(3, 2, 2)  # (1, 19, 32, 48, 2, 2)
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))
    assert logits.std() > 0


@CONFIGS
def test_a_checkpoint_becomes_the_plain_network_exactly(config):
    from faceparse.mm.compact import plain_state_dict

    segmentor = _segmentor(config).eval()
    net = CompactFaceNet(**_net_kwargs(config)).eval()
    state = plain_state_dict(segmentor.state_dict())
    net.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert torch.equal(segmentor.backbone(x)[0], net(x))
    with pytest.raises(ValueError, match="not a CompactFaceNet checkpoint: 1 weights outside"):
        plain_state_dict({**segmentor.state_dict(), "decode_head.conv_seg.weight": torch.zeros(1)})


@CONFIGS
def test_exports_to_onnx_for_any_input_size(tmp_path, config):
    """The pyramid pooling uses fixed kernels (not fixed output grids), so the export step's
    dynamic-size ONNX model runs and agrees with PyTorch at sizes it was not traced at."""
    import numpy as np
    import onnxruntime as ort

    torch.manual_seed(0)
    net = CompactFaceNet(**_net_kwargs(config)).eval()
    path = tmp_path / "compact.onnx"
    torch.onnx.export(
        net,
        torch.zeros(1, 3, 256, 256),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 100, 76), (2, 3, 333, 211), (1, 3, 33, 65)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("size", [(48, 64), (24, 32)], ids=["labels' size", "other size"])
def test_logits_head_losses_are_mmsegs(size):
    """LogitsHead skips mmseg's resize of logits already at the labels' size: the losses (values and
    gradients) are those of mmseg's own loss_by_feat, at that size and at any other."""
    from mmengine.structures import PixelData
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    from mmseg.structures import SegDataSample

    head = _segmentor().decode_head
    torch.manual_seed(0)
    samples = []
    for _ in range(2):
        label = torch.randint(0, 19, (1, 48, 64))
        label[:, :3] = 255
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label)))
    logits = torch.randn(2, 19, *size, requires_grad=True)
    ours = head.loss_by_feat(logits, samples)
    ours_grad = torch.autograd.grad(sum(v for k, v in ours.items() if k.startswith("loss")), logits)[0]
    theirs = BaseDecodeHead.loss_by_feat(head, logits, samples)
    theirs_grad = torch.autograd.grad(sum(v for k, v in theirs.items() if k.startswith("loss")), logits)[0]
    assert set(ours) == set(theirs) == {"loss_ce", "loss_dice", "acc_seg"}
    for key in ours:
        assert torch.allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6), key
    assert torch.allclose(ours_grad, theirs_grad, rtol=1e-4, atol=1e-7)

"""ONNX export: shape-agnostic pyramid pooling, dynamic sizes, and parity with PyTorch on the tiny model."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mmcv.ops")
ort = pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
import torch  # noqa: E402

from _tiny_segmentor import SIZE, write_checkpoint, write_config, write_index, write_split  # noqa: E402
from faceparse.predict.export import export_model, export_onnx  # noqa: E402
from faceparse.predict.exportable import ShapeAgnosticAdaptiveAvgPool2d  # noqa: E402
from faceparse.predict.models import load_model  # noqa: E402
from faceparse.predict.parity import parity  # noqa: E402
from faceparse.predict.photo_parser import METADATA_KEY  # noqa: E402

TTA = {"scales": [0.75, 1.0], "flip": True}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A selected tiny model as the pipeline leaves it: config, checkpoint, best.json, train.json, val."""
    root = tmp_path_factory.mktemp("export")
    config = write_config(root / "config.py")
    checkpoint = write_checkpoint(root / "iter_10.pth")
    index = write_index(root, {"val": write_split(root, "val", 4, with_masks=True, odd_size=True)})
    best, train = root / "best.json", root / "train.json"
    best.write_text(json.dumps({"checkpoint": str(checkpoint), "iter": 10, "mIoU": 1.0}))
    train.write_text(
        json.dumps(
            {"work_dir": str(root), "config": str(config), "checkpoints": [str(checkpoint)], "max_iters": 10, "val": []}
        )
    )
    return root, config, checkpoint, index, best, train


@pytest.mark.parametrize("out", [1, 2, 3, 6, (2, 5)])
@pytest.mark.parametrize("size", [(6, 6), (8, 8), (13, 29), (4, 5)])
def test_shape_agnostic_pool_equals_adaptive_avg_pool(out, size):
    x = torch.randn(2, 3, *size)
    np.testing.assert_allclose(
        ShapeAgnosticAdaptiveAvgPool2d(out)(x).numpy(), torch.nn.AdaptiveAvgPool2d(out)(x).numpy(), rtol=1e-5, atol=1e-6
    )


def _export(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.rand(1, 2, 12, 12),),
            buf,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}},
        )
    return buf.getvalue()


def test_pyramid_pooling_exports_with_dynamic_size():
    """The exporter refuses a plain adaptive pool with dynamic sizes; the replacement follows any size."""
    with pytest.raises(Exception, match="input size not accessible"):
        _export(torch.nn.AdaptiveAvgPool2d(3))
    session = ort.InferenceSession(_export(ShapeAgnosticAdaptiveAvgPool2d(3)), providers=["CPUExecutionProvider"])
    for shape in [(1, 2, 12, 12), (3, 2, 18, 18), (2, 2, 13, 29)]:
        x = torch.rand(*shape)
        np.testing.assert_allclose(
            session.run(None, {"x": x.numpy()})[0],
            torch.nn.functional.adaptive_avg_pool2d(x, 3).numpy(),
            rtol=1e-5,
            atol=1e-6,
        )


def test_export_model_writes_onnx_and_parity(run, tmp_path):
    root, config, checkpoint, index, best, train = run
    onnx_path, parity_json = tmp_path / "export" / "tiny.onnx", tmp_path / "export" / "parity.json"
    record = export_model(best, train, index, onnx_path=onnx_path, parity_json=parity_json, tta=TTA, threads=1)
    assert json.loads(parity_json.read_text()) == json.loads(json.dumps(record))
    assert record["passed"] and record["agreement_percent"] >= 99.9
    assert record["images"] == 4 and record["pixels"] == 3 * SIZE * SIZE + 48 * SIZE
    assert record["dynamic_axes"] == ["batch", "height", "width"]
    assert {tuple(c["size"]) for c in record["dynamic_sizes"]} >= {(SIZE, SIZE), (SIZE + 32, SIZE + 32)}
    assert record["source"]["checkpoint"] == str(checkpoint) and record["source"]["iter"] == 10

    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    meta = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    assert meta["resize"] == {"scale": [SIZE, SIZE], "keep_ratio": True}
    assert meta["normalisation"] == {
        "mean": [128.0] * 3,
        "std": [64.0] * 3,
        "model_channel_order": "RGB",
        "in_graph": True,
    }
    assert meta["tta"] == TTA and meta["swap_pairs"] == [[4, 5], [6, 7], [8, 9]]

    # dynamic batch and size: onnxruntime equals PyTorch's segmentor on raw 0..255 RGB input
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    segmentor, _ = load_model(config, checkpoint, "cpu")
    x = torch.rand(3, 3, 40, 72) * 255
    with torch.no_grad():
        ref = segmentor(x.sub(128).div(64), mode="tensor")
        ref = torch.nn.functional.interpolate(ref, size=(40, 72), mode="bilinear", align_corners=False)
    got = session.run(["logits"], {"image": x.numpy()})[0]
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_parity_fails_for_another_model(run, tmp_path):
    """The check can fail: an export of other weights does not pass against this checkpoint."""
    root, config, checkpoint, index, best, train = run
    other_ckpt = write_checkpoint(tmp_path / "other.pth", seed=1)
    model, cfg = load_model(config, other_ckpt, "cpu")
    export_onnx(model, cfg, tmp_path / "other.onnx", example_size=(SIZE, SIZE))
    record = parity(tmp_path / "other.onnx", config, checkpoint, index)
    assert not record["passed"] and record["agreement_percent"] < 99.9


def test_parity_on_a_subset(run, tmp_path):
    root, config, checkpoint, index, best, train = run
    model, cfg = load_model(config, checkpoint, "cpu")
    export_onnx(model, cfg, tmp_path / "m.onnx", example_size=(SIZE, SIZE))
    record = parity(tmp_path / "m.onnx", config, checkpoint, index, max_images=2)
    assert (
        record["images"] == 2 and record["split_images"] == 4 and record["pixels"] == SIZE * SIZE + 48 * SIZE
    )  # first and last
    assert record["passed"]


SEED_SHAPED = """
_base_ = [{seed!r}]
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(model_name='convnext_atto', pretrained=False),
    decode_head=dict(in_channels=[40, 80, 160, 320], channels=16),
    auxiliary_head=dict(in_channels=160, channels=8))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
"""


def test_seed_shaped_model_exports_with_dynamic_size(run, tmp_path):
    """The seed recipe's architecture (timm ConvNeXt + UPerNet with its PPM, auxiliary head) at toy width."""
    root, config, checkpoint, index, best, train = run
    seed_config = tmp_path / "seed_shaped.py"
    seed_config.write_text(
        SEED_SHAPED.format(seed=str(Path(__file__).resolve().parents[1] / "configs" / "seed_convnext_xl.py"))
    )
    torch.manual_seed(0)
    model, cfg = load_model(seed_config, None, "cpu")  # random weights
    torch.save({"state_dict": model.state_dict(), "meta": {}}, tmp_path / "seed.pth")
    meta = export_onnx(model, cfg, tmp_path / "seed.onnx", example_size=(SIZE, SIZE))
    assert meta["adaptive_pools_replaced"] == 4  # PPM scales 1, 2, 3, 6
    assert len(meta["dynamic_sizes"]) == 3
    assert parity(tmp_path / "seed.onnx", seed_config, tmp_path / "seed.pth", index)["passed"]


def test_bgr_model_gets_rgb_input(run, tmp_path):
    """A model trained on BGR (no bgr_to_rgb) takes RGB too: the graph swaps the channels itself."""
    from mmengine.config import Config

    root, config, checkpoint, index, best, train = run
    cfg = Config.fromfile(str(config))
    cfg.model.data_preprocessor.update(bgr_to_rgb=False, mean=[100.0, 128.0, 160.0], std=[50.0, 64.0, 70.0])
    bgr_config = tmp_path / "bgr_config.py"
    cfg.dump(str(bgr_config))
    model, cfg = load_model(bgr_config, checkpoint, "cpu")
    meta = export_onnx(model, cfg, tmp_path / "bgr.onnx", example_size=(SIZE, SIZE))
    assert meta["normalisation"]["model_channel_order"] == "BGR"
    record = parity(tmp_path / "bgr.onnx", bgr_config, checkpoint, index)
    assert record["passed"], record


def test_export_refuses_slide_inference(run, tmp_path):
    from mmengine.config import Config

    root, config, checkpoint, index, best, train = run
    model, cfg = load_model(config, checkpoint, "cpu")
    cfg = Config(dict(cfg.to_dict()))
    cfg.model.test_cfg = dict(mode="slide", crop_size=(32, 32), stride=(16, 16))
    with pytest.raises(ValueError, match="mode='slide'"):
        export_onnx(model, cfg, tmp_path / "slide.onnx", example_size=(SIZE, SIZE))
    assert not Path(tmp_path / "slide.onnx").exists()

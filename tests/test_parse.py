"""`python -m faceparse.parse`: a folder of photos -> label PNGs and overlays, with face-aware TTA."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mmcv.ops")
pytest.importorskip("onnxruntime")

from faceparse.export import export_onnx  # noqa: E402
from faceparse.inference import load_model, predict  # noqa: E402
from faceparse.labels import SWAP  # noqa: E402
from faceparse.parse import OnnxBackend, Parser, load_backend, main, read_image  # noqa: E402
from faceparse.records import split_files  # noqa: E402

from _tiny_segmentor import SIZE, write_checkpoint, write_config, write_index, write_split  # noqa: E402

TTA = {"scales": [0.75, 1.0, 1.25], "flip": True}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model as config + checkpoint, as best.json/train.json, and as an ONNX export."""
    root = tmp_path_factory.mktemp("parse")
    config = write_config(root / "config.py")
    checkpoint = write_checkpoint(root / "iter_10.pth")
    (root / "best.json").write_text(json.dumps({"checkpoint": str(checkpoint), "iter": 10, "mIoU": None}))
    (root / "train.json").write_text(json.dumps({"work_dir": str(root), "config": str(config),
                                                 "checkpoints": [str(checkpoint)], "max_iters": 10}))
    model, cfg = load_model(config, checkpoint, "cpu")
    onnx_path = root / "tiny.onnx"
    export_onnx(model, cfg, onnx_path, example_size=(SIZE, SIZE), tta=TTA)
    index = write_index(root, {"test": write_split(root, "test", 4, with_masks=False, odd_size=True)})
    return root, config, checkpoint, onnx_path, index


def _photos(folder, rng) -> dict[str, tuple[int, int]]:
    """Three photos (one PNG, one not square), a corrupt JPEG and a text file; {name: (h, w)}."""
    folder.mkdir()
    sizes = {"a.jpg": (SIZE, SIZE), "b.JPG": (80, 56), "c.png": (48, 100)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / name, format="PNG" if name.endswith(".png") else "JPEG")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (folder / "notes.txt").write_text("not an image")
    return sizes


def test_folder_with_an_unreadable_file(tiny, tmp_path, capsys):
    root, config, checkpoint, onnx_path, index = tiny
    sizes = _photos(tmp_path / "in", np.random.default_rng(0))
    out = tmp_path / "out"
    status = main([str(tmp_path / "in"), str(out), "--model", str(onnx_path), "--threads", "1"])
    assert status == 1
    for name, (h, w) in sizes.items():
        stem = name.rsplit(".", 1)[0]
        labels = Image.open(out / f"{stem}.png")
        assert labels.mode == "L" and labels.size == (w, h)
        assert np.asarray(labels).max() < 19
        assert Image.open(out / f"{stem}_overlay.jpg").size == (w, h)
    assert not (out / "broken.png").exists() and not (out / "broken_overlay.jpg").exists()
    summary = json.loads((out / "parse.json").read_text())
    assert summary["images"] == 4 and summary["parsed"] == 3 and summary["failed"] == 1
    assert list(summary["errors"]) == ["broken.jpg"] and "not a readable image" in summary["errors"]["broken.jpg"]
    assert summary["skipped_not_images"] == ["notes.txt"]
    assert summary["tta"] == TTA  # the TTA recorded in the ONNX model at export
    err = capsys.readouterr().err
    assert "3 of 4 images" in err and "1 failed" in err and str(tmp_path / "in" / "broken.jpg") in err


def test_cli_runs_as_a_module(tiny, tmp_path):
    """`python -m faceparse.parse` with a run's best.json; --scales/--no-flip override the TTA; exit 0."""
    root, *_ = tiny
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(folder / "grey.jpg")
    proc = subprocess.run([sys.executable, "-m", "faceparse.parse", str(folder), str(tmp_path / "out"),
                           "--model", str(root / "best.json"), "--scales", "1.0", "--no-flip", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 images" in proc.stderr
    assert json.loads((tmp_path / "out" / "parse.json").read_text())["tta"] == {"scales": [1.0], "flip": False}
    bad = subprocess.run([sys.executable, "-m", "faceparse.parse", str(folder), str(tmp_path / "o2"),
                          "--model", str(root / "iter_10.pth")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "needs --config" in bad.stderr


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_tta_matches_faceparse_inference(tiny, tmp_path, kind):
    """Multi-scale + face-aware flip TTA of the CLI predicts what faceparse.inference.predict does."""
    root, config, checkpoint, onnx_path, index = tiny
    pred_dir = tmp_path / "pred"
    predict(config, checkpoint, index, pred_dir=pred_dir, scales=TTA["scales"], flip=TTA["flip"], batch_size=2,
            threads=1, device="cpu")
    backend = load_backend(onnx_path if kind == "onnx" else root / "best.json", threads=1)
    parser = Parser(backend, TTA["scales"], TTA["flip"])
    files = split_files(index, "test")
    agree = total = 0
    for name, image in zip(files.names, files.images):
        ours = parser.parse(read_image(image))
        ref = np.asarray(Image.open(pred_dir / f"{name}.png"))
        assert ours.shape == ref.shape
        agree += int((ours == ref).sum())
        total += ref.size
    assert agree / total >= 0.999, f"{kind}: {agree}/{total} pixels agree"


class _PhotoSideBackend:
    """A fake face model that labels by image side, as photos show faces: the person's right eye (5)
    on the image's left, the left eye (4) on the image's right - also in a mirrored input."""

    resize = {"scale": None, "keep_ratio": True}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, _, h, w = batch.shape
        logits = np.zeros((n, 19, h, w), np.float32)
        logits[:, 5, :, : w // 2] = 10
        logits[:, 4, :, w // 2:] = 10
        return logits


def test_flip_swaps_left_and_right_channels():
    """The mirrored view, un-mirrored, has the right eye where the left one was: swapping the
    channels makes it agree with the plain view (plain averaging would make every pixel a 50:50 tie)."""
    image = np.zeros((8, 8, 3), np.uint8)
    plain = Parser(_PhotoSideBackend(), [1.0], flip=False).probabilities(image)
    both = Parser(_PhotoSideBackend(), [1.0], flip=True).probabilities(image)
    np.testing.assert_allclose(both, plain, atol=1e-6)
    assert both.max(axis=0).min() > 0.99
    assert (both.argmax(0)[:, :4] == 5).all() and (both.argmax(0)[:, 4:] == 4).all()
    assert SWAP[4] == 5 and SWAP[5] == 4


def test_onnx_without_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["logits"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ValueError, match=r"plain.onnx: no 'faceparse' metadata"):
        OnnxBackend(path)

"""`python -m faceparse.predict.parse`: a folder of photos -> label PNGs and overlays, with face-aware TTA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mmcv.ops")
pytest.importorskip("onnxruntime")

import faceparse.predict.parse as parse_module  # noqa: E402
import faceparse.predict.photo_parser as photo_parser  # noqa: E402
from _tiny_segmentor import SIZE, write_checkpoint, write_config, write_index, write_split  # noqa: E402
from faceparse.labels import NUM_CLASSES, SWAP  # noqa: E402
from faceparse.predict.export import export_onnx  # noqa: E402
from faceparse.predict.models import Member, load_model  # noqa: E402
from faceparse.predict.parse import main  # noqa: E402
from faceparse.predict.photo_parser import ModelError, OnnxBackend, Parser, load_backend, read_image  # noqa: E402
from faceparse.predict.steps import predict  # noqa: E402
from faceparse.records import split_files  # noqa: E402

TTA = {"scales": [0.75, 1.0, 1.25], "flip": True}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model as config + checkpoint, as best.json/train.json, and as an ONNX export."""
    root = tmp_path_factory.mktemp("parse")
    config = write_config(root / "config.py")
    checkpoint = write_checkpoint(root / "iter_10.pth")
    (root / "best.json").write_text(json.dumps({"checkpoint": str(checkpoint), "iter": 10, "mIoU": None}))
    (root / "train.json").write_text(
        json.dumps({"work_dir": str(root), "config": str(config), "checkpoints": [str(checkpoint)], "max_iters": 10})
    )
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
            folder / name, format="PNG" if name.endswith(".png") else "JPEG"
        )
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
    """`python -m faceparse.predict.parse` with a run's best.json; --scales/--no-flip override the TTA; exit 0."""
    root, *_ = tiny
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(folder / "grey.jpg")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceparse.predict.parse",
            str(folder),
            str(tmp_path / "out"),
            "--model",
            str(root / "best.json"),
            "--scales",
            "1.0",
            "--no-flip",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 images" in proc.stderr
    assert json.loads((tmp_path / "out" / "parse.json").read_text())["tta"] == {"scales": [1.0], "flip": False}
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceparse.predict.parse",
            str(folder),
            str(tmp_path / "o2"),
            "--model",
            str(root / "iter_10.pth"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "needs --config" in bad.stderr


@pytest.mark.parametrize("kind,strip_rows", [("checkpoint", None), ("onnx", None), ("onnx", 3)])
def test_tta_matches_faceparse_inference(tiny, tmp_path, monkeypatch, kind, strip_rows):
    """Multi-scale + face-aware flip TTA of the CLI predicts what faceparse.predict.steps.predict does,
    also when the photo is resized back in many row strips (strip_rows rows each)."""
    if strip_rows:
        monkeypatch.setattr(photo_parser, "STRIP_VALUES", NUM_CLASSES * SIZE * strip_rows)
    root, config, checkpoint, onnx_path, index = tiny
    pred_dir = tmp_path / "pred"
    predict(
        [Member("m", str(config), str(checkpoint))],
        index,
        pred_dir=pred_dir,
        scales=TTA["scales"],
        flip=TTA["flip"],
        batch_size=2,
        threads=1,
        device="cpu",
    )
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
        logits[:, 4, :, w // 2 :] = 10
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

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match=r"plain.onnx: no 'faceparse' metadata"):
        OnnxBackend(path)


# ---------------------------------------------------------------------------
# The output folder, strict decoding, the checkpoint's statistics, memory, unusable inputs, speed


def _photo(path, h: int = SIZE, w: int = SIZE, seed: int = 0, **save):
    """A random photo (format from the suffix) at ``path``."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, **save)
    return path


def _cli(capsys, *args) -> tuple[int, str]:
    """``main`` on one thread: (exit status, stderr)."""
    status = main([*map(str, args), "--threads", "1"])
    return status, capsys.readouterr().err


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_output_folder_may_not_be_the_input_folder(tiny, tmp_path, capsys):
    """The input folder as output (also through a symlink), or an output folder holding a (symlinked)
    photo, is refused with one line and exit 2; nothing is written: face.png stays the photo."""
    onnx_path = tiny[3]
    photos = tmp_path / "photos"
    photos.mkdir()
    original = _photo(photos / "face.png").read_bytes()
    (tmp_path / "link").symlink_to(photos)
    for out in (photos, tmp_path / "link"):
        status, err = _cli(capsys, photos, out, "--model", onnx_path)
        (line,) = _error_lines(err)
        assert status == 2 and "is the input folder" in line
        assert os.listdir(photos) == ["face.png"] and (photos / "face.png").read_bytes() == original
    out = tmp_path / "out"
    out.mkdir()
    _photo(out / "b.png", seed=1)
    (photos / "b.png").symlink_to(out / "b.png")
    status, err = _cli(capsys, photos, out, "--model", onnx_path)
    (line,) = _error_lines(err)
    assert status == 2 and "holds input photos (b.png" in line and os.listdir(out) == ["b.png"]


def test_rerun_replaces_only_earlier_outputs_atomically(tiny, tmp_path, capsys):
    """A second run replaces the first run's outputs (new files, not written through a hard link),
    names what it replaced and what else the folder holds, and refuses to replace a file no parse
    run wrote; an earlier output it did not rewrite stays known as parse's."""
    onnx_path = tiny[3]
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    _photo(photos / "a.jpg")
    _photo(photos / "c.png", seed=1)
    assert _cli(capsys, photos, out, "--model", onnx_path)[0] == 0
    os.link(out / "a.png", tmp_path / "kept.png")  # an in-place write would change this file too
    (out / "mine.txt").write_text("the user's")
    (photos / "c.png").unlink()
    status, err = _cli(capsys, photos, out, "--model", onnx_path)
    assert status == 0 and "already holds 5 file(s)" in err
    assert os.stat(out / "a.png").st_ino != os.stat(tmp_path / "kept.png").st_ino
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    summary = json.loads((out / "parse.json").read_text())
    assert summary["written"] == summary["replaced"] == ["a.png", "a_overlay.jpg"]
    assert summary["earlier_outputs_left"] == ["c.png", "c_overlay.jpg"] and summary["other_files"] == ["mine.txt"]
    assert summary["earlier_run"] is True and "c.png" in summary["outputs"]
    assert "2 file(s) in" in err and "a.png, a_overlay.jpg" in err and "mine.txt" in err
    user_file = _photo(out / "d.png", seed=2).read_bytes()
    _photo(photos / "d.jpg", seed=3)
    status, err = _cli(capsys, photos, out, "--model", onnx_path)
    (line,) = _error_lines(err)
    assert status == 2 and "d.png" in line and "no earlier parse run wrote" in line
    assert (out / "d.png").read_bytes() == user_file and (out / "mine.txt").read_text() == "the user's"
    (photos / "d.jpg").unlink()
    _photo(photos / "c.png", seed=1)
    assert _cli(capsys, photos, out, "--model", onnx_path)[0] == 0
    assert "c.png" in json.loads((out / "parse.json").read_text())["replaced"]


def test_truncated_jpeg_is_an_error(tiny, tmp_path, capsys):
    """A JPEG cut in half (which OpenCV decodes, grey-filled) is an error for that file, exit 1."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    data = _photo(photos / "whole.jpg", quality=95).read_bytes()
    (photos / "half.jpg").write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(photos / "half.jpg")) is not None  # the lenient decoder's grey fill
    status, err = _cli(capsys, photos, out, "--model", tiny[3])
    summary = json.loads((out / "parse.json").read_text())
    assert status == 1 and summary["parsed"] == 1 and list(summary["errors"]) == ["half.jpg"]
    assert "corrupt JPEG data: Premature end of JPEG file" in summary["errors"]["half.jpg"]
    assert not (out / "half.png").exists() and "half.jpg" in err


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_as_opencv(tmp_path, orientation):
    """The strict JPEG decoder turns the photo by its EXIF orientation as cv2.imread does (mmseg's
    loader, cv2.imdecode, too); grey and CMYK JPEGs read as OpenCV reads them."""
    smooth = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (48, 32, 3), dtype=np.uint8), (5, 5), 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    Image.fromarray(smooth).save(path, exif=exif, quality=90)
    np.testing.assert_array_equal(read_image(path), cv2.imread(str(path)))
    for mode in ("L", "CMYK"):
        Image.fromarray(smooth).convert(mode).save(path, exif=exif)
        np.testing.assert_array_equal(read_image(path), cv2.imread(str(path)))


def _config_text(config, mean: list[float], std: list[float]) -> str:
    """The tiny config with another mean/std, as mmengine writes a resolved config."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    cfg.model.data_preprocessor.mean, cfg.model.data_preprocessor.std = mean, std
    return cfg.pretty_text


def test_checkpoint_is_normalised_with_its_runs_statistics(tiny, tmp_path, capsys):
    """A checkpoint with --config is normalised with its run's mean/std: the config text in its meta
    (mmengine's Runner stores it), else the config.py beside it, else --stats; without any it is
    refused (the config's defaults are not the data's statistics). stderr says which."""
    import torch

    root, config, checkpoint, onnx_path, _ = tiny
    weights = torch.load(checkpoint, weights_only=True)

    def saved(folder, meta: dict):
        folder.mkdir()
        torch.save({**weights, "meta": meta}, folder / "iter_10.pth")
        return folder / "iter_10.pth"

    in_meta = saved(tmp_path / "run_a", {"cfg": _config_text(config, [100.0, 110.0, 120.0], [50.0, 60.0, 70.0])})
    backend = load_backend(in_meta, config, threads=1)
    assert backend.module.mean.flatten().tolist() == [100, 110, 120]
    assert backend.module.std.flatten().tolist() == [50, 60, 70] and "(meta cfg)" in backend.normalisation
    beside = saved(tmp_path / "run_b", {})
    (tmp_path / "run_b" / "config.py").write_text(_config_text(config, [90.0] * 3, [40.0] * 3))
    backend = load_backend(beside, config, threads=1)
    assert backend.module.mean.flatten().tolist() == [90] * 3 and "beside the checkpoint" in backend.normalisation
    bare = saved(tmp_path / "bare", {})
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    status, err = _cli(capsys, photos, tmp_path / "out", "--model", bare, "--config", config)
    (line,) = _error_lines(err)
    assert status == 2 and "--stats" in line and str(bare) in line
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"mean": [80, 81, 82], "std": [30, 31, 32], "images": 4}))
    status, err = _cli(capsys, photos, tmp_path / "out", "--model", bare, "--config", config, "--stats", stats)
    assert status == 0 and f"mean [80.000, 81.000, 82.000], std [30.000, 31.000, 32.000] from --stats {stats}" in err


class _FixedSizeBackend:
    """A fake model with a 64-pixel input: random class scores, the same for the same input shape."""

    resize = {"scale": [SIZE, SIZE], "keep_ratio": True}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, _, h, w = batch.shape
        return np.random.default_rng(w).standard_normal((n, NUM_CLASSES, h, w), dtype=np.float32)


def test_parse_holds_no_photo_sized_class_scores():
    """The class scores are resized back in row strips: parsing a 750x1000 photo with 2 scales and
    flip allocates less than half of one photo-sized score array (19 floats a pixel, 57 MB), and
    the labels are the argmax of the whole photo's mean probabilities."""
    h, w = 750, 1000
    bgr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    parser = Parser(_FixedSizeBackend(), [1.0, 0.5], flip=True)
    tracemalloc.start()
    try:
        labels = parser.parse(bgr)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < NUM_CLASSES * h * w * 4 / 2, f"peak {peak / 2**20:.0f} MiB"
    np.testing.assert_array_equal(labels, parser.probabilities(bgr).argmax(axis=0))


def test_unusable_model_files_are_one_line_errors(tiny, tmp_path, capsys):
    """A truncated .onnx, or a truncated .pth with --config, is one line on stderr and exit 2."""
    root, config, checkpoint, onnx_path, _ = tiny
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    (tmp_path / "cut").mkdir()
    for model, source, extra, expected in (
        (tmp_path / "cut.onnx", onnx_path, [], "not a usable ONNX model"),
        (tmp_path / "cut" / "iter_10.pth", checkpoint, ["--config", config], "not a usable checkpoint"),
    ):
        data = source.read_bytes()
        model.write_bytes(data[: len(data) // 2])
        status, err = _cli(capsys, photos, tmp_path / "out", "--model", model, *extra)
        (line,) = _error_lines(err)
        assert status == 2 and expected in line and str(model) in line


def test_thin_photo_and_dangling_symlink_are_reported(tiny, tmp_path, capsys):
    """A 2000x3 photo (no pixel wide at the model's size) and a dangling symlink are errors for those
    files, said plainly; the other photo is written, exit 1."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    _photo(photos / "ok.png")
    _photo(photos / "thin.png", h=2000, w=3)
    (photos / "gone.jpg").symlink_to(tmp_path / "moved" / "gone.jpg")
    status, err = _cli(capsys, photos, out, "--model", tiny[3])
    summary = json.loads((out / "parse.json").read_text())
    assert status == 1 and summary["parsed"] == 1 and sorted(summary["errors"]) == ["gone.jpg", "thin.png"]
    assert "a 2000x3 (HxW) photo is too thin for the model" in summary["errors"]["thin.png"]
    assert (
        f"a dangling symlink (its target {tmp_path / 'moved' / 'gone.jpg'} does not exist)"
        in summary["errors"]["gone.jpg"]
    )
    assert (out / "ok.png").exists() and "too thin" in err and "dangling symlink" in err


class _CachedBackend:
    """A fake model answering instantly with fixed class scores (the model's 256-pixel output)."""

    resize = {"scale": [256, 256], "keep_ratio": True}

    def __init__(self):
        self.logits = np.random.default_rng(0).standard_normal((1, NUM_CLASSES, 256, 256), dtype=np.float32) * 3

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.logits


def _full_resolution_labels(logits: np.ndarray, h: int, w: int) -> np.ndarray:
    """What parse did before: the 19-channel logits resized to the photo by cv2, softmax, argmax."""
    scores = cv2.resize(np.ascontiguousarray(logits.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR)
    e = np.exp(scores - scores.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).argmax(axis=2).astype(np.uint8)


def test_single_view_labels_match_full_resolution_softmax():
    """One view is labelled from single-channel planes resized in strips, without a softmax (the
    speed-up bench/bench_onnx.py measures): the labels are those of resizing all 19 channels at
    once and softmaxing them."""
    backend = _CachedBackend()
    parser = Parser(backend, [1.0], flip=False)
    bgr = np.random.default_rng(1).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    labels, reference = parser.parse(bgr), _full_resolution_labels(backend.logits[0], 512, 512)
    assert (labels == reference).mean() > 0.9999


@pytest.mark.parametrize("alpha", [0.5, 0.3])
def test_overlay_blends_as_colourise(monkeypatch, alpha):
    """The CLI's overlay (table lookups, row strips) is faceparse.deliver.colourise.overlay's, value for value."""
    from faceparse.deliver.colourise import overlay

    monkeypatch.setattr(photo_parser, "STRIP_VALUES", 257 * 7)  # strips of 7 rows
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (300, 257, 3), dtype=np.uint8)
    mask = rng.integers(0, NUM_CLASSES, (300, 257), dtype=np.uint8)
    got = parse_module._overlay(bgr, mask, alpha)
    np.testing.assert_array_equal(np.asarray(got), overlay(bgr[..., ::-1], mask, alpha))

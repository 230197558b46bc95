"""Faces mode of `faceparse-parse`: the framing measured from masks, alignment, paste back, the CLI.

The scenes are generated faces pasted at known scales, rotations and places
(:mod:`faceparse.data.synthetic.scenes`), so every pixel's truth and every face's landmarks are
known. The composites test's model is fitted in closed form on 40 training faces (no training run
whose outcome could vary): a class's log-frequency at each place of the framing plus the
log-likelihood of the pixel's colour under that class - like any model trained at one framing, it
parses a face well only where the framing puts it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
from PIL import Image

from faceparse.data.framing import measure_framing
from faceparse.data.png import write_label_png
from faceparse.data.synthetic.faces import generate_face
from faceparse.data.synthetic.scenes import Placement, compose, placement_matrix, random_scene
from faceparse.labels import NUM_CLASSES
from faceparse.predict.faces import Face, FaceParser, Framing, LandmarksError, read_landmarks, similarity
from faceparse.predict.metrics import confusion_matrix, scores
from faceparse.predict.photo_parser import Parser

S = 256  # the faces' (and the framing's) size
PORTRAIT = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
# Grace Hopper's eye centres in the portrait (continuous pixels), marked by hand on zoomed crops
# and checked against the dark pixels' centroid around each eye (bench/bench_detectors.py)
PORTRAIT_EYES = {"r_eye": (223.5, 189.5), "l_eye": (304.5, 186.5)}


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """40 training faces' framing record and the closed-form model of them."""
    samples = [generate_face(S, 0, "train", i) for i in range(40)]
    folder = tmp_path_factory.mktemp("masks")
    for i, (_, mask) in enumerate(samples):
        write_label_png(folder / f"{i}.png", mask)
    record = measure_framing(sorted(folder.iterdir()), flip=False)  # the model sees no mirrored faces
    return record, PlaceAndColourModel(samples)


class PlaceAndColourModel:
    """Class scores = log p(class | place in the framing) + log p(colour | class), 8 levels a channel."""

    resize = {"scale": [S, S], "keep_ratio": True}
    LEVELS = 8

    def __init__(self, samples):
        places = np.zeros((NUM_CLASSES, S * S))
        colours = np.ones((NUM_CLASSES, self.LEVELS**3))
        for jpeg, mask in samples:
            rgb = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].transpose(2, 0, 1)
            np.add.at(places, (mask.ravel(), np.arange(S * S)), 1)
            np.add.at(colours, (mask.ravel(), self._codes(rgb).ravel()), 1)
        self.places = np.log(places / len(samples) + 1e-3).reshape(NUM_CLASSES, S, S).transpose(1, 2, 0)
        self.colours = np.log(colours / colours.sum(axis=1, keepdims=True))

    def _codes(self, rgb: np.ndarray) -> np.ndarray:
        q = rgb.astype(np.int64) * self.LEVELS // 256
        return (q[0] * self.LEVELS + q[1]) * self.LEVELS + q[2]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, _, h, w = batch.shape
        places = cv2.resize(self.places.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
        return np.stack([places + self.colours[:, self._codes(x)] for x in batch]).astype(np.float32)


class PixelModel:
    """A model that looks at each pixel alone (a fixed linear map of its colour): any transform
    that moves pixels moves its labels the same way."""

    resize = {"scale": [S, S], "keep_ratio": True}

    def __init__(self):
        self.weights = np.random.default_rng(0).normal(size=(NUM_CLASSES, 3)).astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.einsum("kc,nchw->nkhw", self.weights, batch / 255.0).astype(np.float32)


def _scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """mIoU and mF1 as evaluate scores a split (:mod:`faceparse.predict.metrics`)."""
    result = scores(confusion_matrix(truth, pred))
    return result["mIoU"], result["mF1"]


def _faces(scene) -> list[Face]:
    return [Face({k: tuple(v) for k, v in lm.items()}, source="test") for lm in scene.landmarks]


# ---------------------------------------------------------------------------- the framing


def test_framing_is_the_class_centroids_mean_and_flip_makes_it_symmetric(tmp_path):
    a = np.zeros((100, 200), np.uint8)
    a[10:20, 20:40] = 5  # r_eye: centre (30, 15), continuous (pixel i spans [i, i + 1))
    a[10:20, 100:120] = 4  # l_eye: (110, 15)
    a[40:50, 60:80] = 2  # nose: (70, 45)
    a[60:62, 50:90] = 11  # u_lip, and l_lip below: mouth (70, 62)
    a[62:64, 50:90] = 12
    write_label_png(tmp_path / "a.png", a)
    record = measure_framing([tmp_path / "a.png"], flip=False)
    assert record["size"] == [200, 100]
    expect = {"r_eye": (30, 15), "l_eye": (110, 15), "nose": (70, 45), "mouth": (70, 62)}
    for name, (x, y) in expect.items():
        assert record["points"][name] == pytest.approx([x / 200, y / 100])
    flipped = measure_framing([tmp_path / "a.png"], flip=True)
    r, left = flipped["points"]["r_eye"], flipped["points"]["l_eye"]
    assert r[0] == pytest.approx(1 - left[0]) and r[1] == pytest.approx(left[1])
    assert r[0] == pytest.approx(((30 + 200 - 110) / 2) / 200)  # its own and the mirrored l_eye
    assert flipped["counted"] == {"r_eye": 2, "l_eye": 2, "nose": 2, "mouth": 2}
    write_label_png(tmp_path / "b.png", np.ones((8, 8), np.uint8))
    with pytest.raises(ValueError, match="no training mask holds r_eye, l_eye, nose, mouth"):
        measure_framing([tmp_path / "b.png"], flip=True)


def test_similarity_recovers_a_transform():
    m = placement_matrix(S, Placement((300.0, 220.0), 1.7, 23.0))
    src = np.array([[10.0, 20.0], [200.0, 30.0], [120.0, 230.0]])
    assert np.allclose(similarity(src, np.c_[src, np.ones(3)] @ m.T), m)


# ---------------------------------------------------------------------------- composites


def test_one_face_at_the_training_framing_parses_as_the_crop(training):
    """A face pasted unscaled and unturned, with its landmarks at the framing's: faces mode gives
    the crop's own labels there and background everywhere else."""
    record, _ = training
    framing = Framing.from_record(record, "test")
    jpeg, mask = generate_face(S, 0, "val", 3)
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    parser = Parser(PixelModel(), [0.75, 1.0, 1.25], True)
    placement = Placement((171.0 + S / 2, 95.0 + S / 2))
    scene = compose([(crop, mask)], [placement], (640, 480))
    m = placement_matrix(S, placement)
    at_framing = {name: tuple(m @ (*framing.points[name], 1.0)) for name in framing.points}
    labels, records = FaceParser(parser, framing).parse(scene.image, [Face(at_framing, source="test")])
    assert np.allclose(records[0]["transform"]["photo_to_crop"], [[1, 0, -171], [0, 1, -95]], atol=1e-6)
    inside = labels[95 : 95 + S, 171 : 171 + S]
    assert (inside == parser.parse(crop)).mean() >= 0.995
    outside = labels.copy()
    outside[95 : 95 + S, 171 : 171 + S] = 0
    assert not outside.any()


def test_faces_mode_beats_the_whole_photo_resize_on_composites(training):
    """Scenes of four faces each at 0.6-1.2x and up to 30 degrees: faces mode (the generator's
    landmarks) against the whole-photo resize, scored over every pixel of the scenes."""
    record, prior = training
    parser = Parser(prior, [1.0], False)
    faces_mode = FaceParser(parser, Framing.from_record(record, "test"))
    pred_faces, pred_whole, truth = [], [], []
    for seed in range(3):
        scene = random_scene(seed, (800, 600), 4, face_size=S, scales=(0.6, 1.2))
        pred_faces.append(faces_mode.parse(scene.image, _faces(scene))[0])
        pred_whole.append(parser.parse(scene.image))
        truth.append(scene.mask)
    faces_iou, faces_f1 = _scores(np.stack(pred_faces), np.stack(truth))
    whole_iou, whole_f1 = _scores(np.stack(pred_whole), np.stack(truth))
    assert faces_iou > 4 * whole_iou and faces_iou > whole_iou + 20, (faces_iou, whole_iou)
    assert faces_f1 > 4 * whole_f1 and faces_f1 > whole_f1 + 20, (faces_f1, whole_f1)


def test_overlapping_faces_keep_the_more_probable_class_and_size_options(training):
    record, prior = training
    parser = Parser(prior, [1.0], False)
    framing = Framing.from_record(record, "test")
    scene = random_scene(4, (700, 400), 2, face_size=S, scales=(0.9, 1.0), angles=(0, 0))
    faces = _faces(scene)
    both, records = FaceParser(parser, framing).parse(scene.image, faces)
    singles = [FaceParser(parser, framing).parse(scene.image, [f])[0] for f in faces]
    # where only one face gives a class, it is that face's; nowhere a class that no face gave
    assert np.array_equal(both != 0, (singles[0] != 0) | (singles[1] != 0))
    only = (singles[0] != 0) & (singles[1] == 0)
    assert np.array_equal(both[only], singles[0][only])
    sizes = [r["size"] for r in records]
    largest, records = FaceParser(parser, framing, largest=True).parse(scene.image, faces)
    assert [r["parsed"] for r in records] == [s == max(sizes) for s in sizes]
    assert np.array_equal(largest, singles[int(np.argmax(sizes))])
    none, records = FaceParser(parser, framing, min_size=max(sizes) + 1).parse(scene.image, faces)
    assert not none.any() and all("--min-face" in r["skipped"] for r in records)


# ---------------------------------------------------------------------------- landmarks files


def test_landmarks_file_errors_name_the_face(tmp_path):
    path = tmp_path / "lm.json"
    good = {"r_eye": [1, 2], "l_eye": [3, 4], "mouth": [2, 8]}
    path.write_text(json.dumps({"a.jpg": [good, {**good, "nose": [2, 5]}], "b.jpg": []}))
    faces = read_landmarks(path)
    assert [len(v) for v in faces.values()] == [2, 0] and faces["a.jpg"][1].landmarks["nose"] == (2.0, 5.0)
    for data, message in (
        ({"a.jpg": [{"r_eye": [1, 2], "l_eye": [3, 4]}]}, "a.jpg face 0: missing mouth"),
        ({"a.jpg": [{**good, "chin": [1, 1]}]}, "unknown chin"),
        ({"a.jpg": [{**good, "mouth": [1, "x"]}]}, "a.jpg face 0 mouth: expected"),
        ({"a.jpg": {"r_eye": [1, 2]}}, "a.jpg: expected a list of faces"),
        ([1, 2], "expected an object"),
    ):
        path.write_text(json.dumps(data))
        with pytest.raises(LandmarksError, match=message):
            read_landmarks(path)


# ---------------------------------------------------------------------------- the detector


def test_the_detector_finds_the_portraits_face_offline():
    from faceparse.predict.faces import FaceDetector
    from faceparse.predict.photo_parser import read_image

    detector = FaceDetector()
    try:
        faces = detector.detect(read_image(PORTRAIT))
    finally:
        detector.close()
    assert len(faces) == 1
    face = faces[0]
    distance = np.hypot(*np.subtract(PORTRAIT_EYES["r_eye"], PORTRAIT_EYES["l_eye"]))
    for name, truth in PORTRAIT_EYES.items():
        assert np.hypot(*np.subtract(face.landmarks[name], truth)) < 0.15 * distance, (name, face.landmarks)
    x0, y0, x1, y1 = face.box
    assert x0 < 223 < 304 < x1 and y0 < 186 < face.landmarks["mouth"][1] < y1 and face.score > 0.5


def test_the_detector_searches_a_large_photo_in_tiles():
    """Faces a few percent of a 12 MP photo's width: the whole-photo pass alone misses some."""
    from faceparse.predict.faces import FaceDetector

    scene = random_scene(1, (4000, 3000), 6, scales=(1.0, 2.5))
    detector = FaceDetector()
    try:
        faces = detector.detect(scene.image)
        whole = detector._detect(np.ascontiguousarray(scene.image[..., ::-1]), 0, 0)
    finally:
        detector.close()
    truth = [np.mean([lm["r_eye"], lm["l_eye"]], axis=0) for lm in scene.landmarks]
    centres = [np.mean([f.landmarks["r_eye"], f.landmarks["l_eye"]], axis=0) for f in faces]
    matches = [sum(np.hypot(*(c - t)) < 50 for c in centres) for t in truth]
    assert max(matches) == 1  # one detection per face: the tiles' duplicates are merged
    assert sum(matches) > len(whole)


# ---------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory, training):
    """The tiny segmentor exported to ONNX with the training framing in its metadata."""
    pytest.importorskip("mmcv.ops")
    from _tiny_segmentor import write_checkpoint, write_config
    from faceparse.predict.export import export_onnx
    from faceparse.predict.models import load_model

    root = tmp_path_factory.mktemp("faces_onnx")
    model, cfg = load_model(write_config(root / "config.py"), write_checkpoint(root / "iter_10.pth"), "cpu")
    export_onnx(
        model, cfg, root / "tiny.onnx", example_size=(64, 64), tta={"scales": [1.0], "flip": True}, framing=training[0]
    )
    return root


def test_faces_mode_command(onnx_model, training, tmp_path):
    """An ONNX model with its framing: a scene with given landmarks, the portrait through the
    detector, a photo with no face; no torch imported; parse.json lists each face."""
    photos = tmp_path / "in"
    photos.mkdir()
    scene = random_scene(2, (640, 480), 2, face_size=S)
    cv2.imwrite(str(photos / "scene.png"), scene.image)
    (photos / "portrait.jpg").write_bytes(PORTRAIT.read_bytes())
    cv2.imwrite(str(photos / "wall.png"), np.full((300, 400, 3), 90, np.uint8))
    (tmp_path / "lm.json").write_text(json.dumps({"scene.png": scene.landmarks}))
    out = tmp_path / "out"
    code = (
        "import sys; from faceparse.predict.parse import main; "
        f"rc = main([{str(photos)!r}, {str(out)!r}, '--model', {str(onnx_model / 'tiny.onnx')!r}, '--faces', "
        f"'--landmarks', {str(tmp_path / 'lm.json')!r}, '--threads', '1']); "
        "assert 'torch' not in sys.modules and 'mmseg' not in sys.modules; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # 1: a photo had no face
    assert "no face found in 1 photo(s)" in proc.stderr and "wall.png" in proc.stderr
    summary = json.loads((out / "parse.json").read_text())
    assert summary["mode"] == "faces" and summary["no_face"] == ["wall.png"]
    assert summary["framing"] == training[0] and summary["detector"].startswith("MediaPipe")
    assert [r["source"] for r in summary["faces"]["scene.png"]] == ["landmarks file"] * 2
    (portrait,) = summary["faces"]["portrait.jpg"]
    assert portrait["source"] == "detector" and portrait["score"] > 0.5 and portrait["parsed"]
    assert np.asarray(portrait["transform"]["photo_to_crop"]).shape == (2, 3)
    assert not np.asarray(Image.open(out / "wall.png")).any()
    assert Image.open(out / "portrait.png").size == Image.open(PORTRAIT).size


def test_faces_mode_refusals_write_nothing(onnx_model, tmp_path, capsys):
    from faceparse.predict.parse import main

    photos = tmp_path / "in"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((64, 64, 3), 90, np.uint8))
    (tmp_path / "lm.json").write_text(json.dumps({"b.png": []}))
    model = ["--model", str(onnx_model / "tiny.onnx")]
    out = tmp_path / "out"
    assert main([str(photos), str(out), *model, "--landmarks", str(tmp_path / "lm.json")]) == 2
    assert "names photos that are not in" in capsys.readouterr().err and not out.exists()
    assert main([str(photos), str(out), *model, "--largest-face"]) == 2
    assert "--largest-face is for faces mode" in capsys.readouterr().err
    assert main([str(photos), str(out), *model, "--min-face", "40"]) == 2
    assert "--min-face is for faces mode" in capsys.readouterr().err
    assert main([str(photos), str(out), *model, "--faces", "--detector-score", "1.5"]) == 2
    assert "--detector-score must be within 0..1 (got 1.5)" in capsys.readouterr().err and not out.exists()
    checkpoint = ["--model", str(onnx_model / "iter_10.pth"), "--config", str(onnx_model / "config.py")]
    assert main([str(photos), str(out), *checkpoint, "--stats", str(_stats(tmp_path)), "--faces"]) == 2
    assert "no training framing to align faces to" in capsys.readouterr().err and not out.exists()


def _stats(folder: Path) -> Path:
    path = folder / "stats.json"
    path.write_text(json.dumps({"mean": [128.0] * 3, "std": [64.0] * 3}))
    return path


def test_a_face_at_the_training_framing_through_the_command(onnx_model, training, tmp_path):
    """The identity through the command and a real network (the tiny ONNX model): one face at the
    training framing in a larger photo, given by --landmarks, against its crop parsed whole."""
    from faceparse.predict.parse import main

    framing = Framing.from_record(training[0], "test")
    jpeg, mask = generate_face(S, 0, "val", 5)
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    placement = Placement((60.0 + S / 2, 140.0 + S / 2))
    scene = compose([(crop, mask)], [placement], (500, 420), seed=3)
    m = placement_matrix(S, placement)
    (tmp_path / "scene").mkdir()
    (tmp_path / "crop").mkdir()
    cv2.imwrite(str(tmp_path / "scene" / "scene.png"), scene.image)
    cv2.imwrite(str(tmp_path / "crop" / "crop.png"), crop)
    points = {name: list(m @ (*framing.points[name], 1.0)) for name in framing.points}
    (tmp_path / "lm.json").write_text(json.dumps({"scene.png": [points]}))
    model = ["--model", str(onnx_model / "tiny.onnx"), "--threads", "1"]
    assert main([str(tmp_path / "scene"), str(tmp_path / "out"), *model, "--landmarks", str(tmp_path / "lm.json")]) == 0
    assert main([str(tmp_path / "crop"), str(tmp_path / "direct"), *model]) == 0
    labels = np.asarray(Image.open(tmp_path / "out" / "scene.png"))
    direct = np.asarray(Image.open(tmp_path / "direct" / "crop.png"))
    assert (labels[140 : 140 + S, 60 : 60 + S] == direct).mean() >= 0.995
    labels = labels.copy()
    labels[140 : 140 + S, 60 : 60 + S] = 0
    assert not labels.any()


def test_a_runs_best_json_aligns_to_its_projects_framing(onnx_model, training, tmp_path, capsys):
    """A checkpoint holds no framing: a run's best.json takes results/data/framing.json of its
    project, and without one the command says what to pass."""
    from faceparse.predict.parse import main

    run = tmp_path / "results" / "models" / "tiny"
    run.mkdir(parents=True)
    checkpoint, config = onnx_model / "iter_10.pth", onnx_model / "config.py"
    (run / "best.json").write_text(json.dumps({"checkpoint": str(checkpoint), "iter": 10, "mIoU": None}))
    (run / "train.json").write_text(
        json.dumps({"work_dir": str(run), "config": str(config), "checkpoints": [str(checkpoint)], "max_iters": 10})
    )
    photos = tmp_path / "in"
    photos.mkdir()
    scene = random_scene(6, (400, 300), 1, face_size=S)
    cv2.imwrite(str(photos / "a.png"), scene.image)
    (tmp_path / "lm.json").write_text(json.dumps({"a.png": scene.landmarks}))
    args = [
        str(photos),
        str(tmp_path / "out"),
        "--model",
        str(run / "best.json"),
        "--landmarks",
        str(tmp_path / "lm.json"),
    ]
    assert main([*args, "--scales", "1", "--no-flip"]) == 2
    assert "pass --framing results/data/framing.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "results" / "data").mkdir()
    (tmp_path / "results" / "data" / "framing.json").write_text(json.dumps(training[0]))
    assert main([*args, "--scales", "1", "--no-flip"]) == 0
    summary = json.loads((tmp_path / "out" / "parse.json").read_text())
    assert summary["framing"] == training[0] and summary["detector"] is None
    assert [f["parsed"] for f in summary["faces"]["a.png"]] == [True]


def test_landmarks_that_cannot_be_aligned_are_skipped_and_a_misfit_is_reported(training):
    record, model = training
    framing = Framing.from_record(record, "test")
    faces = FaceParser(Parser(model, [1.0], False), framing)
    exact = {name: framing.points[name] for name in ("r_eye", "l_eye", "mouth")}
    wrong_mouth = {**exact, "mouth": (exact["mouth"][0] + 40, exact["mouth"][1])}
    point = {name: (50.0, 50.0) for name in exact}
    photo = np.full((S, S, 3), 128, np.uint8)
    labels, records = faces.parse(photo, [Face(exact), Face(wrong_mouth), Face(point)])
    assert [r["parsed"] for r in records] == [True, True, False]
    assert "less than a pixel apart" in records[2]["skipped"] and records[2]["size"] == 0
    assert records[0]["transform"]["misfit"] < 1e-6 < 0.1 < records[1]["transform"]["misfit"]

"""Face-aware TTA: flipped predictions get their left/right channels swapped before averaging."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mmcv.ops")
import torch  # noqa: E402
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.models.segmentors import EncoderDecoder, SegTTAModel  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

import faceparse.labels  # noqa: E402
import faceparse.mm.tta  # noqa: E402,F401  - registers FaceSegTTAModel
from _tiny_segmentor import SIZE, model_cfg, tiny_test_pipeline  # noqa: E402
from faceparse.labels import CLASSES  # noqa: E402
from faceparse.mm.tta import FaceSegTTAModel, tta_pipeline, tta_settings  # noqa: E402

L_EYE, R_EYE = CLASSES.index("l_eye"), CLASSES.index("r_eye")


@MODELS.register_module(force=True)
class _PositionalEyes(EncoderDecoder):
    """A stand-in for a face model: a bright blob is an eye, named by the side of the image it is on.

    Left half: l_eye with logit 3; right half: r_eye with logit 6 (more confident), background 1.
    Like a real face model it names eyes by where they are, so a mirrored image swaps the names.
    """

    def encode_decode(self, inputs, batch_img_metas):
        n, _, h, w = inputs.shape
        bright = inputs[:, 0] > 0
        left = torch.zeros(h, w, dtype=torch.bool, device=inputs.device)
        left[:, : w // 2] = True
        logits = torch.zeros(n, len(CLASSES), h, w, device=inputs.device)
        logits[:, 0] = 1.0
        logits[:, L_EYE] = torch.where(bright & left, 3.0, -5.0)
        logits[:, R_EYE] = torch.where(bright & ~left, 6.0, -5.0)
        return logits


@pytest.fixture(scope="module")
def fake():
    init_default_scope("mmseg")
    cfg = model_cfg()
    cfg["type"] = "_PositionalEyes"
    return MODELS.build(cfg).eval()


@pytest.fixture
def blob_image(tmp_path):
    """A dark image with one bright blob in the left half."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[20:36, 8:24] = 255
    path = tmp_path / "face.png"
    Image.fromarray(img).save(path)
    return str(path)


def _run(model, image, scales, flip):
    pipeline = Compose(tta_pipeline(tiny_test_pipeline(), scales, flip, with_annotations=False))
    batch = pseudo_collate([pipeline(dict(img_path=image))])
    with torch.inference_mode():
        return model.test_step(batch)[0].pred_sem_seg.data[0]


def test_flip_keeps_left_eye_left(fake, blob_image):
    scales = [0.5, 0.75, 1.0, 1.25, 1.5]
    pred = _run(FaceSegTTAModel(module=fake), blob_image, scales, flip=True)
    assert pred.shape == (SIZE, SIZE)
    assert (pred[24:32, 12:20] == L_EYE).all()
    assert (pred[50:, :] == 0).all() and not (pred == R_EYE).any()
    # naive averaging (mmseg's SegTTAModel) mixes the eyes: the flipped view's confident r_eye wins
    naive = _run(SegTTAModel(module=fake), blob_image, scales, flip=True)
    assert (naive[24:32, 12:20] == R_EYE).all()
    # without flip there is nothing to swap: both agree
    same = _run(FaceSegTTAModel(module=fake), blob_image, scales, flip=False)
    assert (same[24:32, 12:20] == L_EYE).all()


def test_probabilities_are_averaged_after_the_swap(fake, blob_image):
    tta = FaceSegTTAModel(module=fake, keep_probs=True)
    pipeline = Compose(tta_pipeline(tiny_test_pipeline(), [1.0], True, with_annotations=False))
    batch = pseudo_collate([pipeline(dict(img_path=blob_image))])
    with torch.inference_mode():
        out = tta.test_step(batch)[0]
    probs = out.seg_logits.data
    assert probs.shape == (len(CLASSES), SIZE, SIZE)
    torch.testing.assert_close(probs.sum(0), torch.ones(SIZE, SIZE))
    # at the blob: view 1 says l_eye softmax(3 vs 1, -5, 0...), view 2 says (swapped) l_eye softmax(6 vs ...)
    logits1 = torch.zeros(len(CLASSES))
    logits1[0], logits1[L_EYE], logits1[R_EYE] = 1, 3, -5
    logits2 = torch.zeros(len(CLASSES))
    logits2[0], logits2[R_EYE], logits2[L_EYE] = 1, 6, -5
    expected = (logits1.softmax(0) + logits2.softmax(0)[torch.tensor([int(c) for c in faceparse.labels.SWAP])]) / 2
    torch.testing.assert_close(probs[:, 28, 16], expected)
    assert out.metainfo["flip"] is False and out.metainfo["tta_augmentations"] == 2


def test_rejects_wrong_class_count(fake):
    with pytest.raises(ValueError, match="output channels"):
        FaceSegTTAModel(module=fake, swap=[1, 0, 2])
    with pytest.raises(ValueError, match="permutation"):
        FaceSegTTAModel(module=fake, swap=[0] * 19)


def test_registered_and_buildable_from_config(fake):
    tta = MODELS.build(dict(type="FaceSegTTAModel", module=fake))
    assert isinstance(tta, FaceSegTTAModel)
    settings = tta_settings(tiny_test_pipeline(), [0.5, 1.0], True)
    assert settings["tta_model"] == dict(type="FaceSegTTAModel")


def test_pipeline_shape():
    pipe = tta_pipeline(tiny_test_pipeline(), [0.5, 1.0, 1.5], flip=True)
    assert [t["type"] for t in pipe] == ["LoadImageFromFile", "TestTimeAug"]
    resizes, flips, annotations, pack = pipe[1]["transforms"]
    # relative to the test pipeline's fixed scale, like mmseg 0.x img_ratios
    assert [r["scale"] for r in resizes] == [(32, 32), (64, 64), (96, 96)]
    assert all(r["keep_ratio"] for r in resizes)
    assert [f["prob"] for f in flips] == [0.0, 1.0]
    assert annotations[0]["type"] == "LoadAnnotations" and pack[0]["type"] == "PackSegInputs"
    no_flip = tta_pipeline(tiny_test_pipeline(), [1.0], flip=False, with_annotations=False)
    assert len(no_flip[1]["transforms"]) == 3 and len(no_flip[1]["transforms"][1]) == 1
    # no Resize in the test pipeline: scale factors of the image size
    factor = tta_pipeline([dict(type="LoadImageFromFile"), dict(type="PackSegInputs")], [0.75], False)
    assert factor[1]["transforms"][0] == [dict(type="Resize", scale_factor=0.75, keep_ratio=True)]
    with pytest.raises(ValueError):
        tta_pipeline(tiny_test_pipeline(), [], True)


def test_single_scale_no_flip_equals_plain_model(tmp_path):
    """TTA with one view is the plain prediction (same pipeline, same model)."""
    init_default_scope("mmseg")
    torch.manual_seed(0)
    model = MODELS.build(model_cfg()).eval()
    img = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    plain_pipe = Compose([t for t in tiny_test_pipeline() if t["type"] != "LoadAnnotations"])
    with torch.inference_mode():
        plain = model.test_step(pseudo_collate([plain_pipe(dict(img_path=str(path)))]))[0].pred_sem_seg.data[0]
    tta = _run(FaceSegTTAModel(module=model), str(path), [1.0], flip=False)
    torch.testing.assert_close(plain, tta)

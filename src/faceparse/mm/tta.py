"""Face-aware test-time augmentation: multi-scale + horizontal flip with left/right swap.

mmsegmentation's ``SegTTAModel`` averages the softmax of every augmented
prediction after ``EncoderDecoder.postprocess_result`` has flipped it back and
resized it to the original image size. For faces that is wrong for the
left/right classes: what the network calls ``l_eye`` in a mirrored image is the
person's right eye, so a flipped prediction's class-score channels must be
permuted with :data:`faceparse.labels.SWAP` before they are averaged.
:class:`FaceSegTTAModel` does that; :func:`tta_pipeline` and :func:`tta_settings`
build the matching ``tta_pipeline`` / ``tta_model`` config entries, so
``tools/test.py --tta`` and :mod:`faceparse.predict.steps` run the same thing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from faceparse.labels import NUM_CLASSES, SWAP

__all__ = ["FaceSegTTAModel", "tta_pipeline", "tta_settings"]

# Transforms that load or pack data rather than change the image geometry.
_LOAD_ANNOTATIONS = "LoadAnnotations"
_PACK = "PackSegInputs"
_RESIZE = ("Resize", "mmcv.Resize", "mmseg.Resize")


@MODELS.register_module()
class FaceSegTTAModel(SegTTAModel):
    """Average softmax probabilities over augmentations; un-swap flipped channels.

    Args:
        module: the segmentor (config dict or module) to wrap.
        data_preprocessor: see :class:`mmengine.model.BaseTTAModel`.
        swap: channel permutation applied to a horizontally flipped prediction
            (``probs_original[c] = probs_flipped[swap[c]]``); default
            :data:`faceparse.labels.SWAP` (4<->5, 6<->7, 8<->9).
        keep_probs: keep the averaged probabilities in ``seg_logits`` of the
            merged sample (needed for ensembling; costs C*H*W floats per image).
    """

    def __init__(self, module, data_preprocessor=None, swap: Sequence[int] | None = None, keep_probs: bool = False):
        super().__init__(module, data_preprocessor)
        swap = [int(c) for c in (SWAP if swap is None else swap)]
        if sorted(swap) != list(range(len(swap))):
            raise ValueError(f"FaceSegTTAModel: swap must be a permutation, got {swap}")
        if self.module.out_channels != len(swap):
            raise ValueError(
                f"FaceSegTTAModel: the model has {self.module.out_channels} output channels, "
                f"the swap permutation {len(swap)} (faceparse has {NUM_CLASSES} classes)"
            )
        self.swap = swap
        self.keep_probs = keep_probs
        self._swap_index: dict[torch.device, torch.Tensor] = {}

    def _index(self, device: torch.device) -> torch.Tensor:
        if device not in self._swap_index:
            self._swap_index[device] = torch.tensor(self.swap, dtype=torch.long, device=device)
        return self._swap_index[device]

    def merge_preds(self, data_samples_list):
        """Merge the augmented predictions of each image of the batch.

        ``data_samples_list[i][j]`` is image i under augmentation j; its
        ``seg_logits`` are already flipped back and resized to the original
        image size by the wrapped segmentor's ``postprocess_result``.
        """
        merged = []
        for data_samples in data_samples_list:
            probs = None
            for sample in data_samples:
                p = sample.seg_logits.data.softmax(dim=0)
                if (
                    sample.metainfo.get("flip", False)
                    and sample.metainfo.get("flip_direction", "horizontal") == "horizontal"
                ):
                    # advanced indexing copies whole channel planes (index_select is ~15x slower on CPU)
                    p = p[self._index(p.device)]
                probs = p if probs is None else probs.add_(p)
            probs /= len(data_samples)
            out = SegDataSample(metainfo=_unflipped_meta(data_samples))
            out.pred_sem_seg = PixelData(data=probs.argmax(dim=0, keepdim=True))
            if self.keep_probs:
                out.seg_logits = PixelData(data=probs)
            if "gt_sem_seg" in data_samples[0]:
                out.gt_sem_seg = data_samples[0].gt_sem_seg
            merged.append(out)
        return merged


def _unflipped_meta(data_samples) -> dict:
    """Metainfo of the merged sample: the first augmentation's, without flip keys."""
    meta = dict(data_samples[0].metainfo)
    meta["flip"] = False
    meta.pop("flip_direction", None)
    meta["tta_augmentations"] = len(data_samples)
    return meta


def _type(transform: dict) -> str:
    return str(transform.get("type", ""))


def tta_pipeline(
    test_pipeline: Sequence[dict], scales: Sequence[float], flip: bool, with_annotations: bool = True
) -> list[dict]:
    """A ``TestTimeAug`` pipeline from a model's test pipeline.

    The test pipeline's ``Resize`` (there must be at most one) is replaced by
    one ``Resize`` per scale: relative to its fixed ``scale`` when it has one
    (as mmseg 0.x ``MultiScaleFlipAug(img_scale, img_ratios)`` did), else to the
    image size (``scale_factor``). With ``flip`` each scale is also run mirrored
    (``RandomFlip`` prob 0 and 1). Transforms before the resize (loading) run
    once; those after it run inside ``TestTimeAug``. ``LoadAnnotations`` comes
    after the flip, so ground truth stays unflipped at the original size;
    ``with_annotations=False`` drops it (test images without masks).
    """
    if not scales:
        raise ValueError("tta_pipeline: need at least one scale")
    pipeline = [copy.deepcopy(dict(t)) for t in test_pipeline]
    resizes = [i for i, t in enumerate(pipeline) if _type(t) in _RESIZE]
    if len(resizes) > 1:
        raise ValueError(f"tta_pipeline: the test pipeline has {len(resizes)} Resize steps; expected 0 or 1")
    if resizes:
        cut = resizes[0]
        base = pipeline[cut]
    else:
        loads = [i for i, t in enumerate(pipeline) if _type(t).startswith("LoadImage")]
        cut = (loads[-1] + 1) if loads else 0
        base = None
    before = pipeline[:cut]
    after = pipeline[cut + 1 :] if resizes else pipeline[cut:]
    after = [t for t in after if _type(t) not in (_LOAD_ANNOTATIONS, _PACK)]
    annotations = [t for t in pipeline if _type(t) == _LOAD_ANNOTATIONS] or [dict(type=_LOAD_ANNOTATIONS)]
    packs = [t for t in pipeline if _type(t) == _PACK] or [dict(type=_PACK)]

    scale_steps = [_scaled_resize(base, float(s)) for s in scales]
    flip_steps = [dict(type="RandomFlip", prob=0.0, direction="horizontal")]
    if flip:
        flip_steps.append(dict(type="RandomFlip", prob=1.0, direction="horizontal"))
    transforms = [scale_steps, flip_steps] + [[t] for t in after]
    if with_annotations:
        transforms.append([annotations[0]])
    transforms.append([packs[0]])
    return before + [dict(type="TestTimeAug", transforms=transforms)]


def _scaled_resize(base: dict | None, factor: float) -> dict:
    if base is not None and base.get("scale") is not None:
        scale = base["scale"]
        if isinstance(scale, int):
            scale = (scale, scale)
        step = dict(base)
        step.pop("scale_factor", None)
        step["scale"] = tuple(int(round(s * factor)) for s in scale)
        return step
    step = dict(base) if base is not None else dict(type="Resize")
    step.pop("scale", None)
    step["scale_factor"] = factor
    step.setdefault("keep_ratio", True)
    return step


def tta_settings(
    test_pipeline: Sequence[dict], scales: Sequence[float], flip: bool, with_annotations: bool = True
) -> dict:
    """``{"tta_pipeline": [...], "tta_model": {...}}`` for an mmseg config.

    ``cfg.merge_from_dict(tta_settings(cfg.test_pipeline, scales, flip))`` makes
    ``tools/test.py --tta`` use the face-aware TTA.
    """
    return {
        "tta_pipeline": tta_pipeline(test_pipeline, scales, flip, with_annotations),
        "tta_model": dict(type="FaceSegTTAModel"),
    }

"""faceparse's mmsegmentation extensions, registered in mmseg's registries.

Configs load them with
``custom_imports = dict(imports=['faceparse.mm'], allow_failed_imports=False)``.
Importing this package first allow-lists the globals mmengine checkpoints need
under torch's ``weights_only`` loading (:mod:`faceparse.mm.compat`), then
registers each module below. One line per module. (:mod:`.config` and :mod:`.pipelines`
resolve configs and are imported where they are used.)

May import: the ground floor and :mod:`faceparse.model_configs`. Not the stages: they import mm.
"""

from . import compat

compat.apply()

from . import (
    backbone,  # TimmFeatureBackbone
    compact,  # CompactFaceBackbone, LogitsHead
    datasets,  # FaceParseDataset
    evaluation,  # FaceParseMetric
    hooks,  # ResumeScheduleHook, PinnedCheckpointHook
    losses,  # ClassWeightedCrossEntropyLoss, ClassMeanDiceLoss
    optim,  # TimmLayerDecayOptimizerConstructor
    tracking,  # MLflowRunVisBackend
    transforms,  # RandomFlipSwapLR
    tta,  # FaceSegTTAModel
    wrappers,  # CPUDistributedDataParallel
)

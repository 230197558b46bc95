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

from . import backbone  # noqa: E402,F401  TimmFeatureBackbone
from . import compact  # noqa: E402,F401  CompactFaceBackbone, LogitsHead
from . import datasets  # noqa: E402,F401  FaceParseDataset
from . import evaluation  # noqa: E402,F401  FaceParseMetric
from . import hooks  # noqa: E402,F401  ResumeScheduleHook, PinnedCheckpointHook
from . import losses  # noqa: E402,F401  ClassWeightedCrossEntropyLoss, ClassMeanDiceLoss
from . import optim  # noqa: E402,F401  TimmLayerDecayOptimizerConstructor
from . import tracking  # noqa: E402,F401  MLflowRunVisBackend
from . import transforms  # noqa: E402,F401  RandomFlipSwapLR
from . import tta  # noqa: E402,F401  FaceSegTTAModel
from . import wrappers  # noqa: E402,F401  CPUDistributedDataParallel

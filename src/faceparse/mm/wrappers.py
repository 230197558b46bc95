"""Model wrappers: DistributedDataParallel for CPU processes (gloo)."""

from __future__ import annotations

from mmengine.model import MMDistributedDataParallel
from mmseg.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for a model on the CPU.

    mmengine's runner passes ``device_ids=[LOCAL_RANK]`` to every DDP wrapper;
    torch rejects device ids for a CPU module. This wrapper drops them, so a
    ``torchrun --nproc_per_node N`` run with the gloo backend trains on CPUs
    (used for tests of the multi-process path on machines without GPUs).
    """

    def __init__(self, module, device_ids=None, **kwargs):  # noqa: ARG002 - dropped on purpose
        super().__init__(module=module, device_ids=None, **kwargs)

"""A test hook: each rank writes the sha256 of its model's parameters when training ends.

Imported by the training processes of tests/test_distributed.py
(``custom_imports``); tests/ is on their PYTHONPATH there.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankWeightsHook(Hook):
    """Write ``{work_dir}/weights_rank{rank}.sha256`` after training."""

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        digest = hashlib.sha256()
        for name, param in sorted(model.named_parameters()):
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().numpy().tobytes())
        Path(runner.work_dir, f"weights_rank{runner.rank}.sha256").write_text(digest.hexdigest())

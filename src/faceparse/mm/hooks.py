"""Hooks: keep the configured learning-rate schedule when a longer run resumes."""
from __future__ import annotations

import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

_SCHEDULE_KEYS = ("end", "total_iters", "T_max")


@HOOKS.register_module()
class ResumeScheduleHook(Hook):
    """On resume, take schedule lengths from the config, not from the checkpoint.

    mmengine restores every parameter scheduler's whole state, including its
    ``end``. Resuming a run whose ``train_cfg.max_iters`` was raised (e.g. from
    an override) would then keep the old end: the poly decay would reach its
    minimum at the old length and stay there. This hook rewrites ``end`` (and
    ``total_iters``/``T_max``) in the checkpoint's scheduler states to the values
    of the schedulers built from the current config, before mmengine loads them;
    the position (``last_step``) and the current values are kept, so the chained
    schedules continue smoothly towards the new end.
    """

    priority = "VERY_LOW"

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get("param_schedulers")
        schedulers = runner.param_schedulers
        if not states or not schedulers or isinstance(schedulers, dict) or isinstance(states, dict):
            return
        if not isinstance(schedulers, list) or len(schedulers) != len(states):
            print_log("ResumeScheduleHook: the checkpoint's schedulers differ from the config's; "
                      "keeping the checkpoint's", logger="current", level=logging.WARNING)
            return
        for scheduler, state in zip(schedulers, states):
            if not hasattr(scheduler, "begin") or state.get("begin") != scheduler.begin:
                continue
            for key in _SCHEDULE_KEYS:
                if key in state and hasattr(scheduler, key) and state[key] != getattr(scheduler, key):
                    print_log(f"ResumeScheduleHook: {type(scheduler).__name__}.{key} "
                              f"{state[key]} (checkpoint) -> {getattr(scheduler, key)} (config)",
                              logger="current", level=logging.WARNING)
                    state[key] = getattr(scheduler, key)

"""Hooks: keep the configured learning-rate schedule when a longer run resumes; keep a
pinned checkpoint whatever the rotation says."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

import torch
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS, PARAM_SCHEDULERS

_SCHEDULE_KEYS = ("end", "total_iters", "T_max")


def _warn(message: str) -> None:
    print_log(f"ResumeScheduleHook: {message}", logger="current", level=logging.WARNING)


@HOOKS.register_module()
class ResumeScheduleHook(Hook):
    """On resume, follow the schedule of the current config, not the checkpoint's.

    mmengine restores each parameter scheduler's whole state, its ``end``
    included, and the optimizer's current learning rates. Resuming a run whose
    ``train_cfg.max_iters`` was raised (an override, then a rerun) would keep
    the old end: the poly decay would have reached (or would reach) zero at
    the old length and stay there. This hook

    1. rewrites ``end`` (and ``total_iters``/``T_max``) in the checkpoint's
       scheduler states to those of the schedulers built from the config,
       before mmengine loads them (``after_load_checkpoint``);
    2. when it changed anything, replays the config's schedule up to the
       resumed iteration on a stand-in optimizer and puts the resulting values
       (lr, momentum) into the real optimizer and the step counters into the
       real schedulers (``before_train``), so they continue exactly as an
       uninterrupted run of the new length would.

    It only handles iteration-based schedules (``by_epoch=False``); otherwise it
    warns and leaves the checkpoint's schedule alone.
    """

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self._changed = False

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._changed = False
        states = checkpoint.get("param_schedulers")
        schedulers = runner.param_schedulers
        if not states or not isinstance(schedulers, list) or not isinstance(states, list):
            return
        if len(schedulers) != len(states):
            _warn("the checkpoint's schedulers differ from the config's; keeping the checkpoint's")
            return
        if any(getattr(s, "by_epoch", False) for s in schedulers):
            return
        for scheduler, state in zip(schedulers, states):
            if state.get("begin") != getattr(scheduler, "begin", None):
                continue
            for key in _SCHEDULE_KEYS:
                if key in state and hasattr(scheduler, key) and state[key] != getattr(scheduler, key):
                    _warn(
                        f"{type(scheduler).__name__}.{key} {state[key]} (checkpoint) -> "
                        f"{getattr(scheduler, key)} (config)"
                    )
                    state[key] = getattr(scheduler, key)
                    self._changed = True

    def before_train(self, runner) -> None:
        if not self._changed:
            return
        self._changed = False
        optimizer = getattr(runner.optim_wrapper, "optimizer", None)
        if optimizer is None:  # OptimWrapperDict: several optimizers
            _warn("several optimizers; lr values not recomputed")
            return
        values, replayed = replay_schedule(runner.cfg.param_scheduler, optimizer.param_groups, runner.iter)
        for group, new in zip(optimizer.param_groups, values):
            group.update(new)
        # A scheduler counts its own steps only inside [begin, end): past the old
        # end it stopped counting, so take the counters of the replayed run too.
        for scheduler, twin in zip(runner.param_schedulers, replayed):
            for key in ("last_step", "_global_step", "_last_value"):
                if hasattr(twin, key):
                    setattr(scheduler, key, copy.deepcopy(getattr(twin, key)))
        first = values[0] if values else {}
        _warn(f"values at iter {runner.iter} recomputed for the new schedule: {first}")


def replay_schedule(scheduler_cfgs, param_groups, iters: int) -> tuple[list[dict], list]:
    """The scheduled values of each param group after ``iters`` iterations of a fresh run,
    and the schedulers of that run.

    Builds the configured schedulers on a stand-in optimizer whose groups start
    at the real groups' initial values (``initial_lr`` ...) and steps them as
    ``ParamSchedulerHook`` does, once per iteration.
    """
    cfgs = scheduler_cfgs if isinstance(scheduler_cfgs, list | tuple) else [scheduler_cfgs]
    groups = []
    names = set()
    for group in param_groups:
        g = {k: v for k, v in group.items() if k != "params" and not k.startswith("initial_")}
        for key, value in group.items():
            if key.startswith("initial_"):
                g[key[len("initial_") :]] = value
                names.add(key[len("initial_") :])
        g["params"] = [torch.zeros(1, requires_grad=True)]
        groups.append(g)
    stand_in = torch.optim.SGD(groups, lr=groups[0].get("lr", 0.0))
    schedulers = [PARAM_SCHEDULERS.build(copy.deepcopy(dict(c)), default_args=dict(optimizer=stand_in)) for c in cfgs]
    for _ in range(iters):
        for scheduler in schedulers:
            scheduler.step()
    names |= {s.param_name for s in schedulers}
    values = [{name: g[name] for name in names if name in g} for g in stand_in.param_groups]
    return values, schedulers


@HOOKS.register_module()
class PinnedCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that never rotates out the checkpoints of ``keep_iters``.

    ``max_keep_ckpts`` keeps the newest N checkpoints and deletes older ones; a
    checkpoint pinned for selection (``models.<name>.select_iter``) is saved as
    usual but never enters the rotation, so it stays on disk while the newest N
    of the others rotate. A pinned iteration already in the rotation of a
    resumed run is taken out of it before training continues.
    """

    def __init__(self, *args, keep_iters: Iterable[int] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_iters = frozenset(int(i) for i in keep_iters)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.max_keep_ckpts > 0 and self.keep_iters & set(self.keep_ckpt_ids):
            for step in self.keep_iters & set(self.keep_ckpt_ids):
                self.keep_ckpt_ids.remove(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if step not in self.keep_iters:
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        max_keep, self.max_keep_ckpts = self.max_keep_ckpts, -1  # -1: no rotation for this save
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = max_keep

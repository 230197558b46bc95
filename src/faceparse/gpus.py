"""Give concurrent training jobs on one machine disjoint GPUs.

Snakemake's ``--resources gpu=N`` limits how many GPUs the running jobs use in
total, but does not say which. :func:`acquire` picks free devices among the
visible ones by taking an exclusive ``fcntl.flock`` on one lock file per device
(in ``FACEPARSE_GPU_LOCK_DIR``, default ``/tmp/faceparse-gpu-locks-<uid>``) and
holds them until the ``with`` block ends; the kernel drops the locks when the
process dies, so a crashed job never leaves a device reserved. The caller runs
its child with ``CUDA_VISIBLE_DEVICES`` set to the acquired devices.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def visible_devices() -> list[str]:
    """Device ids this process may use: ``CUDA_VISIBLE_DEVICES`` or 0..device_count-1."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover - torch is always there in the mmseg env
        return []


def default_lock_dir() -> Path:
    return Path(os.environ.get("FACEPARSE_GPU_LOCK_DIR") or f"/tmp/faceparse-gpu-locks-{os.getuid()}")


def _lock_path(lock_dir: Path, device: str) -> Path:
    return lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"


@contextmanager
def acquire(
    n: int,
    devices: Sequence[str] | None = None,
    lock_dir: str | Path | None = None,
    timeout: float | None = None,
    poll: float = 5.0,
) -> Iterator[list[str]]:
    """Hold ``n`` of ``devices`` (default :func:`visible_devices`) exclusively.

    All-or-nothing: while fewer than ``n`` are free it holds none and retries
    every ``poll`` seconds (up to ``timeout``; None waits forever), so two jobs
    can never deadlock on half their devices. Yields the device ids, e.g.
    ``['2', '3']``; ``n == 0`` yields ``[]`` at once.
    """
    if n <= 0:
        yield []
        return
    devices = list(visible_devices() if devices is None else devices)
    if n > len(devices):
        raise RuntimeError(f"need {n} GPU(s), but only {len(devices)} are visible ({devices or 'none'})")
    if os.environ.get("SLURM_JOB_ID"):
        # SLURM already gave this job its own GPUs, and jobs on one node may all see
        # theirs as device 0 with /tmp shared: locks would only serialise them.
        log.info("using GPU(s) %s (allocated by SLURM job %s)", ",".join(devices[:n]), os.environ["SLURM_JOB_ID"])
        yield devices[:n]
        return
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    while True:
        held: list[tuple[str, int]] = []
        for device in devices:
            fd = os.open(_lock_path(lock_dir, device), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((device, fd))
            if len(held) == n:
                break
        if len(held) == n:
            break
        for _, fd in held:
            os.close(fd)  # closing the descriptor releases its lock
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"no {n} free GPU(s) among {devices} within {timeout} s (locks in {lock_dir})")
        if not waited:
            log.info("waiting for %d free GPU(s) among %s (locks in %s)", n, devices, lock_dir)
            waited = True
        time.sleep(poll)
    chosen = [device for device, _ in held]
    for _, fd in held:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    log.info("using GPU(s) %s", ",".join(chosen))
    try:
        yield chosen
    finally:
        for _, fd in held:
            os.close(fd)


def child_env(devices: Sequence[str], base: dict | None = None) -> dict[str, str]:
    """A copy of the environment that shows the child only ``devices`` (none: CPU only)."""
    env = dict(os.environ if base is None else base)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    return env

"""Run a resolved config's training in a child process: one process, or ``torchrun`` for several GPUs.

:func:`launch` takes the GPUs (:mod:`faceparse.gpus`), starts
``python -m faceparse.train.process`` (:func:`training_command`) with them and
the thread budget, and stops it with the step: a SIGTERM to the step (Snakemake,
SLURM) terminates the child, and the child dies with its parent.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from faceparse import gpus as gpu_locks

log = logging.getLogger(__name__)


def _child_output():
    """Where the child's output goes: our stderr when it is a real file (the rule's log)."""
    try:
        sys.stderr.flush()
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return None


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated(f"signal {signum}")


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM when the launching process dies, so no training is orphaned."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def training_command(config_path: str | Path, nproc: int = 1, threads: int | None = None) -> list[str]:
    """The command that trains ``config_path`` with ``nproc`` processes."""
    entry = ["-m", "faceparse.train.process", str(config_path)]
    if threads:
        entry += ["--threads", str(threads)]
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            *entry,
            "--launcher",
            "pytorch",
        ]
    return [sys.executable, *entry]


def launch(
    config_path: str | Path, gpus: int = 0, nproc: int | None = None, threads: int = 1, gpu_timeout: float | None = None
) -> None:
    """Run the training of a dumped config in a child process (``torchrun`` for nproc > 1).

    ``gpus`` GPUs are taken with :func:`faceparse.gpus.acquire` and shown to the
    child through ``CUDA_VISIBLE_DEVICES`` (none for ``gpus=0``: CPU). ``nproc``
    defaults to one process per GPU (one on the CPU); ``threads`` are split
    between the processes.
    """
    nproc = nproc or max(gpus, 1)
    if gpus > 0 and nproc != gpus:
        raise ValueError(f"one process per GPU: gpus={gpus}, nproc={nproc}")
    per_process = max(1, threads // nproc)
    with gpu_locks.acquire(gpus, timeout=gpu_timeout) as devices:
        env = gpu_locks.child_env(devices)
        env["OMP_NUM_THREADS"] = str(per_process)
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
        cmd = training_command(config_path, nproc, per_process)
        log.info("training on %s: %s", f"GPU(s) {','.join(devices)}" if devices else "CPU", " ".join(cmd))
        out = _child_output()
        child = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None, preexec_fn=_die_with_parent
        )
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
        try:
            returncode = child.wait()
        except BaseException:
            # Snakemake or SLURM stopping this job: stop the training with it
            # (its checkpoints stay; the rerun resumes).
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        if returncode:
            raise subprocess.CalledProcessError(returncode, cmd)

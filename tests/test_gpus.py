"""GPU assignment by file locks: concurrent jobs get disjoint devices."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from faceparse import gpus


def test_visible_devices_from_env(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5, 7")
    assert gpus.visible_devices() == ["3", "5", "7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus.visible_devices() == []


def test_disjoint_and_released(tmp_path):
    devices = ["0", "1", "2"]
    with gpus.acquire(2, devices=devices, lock_dir=tmp_path) as first:
        assert first == ["0", "1"]
        with gpus.acquire(1, devices=devices, lock_dir=tmp_path) as second:
            assert second == ["2"]
            with pytest.raises(TimeoutError):
                with gpus.acquire(1, devices=devices, lock_dir=tmp_path, timeout=0.2, poll=0.05):
                    pass
        # all-or-nothing: 2 are not free while "0", "1" are held
        with pytest.raises(TimeoutError):
            with gpus.acquire(2, devices=devices, lock_dir=tmp_path, timeout=0.2, poll=0.05):
                pass
    with gpus.acquire(3, devices=devices, lock_dir=tmp_path) as all_three:
        assert all_three == devices


def test_zero_and_too_many(tmp_path):
    with gpus.acquire(0, devices=[], lock_dir=tmp_path) as none:
        assert none == []
    with pytest.raises(RuntimeError, match="only 1 are visible"):
        with gpus.acquire(2, devices=["0"], lock_dir=tmp_path):
            pass


def test_child_env_hides_other_devices():
    env = gpus.child_env(["2"], base={"CUDA_VISIBLE_DEVICES": "0,1,2", "X": "y"})
    assert env == {"CUDA_VISIBLE_DEVICES": "2", "X": "y"}
    assert gpus.child_env([], base={})["CUDA_VISIBLE_DEVICES"] == ""


def test_concurrent_processes_get_disjoint_devices(tmp_path):
    """Two processes, one fake device list: the second waits for the first's device to free."""
    script = textwrap.dedent(f"""
        import sys, time
        from faceparse import gpus
        with gpus.acquire(1, devices=["a", "b"], lock_dir={str(tmp_path)!r}, poll=0.05) as got:
            print(got[0], time.monotonic(), flush=True)
            time.sleep(float(sys.argv[1]))
        print("released", time.monotonic(), flush=True)
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, "1.0"], stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outs = [p.communicate(timeout=30)[0].split("\n") for p in procs]
    assert all(p.returncode == 0 for p in procs)
    grants = sorted((float(o[0].split()[1]), o[0].split()[0]) for o in outs)
    releases = sorted(float(o[1].split()[1]) for o in outs)
    # the first two start at once on different devices; the third only after a release
    assert {grants[0][1], grants[1][1]} == {"a", "b"}
    assert grants[2][0] >= releases[0] - 0.01


def test_lock_dropped_when_holder_dies(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import time
            from faceparse import gpus
            with gpus.acquire(1, devices=["0"], lock_dir={str(tmp_path)!r}):
                print("held", flush=True)
                time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(TimeoutError):
        with gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout=0.1, poll=0.05):
            pass
    holder.kill()
    holder.wait()
    t0 = time.monotonic()
    with gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout=5, poll=0.05) as got:
        assert got == ["0"]
    assert time.monotonic() - t0 < 5
    assert os.path.exists(tmp_path / "gpu-0.lock")


def test_slurm_job_uses_its_allocation_without_locks(tmp_path, monkeypatch):
    """Under SLURM two jobs may both see their own GPU as device 0: neither waits for the other."""
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    with gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout=0.1) as first:
        with gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout=0.1) as second:
            assert first == second == ["0"]
    assert not list(tmp_path.iterdir())

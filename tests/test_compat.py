"""mmengine checkpoints under torch's weights_only loading: save, resume, load_from."""

import pickle
import subprocess
import sys

import pytest
import torch

from test_train import DEMO, make_tiny_dataset, tiny_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real training checkpoint of a tiny mmseg model (2 iterations)."""
    from mmengine.runner import Runner

    from faceparse.mm.config import build_config

    root = tmp_path_factory.mktemp("compat")
    data = make_tiny_dataset(root / "data", counts={"train": 4, "val": 2})
    cfg = build_config(
        tiny_config(root, DEMO),
        data["validation"],
        data["stats"],
        work_dir=root / "work",
        overrides={
            "train_cfg.max_iters": 2,
            "train_cfg.val_interval": 2,
            "default_hooks.checkpoint.interval": 2,
            "param_scheduler.0.end": 1,
            "param_scheduler.1.begin": 1,
            "param_scheduler.1.end": 2,
        },
    )
    Runner.from_cfg(cfg).train()
    return cfg, root / "work" / "iter_2.pth"


def test_plain_torch_load_needs_the_allow_list(checkpoint):
    """Without faceparse.mm, torch's default weights_only load rejects the checkpoint."""
    _, path = checkpoint
    code = (
        "import sys, torch, pickle\n"
        "try:\n    torch.load(sys.argv[1])\nexcept pickle.UnpicklingError as e:\n"
        "    print('REJECTED', 'HistoryBuffer' in str(e) or 'numpy' in str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "REJECTED True"


def test_load_with_weights_only(checkpoint):
    from mmengine.logging import HistoryBuffer

    import faceparse.mm  # noqa: F401

    _, path = checkpoint
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["meta"]["iter"] == 2
    buffers = ckpt["message_hub"]["log_scalars"]
    assert isinstance(buffers["train/loss"], HistoryBuffer)
    assert buffers["train/loss"].mean() > 0  # its statistics methods came back too


def test_resume(checkpoint, tmp_path):
    from mmengine.runner import Runner

    cfg, path = checkpoint
    cfg = cfg.copy()
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 3
    cfg.resume, cfg.load_from = True, str(path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3
    # the loss history of the first two iterations came back with the message hub
    assert runner.message_hub.get_scalar("train/loss").data[0].size == 3


def test_load_from(checkpoint, tmp_path):
    from mmengine.runner import Runner

    cfg, path = checkpoint
    cfg = cfg.copy()
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(str(path))
    saved = torch.load(path, map_location="cpu")["state_dict"]
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, saved[name]), name


class _SneakyGetattr:
    """Unpickles as getattr(HistoryBuffer, '__init__'): allowed names only, not any attribute."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer

        return getattr, (HistoryBuffer, "__init__")


def test_still_refuses_other_globals(tmp_path):
    import os

    import faceparse.mm  # noqa: F401

    bad = tmp_path / "bad.pth"
    torch.save({"f": _SneakyGetattr()}, bad)
    with pytest.raises(pickle.UnpicklingError, match="not allow-listed"):
        torch.load(bad)
    torch.save({"f": os.system}, bad)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad)
    torch.save({"f": str.upper}, bad)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad)

"""The multi-process path: torchrun with 2 CPU processes (gloo) trains one model together."""
import json
import re
from pathlib import Path

from test_train import DEMO, make_tiny_dataset, tiny_config


def test_two_processes_train_together(tmp_path, capfd):
    from faceparse.train import train

    data = make_tiny_dataset(tmp_path / "data", counts={"train": 4, "val": 2})
    out = tmp_path / "train.json"
    summary = train(tiny_config(tmp_path, DEMO), data["validation"], data["stats"], out, tmp_path / "train",
                    overrides={"train_cfg.max_iters": 2, "train_cfg.val_interval": 2,
                               "default_hooks.checkpoint.interval": 2, "default_hooks.logger.interval": 1,
                               "param_scheduler.0.end": 1, "param_scheduler.1.begin": 1,
                               "param_scheduler.1.end": 2},
                    gpus=0, nproc=2, threads=2)
    captured = capfd.readouterr()
    text = captured.out + captured.err
    # both ranks ran the training loop to the end, in a world of 2
    assert sorted(re.findall(r"faceparse\.train: rank (\d)/(\d) finished at iter 2", text)) == [
        ("0", "2"), ("1", "2")]
    assert [Path(c).name for c in summary["checkpoints"]] == ["iter_2.pth"]  # written once (rank 0)
    assert [v["iter"] for v in summary["val"]] == [2]
    assert json.loads(out.read_text()) == summary
    env_log = "\n".join(p.read_text() for p in (tmp_path / "train").glob("*/*.log"))
    assert "World size: 2" in env_log or "world_size: 2" in env_log.lower() or "Distributed training: True" in env_log

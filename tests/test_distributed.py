"""The multi-process path: torchrun with 2 CPU processes (gloo) trains one model together."""

import re
from pathlib import Path

from faceparse.records import TrainSummary
from test_train import DEMO, make_tiny_dataset, tiny_config

TESTS = Path(__file__).resolve().parent


def test_two_processes_train_together(tmp_path, capfd, monkeypatch):
    from mmengine.config import Config

    from faceparse.train.step import train

    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the processes import _rank_weights from here
    data = make_tiny_dataset(tmp_path / "data", counts={"train": 8, "val": 2})
    out = tmp_path / "train.json"
    summary = train(
        tiny_config(tmp_path, DEMO),
        data["validation"],
        data["stats"],
        out,
        tmp_path / "train",
        overrides={
            "train_cfg.max_iters": 3,
            "train_cfg.val_interval": 3,
            "default_hooks.checkpoint.interval": 3,
            "default_hooks.logger.interval": 1,
            "param_scheduler.0.end": 1,
            "param_scheduler.1.begin": 1,
            "param_scheduler.1.end": 3,
            "train_dataloader.batch_size": 4,  # the total: 2 per process
            "custom_imports.imports": ["faceparse.mm", "_rank_weights"],
            "custom_hooks": [dict(type="ResumeScheduleHook"), dict(type="RankWeightsHook")],
        },
        gpus=0,
        nproc=2,
        threads=2,
    )
    captured = capfd.readouterr()
    text = captured.out + captured.err
    # both ranks ran the training loop to the end, in a world of 2
    assert sorted(re.findall(r"faceparse\.train: rank (\d)/(\d) finished at iter 3", text)) == [("0", "2"), ("1", "2")]
    run = Path(summary["work_dir"])  # the run's folder in the store, train/runs/{fingerprint}
    assert Config.fromfile(str(run / "config.py")).train_dataloader.batch_size == 2
    # after 3 steps of different samples per rank, the weights are still the same on both
    digests = [(run / f"weights_rank{r}.sha256").read_text() for r in (0, 1)]
    assert digests[0] == digests[1]
    assert [Path(c).name for c in summary["checkpoints"]] == ["iter_3.pth"]  # written once (rank 0)
    assert [v["iter"] for v in summary["val"]] == [3]
    assert vars(TrainSummary.read(out)) == summary
    env_log = "\n".join(p.read_text() for p in run.glob("*/*.log"))
    assert "World size: 2" in env_log or "world_size: 2" in env_log.lower() or "Distributed training: True" in env_log

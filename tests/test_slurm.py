"""profiles/slurm on a real SLURM cluster: the demo DAG through sbatch equals a local run.

The end-to-end tests need a running cluster (``sinfo`` shows an idle node) and
skip, with the reason, where there is none. On one machine, as root:

    tools/slurm_local.sh start      # apt-get installs slurm-wlm + munge, ~30 s
    .venv/bin/pytest -m slurm tests/test_slurm.py
    tools/slurm_local.sh stop

With CI=true (as in .ci/run) or FACEPARSE_START_SLURM=1 the tests start (and
afterwards stop) that cluster themselves.

``test_gpu_training_job_asks_slurm_for_its_gpus`` needs no cluster: it checks
the sbatch flags the plugin builds from this profile for a 2-GPU model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SNAKEMAKE = VENV_BIN / "snakemake"
SNAKEFILE = ROOT / "workflow" / "Snakefile"
PROFILE = ROOT / "profiles" / "slurm"
MODEL = "demo_tiny"

# config.yaml's keys, shrunk: 12/4/4 synthetic 128x128 faces, 20 training iterations.
TINY_CONFIG = {
    "data_layout": "synthetic",
    "data_root": None,
    "synthetic": {"seed": 5, "size": 128, "counts": {"train": 12, "val": 4, "test": 4}},
    "celebamask_hq": {"max_images": None},
    "flip": True,
    "train_on_val": False,
    "tta": {"scales": [0.75, 1.0], "flip": True},
    "models": {
        MODEL: {
            "config": "configs/demo_tiny.py",
            "gpus": 0,
            "select_iter": None,
            "overrides": {
                "train_cfg.max_iters": 20,
                "train_cfg.val_interval": 10,
                "default_hooks.checkpoint.interval": 10,
                "train_dataloader.batch_size": 2,
                # demo_tiny warms up for 40 iterations: end the warm-up before max_iters.
                "param_scheduler.0.end": 4,
                "param_scheduler.1.begin": 4,
            },
        }
    },
}

# Wall-clock limits (2 shared CPU cores). A hung snakemake ignores SIGTERM, hence timeout -k.
LOCAL_LIMIT_S = 1200
SLURM_LIMIT_S = 1800

# Outputs that depend only on the config and the code: equal byte for byte (after
# replacing the run's own working directory in JSON files).
DATA_FILES = ["results/data/validation.json", "results/data/flip.json", "results/data/stats.json"]
DATA_DIRS = ["results/data/source", "results/data/flipped"]
# Outputs of the trained model. CPU training with a fixed seed, the same thread count
# (2: --cores 2 locally, 2 CPUs per SLURM job) and a single data worker is
# deterministic, so these are equal too (checked by running the DAG twice).
MODEL_FILES = [f"results/models/{MODEL}/best.json"]
MODEL_DIRS = [f"results/models/{MODEL}/val_pred", f"results/models/{MODEL}/test_pred"]
# ... and val_metrics.json but its "seconds", train.json's "val" curve, the submission
# zip's members. Not compared: timings, logs, benchmarks, provenance.json (hosts, times),
# checkpoints (they embed timestamps and paths), colour previews (made from test_pred).
TIMING_KEYS = ("seconds",)


# --------------------------------------------------------------------------- helpers


def cluster_problem() -> str | None:
    """Why no job can run on a SLURM cluster here, or None when one is up."""
    for tool in ("sinfo", "sbatch", "squeue", "scancel"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: no SLURM client here (as root: tools/slurm_local.sh start)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: slurmctld not answering (tools/slurm_local.sh start)"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip()} (start a cluster: tools/slurm_local.sh start)"
    states = [s.rstrip("*~#!%$@^-") for s in out.stdout.split()]
    if not any(s in ("idle", "mixed") for s in states):
        return f"no idle SLURM node (sinfo states: {states or 'none'}); tools/slurm_local.sh start"
    return None


def wants_cluster_started() -> bool:
    """CI (CI=true) or FACEPARSE_START_SLURM=1: install and start a local cluster for these tests."""
    flag = os.environ.get("FACEPARSE_START_SLURM") or os.environ.get("CI") or ""
    return flag.lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def cluster():
    """A SLURM cluster to submit to: the one running, or (CI) one started here; else skip."""
    started = False
    if cluster_problem() and wants_cluster_started():
        subprocess.run([str(ROOT / "tools" / "slurm_local.sh"), "start"], check=True, timeout=900)
        started = True
    problem = cluster_problem()
    if problem:
        pytest.skip(f"{problem}; or set FACEPARSE_START_SLURM=1 to let the test start one (root, apt)")
    yield
    if started:
        subprocess.run([str(ROOT / "tools" / "slurm_local.sh"), "stop"], timeout=300)


def snakemake_cmd(workdir: Path, *args: str, limit: int) -> list[str]:
    return [
        "timeout",
        "-k",
        "10",
        str(limit),
        str(SNAKEMAKE),
        "-s",
        str(SNAKEFILE),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]


def run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
    # cwd=ROOT: like a user in the repository (profiles/default is found from here).
    env = {**os.environ, "PYTHONHASHSEED": "0", "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60, env=env)


def cancel_run_jobs(output: str) -> None:
    """scancel what a killed snakemake left queued (its jobs are named by the run id)."""
    for run_id in set(re.findall(r"SLURM run ID: (\S+)", output)):
        subprocess.run(["scancel", "--name", run_id], capture_output=True, timeout=30)


def slurm_logs_tail(workdir: Path, n: int = 40) -> str:
    parts = []
    for log in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))[-3:]:
        parts.append(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-n:]))
    return "\n".join(parts)


def json_without_timings(path: Path, workdir: Path) -> dict:
    data = json.loads(normalised(path, workdir))
    return {k: v for k, v in data.items() if k not in TIMING_KEYS}


def normalised(path: Path, workdir: Path) -> bytes:
    """A file's bytes; JSON with the run's working directory replaced by a placeholder."""
    data = path.read_bytes()
    if path.suffix == ".json":
        for wd in {str(workdir), str(workdir.resolve())}:
            data = data.replace(wd.encode(), b"<workdir>")
    return data


def digests(workdir: Path, files: list[str], dirs: list[str]) -> dict[str, str]:
    out = {}
    for rel in files:
        out[rel] = hashlib.sha256(normalised(workdir / rel, workdir)).hexdigest()
    for rel in dirs:
        base = workdir / rel
        found = sorted(p for p in base.rglob("*") if p.is_file())
        assert found, f"{base} is empty"
        for p in found:
            out[str(p.relative_to(workdir))] = hashlib.sha256(normalised(p, workdir)).hexdigest()
    return out


def zip_members(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {n: hashlib.sha256(zf.read(n)).hexdigest() for n in sorted(zf.namelist())}


def differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("slurm")
    dirs = {name: base / name for name in ("local", "slurm")}
    for d in dirs.values():
        d.mkdir()
        (d / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))

    local = run(
        snakemake_cmd(dirs["local"], "--cores", "2", "--resources", "gpu=0", limit=LOCAL_LIMIT_S), LOCAL_LIMIT_S
    )
    assert local.returncode == 0, f"local run failed (rc {local.returncode}):\n{local.stderr[-6000:]}"

    # The profile as it is, but --cores 2 (this node's CPUs) and a 5 s first status
    # check (the profile's 40 s suits hour-long jobs; here it would make each of the
    # ~12 short jobs wait 45 s).
    cmd = snakemake_cmd(
        dirs["slurm"],
        "--workflow-profile",
        str(PROFILE),
        "--cores",
        "2",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--slurm-keep-successful-logs",
        limit=SLURM_LIMIT_S,
    )
    try:
        slurm = run(cmd, SLURM_LIMIT_S)
    except subprocess.TimeoutExpired as e:
        cancel_run_jobs(str(e.stderr or ""))
        raise
    output = slurm.stdout + slurm.stderr
    (base / "slurm_run.log").write_text(output)
    if slurm.returncode != 0:
        cancel_run_jobs(output)
    assert slurm.returncode == 0, (
        f"SLURM run failed (rc {slurm.returncode}, 124 = timed out):\n"
        f"{output[-6000:]}\n{slurm_logs_tail(dirs['slurm'])}"
    )
    dirs["slurm_output"] = base / "slurm_run.log"
    return dirs


@pytest.mark.slurm
@pytest.mark.slow
def test_every_job_went_through_slurm(runs):
    output = runs["slurm_output"].read_text()
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", output)
    rules = {rule for _, rule in submitted}
    assert {"validate", "flip", "stats", "train", "select", "evaluate", "predict", "package"} <= rules, rules
    # SLURM's view: the jobs that finished in the last MinJobAge (300 s) are still in
    # squeue (the last ones at least, so never none), every one COMPLETED.
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    q = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T", "--name", run_id],
        capture_output=True,
        text=True,
        timeout=30,
    )
    states = dict(line.split("|") for line in q.stdout.split())
    assert states and states.keys() <= {jobid for jobid, _ in submitted}, (submitted, states)
    assert set(states.values()) == {"COMPLETED"}, states
    # The rule's own log (not just SLURM's) is in the working directory as usual.
    assert (runs["slurm"] / f"logs/models/{MODEL}/train.log").stat().st_size > 0


@pytest.mark.slurm
@pytest.mark.slow
def test_data_outputs_equal_a_local_run(runs):
    local = digests(runs["local"], DATA_FILES, DATA_DIRS)
    slurm = digests(runs["slurm"], DATA_FILES, DATA_DIRS)
    assert len(local) > 12 + 4 + 4
    assert not differing(local, slurm)


@pytest.mark.slurm
@pytest.mark.slow
def test_model_outputs_equal_a_local_run(runs):
    local = digests(runs["local"], MODEL_FILES, MODEL_DIRS)
    slurm = digests(runs["slurm"], MODEL_FILES, MODEL_DIRS)
    assert not differing(local, slurm)
    metrics = [
        json_without_timings(runs[k] / f"results/models/{MODEL}/val_metrics.json", runs[k]) for k in ("local", "slurm")
    ]
    assert metrics[0] == metrics[1]
    train = [json.loads((runs[k] / f"results/models/{MODEL}/train.json").read_text()) for k in ("local", "slurm")]
    assert train[0]["max_iters"] == train[1]["max_iters"] == 20
    assert train[0]["val"] == train[1]["val"]
    zips = [zip_members(runs[k] / f"results/submission/{MODEL}.zip") for k in ("local", "slurm")]
    assert len(zips[0]) == 4 and zips[0] == zips[1]


# --------------------------------------------------------------------------- no cluster needed


def _dry_run_job(workdir: Path, rule: str, target: str) -> SimpleNamespace:
    """threads and resources snakemake -n --workflow-profile profiles/slurm gives a rule's job."""
    result = run(
        snakemake_cmd(workdir, "-n", "--workflow-profile", str(PROFILE), "--cores", "32", target, limit=120), 120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    block = re.search(rf"rule {rule}:\n(.*?)\n\n", text, re.S)
    assert block, text[-3000:]
    block = block.group(1)
    found = re.search(r"threads: (\d+)", block)
    threads = int(found.group(1)) if found else 1  # Snakemake prints threads only when more than 1
    resources = dict(kv.split("=", 1) for kv in re.search(r"resources: (.*)", block).group(1).split(", "))
    resources = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in resources.items()}

    class Resources(dict):
        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name) from None

    return SimpleNamespace(threads=threads, resources=Resources(resources), name=rule)


def test_gpu_training_job_asks_slurm_for_its_gpus(tmp_path: Path):
    """A 2-GPU model: one sbatch task with --gpus=2 on one node, 16 CPUs, 4 GB per CPU, 24 h."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    config = json.loads(json.dumps(TINY_CONFIG))
    config["models"] = {
        "big": {"config": "configs/seed_convnext_xl.py", "gpus": 2, "overrides": {}},
        "cpu": {"config": "configs/demo_tiny.py", "gpus": 0, "overrides": {}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "x.log",
        "comment_str": "c",
        "account": "",
        "partition": "",
        "workdir": str(tmp_path),
    }

    big = _dry_run_job(tmp_path, "train", "results/models/big/train.json")
    validate_slurm_extra(big)
    call = get_submit_command(big, params) + set_gres_string(big)
    assert "--gpus=2" in call and "--nodes=1" in call
    assert "--cpus-per-task=16" in call  # 8 CPUs per GPU (rule train), within --cores 32
    assert "--mem-per-cpu 4000" in call and "-t 1440" in call
    assert "ntasks" not in call  # one task: torchrun starts the per-GPU processes itself

    cpu = _dry_run_job(tmp_path, "train", "results/models/cpu/train.json")
    call = get_submit_command(cpu, params) + set_gres_string(cpu)
    assert "--gpus" not in call and "--ntasks=1" in call and "--cpus-per-task=32" in call

    data = _dry_run_job(tmp_path, "stats", "results/data/stats.json")
    call = get_submit_command(data, params) + set_gres_string(data)
    assert "--gpus" not in call and "-t " not in call  # the cluster's (or your profile's) defaults


def test_profiles_comment_every_entry():
    """Each key of the two profiles has a comment (the STYLE: profiles explain themselves)."""
    for profile in (ROOT / "profiles/default/config.yaml", PROFILE / "config.yaml"):
        lines = profile.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"^\s*[A-Za-z_][\w-]*:", line) and not line.lstrip().startswith("#"):
                if line.startswith("__"):
                    continue
                above = lines[i - 1].strip() if i else ""
                assert above.startswith("#") or "#" in line, f"{profile.name}:{i + 1} has no comment: {line!r}"

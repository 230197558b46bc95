# Helpers shared by the rules: paths, config lookups, input functions.
import sys
from pathlib import Path

REPO_ROOT = Path(workflow.basedir).parent
# Step scripts import the faceparse package: installed (editable) in .venv, and
# put on PYTHONPATH for `--sdm conda` envs and cluster jobs.
sys.path.insert(0, str(REPO_ROOT / "src"))
from faceparse.workflow_env import export_package_path

export_package_path()

MODELS = list(config["models"])
SPLITS = ("train", "val", "test")


wildcard_constraints:
    model="|".join(MODELS),


def is_generated_source() -> bool:
    """Synthetic and celebamask-hq data are written to results/data/source; mini is used in place."""
    return config["data_layout"] != "mini"


def data_root() -> str:
    if is_generated_source():
        return "results/data/source"
    if not config["data_root"]:
        raise ValueError("config: data_layout=mini needs data_root=<folder with train/ val/ test/>")
    return config["data_root"]


def validate_input() -> dict:
    """What validate reads: the generated source's manifest, or the mini root itself."""
    if is_generated_source():
        return {"source": "results/data/source/source.json"}
    return {"source": data_root()}


def model_cfg(model: str) -> dict:
    return config["models"][model]


def model_gpus(wildcards) -> int:
    return int(model_cfg(wildcards.model).get("gpus", 0))


def inference_gpus(wildcards) -> int:
    """Inference uses one GPU when the model trains on GPUs, else none."""
    return min(1, model_gpus(wildcards))


def model_config_file(wildcards) -> str:
    """The model's mmseg config; a relative path is taken from the repository root."""
    return str(REPO_ROOT / model_cfg(wildcards.model)["config"])


def train_inputs(wildcards) -> dict:
    """Data index, statistics, the model config and its bases (+ the flipped set)."""
    inputs = {
        "validation": "results/data/validation.json",
        "stats": "results/data/stats.json",
        "config": model_config_file(wildcards),
        "bases": sorted(str(p) for p in (REPO_ROOT / "configs" / "_base_").glob("*.py")),
    }
    if config["flip"]:
        inputs["flip"] = "results/data/flip.json"
    return inputs


def train_threads(wildcards) -> int:
    """CPU training uses every core it is given; a GPU job a few data workers per GPU."""
    gpus = model_gpus(wildcards)
    return workflow.cores if gpus == 0 else max(1, min(workflow.cores, 8 * gpus))


def model_overrides(wildcards) -> dict:
    return dict(model_cfg(wildcards.model).get("overrides") or {})


def model_select_iter(wildcards):
    return model_cfg(wildcards.model).get("select_iter")


def all_outputs() -> list[str]:
    outputs = ["results/data/validation.json", "results/data/stats.json"]
    for model in MODELS:
        outputs += [
            f"results/models/{model}/best.json",
            f"results/models/{model}/val_metrics.json",
            f"results/models/{model}/colour/done.json",
            f"results/submission/{model}.zip",
        ]
    outputs.append("results/provenance/provenance.json")
    return outputs

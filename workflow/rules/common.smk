# Helpers shared by the rules: paths, config lookups, input functions.
import os
from pathlib import Path

# Step scripts import the faceparse package: installed (editable) in the active
# environment, and put on PYTHONPATH for `--sdm conda` envs and cluster jobs.
_SRC = str(Path(workflow.basedir).parent / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)

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


REPO_ROOT = Path(workflow.basedir).parent


def model_config_file(wildcards) -> str:
    """The model's mmseg config; a relative path is taken from the repository root."""
    return str(REPO_ROOT / model_cfg(wildcards.model)["config"])


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

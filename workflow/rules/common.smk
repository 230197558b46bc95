# Helpers shared by the rules: paths, config lookups, input functions.
import sys
from functools import lru_cache
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
    """Where validate reads the dataset (the schema makes sure a mini layout has data_root)."""
    return "results/data/source" if is_generated_source() else config["data_root"]


@lru_cache(maxsize=1)
def _source_fingerprint() -> str:
    from faceparse.data.celebamask import release_fingerprint
    from faceparse.data.fingerprint import dataset_fingerprint

    if config["data_layout"] == "mini":
        return dataset_fingerprint(data_root())
    if config["data_layout"] == "celebamask-hq":
        return release_fingerprint(config["data_root"])
    return ""


def source_fingerprint(wildcards) -> str:
    """Paths, sizes and mtimes of the files a data root holds (a mini set, or the CelebAMask-HQ
    release), hashed when the DAG is built: a param of the rule that reads the root, so adding
    or replacing a file reruns it (Snakemake sees only the folder's own mtime)."""
    return _source_fingerprint()


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


# --- report stage
REPORT_DIR = "results/report"


@lru_cache(maxsize=1)
def _code_state() -> dict:
    from faceparse.report.provenance import code_state  # src/ is on sys.path (top of this file)

    return code_state(REPO_ROOT)


def provenance_code_state(wildcards) -> dict:
    """Git commit, dirty flag, changed files and a code fingerprint, computed when the DAG is
    built: a param of rule provenance, so any change of them reruns it."""
    return _code_state()


def data_samples_input(wildcards) -> dict:
    """Dataset index and stats, the flipped set when training uses it, and the source manifest."""
    inputs = {
        "validated": "results/data/validation.json",
        "stats": "results/data/stats.json",
    }
    if config["flip"]:
        inputs["flipped"] = "results/data/flip.json"
    if is_generated_source():
        inputs["source"] = "results/data/source/source.json"
    return inputs


def report_outputs() -> list[str]:
    """Every figure and table of the report stage (rule provenance asks for them all)."""
    outputs = [f"{REPORT_DIR}/data/samples.png", f"{REPORT_DIR}/data/summary.html",
               f"{REPORT_DIR}/data/class_frequency.png"]
    for model in MODELS:
        outputs += [
            f"{REPORT_DIR}/models/{model}/training_curves.png",
            f"{REPORT_DIR}/models/{model}/val_scores.png",
            f"{REPORT_DIR}/models/{model}/val_confusion.png",
            f"{REPORT_DIR}/models/{model}/val_worst.png",
            f"{REPORT_DIR}/models/{model}/val_table.html",
            f"{REPORT_DIR}/models/{model}/test_predictions.png",
            f"{REPORT_DIR}/models/{model}/submission_check.html",
        ]
    return outputs


def provenance_input(wildcards) -> dict:
    """What the record describes: the data index, every model's markers, metrics and
    submission, and the report's figures (their hashes are recorded too)."""
    inputs = {
        "validated": "results/data/validation.json",
        "stats": "results/data/stats.json",
        "train": [f"results/models/{m}/train.json" for m in MODELS],
        "best": [f"results/models/{m}/best.json" for m in MODELS],
        "metrics": [f"results/models/{m}/val_metrics.json" for m in MODELS],
        "zips": [f"results/submission/{m}.zip" for m in MODELS],
        "checks": [f"results/submission/{m}.check.json" for m in MODELS],
        "figures": report_outputs(),
    }
    if is_generated_source():
        inputs["source"] = "results/data/source/source.json"
    return inputs


def all_outputs() -> list[str]:
    outputs = ["results/data/validation.json", "results/data/stats.json"]
    for model in MODELS:
        outputs += [
            f"results/models/{model}/best.json",
            f"results/models/{model}/val_metrics.json",
            f"results/models/{model}/colour/done.json",
            f"results/submission/{model}.zip",
        ]
    outputs += report_outputs()
    outputs.append("results/provenance/provenance.json")
    return outputs

# Train each model (resuming from its last checkpoint) and select its checkpoint.


def train_inputs(wildcards) -> dict:
    """Data index, statistics, the model config and its bases (+ the flipped set)."""
    inputs = {
        "validation": "results/data/validation.json",
        "stats": "results/data/stats.json",
        "config": model_config_file(wildcards),
        "bases": sorted(str(p) for p in Path("configs/_base_").glob("*.py")),
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


rule train:
    input:
        unpack(train_inputs),
    output:
        # Checkpoints stay in the work_dir (not outputs), so a failed or
        # interrupted run keeps them and a rerun resumes from the last one.
        train="results/models/{model}/train.json",
    params:
        work_dir="results/models/{model}/train",
        train_on_val=config["train_on_val"],
        overrides=model_overrides,
        gpus=model_gpus,
    log:
        "logs/models/{model}/train.log",
    benchmark:
        "benchmarks/models/{model}/train.tsv"
    threads: train_threads
    resources:
        gpu=model_gpus,
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/train.py"


rule select:
    input:
        train=rules.train.output.train,
    output:
        best="results/models/{model}/best.json",
    params:
        select_iter=model_select_iter,
    log:
        "logs/models/{model}/select.log",
    threads: 1
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/select.py"

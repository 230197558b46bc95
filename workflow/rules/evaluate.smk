# Evaluate the selected checkpoint on val (no TTA and face-aware TTA) and
# predict the test split with TTA. Both load the model the train step dumped
# (train.json -> config) with the checkpoint select picked (best.json).


def inference_gpus(wildcards) -> int:
    """Inference uses one GPU when the model trains on GPUs, else none."""
    return min(1, model_gpus(wildcards))


def inference_device(wildcards) -> str:
    return "cuda:0" if model_gpus(wildcards) > 0 else "cpu"


rule evaluate:
    input:
        best="results/models/{model}/best.json",
        train="results/models/{model}/train.json",
        validated="results/data/validation.json",
    output:
        val_pred=directory("results/models/{model}/val_pred"),
        metrics=report(
            "results/models/{model}/val_metrics.json",
            caption="../report/val_metrics.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "metrics (JSON)"},
        ),
        table=report(
            "results/models/{model}/val_metrics.html",
            caption="../report/val_metrics_table.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "per-class table"},
        ),
    params:
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        device=inference_device,
        # Images per forward pass (each TTA augmentation is its own pass).
        batch_size=8,
    log:
        "logs/models/{model}/evaluate.log",
    benchmark:
        "benchmarks/models/{model}/evaluate.tsv"
    threads: 4
    resources:
        gpu=inference_gpus,
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/evaluate.py"


rule predict:
    input:
        best="results/models/{model}/best.json",
        train="results/models/{model}/train.json",
        validated="results/data/validation.json",
    output:
        test_pred=directory("results/models/{model}/test_pred"),
    params:
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        device=inference_device,
        batch_size=8,
    log:
        "logs/models/{model}/predict.log",
    benchmark:
        "benchmarks/models/{model}/predict.tsv"
    threads: 4
    resources:
        gpu=inference_gpus,
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/predict.py"

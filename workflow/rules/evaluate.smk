# Evaluate the selected checkpoint on val (no TTA and face-aware TTA) and
# predict the test split with TTA. Both load the model the train step dumped
# (train.json -> config) with the checkpoint select picked (best.json), on
# cuda:0 when the rule holds a GPU (resources gpu=1), else on the CPU.
# A model is an ensemble of one: ensemble.smk reuses these two rules (use rule)
# with the members' records in place of the model's.


rule evaluate:
    input:
        best=[rules.select.output.best],
        train=[rules.train.output.train],
        validated=rules.validate.output.validation,
    output:
        val_pred=directory("results/models/{model}/val_pred"),
        metrics=report(
            "results/models/{model}/val_metrics.json",
            caption="../report/val_metrics.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "metrics (JSON)"},
        ),
    params:
        members=lambda wildcards: [wildcards.model],
        weights=None,
        as_ensemble=False,
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        # Images per forward pass (each TTA augmentation is its own pass).
        batch_size=config["inference"]["batch_size"],
    log:
        "logs/models/{model}/evaluate.log",
    benchmark:
        "benchmarks/models/{model}/evaluate.tsv"
    threads: min(8, workflow.cores)
    resources:
        gpu=inference_gpus,
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/evaluate.py"


rule predict:
    input:
        best=[rules.select.output.best],
        train=[rules.train.output.train],
        validated=rules.validate.output.validation,
    output:
        test_pred=directory("results/models/{model}/test_pred"),
    params:
        members=lambda wildcards: [wildcards.model],
        weights=None,
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        batch_size=config["inference"]["batch_size"],
    log:
        "logs/models/{model}/predict.log",
    benchmark:
        "benchmarks/models/{model}/predict.tsv"
    threads: min(8, workflow.cores)
    resources:
        gpu=inference_gpus,
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/predict.py"

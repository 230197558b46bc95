# Evaluate the selected checkpoint on val (no TTA and face-aware TTA) and
# predict the test split with TTA. With a dev split (common.smk): when val has no masks,
# evaluate scores dev (dev_pred/, dev_metrics.json) and predict_val predicts val like test;
# when val has masks, val is scored as ever and evaluate_dev scores dev beside it. Both load the model the train step dumped
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
        val_pred=directory(f"results/models/{{model}}/{EVAL_SPLIT}_pred"),
        metrics=report(
            f"results/models/{{model}}/{EVAL_SPLIT}_metrics.json",
            caption="../report/val_metrics.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "metrics (JSON)"},
        ),
    params:
        members=lambda wildcards: [wildcards.model],
        weights=None,
        as_ensemble=False,
        split=EVAL_SPLIT,
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        # the clean-up of the TTA masks (off by default)
        postprocess=config["postprocess"],
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
        split="test",
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        # the clean-up of the TTA masks (off by default)
        postprocess=config["postprocess"],
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


if not VAL_HAS_MASKS:

    # The development-phase submission: val images predicted like test (package_val zips them).
    use rule predict as predict_val with:
        output:
            test_pred=directory("results/models/{model}/val_pred"),
        params:
            split="val",
        log:
            "logs/models/{model}/predict_val.log",
        benchmark:
            "benchmarks/models/{model}/predict_val.tsv"

elif DEV_SPLIT:

    # Val is held out and scored by evaluate; the dev split that selected the checkpoint is scored too.
    use rule evaluate as evaluate_dev with:
        output:
            val_pred=directory("results/models/{model}/dev_pred"),
            metrics=report(
                "results/models/{model}/dev_metrics.json",
                caption="../report/val_metrics.rst",
                category="Evaluation",
                labels={"model": "{model}", "file": "dev metrics (JSON)"},
            ),
        params:
            split="dev",
        log:
            "logs/models/{model}/evaluate_dev.log",
        benchmark:
            "benchmarks/models/{model}/evaluate_dev.tsv"

# Ensembles (config `ensembles`): the members' face-aware TTA probabilities averaged per
# image, through the same rules as a single model (use rule): evaluate on val
# (val_metrics.json; dev when val has no masks, when val is also predicted and zipped), predict
# test, colour previews and the Codalab zip. Results under results/ensembles/{ensemble}/,
# the zip beside the models' in results/submission/. All members run in one job, one batch
# at a time through every member.


use rule evaluate as ensemble_evaluate with:
    input:
        unpack(ensemble_inputs),
    output:
        val_pred=directory(f"results/ensembles/{{ensemble}}/{EVAL_SPLIT}_pred"),
        metrics=report(
            f"results/ensembles/{{ensemble}}/{EVAL_SPLIT}_metrics.json",
            caption="../report/ensemble_metrics.rst",
            category="Leaderboard",
            labels={"model": "{ensemble} (ensemble)", "file": "metrics (JSON)"},
        ),
    params:
        members=ensemble_members,
        weights=ensemble_weights,
        as_ensemble=True,
    log:
        "logs/ensembles/{ensemble}/evaluate.log",
    benchmark:
        "benchmarks/ensembles/{ensemble}/evaluate.tsv"
    resources:
        gpu=ensemble_gpus,


use rule predict as ensemble_predict with:
    input:
        unpack(ensemble_inputs),
    output:
        test_pred=directory("results/ensembles/{ensemble}/test_pred"),
    params:
        members=ensemble_members,
        weights=ensemble_weights,
    log:
        "logs/ensembles/{ensemble}/predict.log",
    benchmark:
        "benchmarks/ensembles/{ensemble}/predict.tsv"
    resources:
        gpu=ensemble_gpus,


if not VAL_HAS_MASKS:

    use rule predict_val as ensemble_predict_val with:
        input:
            unpack(ensemble_inputs),
        output:
            test_pred=directory("results/ensembles/{ensemble}/val_pred"),
        params:
            members=ensemble_members,
            weights=ensemble_weights,
        log:
            "logs/ensembles/{ensemble}/predict_val.log",
        benchmark:
            "benchmarks/ensembles/{ensemble}/predict_val.tsv"
        resources:
            gpu=ensemble_gpus,

    use rule package_val as ensemble_package_val with:
        input:
            test_pred=rules.ensemble_predict_val.output.test_pred,
            validated=rules.validate.output.validation,
        output:
            zip="results/submission/val/{ensemble}.zip",
            check="results/submission/val/{ensemble}.check.json",
        log:
            "logs/submission/val/{ensemble}.log",
        benchmark:
            "benchmarks/submission/val/{ensemble}.tsv"


use rule colourise as ensemble_colourise with:
    input:
        val_pred=ensemble_val_predictions,
        test_pred=rules.ensemble_predict.output.test_pred,
        validated=rules.validate.output.validation,
    output:
        done="results/ensembles/{ensemble}/colour/done.json",
        val_grid="results/ensembles/{ensemble}/colour/val_grid.jpg",
        test_grid="results/ensembles/{ensemble}/colour/test_grid.jpg",
    log:
        "logs/ensembles/{ensemble}/colourise.log",
    benchmark:
        "benchmarks/ensembles/{ensemble}/colourise.tsv"


use rule package as ensemble_package with:
    input:
        test_pred=rules.ensemble_predict.output.test_pred,
        validated=rules.validate.output.validation,
    output:
        zip="results/submission/{ensemble}.zip",
        check="results/submission/{ensemble}.check.json",
    log:
        "logs/submission/{ensemble}.log",
    benchmark:
        "benchmarks/submission/{ensemble}.tsv"

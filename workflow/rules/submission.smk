# Colour previews of the predictions and the Codalab submission zip.


rule colourise:
    input:
        val_pred=rules.evaluate.output.val_pred,
        test_pred=rules.predict.output.test_pred,
        validated="results/data/validation.json",
    output:
        done="results/models/{model}/colour/done.json",
        val_grid=report(
            "results/models/{model}/colour/val_grid.jpg",
            caption="../report/colour_val.rst",
            category="Predictions",
            labels={"model": "{model}", "split": "val"},
        ),
        test_grid=report(
            "results/models/{model}/colour/test_grid.jpg",
            caption="../report/colour_test.rst",
            category="Predictions",
            labels={"model": "{model}", "split": "test"},
        ),
    log:
        "logs/models/{model}/colourise.log",
    benchmark:
        "benchmarks/models/{model}/colourise.tsv"
    threads: workflow.cores
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/colourise.py"


rule package:
    input:
        test_pred=rules.predict.output.test_pred,
        validated="results/data/validation.json",
    output:
        zip="results/submission/{model}.zip",
        check=report(
            "results/submission/{model}.check.json",
            caption="../report/submission.rst",
            category="Submission",
            labels={"model": "{model}", "file": "check"},
        ),
    log:
        "logs/submission/{model}.log",
    threads: workflow.cores
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/package.py"

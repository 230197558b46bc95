# Colour previews of the predictions and the Codalab submission zip (the report's
# submission section, in report.smk, shows the zip, its check and a test grid).


rule colourise:
    input:
        val_pred=rules.evaluate.output.val_pred,
        test_pred=rules.predict.output.test_pred,
        validated=rules.validate.output.validation,
    output:
        done="results/models/{model}/colour/done.json",
        # contact sheets of the first images (photo | truth | prediction | overlay)
        val_grid="results/models/{model}/colour/val_grid.jpg",
        test_grid="results/models/{model}/colour/test_grid.jpg",
    log:
        "logs/models/{model}/colourise.log",
    benchmark:
        "benchmarks/models/{model}/colourise.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/colourise.py"


rule package:
    input:
        test_pred=rules.predict.output.test_pred,
        validated=rules.validate.output.validation,
    output:
        zip="results/submission/{model}.zip",
        check="results/submission/{model}.check.json",
    log:
        "logs/submission/{model}.log",
    benchmark:
        "benchmarks/submission/{model}.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/package.py"


# The later editions' masks archive: the same checked masks as the Codalab zip, in a masks/ folder.
use rule package as package_masks with:
    output:
        zip="results/submission/{model}.masks.zip",
        check="results/submission/{model}.masks.check.json",
    params:
        folder="masks",
    log:
        "logs/submission/{model}.masks.log",
    benchmark:
        "benchmarks/submission/{model}.masks.tsv"


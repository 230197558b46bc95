# Colour previews of the predictions and the Codalab submission zip (the report's
# submission section, in report.smk, shows the zip, its check and a test grid).


rule colourise:
    input:
        val_pred=val_predictions,
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
    params:
        split="test",
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
        split="test",
        folder="masks",
    log:
        "logs/submission/{model}.masks.log",
    benchmark:
        "benchmarks/submission/{model}.masks.tsv"


# The later editions' code submission of a CompactFaceNet model: run.py (PyTorch, OpenCV, Pillow
# and numpy only), the network's file, ckpt.pth, solution.json and Readme.txt. Its run.py must
# label parity_images val images as the evaluate step did (>= 99.9% of the pixels), else the job
# fails. Another model requested here stops the DAG with one line (solution_input).
rule solution:
    input:
        unpack(solution_input),
    output:
        solution=directory("results/submission/{model}_solution"),
        parity="results/submission/{model}_solution.parity.json",
    params:
        scales=config["tta"]["scales"],
        flip=config["tta"]["flip"],
        postprocess=config["postprocess"],
        parity_images=20,
    log:
        "logs/submission/{model}_solution.log",
    benchmark:
        "benchmarks/submission/{model}_solution.tsv"
    threads: min(4, workflow.cores)
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/solution.py"


if not VAL_HAS_MASKS:

    # Val without masks: its predictions zipped like test's (the development-phase submission).
    use rule package as package_val with:
        input:
            test_pred=rules.predict_val.output.test_pred,
            validated=rules.validate.output.validation,
        output:
            zip="results/submission/val/{model}.zip",
            check="results/submission/val/{model}.check.json",
        params:
            split="val",
        log:
            "logs/submission/val/{model}.log",
        benchmark:
            "benchmarks/submission/val/{model}.tsv"

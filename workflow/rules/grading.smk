# The later editions' grading zip of a CompactFaceNet model: the report draft (from the run's
# records), the test masks, the solution folder and the code, checked before it is kept.


rule grading:
    input:
        masks=rules.package_masks.output.zip,
        masks_check=rules.package_masks.output.check,
        solution=rules.solution.output.solution,
        parity=rules.solution.output.parity,
        train=rules.train.output.train,
        best=rules.select.output.best,
        metrics=rules.evaluate.output.metrics,
        benchmark=rules.train.benchmark,
        curves=rules.training_curves.output.curves,
        grid=rules.colourise.output.val_grid,
    output:
        zip="results/submission/{model}_grading.zip",
        check="results/submission/{model}_grading.check.json",
        # the draft beside the zip, to edit (the zip holds it as drafted)
        report="results/submission/{model}_report.md",
    params:
        tta=config["tta"],
        max_params=config["rules"]["max_params"],
        # the commit and a fingerprint of the code the zip carries: an edit of it remakes the zip
        code=grading_code_state,
        repo=str(REPO_ROOT),
    log:
        "logs/submission/{model}_grading.log",
    benchmark:
        "benchmarks/submission/{model}_grading.tsv"
    threads: 1
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/grading.py"

# The report stage: figures and tables for `snakemake --report results/report.zip`
# (data, training, evaluation, submission) and the provenance record: exactly
# which data, code, config and checkpoint produced each result.
rule data_samples:
    input:
        unpack(data_samples_input),
    output:
        samples=report(
            f"{REPORT_DIR}/data/samples.png",
            caption="../report/data_samples.rst",
            category="Data",
            labels={"file": "samples (original and flipped)"},
        ),
        summary=report(
            f"{REPORT_DIR}/data/summary.html",
            caption="../report/data_summary.rst",
            category="Data",
            labels={"file": "counts, class frequency, stats"},
        ),
        class_frequency=report(
            f"{REPORT_DIR}/data/class_frequency.png",
            caption="../report/class_frequency.rst",
            category="Data",
            labels={"file": "class frequency"},
        ),
    params:
        shown=4,
    log:
        "logs/report/data_samples.log",
    benchmark:
        "benchmarks/report/data_samples.tsv"
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/report_data.py"


rule training_curves:
    input:
        train=rules.train.output.train,
        best=rules.select.output.best,
    output:
        curves=report(
            f"{REPORT_DIR}/models/{{model}}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"model": "{model}", "file": "loss, val mIoU, lr"},
        ),
    log:
        "logs/report/{model}/training_curves.log",
    benchmark:
        "benchmarks/report/{model}/training_curves.tsv"
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/report_training.py"


rule evaluation_plots:
    input:
        metrics=rules.evaluate.output.metrics,
        val_pred=rules.evaluate.output.val_pred,
        validated=rules.validate.output.validation,
    output:
        scores=report(
            f"{REPORT_DIR}/models/{{model}}/val_scores.png",
            caption="../report/eval_scores.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "per-class IoU and F1"},
        ),
        confusion=report(
            f"{REPORT_DIR}/models/{{model}}/val_confusion.png",
            caption="../report/eval_confusion.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "confusion matrix"},
        ),
        worst=report(
            f"{REPORT_DIR}/models/{{model}}/val_worst.png",
            caption="../report/eval_worst.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "worst val images"},
        ),
        table=report(
            f"{REPORT_DIR}/models/{{model}}/val_table.html",
            caption="../report/eval_table.rst",
            category="Evaluation",
            labels={"model": "{model}", "file": "numbers (per class, per image)"},
        ),
    params:
        shown=6,
    log:
        "logs/report/{model}/evaluation_plots.log",
    benchmark:
        "benchmarks/report/{model}/evaluation_plots.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/report_evaluation.py"


rule submission_summary:
    input:
        # The zip itself is a report item (a download link in the Submission section).
        zip=report(
            rules.package.output.zip,
            caption="../report/submission_zip.rst",
            category="Submission",
            labels={"model": "{model}", "file": "zip"},
        ),
        check=rules.package.output.check,
        test_pred=rules.predict.output.test_pred,
        validated=rules.validate.output.validation,
    output:
        grid=report(
            f"{REPORT_DIR}/models/{{model}}/test_predictions.png",
            caption="../report/submission_grid.rst",
            category="Submission",
            labels={"model": "{model}", "file": "test predictions"},
        ),
        check=report(
            f"{REPORT_DIR}/models/{{model}}/submission_check.html",
            caption="../report/submission_check.rst",
            category="Submission",
            labels={"model": "{model}", "file": "check summary"},
        ),
    params:
        shown=8,
    log:
        "logs/report/{model}/submission_summary.log",
    benchmark:
        "benchmarks/report/{model}/submission_summary.tsv"
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/report_submission.py"


rule leaderboard:
    input:
        unpack(leaderboard_input),
    output:
        table=report(
            f"{REPORT_DIR}/leaderboard.html",
            caption="../report/leaderboard_table.rst",
            category="Leaderboard",
            labels={"file": "table (models and ensembles)"},
        ),
        figure=report(
            f"{REPORT_DIR}/leaderboard.png",
            caption="../report/leaderboard_figure.rst",
            category="Leaderboard",
            labels={"file": "figure (scores, per-class IoU)"},
        ),
    params:
        models=MODELS,
        ensembles={name: list(spec["models"]) for name, spec in config["ensembles"].items()},
    log:
        "logs/report/leaderboard.log",
    benchmark:
        "benchmarks/report/leaderboard.tsv"
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/report_leaderboard.py"


rule provenance:
    input:
        unpack(provenance_input),
    output:
        provenance=report(
            "results/provenance/provenance.json",
            caption="../report/provenance_record.rst",
            category="Provenance",
            labels={"file": "record (JSON)"},
        ),
        html=report(
            "results/provenance/provenance.html",
            caption="../report/provenance_view.rst",
            category="Provenance",
            labels={"file": "code, data, config, checkpoints"},
        ),
        runtimes=report(
            "results/provenance/runtimes.png",
            caption="../report/provenance_runtimes.rst",
            category="Provenance",
            labels={"file": "run time per step"},
        ),
    params:
        # Params, not inputs: a new commit, a dirty tree, an edited file or another
        # config each rerun this rule (Snakemake's default rerun trigger on params).
        code=provenance_code_state,
        workflow_config=config,
        models=MODELS,
        ensembles=ENSEMBLES,
        deliverable_checks=deliverable_check_names,
        bench_dir="benchmarks",
    log:
        "logs/provenance/provenance.log",
    threads: workflow.cores
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/provenance.py"

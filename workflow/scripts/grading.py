"""Step grading: the later editions' grading zip of a CompactFaceNet model (report draft from the
records, test masks, solution folder, code), checked before it is kept."""

import os
from pathlib import Path

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.deliver.grading import build_grading_zip, report_facts, report_markdown  # noqa: E402
from faceparse.records import atomic_path  # noqa: E402
from faceparse.report.provenance import SUBMISSION_CODE_PATHS, code_files  # noqa: E402

inp, params = snakemake.input, snakemake.params
facts = report_facts(
    snakemake.wildcards.model,
    train_json=inp.train,
    best_json=inp.best,
    metrics_json=inp.metrics,
    parity_json=inp.parity,
    benchmark_tsv=inp.benchmark,
    masks_check_json=inp.masks_check,
    max_params=params.max_params,
    tta=params.tta,
    code=params.code,
)
figures = {"training_curves.png": inp.curves, "val_predictions.jpg": inp.grid}
build_grading_zip(
    snakemake.wildcards.model,
    snakemake.output.zip,
    snakemake.output.check,
    facts=facts,
    masks_zip=inp.masks,
    solution_dir=inp.solution,
    figures=figures,
    code_root=params.repo,
    code_files=code_files(params.repo, SUBMISSION_CODE_PATHS),
)
with atomic_path(snakemake.output.report) as tmp:
    # its figures where the pipeline keeps them, relative to the draft
    here = Path(snakemake.output.report).parent
    Path(tmp).write_text(report_markdown(facts, [os.path.relpath(path, here) for path in figures.values()]))

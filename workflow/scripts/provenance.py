"""Step provenance: code, data, config, checkpoints, environment and run times as one record."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.report.provenance import write_provenance  # noqa: E402

inp, params = snakemake.input, snakemake.params
models = {
    model: {
        "train": inp.train[i],
        "best": inp.best[i],
        "metrics": inp.metrics[i],
        # no zip before the test images are out
        "zip": inp.zips[i] if inp.zips else None,
        "check": inp.checks[i] if inp.checks else None,
    }
    for i, model in enumerate(params.models)
}
ensembles = {
    name: {
        "metrics": inp.ensemble_metrics[i],
        "zip": inp.ensemble_zips[i] if inp.ensemble_zips else None,
        "check": inp.ensemble_checks[i] if inp.ensemble_checks else None,
    }
    for i, name in enumerate(params.ensembles)
}
deliverables = {}
for key, path in zip(params.deliverable_checks, inp.deliverable_checks):
    model, part = key.split(":")
    deliverables.setdefault(model, {})[part] = path
write_provenance(
    json_out=snakemake.output.provenance,
    html_out=snakemake.output.html,
    runtimes_png=snakemake.output.runtimes,
    validation_json=inp.validated,
    stats_json=inp.stats,
    source_json=inp.get("source"),
    models=models,
    ensembles=ensembles,
    deliverables=deliverables,
    config=params.workflow_config,
    code=params.code,
    bench_dir=params.bench_dir,
    outputs=[*inp.zips, *inp.metrics, *inp.ensemble_zips, *inp.ensemble_metrics, *inp.deliverables, *inp.figures],
    threads=snakemake.threads,
)

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
        "zip": inp.zips[i],
        "check": inp.checks[i],
    }
    for i, model in enumerate(params.models)
}
ensembles = {
    name: {"metrics": inp.ensemble_metrics[i], "zip": inp.ensemble_zips[i], "check": inp.ensemble_checks[i]}
    for i, name in enumerate(params.ensembles)
}
write_provenance(
    json_out=snakemake.output.provenance,
    html_out=snakemake.output.html,
    runtimes_png=snakemake.output.runtimes,
    validation_json=inp.validated,
    stats_json=inp.stats,
    source_json=inp.get("source"),
    models=models,
    ensembles=ensembles,
    config=params.workflow_config,
    code=params.code,
    bench_dir=params.bench_dir,
    outputs=[*inp.zips, *inp.metrics, *inp.ensemble_zips, *inp.ensemble_metrics, *inp.deliverables, *inp.figures],
    threads=snakemake.threads,
)

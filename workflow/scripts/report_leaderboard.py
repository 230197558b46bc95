"""Report: the leaderboard of all models and ensembles (HTML table and PNG figure)."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.report.leaderboard import write_leaderboard  # noqa: E402

inp, params = snakemake.input, snakemake.params
models = {
    model: {
        "metrics": inp.metrics[i],
        "best": inp.best[i],
        "train": inp.train[i],
        "train_benchmark": inp.train_benchmarks[i],
    }
    for i, model in enumerate(params.models)
}
ensembles = {
    name: {"metrics": inp.ensemble_metrics[i], "members": members}
    for i, (name, members) in enumerate(params.ensembles.items())
}
write_leaderboard(models, ensembles, table_html=snakemake.output.table, figure_png=snakemake.output.figure)

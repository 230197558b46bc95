"""Step script of rule select: see faceparse.train.select.select."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # snakemake injects it

from faceparse.train.select import select  # noqa: E402
from faceparse.train.tracking import tracking_of  # noqa: E402

select(
    train_json=snakemake.input.train,
    best_json=snakemake.output.best,
    select_iter=snakemake.params.select_iter,
    metric=snakemake.params.metric,
    # from the config, not a param of the rule: turning tracking on or off reruns no job
    tracking=tracking_of(snakemake.config, snakemake.wildcards.model),
)

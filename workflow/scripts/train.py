"""Step script of rule train: see faceparse.train.step.train."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # snakemake injects it

from faceparse.train.step import train  # noqa: E402
from faceparse.train.tracking import tracking_of  # noqa: E402

train(
    config_file=snakemake.input.config,
    validation=snakemake.input.validation,
    stats=snakemake.input.stats,
    flip=snakemake.input.get("flip"),
    train_json=snakemake.output.train,
    work_dir=snakemake.params.work_dir,
    train_on_val=snakemake.params.train_on_val,
    overrides=snakemake.params.overrides,
    gpus=snakemake.params.gpus,
    select_iter=snakemake.params.select_iter,
    # from the config, not a param of the rule: turning tracking on or off reruns no job
    tracking=tracking_of(snakemake.config, snakemake.wildcards.model),
    threads=snakemake.threads,
)

"""Step script of rule train: see faceparse.train.step.train."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - snakemake injects it

from faceparse.train.step import train  # noqa: E402
from faceparse.train.tracking import tracking_of  # noqa: E402

train(
    config_file=snakemake.input.config,  # noqa: F821
    validation=snakemake.input.validation,  # noqa: F821
    stats=snakemake.input.stats,  # noqa: F821
    flip=snakemake.input.get("flip"),  # noqa: F821
    train_json=snakemake.output.train,  # noqa: F821
    work_dir=snakemake.params.work_dir,  # noqa: F821
    train_on_val=snakemake.params.train_on_val,  # noqa: F821
    overrides=snakemake.params.overrides,  # noqa: F821
    gpus=snakemake.params.gpus,  # noqa: F821
    select_iter=snakemake.params.select_iter,  # noqa: F821
    # from the config, not a param of the rule: turning tracking on or off reruns no job
    tracking=tracking_of(snakemake.config, snakemake.wildcards.model),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)

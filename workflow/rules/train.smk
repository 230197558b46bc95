# Train each model (resuming from its last checkpoint) and select its checkpoint.

# The params that decide the weights (besides the input files): train's, and select's too (below).
WEIGHT_PARAMS = dict(train_on_val=config["train_on_val"], overrides=model_overrides, gpus=model_gpus)


rule train:
    input:
        unpack(train_inputs),
    output:
        # Checkpoints stay in the work_dir (not outputs), so a failed or
        # interrupted run keeps them and a rerun resumes from the last one;
        # the work_dir's fingerprint.json says which inputs they belong to.
        train="results/models/{model}/train.json",
    params:
        **WEIGHT_PARAMS,
        work_dir="results/models/{model}/train",
        # Kept through checkpoint rotation (and checked before training). A new
        # value reruns this job, which finds the run already done: not retrained.
        select_iter=model_select_iter,
    log:
        "logs/models/{model}/train.log",
    benchmark:
        "benchmarks/models/{model}/train.tsv"
    threads: train_threads
    resources:
        gpu=model_gpus,
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/train.py"


# Select also has train's inputs and weight-determining params (best.json is a product of
# them): Snakemake deletes a failed train job's train.json and does not remake a missing
# intermediate output whose consumers look up to date, so without them a failed training
# (then `snakemake results/models/M/val_metrics.json`) would leave the previous config's
# best.json and metrics looking current. They rerun nothing more: whatever reruns train
# rewrites train.json, which reruns select anyway.
rule select:
    input:
        unpack(train_inputs),
        train=rules.train.output.train,
    output:
        best="results/models/{model}/best.json",
    params:
        **WEIGHT_PARAMS,
        select_iter=model_select_iter,
        # the val score that picks the checkpoint: mIoU (2022 rules) or mF1 (later editions)
        metric=config["selection"]["metric"],
    log:
        "logs/models/{model}/select.log",
    threads: 1
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/select.py"

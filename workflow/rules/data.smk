# Data stages: make the source (synthetic faces or converted CelebAMask-HQ; a mini dataset
# is read in place), validate it, flip the training images (left/right labels swapped) and
# compute the normalisation statistics. Each rule handles whole splits in one job.


def training_splits() -> list[str]:
    """The splits the model trains on: train, and val too when config train_on_val is set."""
    return ["train", "val"] if config["train_on_val"] else ["train"]


def expected_image_size() -> int | None:
    """The size validate insists on: known for generated data, else each split's most common."""
    if config["data_layout"] == "synthetic":
        return config["synthetic"]["size"]
    if config["data_layout"] == "celebamask-hq":
        return 512
    return None


def source_input() -> dict:
    """A CelebAMask-HQ conversion reads the release folder; the synthetic generator reads nothing."""
    if config["data_layout"] == "celebamask-hq":
        if not config["data_root"]:
            raise ValueError("config: data_layout=celebamask-hq needs data_root=<CelebAMask-HQ release folder>")
        return {"release": config["data_root"]}
    return {}


if is_generated_source():

    rule source:
        input:
            **source_input(),
        output:
            manifest="results/data/source/source.json",
        params:
            layout=config["data_layout"],
            synthetic=config["synthetic"],
            data_root=config["data_root"],
            max_images=config["celebamask_hq"]["max_images"],
            size=expected_image_size(),
        log:
            "logs/data/source.log",
        benchmark:
            "benchmarks/data/source.tsv"
        threads: workflow.cores
        conda:
            "../envs/data.yaml"
        script:
            "../scripts/make_source.py"


rule validate:
    input:
        **validate_input(),
    output:
        validation="results/data/validation.json",
        plot=report(
            "results/data/class_frequency.png",
            caption="../report/class_frequency.rst",
            category="Data",
        ),
    params:
        root=data_root(),
        layout=config["data_layout"],
        size=expected_image_size(),
    log:
        "logs/data/validate.log",
    benchmark:
        "benchmarks/data/validate.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/validate.py"


rule flip:
    input:
        validation=rules.validate.output.validation,
    output:
        flipped=directory("results/data/flipped"),
        manifest="results/data/flip.json",
    params:
        splits=training_splits(),
    log:
        "logs/data/flip.log",
    benchmark:
        "benchmarks/data/flip.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/flip.py"


rule stats:
    input:
        validation=rules.validate.output.validation,
    output:
        stats="results/data/stats.json",
    params:
        splits=training_splits(),
    log:
        "logs/data/stats.log",
    benchmark:
        "benchmarks/data/stats.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/stats.py"

"""What the workflow needs while it builds the DAG, and nothing heavier (no torch, no mmseg, no matplotlib).

The Snakefile and ``rules/common.smk`` import only this module:

- :func:`export_package_path`: the jobs' interpreters find this package;
- :func:`validate_config`, :func:`check_ensembles`, :func:`check_models`, :func:`check_rules`:
  the config checked before any job (the schema, then what a schema cannot say, then the
  challenge's rules);
- :func:`config_sources`: the files a model config inherits (the train rule's inputs);
- :func:`solution_models`: the models that can have a solution folder (CompactFaceNet's);
- :func:`source_fingerprint`: a cheap fingerprint of a dataset read in place (a rule param);
- :func:`val_has_masks`, :func:`check_dev_split`: whether val is labelled and whether a dev split
  is carved out of train (the DAG's shape: what selects and what is scored, packaged);
- :func:`code_state`: the git state and code fingerprint (the provenance rule's param).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from faceparse.data.celebamask import release_fingerprint
from faceparse.data.devsplit import DevSplitError, dev_count, resolve_dev_split
from faceparse.data.fingerprint import listing_fingerprint
from faceparse.data.layouts import IMAGE_SUFFIXES, LayoutError, has_masks, split_dirs
from faceparse.model_configs import check_models, config_sources, load_config, pretrained_sources
from faceparse.report.provenance import code_state

__all__ = ["export_package_path", "validate_config", "check_ensembles", "check_models", "check_rules",
           "config_sources", "source_fingerprint", "val_has_masks", "check_dev_split", "code_state",
           "SOLUTION_BACKBONE", "solution_models"]

# The backbone of the models with a solution folder: faceparse.mm.compact.CompactFaceBackbone (named,
# not imported: no mmseg here; faceparse.predict.solution checks the rest of the config).
SOLUTION_BACKBONE = "CompactFaceBackbone"


def export_package_path() -> str:
    """Put this package's source folder first on PYTHONPATH for the jobs' interpreters.

    In `.venv` the package is installed (editable) anyway; `--sdm conda` envs and
    cluster jobs only find it this way. Returns the folder.
    """
    src = str(Path(__file__).resolve().parents[1])
    paths = [src] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    return src


def validate_config(config: MutableMapping, schema: str | Path) -> None:
    """Snakemake's schema validation (defaults filled in), failing with the problem and where it
    is in the config, not the whole schema that jsonschema's message prints after it."""
    try:
        validate(config, str(schema))
    except WorkflowError as err:
        cause = err.__context__  # snakemake raises it while handling jsonschema's error
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        where = ".".join(str(p) for p in cause.absolute_path) or "the top level"
        raise WorkflowError(f"config: {where}: {cause.message} (schema: {schema})") from None


def check_ensembles(ensembles: Mapping[str, Mapping], models: Iterable[str]) -> None:
    """Refuse, with one message naming every problem, ensembles the schema cannot check:
    members that are not configured models, a name that is also a model's (their results
    and zips would collide), and a weight list of the wrong length."""
    models = list(models)
    problems = []
    for name, spec in ensembles.items():
        members = list(spec.get("models", []))
        unknown = [m for m in members if m not in models]
        if unknown:
            problems.append(f"ensembles.{name}.models: {unknown} not among the configured models {models}")
        if name in models:
            problems.append(f"ensembles.{name}: the name is also a model's (results/submission/{name}.zip "
                            "would be both); rename the ensemble")
        weights = spec.get("weights")
        if weights is not None and len(weights) != len(members):
            problems.append(f"ensembles.{name}.weights: {len(weights)} weights for {len(members)} models")
    if problems:
        raise ValueError("config: " + "; ".join(problems))


def source_fingerprint(layout: str, root: str | Path | None) -> str:
    """Paths, sizes and mtimes of the files a data root holds (a mini set, or the CelebAMask-HQ
    release); empty for generated data."""
    if layout == "mini":
        return listing_fingerprint(root)
    if layout == "celebamask-hq":
        return release_fingerprint(root)
    return ""


def val_has_masks(config: Mapping) -> bool:
    """Whether the val split comes with masks: generated data always; a mini root when its val masks
    folder exists (a root that is no dataset counts as labelled: validate reports it)."""
    if config["data_layout"] != "mini":
        return True
    try:
        return has_masks(config["data_root"], "val")
    except LayoutError:
        return True


def _train_images(config: Mapping) -> int | None:
    """How many train images the run will have, where that is cheap to know (None: not before the
    CelebAMask-HQ conversion; validate checks it then)."""
    if config["data_layout"] == "synthetic":
        return int(config["synthetic"]["counts"]["train"])
    if config["data_layout"] != "mini":
        return None
    try:
        image_dir = split_dirs(config["data_root"])["train"].image_dir
        return sum(1 for e in os.scandir(image_dir)
                   if not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
    except (LayoutError, OSError):
        return None  # validate names the problem


def check_dev_split(config: Mapping, labelled_val: bool) -> dict | None:
    """The dev split the run carves out of train (:func:`faceparse.data.devsplit.resolve_dev_split`:
    the config's ``dev_split``, or the default when val has no masks), or None; refuses in one
    ``ValueError`` what cannot work: a bad fraction, a split that leaves train empty,
    ``train_on_val`` without val masks."""
    problems = []
    try:
        dev = resolve_dev_split(config.get("dev_split"), labelled_val)
    except DevSplitError as exc:
        raise ValueError(f"config: {exc}") from None
    if config["train_on_val"] and not labelled_val:
        problems.append("train_on_val: val has no masks (no val masks folder in data_root), so it cannot be "
                        "trained on; set train_on_val: false")
    train_images = _train_images(config) if dev else None
    if train_images is not None:
        try:
            dev_count(train_images, dev["fraction"])
        except DevSplitError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("config: " + "; ".join(problems))
    return dev


def check_rules(config: Mapping, base_dir: str | Path) -> None:
    """Refuse, in one ``ValueError`` naming every problem, what the config's ``rules`` forbid:
    a model with ``max_params`` parameters or more, pretrained weights, an ensemble."""
    rules, problems = config.get("rules") or {}, []
    if rules.get("ensembles") is False and config.get("ensembles"):
        problems.append(f"ensembles: {sorted(config['ensembles'])}: the rules allow no ensembles "
                        "(rules.ensembles: false)")
    no_pretrained, limit = rules.get("pretrained") is False, rules.get("max_params")
    # without a rule on models no config is loaded again (check_models has loaded each already)
    models = config["models"] if no_pretrained or limit is not None else {}
    for name, spec in models.items():
        cfg = load_config(Path(base_dir) / spec["config"], spec.get("overrides") or {})
        if no_pretrained:
            problems += [f"models.{name}: loads pretrained weights, which the rules forbid (rules.pretrained: "
                         f"false): {source}" for source in pretrained_sources(cfg.to_dict())]
        if limit is not None:
            # deferred: torch and mmseg take seconds to import, paid only under a parameter budget
            from faceparse.mm.params import count_parameters

            try:
                count = count_parameters(cfg.model)
            except Exception as error:  # noqa: BLE001 - any build error, reported with the model's name
                problems.append(f"models.{name}: {spec['config']}: the model cannot be built to count its "
                                f"parameters: {type(error).__name__}: {error}")
                continue
            if count >= limit:
                problems.append(f"models.{name}: {count:,} parameters; the rules allow fewer than {limit:,} "
                                f"(rules.max_params, counted as sum(p.numel() for p in model.parameters()))")
    if problems:
        raise ValueError("config: " + "\n  ".join(["the challenge's rules refuse:", *problems]))


def solution_models(models: Mapping[str, Mapping], base_dir: str | Path) -> list[str]:
    """The configured models whose backbone (overrides merged) is :data:`SOLUTION_BACKBONE`: the
    ones the later editions' code submission (rule solution) can be made of."""
    names = []
    for name, spec in models.items():
        cfg = load_config(Path(base_dir) / spec["config"], spec.get("overrides") or {})
        if (cfg.model.get("backbone") or {}).get("type") == SOLUTION_BACKBONE:
            names.append(name)
    return names

"""What the workflow needs while it builds the DAG, and nothing heavier (no torch, no mmseg, no matplotlib).

The Snakefile and ``rules/common.smk`` import only this module:

- :func:`export_package_path`: the jobs' interpreters find this package;
- :func:`validate_config`, :func:`check_ensembles`, :func:`check_workflow_models`, :func:`check_rules`:
  the config checked before any job (the schema, then what a schema cannot say, then the
  challenge's rules), its mappings in :func:`canonical` key order; the models' facts (what they
  inherit, their parameter counts, ...) cached in :data:`CACHE_FILE` (:mod:`faceparse.model_facts`);
- :func:`solution_models`: the models that can have a solution folder (CompactFaceNet's);
- :func:`dataset_root`: the folder a mini layout is read from (release zips unpacked first);
- :func:`source_fingerprint`: a cheap fingerprint of a dataset read in place (a rule param);
- :func:`val_has_masks`, :func:`check_dev_split`, :func:`test_released`: whether val is labelled,
  whether a dev split is carved out of train and whether the test images are out yet (the DAG's
  shape: what selects and what is scored, predicted, packaged);
- :func:`code_state`: the git state and code fingerprint (the provenance rule's param);
  :func:`submission_code_state`: the same over what the grading zip packs (the grading rule's).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from faceparse.data.celebamask import release_fingerprint
from faceparse.data.devsplit import DevSplitError, dev_count, resolve_dev_split
from faceparse.data.fingerprint import listing_fingerprint
from faceparse.data.layouts import IMAGE_SUFFIXES, LayoutError, has_images, has_masks, split_dirs
from faceparse.data.release_zip import RECORD, ReleaseZipError, is_zip_source, unpack_release, zip_paths
from faceparse.model_configs import refuse_model_problems
from faceparse.model_facts import CACHE_FILE, ModelFacts, model_facts
from faceparse.report.provenance import code_state, submission_code_state

__all__ = [
    "export_package_path",
    "canonical",
    "validate_config",
    "CACHE_FILE",
    "check_ensembles",
    "check_workflow_models",
    "check_rules",
    "dataset_root",
    "RELEASE_DIR",
    "source_fingerprint",
    "val_has_masks",
    "test_released",
    "check_dev_split",
    "code_state",
    "submission_code_state",
    "SOLUTION_BACKBONE",
    "solution_models",
]

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


def canonical(value):
    """``value`` with the keys of every mapping in it sorted (recursively; lists keep their order).

    Snakemake compares a param by its ``repr``, so a mapping's key order, which means nothing in
    YAML, would rerun a job; every mapping the rules pass on comes from the config sorted so."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return type(value)(canonical(v) for v in value)
    return value


def validate_config(config: MutableMapping, schema: str | Path) -> None:
    """Snakemake's schema validation (defaults filled in), failing with the problem and where it
    is in the config, not the whole schema that jsonschema's message prints after it. Then the
    config's mappings are put in :func:`canonical` order, in place."""
    try:
        validate(config, str(schema))
    except WorkflowError as err:
        cause = err.__context__  # snakemake raises it while handling jsonschema's error
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        where = ".".join(str(p) for p in cause.absolute_path) or "the top level"
        raise WorkflowError(f"config: {where}: {cause.message} (schema: {schema})") from None
    ordered = canonical(dict(config))
    config.clear()
    config.update(ordered)


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
            problems.append(
                f"ensembles.{name}: the name is also a model's (results/submission/{name}.zip "
                "would be both); rename the ensemble"
            )
        weights = spec.get("weights")
        if weights is not None and len(weights) != len(members):
            problems.append(f"ensembles.{name}.weights: {len(weights)} weights for {len(members)} models")
    if problems:
        raise ValueError("config: " + "; ".join(problems))


# Where release zips named by data_root are unpacked (relative to the project folder).
RELEASE_DIR = Path("results") / "data" / "release"


def dataset_root(config: Mapping) -> str | None:
    """The folder a mini layout is read from: ``data_root``, or, when it names release zips (one
    path or a list), :data:`RELEASE_DIR` with the zips unpacked into it. Unpacking happens here, while
    the DAG is built, because the DAG's shape depends on what the zips hold (val masks or not, the
    dev split); it is done once per set of zips (:func:`faceparse.data.release_zip.unpack_release`),
    and a zip that is refused stops the workflow with one line before any job."""
    root = config.get("data_root")
    if config["data_layout"] != "mini" or not is_zip_source(root):
        return root
    try:
        unpack_release(zip_paths(root), RELEASE_DIR)
    except ReleaseZipError as error:
        raise WorkflowError(f"config: data_root: {error}") from None
    return str(RELEASE_DIR)


def source_fingerprint(layout: str, root: str | Path | None) -> str:
    """Paths, sizes and mtimes of the files a data root holds (a mini set, or the CelebAMask-HQ
    release); empty for generated data. For unpacked release zips, their fingerprint (names and
    CRCs of the entries) is added: a zip whose content changed at equal sizes and dates is seen."""
    if layout == "mini":
        record = Path(root) / RECORD
        if record.is_file():
            return listing_fingerprint(root) + ":" + json.loads(record.read_text())["fingerprint"]
        return listing_fingerprint(root)
    if layout == "celebamask-hq":
        return release_fingerprint(root)
    return ""


def _mini_root_has(config: Mapping, root: str | Path | None, present: Callable[[str | Path | None], bool]) -> bool:
    """``present(root)`` for a mini root; True for generated data, and for a root that is no dataset
    (validate reports it)."""
    if config["data_layout"] != "mini":
        return True
    try:
        return present(root)
    except LayoutError:
        return True


def val_has_masks(config: Mapping, root: str | Path | None) -> bool:
    """Whether the val split comes with masks: generated data always; a mini root when its val masks
    folder exists."""
    return _mini_root_has(config, root, lambda r: has_masks(r, "val"))


def test_released(config: Mapping, root: str | Path | None) -> bool:
    """Whether the test images are there (the course releases them a week before the deadline):
    generated data always; a mini root when its test images folder exists."""
    return _mini_root_has(config, root, lambda r: has_images(r, "test"))


def _train_images(config: Mapping, root: str | Path | None) -> int | None:
    """How many train images the run will have, where that is cheap to know (None: not before the
    CelebAMask-HQ conversion; validate checks it then)."""
    if config["data_layout"] == "synthetic":
        return int(config["synthetic"]["counts"]["train"])
    if config["data_layout"] != "mini":
        return None
    try:
        image_dir = split_dirs(root)["train"].image_dir
        return sum(
            1
            for e in os.scandir(image_dir)
            if not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
        )
    except (LayoutError, OSError):
        return None  # validate names the problem


def check_dev_split(config: Mapping, labelled_val: bool, root: str | Path | None) -> dict | None:
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
        problems.append(
            "train_on_val: val has no masks (no val masks folder in data_root), so it cannot be "
            "trained on; set train_on_val: false"
        )
    train_images = _train_images(config, root) if dev else None
    if train_images is not None:
        try:
            dev_count(train_images, dev["fraction"])
        except DevSplitError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("config: " + "; ".join(problems))
    return dev


def check_workflow_models(
    config: Mapping, base_dir: str | Path, cache_file: str | Path | None = CACHE_FILE
) -> dict[str, ModelFacts]:
    """Every model's facts (:func:`faceparse.model_facts.model_facts`, from ``cache_file`` while
    valid): refuses, in one ``ValueError`` each, the models' problems (as
    :func:`faceparse.model_configs.check_models`), then what the challenge's rules forbid
    (:func:`check_rules`)."""
    counting = (config.get("rules") or {}).get("max_params") is not None
    facts = model_facts(config["models"], base_dir, counting, cache_file)
    refuse_model_problems([problem for fact in facts.values() for problem in fact.problems])
    check_rules(config, base_dir, facts)
    return facts


def check_rules(config: Mapping, base_dir: str | Path, facts: Mapping[str, ModelFacts] | None = None) -> None:
    """Refuse, in one ``ValueError`` naming every problem, what the config's ``rules`` forbid:
    a model with ``max_params`` parameters or more, pretrained weights, an ensemble. ``facts``:
    the models' (worked out here, without a cache, when not given)."""
    rules, problems = config.get("rules") or {}, []
    if rules.get("ensembles") is False and config.get("ensembles"):
        problems.append(
            f"ensembles: {sorted(config['ensembles'])}: the rules allow no ensembles (rules.ensembles: false)"
        )
    no_pretrained, limit = rules.get("pretrained") is False, rules.get("max_params")
    if facts is None and (no_pretrained or limit is not None):
        facts = model_facts(config["models"], base_dir, limit is not None, cache_file=None)
    for name, spec in config["models"].items() if no_pretrained or limit is not None else ():
        fact = facts[name]
        if no_pretrained:
            problems += [
                f"models.{name}: loads pretrained weights, which the rules forbid (rules.pretrained: false): {source}"
                for source in fact.pretrained
            ]
        if limit is None:
            continue
        if fact.parameters is None:
            problems.append(
                f"models.{name}: {spec['config']}: the model cannot be built to count its parameters: "
                f"{fact.build_error}"
            )
        elif fact.parameters >= limit:
            problems.append(
                f"models.{name}: {fact.parameters:,} parameters; the rules allow fewer than {limit:,} "
                f"(rules.max_params, counted as sum(p.numel() for p in model.parameters()))"
            )
    if problems:
        raise ValueError("config: " + "\n  ".join(["the challenge's rules refuse:", *problems]))


def solution_models(facts: Mapping[str, ModelFacts]) -> list[str]:
    """The models whose backbone (overrides merged) is :data:`SOLUTION_BACKBONE`: the ones the later
    editions' code submission (rule solution) can be made of."""
    return [name for name, fact in facts.items() if fact.backbone == SOLUTION_BACKBONE]

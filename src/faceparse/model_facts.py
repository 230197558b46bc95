"""What the start-up checks need to know of each configured model, remembered between ``snakemake`` calls.

Every ``snakemake`` call, a dry-run included, checks the models before any job: their configs load
with their overrides, a pinned ``select_iter`` is a saved checkpoint, the challenge's rules hold
(no pretrained weights, fewer than ``rules.max_params`` parameters), which are CompactFaceNets (the
solution folder), which files each config inherits (the train rule's inputs). Knowing that means
importing mmengine (a fifth of a second) and, to count parameters, torch and mmseg and building the
model (seconds). So the facts of a model are stored in :data:`CACHE_FILE` and reused while nothing
they depend on has changed:

- the model's entry in the config (its config file, overrides and ``select_iter``);
- the bytes of the config file and of every file it inherits (each file's sha256 is stored with
  the facts and compared on every call; a new ``_base_`` can only come from an edit of one of
  these files, so the list of inherited files cannot go stale either);
- the code that reads configs and builds networks (``faceparse.model_configs``, ``faceparse.mm``,
  ``faceparse.networks``) and the versions of torch, mmseg, mmengine, mmcv and timm.

Any change of these is a miss and the facts are worked out again: a stale count cannot be
answered. A cache that cannot be read (missing, truncated, another format) is a miss too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ["CACHE_FILE", "FACT_CODE", "ModelFacts", "code_digest", "model_facts"]

# Beside Snakemake's own metadata: removed with it (make clean), never a user's output.
CACHE_FILE = Path(".snakemake") / "faceparse" / "model_facts.json"
_PACKAGE = Path(__file__).resolve().parent
# The code the facts come from: config loading and checking, the registered mmseg pieces, the networks.
FACT_CODE = ("model_configs.py", "mm", "networks")
_LIBRARIES = ("torch", "mmsegmentation", "mmengine", "mmcv", "timm")
_FORMAT = 1
# The keys of a model's entry that its facts depend on (gpus does not change them).
_SPEC_KEYS = ("config", "overrides", "select_iter")


@dataclass(frozen=True)
class ModelFacts:
    """What the start-up checks know of one model."""

    problems: list[str] = field(default_factory=list)  # what check_models refuses ("models.NAME...: ...")
    sources: list[str] = field(default_factory=list)  # the config file, then every file it inherits
    pretrained: list[str] = field(default_factory=list)  # where it would load pretrained weights
    backbone: str | None = None  # model.backbone.type, overrides merged
    parameters: int | None = None  # None: not counted (no budget), or the model cannot be built
    build_error: str | None = None  # why it cannot be built, when counting was asked for


def _sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_digest(package: Path = _PACKAGE) -> str:
    """The source of :data:`FACT_CODE` under ``package`` and the libraries' versions (read on each
    call: a few tens of milliseconds, and an edit between two calls is seen)."""
    digest = hashlib.sha256(f"faceparse model facts v{_FORMAT}\0".encode())
    for name in FACT_CODE:
        path = package / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}=={version}\0".encode())
    return digest.hexdigest()


def _entry_key(name: str, spec: Mapping, config_file: Path) -> str:
    wanted = {key: spec.get(key) for key in _SPEC_KEYS}
    text = json.dumps([name, str(config_file.resolve()), wanted], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _work_out(name: str, spec: Mapping, config_file: Path, count: bool) -> ModelFacts:
    """The facts from the config itself: mmengine always, torch and mmseg when counting."""
    from faceparse.model_configs import config_sources, load_config, model_problems, pretrained_sources

    problems = model_problems(name, spec, config_file)
    if problems:
        return ModelFacts(problems=problems)
    cfg = load_config(config_file, spec.get("overrides") or {})
    parameters, build_error = None, None
    if count:
        # deferred: torch and mmseg take seconds to import, paid only when a count is not known
        from faceparse.mm.params import count_parameters

        try:
            parameters = count_parameters(cfg.model)
        except Exception as error:  # noqa: BLE001 - any build error, reported with the model's name
            build_error = f"{type(error).__name__}: {error}"
    return ModelFacts(
        sources=config_sources(config_file),
        pretrained=pretrained_sources(cfg.to_dict()),
        backbone=(cfg.model.get("backbone") or {}).get("type"),
        parameters=parameters,
        build_error=build_error,
    )


def _read(cache_file: Path) -> dict:
    try:
        data = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("models"), dict):
        return {}
    return data["models"]


def _write(cache_file: Path, entries: Mapping) -> None:
    """Atomically; a cache that cannot be written only costs working the facts out next time."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, prefix=".facts-")
        with os.fdopen(fd, "w") as out:
            json.dump({"format": _FORMAT, "models": dict(sorted(entries.items()))}, out, indent=1)
        os.replace(tmp, cache_file)
    except OSError:
        pass


def _cached(entry, code: str, count: bool) -> ModelFacts | None:
    """The stored facts, if they are still those of the files and code as they are now."""
    try:
        if entry["code"] != code or not entry["sources"]:
            return None
        for path, sha in entry["sources"]:
            if _sha256_file(path) != sha:
                return None
        facts = ModelFacts(**entry["facts"])
    except (OSError, KeyError, TypeError, ValueError):
        return None
    if count and facts.parameters is None and facts.build_error is None:
        return None  # stored without a count; one is wanted now
    if facts.parameters is not None and (not isinstance(facts.parameters, int) or isinstance(facts.parameters, bool)):
        return None
    return facts


def model_facts(
    models: Mapping[str, Mapping],
    base_dir: str | Path,
    count: bool,
    cache_file: str | Path | None = CACHE_FILE,
    package: Path = _PACKAGE,
) -> dict[str, ModelFacts]:
    """The facts of every model of the workflow config (config files relative to ``base_dir``),
    parameter counts included when ``count``; from ``cache_file`` where they are still valid
    (None: no cache, everything worked out)."""
    cache = Path(cache_file) if cache_file is not None else None
    entries = _read(cache) if cache is not None else {}
    code = code_digest(package) if cache is not None else ""
    facts, changed = {}, False
    for name, spec in models.items():
        config_file = Path(base_dir) / spec["config"]
        key = _entry_key(name, spec, config_file)
        found = _cached(entries.get(key), code, count) if cache is not None else None
        if found is None:
            found = _work_out(name, spec, config_file, count)
            if cache is not None and found.sources:  # a config that does not load is not remembered
                entries[key] = {
                    "code": code,
                    "sources": [[path, _sha256_file(path)] for path in found.sources],
                    "facts": asdict(found),
                }
                changed = True
        facts[name] = found
    if changed:
        # merged with what another snakemake call may have stored meanwhile
        _write(cache, {**_read(cache), **entries})
    return facts

"""What the Snakefile sets up before any rule: the jobs' environment and readable config errors."""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path


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
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema))
    except WorkflowError as err:
        cause = err.__context__  # snakemake raises it while handling jsonschema's error
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        where = ".".join(str(p) for p in cause.absolute_path) or "the top level"
        raise WorkflowError(f"config: {where}: {cause.message} (schema: {schema})") from None

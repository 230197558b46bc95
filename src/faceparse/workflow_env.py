"""Environment the Snakefile sets up for its jobs."""
from __future__ import annotations

import os
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

"""Fixtures shared by the test modules."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from _pipeline import TINY_CONFIG, run_snakemake


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole DAG run once on TINY_CONFIG in a temporary work dir (end-to-end and report tests)."""
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    result = run_snakemake(workdir)
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir

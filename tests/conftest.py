"""Fixtures shared by the test modules, and the CI rule that no test may be skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from _pipeline import TINY_CONFIG, run_snakemake


def in_ci() -> bool:
    """CI=true (as .ci/run has it): tests install what they need, and a skip is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CI=true a skipped test fails: CI must run every test, not pass by leaving some out."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped with CI=true, where every test must run: {reason}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless Chromium for the report tests: found on PATH, or (CI, or
    FACEPARSE_INSTALL_CHROMIUM=1, as root) installed from Debian's packages; else skip."""
    import _browser as browser

    found = browser.find_chromium()
    wanted = in_ci() or os.environ.get("FACEPARSE_INSTALL_CHROMIUM", "") in ("1", "true", "yes")
    if found is None and wanted and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, timeout=900, env=env
        )
        found = browser.find_chromium()
    if found is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium, or FACEPARSE_INSTALL_CHROMIUM=1 "
            "to let the tests install it as root)"
        )
    return found


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole DAG run once on TINY_CONFIG in a temporary work dir (end-to-end and report tests)."""
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    result = run_snakemake(workdir)
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir

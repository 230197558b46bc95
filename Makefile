# faceparse — the two commands a user needs: `make demo` and `make test`.
VENV ?= .venv
CORES ?= 2
SNAKEMAKE = $(VENV)/bin/snakemake
# what make lint and make format check and rewrite (settings: pyproject.toml, [tool.ruff], [tool.snakefmt])
PY_CODE = src tests bench workflow/scripts
SMK_CODE = workflow/Snakefile workflow/rules

.PHONY: setup demo test test-fast report tensorboard docs lock lint format clean

## setup: create .venv from requirements.lock (+ cached mmcv wheel, + this project)
setup:
	tools/setup_env.sh

## demo: setup if needed, then run the whole pipeline on config.yaml (synthetic data)
demo: setup
	$(SNAKEMAKE) --cores $(CORES) --resources gpu=0 --printshellcmds

## test: setup if needed, then the whole test suite (slow end-to-end tests included)
test: setup
	$(VENV)/bin/pytest -v

## test-fast: unit tests only (skips the end-to-end DAG runs)
test-fast: setup
	$(VENV)/bin/pytest -m "not slow and not slurm"

## report: the provenance report of the last run
report: setup
	$(SNAKEMAKE) --report results/report.html
	$(SNAKEMAKE) --report results/report.zip

## tensorboard: live training curves of every run (results/models/*/train/runs/*/tensorboard)
tensorboard: setup
	$(VENV)/bin/tensorboard --logdir results/models

## docs: the documentation site, built strictly into site/ (a broken link or anchor fails); open site/index.html
# (NO_MKDOCS_2_WARNING: mkdocs-material prints a banner about MkDocs 2 on every build; it is not about these docs)
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## lint: ruff (lint, then format check) on the Python code, snakefmt --check on the workflow, snakemake's linter
lint: setup
	$(VENV)/bin/ruff check $(PY_CODE)
	$(VENV)/bin/ruff format --check $(PY_CODE)
	$(VENV)/bin/snakefmt --check $(SMK_CODE)
	$(SNAKEMAKE) --lint

## format: rewrite the code as make lint wants it (ruff's fixes, ruff format, snakefmt); make lint lists what is left
# (--fix-only: the fixes first, so that the formatter tidies what they rewrite; the findings it cannot fix do not stop the formatting)
format: setup
	$(VENV)/bin/ruff check --fix-only $(PY_CODE)
	$(VENV)/bin/ruff format $(PY_CODE)
	$(VENV)/bin/snakefmt $(SMK_CODE)

## lock: re-resolve requirements.in into requirements.lock (maintainers only)
lock:
	tools/lock.sh

clean:
	rm -rf results logs benchmarks .snakemake site

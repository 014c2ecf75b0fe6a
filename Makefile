# skysmart — every target creates the virtual environment it needs.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHELL  := /bin/bash
# Let Python cache bytecode in .venv: without it every subprocess recompiles pandas (~2 s each).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv demo test lint bench sandbox airflow browser lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	@$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check pipelines skysmart_airflow skysmart_sandbox dags tests bench scripts
	$(BIN)/ruff format --check pipelines skysmart_airflow skysmart_sandbox dags tests bench scripts
	$(BIN)/mypy pipelines skysmart_airflow skysmart_sandbox dags scripts
	# A run of its own: the tests import scripts/ as the package ``scripts``, which the run above checks as files.
	$(BIN)/mypy tests bench
	$(BIN)/lint-imports --no-cache

# Airflow's tests get a process of their own: dag.test() runs Airflow's execution API in-process, and a
# worker that ran hundreds of other tests first has been seen to give the push DAG an empty selection.
test: lint browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup --ignore=tests/airflow $(PYTEST_ARGS)
	$(BIN)/python -m pytest -p no:xdist tests/airflow $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m skysmart_sandbox.demo $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

sandbox: $(STAMP)
	$(BIN)/skysmart sandbox serve $(SANDBOX_ARGS)

# The sandbox and a real Airflow 3 (UI, scheduler, dag-processor) on 127.0.0.1; Ctrl-C stops all of it.
airflow: $(STAMP)
	$(BIN)/python scripts/airflow_local.py $(AIRFLOW_ARGS)

# The UI tests drive Debian's headless Chromium (Playwright's own browser downloads are not used).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is missing: install Debian's chromium" >&2; exit 1; }

lock: $(STAMP)
	$(BIN)/uv pip freeze --python $(BIN)/python --exclude-editable | grep -v -E '^(uv|pip|setuptools)==' \
	  | sed '1i # Exact versions that resolve together (Python 3.11); regenerate with `make lock`.' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build *.egg-info lake warehouse.duckdb .demo .airflow

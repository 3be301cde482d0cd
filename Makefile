# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the integration tests start on loopback (issue #6 uses them).
DEBS := prometheus-pushgateway prometheus prometheus-alertmanager
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check lint bench calibrate services install install-test clean deploy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/aimon demo

services:
	@missing=""; \
	command -v prometheus-pushgateway >/dev/null || missing="$$missing prometheus-pushgateway"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: install-test services
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check aimon flows tasks tests bench
	$(BIN)/ruff format --check aimon flows tasks tests bench
	$(BIN)/mypy

check: lint test

# One script, one table (README "Benchmarks"): 1M and 10M-row days in DuckDB and 1M in
# PostgreSQL, whole run and each part, Prefect included; drift against Evidently and
# naive scipy on the same frames. ~25 min on 2 cores; figures in .aimon/bench/e2e.json.
bench: install
	nice -n 10 $(BIN)/python bench/bench_e2e.py --threads --cli

# Single-part benchmarks, each with its own README table.
.PHONY: bench-parts
bench-parts: install
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_quality.py
	nice -n 10 $(BIN)/python bench/bench_drift.py
	$(BIN)/python bench/bench_abtest.py
	$(BIN)/python bench/bench_export.py

# Register the prefect.yaml deployments with the Prefect API in PREFECT_API_URL (start
# one with `prefect server start`); creates the process work pool if it is missing.
POOL ?= aimon-process
deploy: install
	$(BIN)/prefect work-pool inspect $(POOL) >/dev/null 2>&1 || $(BIN)/prefect work-pool create $(POOL) --type process
	$(BIN)/prefect --no-prompt deploy --all
	@echo "now: $(BIN)/prefect worker start --pool $(POOL)"

# Drift defaults: false-positive rate and power on simulated windows (README "Drift").
calibrate: install
	nice -n 10 $(BIN)/python bench/calibrate_drift.py

clean:
	rm -rf $(VENV) .aimon

# A/B calibration: false-positive rate under daily peeking, power (README, A/B experiments).
.PHONY: calibrate-ab
calibrate-ab: install
	$(BIN)/python bench/calibrate_ab.py

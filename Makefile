# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the integration tests start on loopback (Pushgateway, Prometheus and
# promtool, Alertmanager), and the headless browser that renders the HTML report in
# tests/test_report_browser.py and takes the docs' screenshots (`make screenshots`).
DEBS := prometheus-pushgateway prometheus prometheus-alertmanager chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check lint docs bench calibrate services install install-test link clean deploy

# Strict editable install: a link tree under build/ that maps flows/ and tasks/ to
# aimon.flows and aimon.tasks, which mypy and editors can follow. It lists files, so it is
# rebuilt (a second, dependency-free install) whenever a source folder gains or loses one.
EDITABLE := --config-settings editable_mode=strict
SRC_DIRS := $(shell find aimon flows tasks -type d -not -name __pycache__ 2>/dev/null)
LINKTREE  = $(firstword $(wildcard build/__editable__.aimon-*))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'setuptools>=68' wheel

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . $(EDITABLE)
	touch $@ $(VENV)/.linked

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,docs]' $(EDITABLE)
	touch $@ $(VENV)/.installed $(VENV)/.linked

$(VENV)/.linked: $(SRC_DIRS) | $(VENV)/.installed
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . $(EDITABLE) 2>/dev/null
	touch $@

install: $(VENV)/.installed $(VENV)/.linked
install-test: $(VENV)/.installed-test $(VENV)/.linked
link: $(VENV)/.linked

demo: install
	$(BIN)/aimon demo

services:
	@missing=""; \
	command -v prometheus-pushgateway >/dev/null || missing="$$missing prometheus-pushgateway"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# A real Phoenix server for tests/test_capture_phoenix.py, in its own virtualenv:
# arize-phoenix needs pandas 3, which evidently 0.7 (the drift analyzer) cannot import.
PHOENIX_VENV := .venv-phoenix
PHOENIX_VERSION ?= 20.26.1
$(PHOENIX_VENV)/.installed:
	$(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/pip install -q 'arize-phoenix==$(PHOENIX_VERSION)'
	touch $@
.PHONY: phoenix
phoenix: $(PHOENIX_VENV)/.installed

# The README's test command, and what CI runs: every check, then the whole suite.
# Both cores, one test file per worker (module fixtures and test order stay as they are).
test: lint docs services phoenix
	$(BIN)/pytest -n 2 --dist loadfile

# ruff (style, the banned old import names, function-level imports), mypy and the layer
# contracts (import-linter). mypy and import-linter read the link tree, where aimon.flows
# and aimon.tasks sit inside aimon/ as they do once installed.
LINT_PATHS := aimon flows tasks tests bench docs/hooks.py
lint: install-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	MYPYPATH=$(LINKTREE) $(BIN)/mypy
	cd $(LINKTREE) && $(CURDIR)/$(BIN)/lint-imports --no-cache --no-logo $(CURDIR)/pyproject.toml

# The docs site (mkdocs-material); --strict fails on a broken link or a page left out.
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .aimon/site

check: test

# One script, one table (docs/benchmarks.md): 1M and 10M-row days in DuckDB and 1M in
# PostgreSQL, whole run and each part, Prefect included; drift against Evidently and
# naive scipy on the same frames. ~25 min on 2 cores; figures in .aimon/bench/e2e.json.
bench: install
	nice -n 10 $(BIN)/python bench/bench_e2e.py --threads --cli

# The docs' pictures of the HTML report (docs/img/report-*.png, shown in docs/report.md):
# the demo's report, each page checked in headless Chromium as tests/test_report_browser.py
# checks it, then photographed by the same harness (tests/browser.py). ~2 min.
.PHONY: screenshots
screenshots: install-test services
	$(BIN)/python bench/screenshots.py

# The HTML report on a year of daily windows (docs/benchmarks.md#html-report): 10 real demo
# days monitored by the flow, stretched to 365 windows; full build and report.after_run. ~2 min.
.PHONY: bench-report
bench-report: install
	nice -n 10 $(BIN)/python bench/bench_report.py

# Single-part benchmarks, each with its own table in docs/benchmarks.md.
.PHONY: bench-parts
bench-parts: install-test bench-tools
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_quality.py
	nice -n 10 $(BIN)/python bench/bench_drift.py
	$(BIN)/python bench/bench_abtest.py
	$(BIN)/python bench/bench_export.py
	nice -n 10 $(BIN)/python bench/bench_costopt.py
	$(BIN)/python bench/bench_capture.py

# wrk (Debian's package) loads uvicorn for bench_capture.py's middleware side by side.
.PHONY: bench-tools
bench-tools:
	@command -v wrk >/dev/null || { echo "installing Debian package: wrk"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends wrk >/dev/null; }

# Register the prefect.yaml deployments with the Prefect API in PREFECT_API_URL (start
# one with `prefect server start`); creates the process work pool if it is missing.
POOL ?= aimon-process
deploy: install
	$(BIN)/prefect work-pool inspect $(POOL) >/dev/null 2>&1 || $(BIN)/prefect work-pool create $(POOL) --type process
	$(BIN)/prefect --no-prompt deploy --all
	@echo "now: $(BIN)/prefect worker start --pool $(POOL)"

# Drift defaults: false-positive rate and power on simulated windows (docs/benchmarks.md).
calibrate: install
	nice -n 10 $(BIN)/python bench/calibrate_drift.py
	nice -n 10 $(BIN)/python bench/calibrate_cbpe.py
	nice -n 10 $(BIN)/python bench/calibrate_srm.py
	nice -n 10 $(BIN)/python bench/calibrate_cuped.py
	nice -n 10 $(BIN)/python bench/calibrate_semantic.py
	nice -n 10 $(BIN)/python bench/calibrate_ksample.py
	nice -n 10 $(BIN)/python bench/backtest_forecast.py
	nice -n 10 $(BIN)/python bench/calibrate_switch.py

clean:
	rm -rf $(VENV) .aimon build

# A/B calibration: false-positive rate under daily peeking, power (docs/benchmarks.md).
.PHONY: calibrate-ab
calibrate-ab: install
	$(BIN)/python bench/calibrate_ab.py

# Alert rules: pages on a simulated normal year and per injected incident, two
# differently shaped generators (bench/alertsim; docs/alerts.md "Calibration").
# CONFIG=bench/alertsim/rules_before.yaml runs the rules as they were before issue #20.
CONFIG ?= configs/monitoring.yaml
.PHONY: calibrate-alerts
calibrate-alerts: install
	nice -n 10 $(BIN)/python bench/calibrate_alerts.py --config $(CONFIG) --jobs 2

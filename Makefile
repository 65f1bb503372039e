# Two commands do everything on a fresh machine with Python 3.12+, make and git:
#   make demo   install, then build the sample catalog and say how to open the UI
#   make test   install, then run the whole test suite
SHELL := /bin/bash
UV_VERSION := 0.13.8
VENV := .venv
NT2_VENV := .venv-nautilus2
# Use the machine's uv if there is one, else bootstrap a pinned one into .tools/.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export DAGSTER_HOME := $(CURDIR)/.dagster
# Concurrent Tardis downloads (the `tardis` pool), backfills included.
TARDIS_POOL_LIMIT ?= 2
# data.binance.vision has no published rate limit; four concurrent downloads stay polite.
BINANCE_POOL_LIMIT ?= 4
# The browser test drives Debian's Chromium through Playwright (never a downloaded browser).
CHROMIUM := /usr/bin/chromium

.PHONY: install demo test format ui bench clean postgresql-server docs docs-serve

# Any Python 3 can host the bootstrapped uv; the project's own interpreter is found below.
$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The project needs Python 3.12-3.14 (nautilus_trader 1.231): tools/find-python looks in uv's
# discovery, pyenv's versions and PATH (or takes HEDGEGRID_PYTHON) and says which it uses.
$(VENV)/.installed: pyproject.toml uv.lock tools/find-python | $(UV)
	@PY=$$(tools/find-python $(UV)) || exit 1; echo "Using Python $$($$PY -c 'import platform; print(platform.python_version())') at $$PY"; \
	set -x; $(UV) sync --frozen --compile-bytecode --python "$$PY"
	@touch $@

# NautilusTrader 2.0 (pre-release, its own catalog format) in a second environment from its own
# lock (envs/nautilus2/uv.lock), so the main one keeps 1.231: tests and tools run 2.0 from here.
$(NT2_VENV)/.installed: envs/nautilus2/pyproject.toml envs/nautilus2/uv.lock tools/find-python | $(UV)
	@PY=$$(tools/find-python $(UV)) || exit 1; \
	set -x; UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(NT2_VENV) $(UV) sync --frozen --compile-bytecode --project envs/nautilus2 --python "$$PY"
	@touch $@

# The instance's configuration is the project's dagster.yaml; its data stays in .dagster/ (gitignored).
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# dagster.yaml has no per-pool key in Dagster 1.13: the pool's limit lives in the instance database.
$(DAGSTER_HOME)/.pool-tardis-$(TARDIS_POOL_LIMIT): $(DAGSTER_HOME)/dagster.yaml | $(VENV)/.installed
	$(VENV)/bin/dagster instance concurrency set tardis $(TARDIS_POOL_LIMIT)
	@touch $@

$(DAGSTER_HOME)/.pool-binance-$(BINANCE_POOL_LIMIT): $(DAGSTER_HOME)/dagster.yaml | $(VENV)/.installed
	$(VENV)/bin/dagster instance concurrency set binance $(BINANCE_POOL_LIMIT)
	@touch $@

# The run-retry daemon's cursors, so a new instance's first start logs no "No cursor" warning.
$(DAGSTER_HOME)/.run-retry-cursors: $(DAGSTER_HOME)/dagster.yaml | $(VENV)/.installed
	$(VENV)/bin/python -m hedgegrid_assets.automation.instance_setup
	@touch $@

install: $(VENV)/.installed $(NT2_VENV)/.installed $(DAGSTER_HOME)/dagster.yaml $(DAGSTER_HOME)/.pool-tardis-$(TARDIS_POOL_LIMIT) \
	$(DAGSTER_HOME)/.pool-binance-$(BINANCE_POOL_LIMIT) $(DAGSTER_HOME)/.run-retry-cursors

# Installed only when missing; needs root (or passwordless sudo). Without it the browser test skips.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "warning: $(CHROMIUM) missing and no root to install Debian's chromium; the browser test will skip"; exit 0; fi; \
	set -x; $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium

# The Postgres instance tests start a PostgreSQL server of their own (any version's binaries under
# /usr/lib/postgresql/*/bin); Debian's postgresql is installed only when none is there, as Chromium.
postgresql-server:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "warning: no PostgreSQL server in /usr/lib/postgresql and no root to install Debian's postgresql; the Postgres instance tests will skip"; exit 0; fi; \
	set -x; $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql

demo: install
	$(VENV)/bin/hedgegrid build --source sample --symbol BTCUSDT --symbol ETHUSDT \
		--start 2024-01-01 --end 2024-01-03
	@echo
	@echo "Open the Dagster UI on this instance:  make ui   (then http://127.0.0.1:3000)"

# Lint and format (ruff, configured in pyproject.toml), the docs site (strict: a broken link or a
# page missing from the nav fails), then the suite.
test: install $(CHROMIUM) postgresql-server
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	$(VENV)/bin/pytest -n 2 --dist loadgroup

# Apply ruff's safe fixes and its formatting (what `make test` checks).
format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# `dg dev` (dagster-dg-cli), which supersedes `dagster dev`: webserver + daemon on workspace.yaml.
# Started from inside DAGSTER_HOME: `dagster dev` warns about a dagster.yaml in the folder it starts
# from that is not DAGSTER_HOME (the project root holds one). HEDGEGRID_BASE_DIR keeps hedgegrid.toml
# and relative paths in the settings the project's, as for `hedgegrid build` run from here.
ui: install
	cd "$(DAGSTER_HOME)" && HEDGEGRID_BASE_DIR="$(CURDIR)" \
		"$(CURDIR)/$(VENV)/bin/dg" dev -w "$(CURDIR)/workspace.yaml" -h 127.0.0.1 -p 3000

# The documentation site (MkDocs Material, builds offline) into site/. --strict: a broken link, a
# page missing from the nav or a failing reference hook (settings and CLI references, generated from
# the code at every build) fails it. Not --quiet: mkdocs 1.6 then drops the warnings that strict counts.
# NO_MKDOCS_2_WARNING silences mkdocs-material's end-of-life banner.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict -a 127.0.0.1:8000

clean:
	rm -rf data .dagster

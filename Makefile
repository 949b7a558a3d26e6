# fleetmon: `make run` and `make test` do all the set-up on a fresh Debian machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLEETMON := $(VENV)/bin/fleetmon
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test check bench system-deps lint format clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

# Report on this machine through the local connection (no SSH needed): the text report on
# stdout, the HTML report beside it in report.html. Exit codes 1-3 are health verdicts.
run: $(STAMP)
	$(FLEETMON) run inventories/localhost.yaml --html report.html || [ $$? -le 3 ]
	@echo "HTML report: $(CURDIR)/report.html"

# Installs what the tests need (openssh-server, libvirt + QEMU, chromium, the Prometheus
# servers and InfluxDB of the export tests) when missing,
# then runs the whole suite.
test: $(STAMP) system-deps
	$(PY) -m pytest -q

system-deps:
	tests/setup/system-deps.sh

check: $(STAMP)
	$(VENV)/bin/ruff format --check fleetmon tests benchmarks
	$(VENV)/bin/ruff check fleetmon tests benchmarks
	$(VENV)/bin/mypy --strict fleetmon
	$(PY) -m pytest -q

format: $(STAMP)
	$(VENV)/bin/ruff format fleetmon tests benchmarks
	$(VENV)/bin/ruff check --fix fleetmon tests benchmarks

bench: $(STAMP) system-deps
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache tests/artifacts

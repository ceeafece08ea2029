# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Python packages go to .venv (pip's cache lives outside the checkout); PostgreSQL and Kafka are provisioned by
# deploy/local/infra.sh (Kafka's jars are cached outside the checkout too).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
INFRA := deploy/local/infra.sh

.PHONY: install infra run test test-unit lint fmt token bench bench-pipeline chaos events-docs migrate stop status

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

infra:
	$(INFRA) start

## Start PostgreSQL, Kafka and the four services with the demo merchant and store (Ctrl-C stops the services).
run: install infra
	$(PY) -m tools.stack run

## Run the whole test suite against the real PostgreSQL and Kafka.
test: install infra
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

fmt: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## A development token: make token ROLE=ops MERCHANT=demo-merchant
token: install
	@$(VENV)/bin/dropship token --role $(or $(ROLE),merchant) --merchant $(or $(MERCHANT),demo-merchant)

## One table of the system's figures (ingest, end to end, checkout, tab listing, memory) against a raw INSERT
## baseline measured in the same run (about 3 minutes; QUICK=1 for a short run).
bench: install infra
	$(PY) -m tools.bench $(if $(QUICK),--quick)

bench-pipeline: install infra
	$(PY) -m tools.bench_pipeline

## The chaos run: 2,000 orders while every service is SIGKILLed at random and Kafka and PostgreSQL restart (it runs
## its own PostgreSQL and Kafka; about 6 minutes). ORDERS=N for another size.
chaos: install
	$(PY) -m tools.chaos --orders $(or $(ORDERS),2000)

## The event catalog as JSON Schema and AsyncAPI, in docs/events.
events-docs: install
	$(VENV)/bin/dropship export-events --out docs/events

migrate: install infra
	for s in sync orders checkout tracking; do $(PY) -m services.$$s migrate || exit 1; done

stop:
	$(INFRA) stop

status:
	$(INFRA) status

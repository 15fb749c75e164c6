# sqlmigrate: `make migrate` applies the migrations, `make test` runs the tests.
# DATABASE_URL chooses the server and database (default: libpq's own defaults).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SQLMIGRATE := $(BIN)/sqlmigrate
STAMP := $(VENV)/.installed

.PHONY: migrate migrate-status migrate-down migration check test typecheck test-matrix bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(SQLMIGRATE) up

migrate-status: $(STAMP)
	$(SQLMIGRATE) status

migrate-down: $(STAMP)
	$(SQLMIGRATE) down

migration: $(STAMP)
	@test -n "$(name)" || { echo 'usage: make migration name=add_orders' >&2; exit 2; }
	$(SQLMIGRATE) generate "$(name)"

check: $(STAMP)
	$(SQLMIGRATE) check

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
	$(BIN)/python benchmarks/drift_generate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

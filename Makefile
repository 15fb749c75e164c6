# sqlmigrate: `make migrate` applies the migrations, `make test` runs the tests.
# DATABASE_URL chooses the server and database (default: libpq's own defaults).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SQLMIGRATE := $(BIN)/sqlmigrate
STAMP := $(VENV)/.installed

.PHONY: migrate migrate-status migrate-down migration check test bench install clean

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

bench: $(STAMP)
	$(BIN)/python benchmarks/check_speed.py
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

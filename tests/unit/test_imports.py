"""Start-up cost: what each entry point imports (checked in a fresh interpreter).
The commands that need no server; tests/integration/test_imports.py has the others."""
from tests.conftest import ROOT, modules_loaded_after


def test_help_imports_neither_psycopg_nor_sqlparse():
    assert modules_loaded_after(["--help"]) == set()


def test_check_never_loads_the_database_driver():
    assert modules_loaded_after(["check", "--dir", str(ROOT / "migrations")]) == {"sqlparse"}

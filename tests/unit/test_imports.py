"""Start-up cost: what each entry point imports (checked in a fresh interpreter)."""
import subprocess
import sys

from tests.conftest import ROOT


def _loaded_after(args: list[str]) -> set[str]:
    code = (
        "import contextlib, io, sys\n"
        "from sqlmigrate import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    cli.main({args!r}, {{}})\n"
        "print(' '.join(m for m in ('psycopg', 'sqlparse') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(out.stdout.split())


def test_help_imports_neither_psycopg_nor_sqlparse():
    assert _loaded_after(["--help"]) == set()


def test_check_never_loads_the_database_driver():
    assert _loaded_after(["check", "--dir", str(ROOT / "migrations")]) == {"sqlparse"}

"""Start-up cost: what each entry point imports (checked in a fresh interpreter)."""
import subprocess
import sys

import psycopg

from tests.conftest import ROOT


def _loaded_after(args: list[str]) -> set[str]:
    code = (
        "import contextlib, io, sys\n"
        "from sqlmigrate import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = cli.main({args!r}, {{}})\n"
        "print(code, ' '.join(m for m in ('psycopg', 'sqlparse') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    exit_code, *loaded = out.stdout.split()
    assert exit_code == "0", out.stderr
    return set(loaded)


def test_help_imports_neither_psycopg_nor_sqlparse():
    assert _loaded_after(["--help"]) == set()


def test_check_never_loads_the_database_driver():
    assert _loaded_after(["check", "--dir", str(ROOT / "migrations")]) == {"sqlparse"}


def test_up_and_down_leave_lexing_to_their_child_and_status_only_hashes(database, write_migrations):
    """`up` and `down` validate in a forked child, so their own process never
    loads sqlparse; neither do `status` and `verify` while every checksum
    matches (SPEC 2)."""
    mdir = str(write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n"),
                                 "002_b": ("create table b (id int);\n", "drop table b;\n")}))
    common = ["--dir", mdir, "--database-url", database]
    assert _loaded_after(["up", *common]) == {"psycopg"}
    assert _loaded_after(["status", *common]) == {"psycopg"}
    assert _loaded_after(["verify", *common]) == {"psycopg"}
    assert _loaded_after(["down", "--all", "--yes", *common]) == {"psycopg"}
    with psycopg.connect(database) as conn:  # the down.sql files lexed by the child did run
        assert conn.execute("select to_regclass('a'), to_regclass('b')").fetchone() == (None, None)


def test_status_lexes_an_up_sql_whose_checksum_changed(database, write_migrations):
    """The other side of the test above: telling reformatted from modified needs the lexer."""
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    common = ["--dir", str(mdir), "--database-url", database]
    assert _loaded_after(["up", *common]) == {"psycopg"}
    (mdir / "001_a" / "up.sql").write_text("CREATE TABLE a (id int);\n")
    assert _loaded_after(["status", *common]) == {"psycopg", "sqlparse"}

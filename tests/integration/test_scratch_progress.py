"""`test` and `drift` count their migrations on a terminal (n/N), and print nothing more elsewhere."""
from __future__ import annotations

from tests.conftest import run_cli, run_on_a_terminal

THREE = {f"00{n}_t{n}": (f"create table t{n} (id int);\n", f"drop table t{n};\n") for n in (1, 2, 3)}


def test_test_counts_its_migrations_on_a_terminal(database, write_migrations):
    mdir = write_migrations(THREE)
    code, text = run_on_a_terminal("test", "--dir", mdir, "--database-url", database)
    assert code == 0, text
    lines = [line.replace("\x1b[32m", "").replace("\x1b[0m", "") for line in text.splitlines()]
    assert lines[:3] == ["[1/3] 001_t1 ... ok", "[2/3] 002_t2 ... ok", "[3/3] 003_t3 ... ok"]


def test_drift_counts_the_build_on_a_terminal_and_clears_it(database, write_migrations):
    mdir = write_migrations(THREE)
    assert run_cli("up", "--dir", mdir, "--database-url", database).exit_code == 0
    code, text = run_on_a_terminal("drift", "--dir", mdir, "--database-url", database)
    assert code == 0, text
    assert "\r\x1b[Kbuilding the scratch database: 1/3\r\x1b[Kbuilding the scratch database: 2/3" in text
    assert "building the scratch database: 3/3\r\x1b[Kno drift: " in text


def test_without_a_terminal_nothing_is_counted(database, write_migrations):
    mdir = write_migrations(THREE)
    tested = run_cli("test", "--dir", mdir, "--database-url", database)
    assert tested.stdout.splitlines()[:3] == ["001_t1 ... ok", "002_t2 ... ok", "003_t3 ... ok"]
    assert run_cli("up", "--dir", mdir, "--database-url", database).exit_code == 0
    drifted = run_cli("drift", "--dir", mdir, "--database-url", database)
    assert "building" not in drifted.stdout and drifted.stdout.startswith("no drift: ")

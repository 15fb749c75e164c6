"""`down` against a real server: steps, --to, --all, --dry-run, refusals, stored down.sql."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import run_process, tables, tracking_ids
from tests.integration.helpers import applied, run

FOUR = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("create table b (id int);\n", "drop table b;\n"),
    "003_c": ("create table c (id int);\n", "drop table c;\n"),
    "010_d": ("create table d (id int);\n", "drop table d;\n"),
}
A_AND_B = {k: FOUR[k] for k in ("001_a", "002_b")}


def test_default_is_one_step(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002", "003"]
    assert "d" not in tables(db) and "c" in tables(db)
    assert "rolling back 010_d" in result.stdout
    assert "rolled back 1 migration(s)" in result.stdout


def test_steps(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--steps", "2")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"a", "b", "schema_migrations"}
    assert result.stdout.index("rolling back 010_d") < result.stdout.index("rolling back 003_c")


def test_steps_more_than_applied_rolls_back_all(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--steps", "9")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == []


def test_steps_must_be_positive(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--steps", "0")
    assert result.exit_code == 2
    assert "argument --steps: '0' is not a positive whole number" in result.stderr
    assert tracking_ids(db) == ["001", "002", "003", "010"]


def test_to_rolls_back_everything_above(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--to", "2")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"a", "b", "schema_migrations"}


def test_to_unknown_id_is_a_usage_error(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--to", "5")
    assert result.exit_code == 2
    assert "--to 5: no migration has that id" in result.stderr
    assert tracking_ids(db) == ["001", "002", "003", "010"]


def test_all_without_yes_on_non_terminal_is_refused(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run_process("down", "--all", "--dir", mdir, "--database-url", database, input="yes\n")
    assert result.exit_code == 1
    assert "add --yes to confirm" in result.stderr
    assert tracking_ids(db) == ["001", "002", "003", "010"]
    assert tables(db) == {"a", "b", "c", "d", "schema_migrations"}


def test_all_without_yes_in_process(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--all")
    assert result.exit_code == 1
    assert "add --yes to confirm" in result.stderr
    assert tracking_ids(db) == ["001", "002", "003", "010"]


def test_all_with_yes(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--all", "--yes")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == []
    assert tables(db) == {"schema_migrations"}
    assert "rolled back 4 migration(s)" in result.stdout


def test_dry_run_prints_down_sql_and_changes_nothing(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--steps", "2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.index("drop table d;") < out.index("drop table c;")
    assert "drop table b;" not in out
    assert out.splitlines().count("BEGIN;") == 2 and out.splitlines().count("COMMIT;") == 2
    assert tracking_ids(db) == ["001", "002", "003", "010"]
    assert tables(db) == {"a", "b", "c", "d", "schema_migrations"}


def test_all_dry_run_needs_no_confirmation(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    result = run("down", mdir, database, "--all", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "drop table a;" in result.stdout
    assert tracking_ids(db) == ["001", "002", "003", "010"]


def test_nothing_applied(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "nothing to roll back" in result.stdout
    assert tables(db) == set()  # down never creates the tracking table


def test_irreversible_refuses_before_anything_runs(database, db, write_migrations):
    migrations = dict(FOUR)
    migrations["002_b"] = ("create table b (id int);\n", "-- sqlmigrate: irreversible\n")
    mdir = applied(write_migrations, database, migrations)
    result = run("down", mdir, database, "--to", "1")
    assert result.exit_code == 1
    assert "002_b is irreversible (its down.sql says so); nothing was rolled back" in result.stderr
    assert "down --to 002" in result.stderr
    # state unchanged, also for 003 and 010 above it
    assert tracking_ids(db) == ["001", "002", "003", "010"]
    assert tables(db) == {"a", "b", "c", "d", "schema_migrations"}
    all_ = run("down", mdir, database, "--all", "--yes")
    assert all_.exit_code == 1
    assert tracking_ids(db) == ["001", "002", "003", "010"]
    # down to the irreversible one works
    ok = run("down", mdir, database, "--to", "2")
    assert ok.exit_code == 0, ok.stderr
    assert tracking_ids(db) == ["001", "002"]


def test_folder_deleted_after_apply_uses_stored_down_sql(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    shutil.rmtree(mdir / "010_d")
    status = run("status", mdir, database)
    assert "missing" in status.stdout
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "010_d: folder or down.sql gone; using the down.sql stored at apply time" in result.stderr
    assert "d" not in tables(db)
    assert tracking_ids(db) == ["001", "002", "003"]


def test_edited_down_sql_is_used(database, db, write_migrations):
    mdir = applied(write_migrations, database, FOUR)
    (mdir / "010_d" / "down.sql").write_text("drop table d;\ncreate table d_was_here (id int);\n")
    status = run("status", mdir, database)
    assert "down.sql edited since it was applied" in status.stdout
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "d_was_here" in tables(db)


def test_down_sql_failure_keeps_migration_applied(database, db, write_migrations):
    migrations = dict(FOUR)
    migrations["003_c"] = ("create table c (id int);\n", "drop table c;\n-- oops\ndrop table nope;\n")
    mdir = applied(write_migrations, database, migrations)
    result = run("down", mdir, database, "--steps", "3")
    assert result.exit_code == 4
    assert '003_c/down.sql:3:1: ERROR 42P01: table "nope" does not exist' in result.stderr
    assert "003_c FAILED and was rolled back; 1 not run: 002_b" in result.stderr
    # 010 rolled back; 003 still applied with its table (the drop table c was rolled back)
    assert tracking_ids(db) == ["001", "002", "003"]
    assert tables(db) == {"a", "b", "c", "schema_migrations"}


def test_down_sql_validation_error_refuses(database, db, write_migrations):
    migrations = dict(FOUR)
    migrations["003_c"] = ("create table c (id int);\n", "drop table c;\ncommit;\n")
    mdir = applied(write_migrations, database, migrations)
    result = run("down", mdir, database, "--steps", "2")
    assert result.exit_code == 1
    assert "003_c/down.sql:2:1: error:" in result.stderr and "[transaction-control]" in result.stderr
    assert "nothing was rolled back" in result.stderr
    assert tracking_ids(db) == ["001", "002", "003", "010"]


def test_down_after_folder_renamed(database, db, write_migrations):
    mdir = applied(write_migrations, database, {"1_x": ("create table x (id int);\n", "drop table x;\n")})
    (mdir / "1_x").rename(mdir / "001_x")
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == []
    assert "x" not in tables(db)


def test_set_in_down_does_not_break_tracking(database, db, write_migrations):
    db.execute("create schema other")
    mdir = applied(write_migrations, database, {
        "001_a": ("create table a (id int);\n", "drop table a;\n"),
        "002_b": ("create table b (id int);\n", "set search_path = other;\ndrop table public.b;\n"),
    })
    result = run("down", mdir, database, "--all", "--yes")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == []
    assert tables(db) == {"schema_migrations"}


# -- a second folder with the id of an applied migration ----------------------------------------


def test_refuses_when_no_folder_is_known_to_be_the_applied_one(database, db, write_migrations):
    """002_b applied, then renamed to 2_b and edited, while 002_x arrived: which
    down.sql undoes 002_b is a guess, so nothing runs (002_x's would leave b)."""
    mdir = applied(write_migrations, database, A_AND_B)
    (mdir / "002_b").rename(mdir / "2_b")
    (mdir / "2_b" / "up.sql").write_text("create table b (id bigint);\n")
    write_migrations({"002_x": ("create table x (id int);\n", "drop table if exists x;\n")})
    for args in ((), ("--all", "--yes"), ("--dry-run",)):
        result = run("down", mdir, database, *args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert ("another folder has the id of a migration to roll back, and none is known to be the one "
                "applied; nothing was rolled back") in result.stderr
        assert f"{mdir}/2_b:1:1: error: id 2 is the same as 002_x, which is applied" in result.stderr
    assert tracking_ids(db) == ["001", "002"]
    assert {"a", "b"} <= tables(db)


@pytest.mark.parametrize("renamed_to, other, status_line, note", [
    # renamed (002_b to 2_b) but unchanged: its checksum says it is the one applied
    ("2_b", "002_x", "002_x:1:1: error: id 002 is the same as 2_b, which is applied",
     "002_x has the id of the applied 2_b, whose own down.sql runs [duplicate-id]"),
    # still named as applied
    (None, "2_z", "2_z:1:1: error: id 2 is the same as 002_b, which is applied",
     "2_z has the id of the applied 002_b, whose own down.sql runs [duplicate-id]"),
])
def test_runs_the_applied_folder_and_notes_the_other(database, db, write_migrations, renamed_to, other,
                                                    status_line, note):
    mdir = applied(write_migrations, database, A_AND_B)
    if renamed_to:
        (mdir / "002_b").rename(mdir / renamed_to)
    write_migrations({other: ("create table other (id int);\n", "drop table if exists other;\n")})
    assert f"{mdir}/{status_line}" in run("status", mdir, database).stderr
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert note in result.stderr
    assert tracking_ids(db) == ["001"]
    assert "b" not in tables(db) and "a" in tables(db)


def test_rolling_back_a_modified_migration_says_so(database, db, write_migrations):
    """Editing an applied up.sql, then down and up again, is everyday work on a
    branch: down runs, with a note that the file is no longer what was applied."""
    mdir = applied(write_migrations, database, A_AND_B)
    (mdir / "002_b" / "up.sql").write_text("create table b (id bigint);\n")
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert ("note: 002_b: up.sql changed since it was applied; its down.sql on disk runs, which may not undo "
            "what the database ran (`sqlmigrate status`)") in result.stderr.splitlines()
    assert tracking_ids(db) == ["001"] and "b" not in tables(db)
    assert run("up", mdir, database).exit_code == 0
    assert db.execute("select data_type from information_schema.columns where table_name = 'b'").fetchone() \
        == ("bigint",)

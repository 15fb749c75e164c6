"""`-- sqlmigrate: empty`: a migration file that runs nothing on purpose, against a real server."""
from __future__ import annotations

from tests.conftest import tables, tracking_ids, tracking_row
from tests.integration.helpers import check, one_json, run, sha256


# -- a marked file that holds statements -----------------------------------------------------------


def test_empty_marked_up_sql_with_statements_is_an_error(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("-- a note\n-- sqlmigrate: empty\ncreate table z (x int);\n", "drop table z;\n")})
    checked = check(mdir)
    assert checked.exit_code == 1
    assert (f"{mdir}/001_a/up.sql:2:1: error: up.sql is marked empty but holds statements "
            "[unknown-directive]") in checked.stdout
    result = run("up", mdir, database)
    assert result.exit_code == 1
    assert f"{mdir}/001_a/up.sql:2:1: error: up.sql is marked empty" in result.stderr
    assert tables(db) == set()


def test_empty_marked_down_sql_with_statements_blocks_down_not_up(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "-- sqlmigrate: empty\ndrop table a;\n")})
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert (f"{mdir}/001_a/down.sql:1:1: warning: down.sql is marked empty but holds statements "
            "(blocks down, not up) [unknown-directive]") in result.stderr
    down = run("down", mdir, database)
    assert down.exit_code == 1
    assert f"{mdir}/001_a/down.sql:1:1: error: down.sql is marked empty but holds statements" in down.stderr
    assert tracking_ids(db) == ["001"] and "a" in tables(db)


def test_empty_marked_files_without_statements_run_nothing(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("-- sqlmigrate: empty\n-- squashed into 002\n", "-- sqlmigrate: empty\n")})
    assert run("up", mdir, database).exit_code == 0
    assert tracking_ids(db) == ["001"]
    assert run("down", mdir, database).exit_code == 0
    assert tracking_ids(db) == []


# -- up and down of empty migrations ---------------------------------------------------------------


EMPTY = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    # an up emptied after a squash, with nothing to undo either
    "002_squashed": ("-- sqlmigrate: empty\n-- squashed into 001_a\n", "-- Sqlmigrate :  EMPTY\n"),
    # a down that has nothing to undo on purpose
    "003_seed": ("insert into a values (1);\n", "-- sqlmigrate: empty\n"),
}


def objects(db) -> list[tuple]:
    """Every relation, function and type the user made in public, the tracking table left out."""
    rels = db.execute(
        "select c.relname, c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relname not like 'schema_migrations%' order by 1").fetchall()
    funcs = db.execute("select p.proname, 'f' from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                       "where n.nspname = 'public' order by 1").fetchall()
    return rels + funcs


def state(db) -> tuple:
    return objects(db), db.execute("select count(*) from a").fetchone()[0]


def test_empty_migrations_go_up_and_down_changing_only_tracking_rows(database, db, write_migrations):
    mdir = write_migrations(EMPTY)
    assert check(mdir).exit_code == 0
    assert run("up", mdir, database, "--to", "1").exit_code == 0
    before = state(db)
    assert before == ([("a", "r")], 0)

    up = run("up", mdir, database, "--to", "2")
    assert up.exit_code == 0, up.stderr
    assert "applying 002_squashed ... ok" in up.stdout
    assert tracking_ids(db) == ["001", "002"]
    assert state(db) == before
    assert tracking_row(db, "002", "name, checksum, state") == ("squashed", sha256(EMPTY["002_squashed"][0]), "applied")

    down = run("down", mdir, database)
    assert down.exit_code == 0, down.stderr
    assert "rolling back 002_squashed ... ok" in down.stdout
    assert tracking_ids(db) == ["001"]
    assert state(db) == before

    assert run("up", mdir, database).exit_code == 0
    assert tracking_ids(db) == ["001", "002", "003"]
    after_seed = state(db)
    assert after_seed == ([("a", "r")], 1)
    # the empty down of 003 removes its row and nothing else: the seeded row stays
    down = run("down", mdir, database)
    assert down.exit_code == 0, down.stderr
    assert tracking_ids(db) == ["001", "002"]
    assert state(db) == after_seed


def test_empty_migrations_dry_run_shows_only_the_transaction_and_row(database, db, write_migrations):
    mdir = write_migrations(EMPTY)
    payload = one_json(run("up", mdir, database, "--dry-run", "--format", "json").stdout)
    assert [(p["id"], p["statements"]) for p in payload["planned"]] == [
        ("001", ["create table a (id int);"]), ("002", []), ("003", ["insert into a values (1);"])]
    text = run("up", mdir, database, "--dry-run", "--to", "2").stdout
    block = text[text.index("-- 002_squashed"):].splitlines()
    assert block[:4] == [f"-- 002_squashed: {mdir}/002_squashed/up.sql", "BEGIN;",
                         "-- insert the row of 002 in schema_migrations", "COMMIT;"]
    assert tables(db) == set()

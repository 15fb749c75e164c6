"""Rules as `check` reports them and `up` enforces them, against a real server:
what PostgreSQL refuses or runs decides what the rules flag."""
from __future__ import annotations

import json

import pytest

from tests.conftest import tables, tracking_ids
from tests.integration.helpers import applied, check, one_json, run


# -- REINDEX with an option list -------------------------------------------------------------------


REINDEX = "reindex (verbose, tablespace pg_default) table concurrently t;\n"


def test_reindex_concurrently_after_an_option_list_needs_no_transaction(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int primary key);\n", "drop table t;\n"),
        "002_reindex": ("select 1;\n" + REINDEX, "select 1;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 1, result
    assert (f"{mdir}/002_reindex/up.sql:2:1: error: REINDEX ... CONCURRENTLY cannot run inside a transaction "
            "block [needs-no-transaction]") in result.stderr
    assert tables(db) == set()
    # PostgreSQL agrees: with the directive it runs, outside a transaction
    (mdir / "002_reindex" / "up.sql").write_text("-- sqlmigrate: no-transaction\nselect 1;\n" + REINDEX)
    ok = run("up", mdir, database)
    assert ok.exit_code == 0, ok.stderr
    assert tracking_ids(db) == ["001", "002"]


# -- SELECT ... INTO creates a table ---------------------------------------------------------------


def test_select_into_the_tracking_table_is_refused(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table t (x int);\nselect * into table public.schema_migrations from t;\n",
                  "drop table t;\n"),
    })
    checked = check(mdir)
    assert checked.exit_code == 1
    assert (f"{mdir}/001_a/up.sql:2:1: error: statement changes a table named like the tracking table "
            "schema_migrations [touches-tracking-table]") in checked.stdout
    result = run("up", mdir, database)
    assert result.exit_code == 1
    assert "[touches-tracking-table]" in result.stderr
    assert tables(db) == set()


def test_select_into_with_another_table_is_fine(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table t (x int);\nselect 1 as x into unlogged copy_of_t;\n"
                  "with q as (select 2 as x) select * into temp t2 from q;\n",
                  "drop table copy_of_t;\ndrop table t;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert {"t", "copy_of_t"} <= tables(db)


# -- touches-tracking-table with spaced and quoted qualified names ---------------------------------


def tracking_columns(db, table: str = "schema_migrations") -> list[str]:
    rows = db.execute("select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 "
                      "and not attisdropped order by attnum", (table,)).fetchall()
    return [r[0] for r in rows]


TOUCHING = (
    "create table a (id int);\n"                          # 1
    "alter table public . schema_migrations add note text;\n"   # 2: flagged
    'drop table "public"."schema_migrations";\n'          # 3: flagged
    'truncate "public" . "schema_migrations";\n'          # 4: flagged
    'drop table "public"."Schema_Migrations";\n'          # 5: quoted, another name
    "drop table other . schema_migrations;\n"             # 6: flagged unless --table names public
)


def tracking_findings(stdout: str) -> list[int]:
    return [f["line"] for f in one_json(stdout)["findings"] if f["rule"] == "touches-tracking-table"]


def test_check_flags_spaced_and_quoted_qualified_names_of_the_default_table(write_migrations):
    mdir = write_migrations({"001_a": (TOUCHING, "drop table a;\n")})
    result = check(mdir, "--format", "json")
    assert result.exit_code == 1
    assert tracking_findings(result.stdout) == [2, 3, 4, 6]
    text = check(mdir)
    assert (f"{mdir}/001_a/up.sql:2:1: error: statement changes a table named like the tracking table "
            "schema_migrations [touches-tracking-table]") in text.stdout
    assert f"{mdir}/001_a/up.sql:3:1: error: " in text.stdout
    # a schema named on both sides must match
    qualified = check(mdir, "--format", "json", "--table", "public.schema_migrations")
    assert tracking_findings(qualified.stdout) == [2, 3, 4]
    # in down.sql too
    down = write_migrations({"001_a": ("create table a (id int);\n", 'drop table "public"."schema_migrations";\n')})
    assert tracking_findings(check(down, "--format", "json").stdout) == [1]


@pytest.mark.parametrize("statement", [
    "alter table public . schema_migrations add column note text;\n",
    'drop table "public"."schema_migrations";\n',
])
def test_up_refuses_a_migration_touching_the_tracking_table(statement, database, db, write_migrations):
    mdir = applied(write_migrations, database, {"001_a": ("create table a (id int);\n", "drop table a;\n")})
    columns = tracking_columns(db)
    write_migrations({"002_bad": (statement, "select 1;\n")})
    result = run("up", mdir, database)
    assert result.exit_code == 1
    assert f"{mdir}/002_bad/up.sql:1:1: error: " in result.stderr
    assert "[touches-tracking-table]" in result.stderr
    assert "validation failed; nothing was applied" in result.stderr
    assert tracking_ids(db) == ["001"]
    assert tracking_columns(db) == columns
    assert tables(db) == {"a", "schema_migrations"}


# -- unterminated points at the statement, the message at the opening ------------------------------


def test_unterminated_points_at_the_statement_start(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ninsert into a\n  values ('abc);\n",
                                       "drop table a;\n")})
    line = (f"{mdir}/001_a/up.sql:2:1: error: string starting at line 3, column 11 never ends "
            "[unterminated]")
    checked = check(mdir)
    assert checked.exit_code == 1 and line in checked.stdout.splitlines()
    payload = json.loads(check(mdir, "--format", "json").stdout)
    [finding] = payload["findings"]
    assert (finding["line"], finding["col"], finding["rule"]) == (2, 1, "unterminated")
    refused = run("up", mdir, database)
    assert refused.exit_code == 1 and line in refused.stderr.splitlines()
    assert tables(db) == set()

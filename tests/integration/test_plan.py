"""`plan` (SPEC 8): pending migrations rehearsed in a scratch database, their
locks and rewrites graded by the size of the target's tables.

Tables are made "big" without millions of rows: a few thousand rows, ANALYZE,
and a small --max-rows.
"""
from __future__ import annotations

import json
import uuid

import psycopg
from psycopg import sql

from tests.conftest import databases, interrupt_in_scratch, run_cli, tables

SCRATCH = "sqlmigrate_scratch_"

BASE = {
    "001_orders": ("create table customers (id int primary key, name text);\n"
                   "create table orders (id int primary key, customer_id int, total int);\n",
                   "drop table orders;\ndrop table customers;\n"),
}


def plan(mdir, database, *args):
    return run_cli("plan", "--dir", mdir, "--database-url", database, *args)


def plan_json(mdir, database, *args) -> dict:
    result = plan(mdir, database, "--format", "json", *args)
    data = json.loads(result.stdout)
    assert data["exit_code"] == result.exit_code
    return data


def up(mdir, database, *args):
    result = run_cli("up", "--dir", mdir, "--database-url", database, *args)
    assert result.exit_code == 0, result.stderr
    return result


def with_orders(db, count: int = 1500) -> str:
    """`count` rows in orders, analyzed; the size text plan prints for it, read from the server."""
    db.execute("insert into orders select g, g %% 10, g from generate_series(1, %s) g", (count,))
    db.execute("analyze orders")
    rows, pretty = db.execute("select reltuples::bigint, pg_size_pretty(pg_total_relation_size('orders')) "
                              "from pg_class where oid = 'orders'::regclass").fetchone()
    return f"~{rows:,} rows, {pretty}"


def migrations(write_migrations, **pending: str):
    """BASE, then each pending up.sql under its folder name (its down.sql a no-op)."""
    folders = dict(BASE)
    folders.update({name.lstrip("_"): (text, "select 1;\n") for name, text in pending.items()})
    return write_migrations(folders)


# -- output --------------------------------------------------------------------------------


def test_the_spec_example_an_index_build_warns_and_a_rewrite_of_a_big_table_is_an_error(
        database, db, write_migrations):
    mdir = migrations(write_migrations, _004_orders_index="create index on orders (customer_id);\n",
                      _005_orders_type="create table notes (id int);\nalter table orders alter column total type bigint;\n")
    up(mdir, database, "--to", "1")
    size = with_orders(db)
    result = plan(mdir, database, "--max-rows", "1000")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{mdir}/004_orders_index/up.sql:1:1: warning: SHARE lock on orders ({size}) blocks writes until the index "
        "is built [lock]",
        f"{mdir}/005_orders_type/up.sql:2:1: error: ACCESS EXCLUSIVE lock on orders ({size}) and rewrites it: "
        "reads and writes wait for the whole rewrite [rewrite]",
        "plan: 2 pending migration(s), 2 statement(s) flagged (1 error, 1 warning)",
    ]


def test_a_rewrite_of_a_table_within_max_rows_is_a_warning_and_strict_fails_on_it(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_type="alter table orders alter column total type bigint;\n")
    up(mdir, database, "--to", "1")
    size = with_orders(db)
    result = plan(mdir, database)  # default --max-rows 100,000
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{mdir}/002_type/up.sql:1:1: warning: ACCESS EXCLUSIVE lock on orders ({size}) and rewrites it: "
        "reads and writes wait for the whole rewrite [rewrite]",
        "plan: 1 pending migration(s), 1 statement(s) flagged (0 errors, 1 warning)",
    ]
    assert plan(mdir, database, "--strict").exit_code == 1
    assert plan(mdir, database, "--max-rows", "1500").exit_code == 0  # more than, not as many as
    assert plan(mdir, database, "--max-rows", "1499").exit_code == 1


def test_a_table_never_analyzed_says_size_unknown_and_is_never_an_error(database, write_migrations):
    mdir = migrations(write_migrations, _002_type="alter table orders alter column total type bigint;\n"
                                                  "alter table customers add column email text;\n")
    up(mdir, database, "--to", "1")
    result = plan(mdir, database, "--max-rows", "0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{mdir}/002_type/up.sql:1:1: warning: ACCESS EXCLUSIVE lock on orders (size unknown) and rewrites it: "
        "reads and writes wait for the whole rewrite [rewrite]",
        f"{mdir}/002_type/up.sql:2:1: warning: ACCESS EXCLUSIVE lock on customers (size unknown) blocks reads and "
        "writes until the migration commits [lock]",
        "plan: 1 pending migration(s), 2 statement(s) flagged (0 errors, 2 warnings)",
    ]


def test_tables_the_plan_creates_are_not_reported(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_new="create table invoices (id int primary key, total int);\n"
                                                 "create index on invoices (total);\n"
                                                 "alter table invoices alter column total type bigint;\n",
                      _003_more="alter table invoices add column paid boolean default random() > 0.5;\n")
    up(mdir, database, "--to", "1")
    with_orders(db)
    result = plan(mdir, database, "--max-rows", "10")
    assert (result.exit_code, result.stdout) == (
        0, "plan: 2 pending migration(s), 0 statement(s) flagged (0 errors, 0 warnings)\n")


def test_a_lock_on_an_index_of_the_table_counts_for_reads(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_reindex="reindex index orders_pkey;\n")
    up(mdir, database, "--to", "1")
    size = with_orders(db)
    result = plan(mdir, database)
    assert result.stdout.splitlines()[0] == (
        f"{mdir}/002_reindex/up.sql:1:1: warning: SHARE lock on orders ({size}) and ACCESS EXCLUSIVE lock on its "
        "index orders_pkey block reads and writes until the migration commits [lock]")


def test_a_data_change_on_a_big_table_inside_a_transaction_is_a_warning(database, db, write_migrations):
    mdir = migrations(
        write_migrations,
        _002_backfill="update orders set total = total + 1 where id > 0;\n"
                      "create table archive (id int, total int);\n"
                      "insert into archive select id, total from orders;\n"
                      "update customers set name = 'x';\n"
                      "delete from orders where total < 0;\n",
        _003_batched="-- sqlmigrate: no-transaction\nupdate orders set total = 0 where id = 1;\n")
    up(mdir, database, "--to", "1")
    size = with_orders(db)
    db.execute("insert into customers select g from generate_series(1, 5) g; analyze customers")
    result = plan(mdir, database, "--max-rows", "1000")
    path = f"{mdir}/002_backfill/up.sql"
    assert result.stdout.splitlines() == [
        f"{path}:1:1: warning: UPDATE on orders ({size}) inside the migration's transaction holds a lock on every "
        "row it touches until the migration commits [data]",
        f"{path}:3:1: warning: INSERT ... SELECT reads orders ({size}) inside the migration's transaction, which "
        "holds its locks until the copy is done and it commits [data]",
        f"{path}:5:1: warning: DELETE on orders ({size}) inside the migration's transaction holds a lock on every "
        "row it touches until the migration commits [data]",
        "plan: 2 pending migration(s), 3 statement(s) flagged (0 errors, 3 warnings)",
    ]
    assert result.exit_code == 0


def test_create_index_concurrently_is_not_flagged_and_json_shows_its_lock(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_index="-- sqlmigrate: no-transaction\n"
                                                   "create index concurrently orders_total on orders (total);\n")
    up(mdir, database, "--to", "1")
    with_orders(db)
    data = plan_json(mdir, database, "--max-rows", "10")
    assert (data["exit_code"], data["findings"]) == (0, [])
    [statement] = data["migrations"][0]["statements"]
    orders = [lock for lock in statement["locks"] if lock["relation"] == "orders"]
    assert [lock["mode"] for lock in orders] == ["SHARE UPDATE EXCLUSIVE"]
    assert statement["severity"] is None


def test_json_shape(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_type="select 1;\nalter table orders alter column total type bigint;\n")
    up(mdir, database, "--to", "1")
    with_orders(db)
    rows, size = db.execute("select reltuples::bigint, pg_total_relation_size('orders') from pg_class "
                            "where oid = 'orders'::regclass").fetchone()
    data = plan_json(mdir, database, "--max-rows", "1000")
    assert data["command"] == "plan" and data["exit_code"] == 1
    assert data["database"].startswith(db.info.dbname + " on ")
    assert data["max_rows"] == 1000 and data["applied"] == 1
    assert data["notes"] == [] and data["failed_build"] is None
    assert data["scratch_databases"] and all(n.startswith(SCRATCH) for n in data["scratch_databases"])
    [migration] = data["migrations"]
    assert {k: migration[k] for k in ("id", "name", "transactional", "verdict", "error", "reason")} == {
        "id": "002", "name": "type", "transactional": True, "verdict": "rehearsed", "error": None, "reason": None}
    first, second = migration["statements"]
    assert (first["line"], first["locks"], first["rewrites"], first["severity"]) == (1, [], [], None)
    assert (second["path"], second["line"], second["col"]) == (f"{mdir}/002_type/up.sql", 2, 1)
    assert {"relation": "orders", "mode": "ACCESS EXCLUSIVE", "rows": rows, "bytes": size, "kind": "table",
            "created": False} in second["locks"]
    assert second["rewrites"] == ["orders", "orders_pkey"]
    assert second["severity"] == "error" and second["duration_ms"] >= 0
    [finding] = data["findings"]
    assert {k: finding[k] for k in ("path", "line", "col", "severity", "rule")} == {
        "path": f"{mdir}/002_type/up.sql", "line": 2, "col": 1, "severity": "error", "rule": "rewrite"}
    assert finding["hint"]


def test_github_annotations(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_index="create index on orders (total);\n")
    up(mdir, database, "--to", "1")
    size = with_orders(db)
    result = plan(mdir, database, "--format", "github")
    assert (result.exit_code, result.stdout) == (0, (
        f"::warning file={mdir}/002_index/up.sql,line=1,col=1::SHARE lock on orders ({size}) blocks writes until "
        "the index is built [lock]\n"))


def test_a_migration_failing_in_the_scratch_database_is_reported_as_test_reports_it(database, write_migrations):
    mdir = migrations(write_migrations, _002_bad="create table t (id int);\nselect nope from orders;\n",
                      _003_next="create table u (id int);\n", _004_last="create table w (id int);\n")
    up(mdir, database, "--to", "1")
    result = plan(mdir, database)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "002_bad: FAILED in the scratch database",
        f"  {mdir}/002_bad/up.sql:2:8: ERROR 42703: column \"nope\" does not exist",
        "plan: 3 pending migration(s), 0 statement(s) flagged (0 errors, 0 warnings); 002_bad failed in the "
        "scratch database; 2 not tested: 003_next, 004_last",
    ]
    data = plan_json(mdir, database)
    assert [m["verdict"] for m in data["migrations"]] == ["failed", "not tested", "not tested"]
    assert data["migrations"][0]["error"]["sqlstate"] == "42703"
    assert data["migrations"][1]["reason"] == "not tested: 002_bad/up.sql failed before them"


def test_applied_migrations_that_do_not_build_are_reported(database, db, write_migrations):
    db.execute("create table legacy (id int)")  # made by hand before the migrations
    mdir = write_migrations({"001_ref": ("create view v as select id from legacy;\n", "drop view v;\n"),
                             "002_next": ("create table t (id int);\n", "drop table t;\n")})
    up(mdir, database, "--to", "1")
    result = plan(mdir, database)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "plan: the applied migrations do not build in a scratch database; 001_ref failed:",
        f"  {mdir}/001_ref/up.sql:1:33: ERROR 42P01: relation \"legacy\" does not exist",
        "plan: nothing was rehearsed",
    ]


def test_nothing_pending_needs_no_scratch_database(server, database, write_migrations):
    mdir = write_migrations(BASE)
    up(mdir, database)
    before = databases(server)
    result = plan(mdir, database)
    assert (result.exit_code, result.stdout) == (0, "plan: nothing pending: the database is up to date\n")
    assert databases(server) == before


def test_to_stops_the_rehearsal(database, write_migrations):
    mdir = migrations(write_migrations, _002_a="create table a (id int);\n", _003_b="create table b (id int);\n")
    up(mdir, database, "--to", "1")
    result = plan(mdir, database, "--to", "2")
    assert result.stdout == "plan: 1 pending migration(s), 0 statement(s) flagged (0 errors, 0 warnings)\n"
    assert result.stderr == "note: 1 pending migration(s) above --to 2 not rehearsed\n"


# -- the target is only read -----------------------------------------------------------------


def test_plan_never_writes_to_the_target_nor_creates_the_tracking_table(server, database, db, write_migrations):
    mdir = migrations(write_migrations, _002_type="alter table orders alter column total type bigint;\n")
    data = plan_json(mdir, database)
    assert [m["verdict"] for m in data["migrations"]] == ["rehearsed", "rehearsed"]
    assert tables(db) == set()  # no tracking table, nothing the migrations make
    assert not set(data["scratch_databases"]) & databases(server)
    up(mdir, database, "--to", "1")
    with_orders(db)
    snapshot = db.execute("select relname, relfilenode from pg_class where relnamespace = 'public'::regnamespace "
                          "order by 1").fetchall()
    assert plan(mdir, database).exit_code == 0
    assert db.execute("select relname, relfilenode from pg_class where relnamespace = 'public'::regnamespace "
                      "order by 1").fetchall() == snapshot
    assert db.execute("select count(*), max(total) from orders").fetchone() == (1500, 1500)
    assert db.execute("select id from schema_migrations").fetchall() == [("001",)]


def test_a_table_locked_on_the_target_leaves_sizes_estimated(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_index="create index on orders (total);\n")
    up(mdir, database, "--to", "1")
    with_orders(db)
    db.execute("vacuum analyze orders")  # relpages, which the estimate reads
    with psycopg.connect(database, autocommit=True) as other:
        other.execute("begin")
        other.execute("lock table customers in access exclusive mode")
        result = plan(mdir, database)
        other.execute("rollback")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("note: a table of the target was locked by another session: table sizes are "
                             "estimated from pg_class.relpages\n")
    pages = db.execute("select pg_size_pretty((relpages + (select sum(relpages) from pg_class where oid in "
                       "(select indexrelid from pg_index where indrelid = 'orders'::regclass)))::bigint "
                       "* current_setting('block_size')::bigint) from pg_class "
                       "where oid = 'orders'::regclass").fetchone()[0]
    assert f"(~1,500 rows, {pages})" in result.stdout


# -- bad input -------------------------------------------------------------------------------


def test_refuses_like_up_when_a_no_transaction_migration_failed(database, write_migrations):
    mdir = migrations(write_migrations, _002_half="-- sqlmigrate: no-transaction\ncreate table h (id int);\n"
                                                  "select nope;\n", _003_next="create table n (id int);\n")
    assert run_cli("up", "--dir", mdir, "--database-url", database).exit_code == 4
    result = plan(mdir, database)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "sqlmigrate: migration 002_half failed part-way (no-transaction); nothing was run")


def test_refuses_invalid_pending_migrations(database, write_migrations):
    mdir = migrations(write_migrations, _002_bad="begin;\ncreate table t (id int);\ncommit;\n")
    result = plan(mdir, database)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "sqlmigrate: validation failed; nothing was rehearsed"


def test_max_rows_must_be_a_whole_number(database, write_migrations):
    result = plan(write_migrations(BASE), database, "--max-rows", "lots")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "sqlmigrate: argument --max-rows: 'lots' is not a whole number of 0 or more"


def test_unreachable_target_exits_3(write_migrations, tmp_path):
    result = plan(write_migrations(BASE), f"host={tmp_path} port=1")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"sqlmigrate: cannot connect to host={tmp_path} port=1: ")
    assert len(result.stderr.splitlines()) == 1


def test_without_createdb_right_exit_3_and_say_so(server, database, write_migrations):
    role = f"sqlmigrate_nocreatedb_{uuid.uuid4().hex[:8]}"
    mdir = migrations(write_migrations, _002_t="create table t (id int);\n")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login nocreatedb").format(sql.Identifier(role)))
    try:
        params = psycopg.conninfo.conninfo_to_dict(database)
        params["user"] = role
        result = plan(mdir, psycopg.conninfo.make_conninfo(**params))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
    assert result.exit_code == 3
    assert "cannot create a scratch database" in result.stderr
    assert "permission denied to create database" in result.stderr
    assert "test, drift and plan build the schema in a database of their own" in result.stderr
    assert "CREATEDB" in result.stderr


def test_ctrl_c_drops_the_scratch_database_and_says_the_target_is_unchanged(server, database, db, write_migrations):
    marker = uuid.uuid4().hex
    slow_in_scratch = (f"select pg_sleep(case when current_database() like '{SCRATCH}%' then 60 else 0 end), "
                       f"'{marker}';\n")
    mdir = migrations(write_migrations, _002_slow=slow_in_scratch)
    up(mdir, database, "--to", "1")
    code, err, ours = interrupt_in_scratch(server, marker, "plan", "--dir", mdir, "--database-url", database)
    assert code == 130, err
    assert err == ("sqlmigrate: interrupted during 002_slow (in the scratch database); the scratch database "
                   "was dropped and the target database was not changed\n")
    assert ours not in databases(server)
    assert tables(db) == {"schema_migrations", "customers", "orders"}


def test_a_no_transaction_migration_failing_in_the_scratch_database(database, db, write_migrations):
    mdir = migrations(write_migrations, _002_idx="-- sqlmigrate: no-transaction\n"
                                                 "create index concurrently orders_total on orders (total);\n"
                                                 "create index concurrently orders_nope on orders (nope);\n",
                      _003_next="create table n (id int);\n")
    up(mdir, database, "--to", "1")
    result = plan(mdir, database)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "002_idx: FAILED in the scratch database",
        f"  {mdir}/002_idx/up.sql:3:1: ERROR 42703: column \"nope\" does not exist",
        "plan: 2 pending migration(s), 0 statement(s) flagged (0 errors, 0 warnings); 002_idx failed in the "
        "scratch database; 1 not tested: 003_next",
    ]
    assert tables(db) == {"schema_migrations", "customers", "orders"}


def test_ctrl_c_during_a_watched_no_transaction_statement(server, database, write_migrations):
    """The holder sessions of a no-transaction statement let go, and the scratch database is dropped."""
    marker = uuid.uuid4().hex
    slow = (f"-- sqlmigrate: no-transaction\nselect pg_sleep(case when current_database() like '{SCRATCH}%' "
            f"then 60 else 0 end), '{marker}';\n")
    mdir = migrations(write_migrations, _002_slow=slow)
    up(mdir, database, "--to", "1")
    code, err, ours = interrupt_in_scratch(server, marker, "plan", "--dir", mdir, "--database-url", database)
    assert code == 130, err
    assert err == ("sqlmigrate: interrupted during 002_slow (in the scratch database); the scratch database "
                   "was dropped and the target database was not changed\n")
    assert ours not in databases(server)

"""`drift` (SPEC 3): the live schema compared with what the applied migrations build."""
from __future__ import annotations

import shutil
import uuid

from tests.conftest import ROOT, SCRATCH, databases, interrupt_in_scratch, tables, tracking_ids
from tests.integration.helpers import applied, run, run_json, up

USERS = {
    "001_users": (
        "create table users (id bigint primary key, company varchar(255), plan text not null default 'free');\n"
        "create index users_company_idx on users (company);\n",
        "drop table users;\n",
    ),
    "002_notes": ("create table notes (id int, body text);\n", "drop table notes;\n"),
}


def test_no_drift_after_up_of_the_seed_schema(server, database):
    mdir = ROOT / "migrations"
    up(mdir, database, expect_exit=0)
    result = run("drift", mdir, database)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no drift: ")
    assert result.stdout.rstrip().endswith("matches its 3 applied migration(s)")
    data = run_json("drift", mdir, database)
    assert (data["drift"], data["applied"], data["differences"]) == (False, 3, [])
    assert data["scratch_databases"] and not set(data["scratch_databases"]) & databases(server)


def test_added_column_dropped_index_changed_default_and_type(database, db, write_migrations):
    mdir = applied(write_migrations, database, USERS)
    db.execute("alter table users add column nickname text")
    db.execute("drop index users_company_idx")
    db.execute("alter table users alter column plan set default 'pro'")
    db.execute("alter table users alter column company type text")
    result = run("drift", mdir, database)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("drift: ") and lines[0].endswith(
        "differs from what its 2 applied migration(s) build (migrations -> database):")
    assert lines[1:] == [
        "  column users.company: type character varying(255) -> text",
        "  column users.nickname: extra (text)",
        "  column users.plan: default 'free'::text -> 'pro'::text",
        "  index users_company_idx: missing (CREATE INDEX users_company_idx ON public.users USING btree (company))",
        "drift: 4 difference(s)",
    ]


def test_drift_json_lists_each_difference(server, database, db, write_migrations):
    mdir = applied(write_migrations, database, USERS)
    db.execute("drop index users_company_idx")
    data = run_json("drift", mdir, database)
    assert data["drift"] is True
    assert data["differences"] == [{
        "object": "index users_company_idx", "kind": "index", "change": "missing", "attribute": None,
        "expected": "CREATE INDEX users_company_idx ON public.users USING btree (company)", "found": None,
        "note": False,
        "text": "index users_company_idx: missing (CREATE INDEX users_company_idx ON public.users USING btree "
                "(company))",
    }]
    assert not set(data["scratch_databases"]) & databases(server)


def test_only_applied_migrations_are_built(database, db, write_migrations):
    mdir = applied(write_migrations, database, USERS, "--to", "001")
    result = run("drift", mdir, database)
    assert result.exit_code == 0, result.stdout
    assert "matches its 1 applied migration(s)" in result.stdout
    db.execute("create table notes (id int, body text)")  # 002 by hand, not recorded
    assert "  table notes: extra" in run("drift", mdir, database).stdout


def test_drift_never_writes_to_the_live_database(database, db, write_migrations):
    mdir = applied(write_migrations, database, USERS)
    db.execute("alter table users add column nickname text")
    ids = tracking_ids(db)
    assert run("drift", mdir, database).exit_code == 1
    assert tracking_ids(db) == ids
    assert tables(db) == {"users", "notes", "schema_migrations"}
    assert db.execute("select count(*) from information_schema.columns where table_name = 'users'").fetchone() == (4,)


def test_tracking_table_is_left_out_whatever_its_name(database, db, write_migrations):
    mdir = applied(write_migrations, database, USERS, "--table", "app_migrations")
    result = run("drift", mdir, database, "--table", "app_migrations")
    assert result.exit_code == 0, result.stdout
    # with the default name, nothing is recorded as applied and the whole schema is extra
    other = run("drift", mdir, database)
    assert other.exit_code == 1
    assert "  table app_migrations: extra" in other.stdout
    assert "  table users: extra" in other.stdout


def test_column_order_alone_is_a_note_not_drift(database, db, write_migrations):
    mdir = applied(write_migrations, database,
                   {"001_t": ("create table t (a int, b int, c int);\n", "drop table t;\n")})
    db.execute("alter table t drop column b; alter table t add column b int")
    result = run("drift", mdir, database)
    assert result.exit_code == 0
    assert "  note: table t: column order: b now after c\n" in result.stdout
    assert "no drift: " in result.stdout


def test_modified_migration_is_built_from_the_file_with_a_note(database, db, write_migrations):
    mdir = applied(write_migrations, database, {"001_t": ("create table t (a int);\n", "drop table t;\n")})
    (mdir / "001_t" / "up.sql").write_text("create table t (a int, b int);\n")
    result = run("drift", mdir, database)
    assert result.exit_code == 1
    assert "note: 001_t: up.sql changed since it was applied; built from the file as it is now" in result.stdout
    assert "  column t.b: missing (integer)" in result.stdout


def test_applied_migration_without_its_folder_is_refused(database, write_migrations):
    mdir = applied(write_migrations, database, USERS)
    shutil.rmtree(mdir / "002_notes")
    result = run("drift", mdir, database)
    assert result.exit_code == 1
    assert "cannot for: 002_notes (missing)" in result.stderr


def test_migrations_that_do_not_build_are_reported_with_file_line_col(database, db, write_migrations):
    db.execute("create table legacy (id int)")  # made by hand before the migrations
    mdir = applied(write_migrations, database, {"001_ref": (
        "create table t (id int);\ncreate view v as select id from legacy;\n", "drop view v;\ndrop table t;\n")})
    result = run("drift", mdir, database)
    assert result.exit_code == 1
    assert "drift: the applied migrations do not build in a scratch database; 001_ref failed:" in result.stdout
    assert f"  {mdir}/001_ref/up.sql:2:33: ERROR 42P01: relation \"legacy\" does not exist" in result.stdout


def test_ctrl_c_drops_the_scratch_database_and_says_the_target_is_unchanged(server, database, db, write_migrations):
    marker = uuid.uuid4().hex  # finds this run's scratch database among others on the server
    slow_in_scratch = (f"create table t (id int);\nselect pg_sleep(case when current_database() like "
                       f"'{SCRATCH}%' then 60 else 0 end), '{marker}';\n")
    mdir = applied(write_migrations, database, {"001_slow": (slow_in_scratch, "drop table t;\n")})
    code, err, ours = interrupt_in_scratch(server, marker, "drift", "--dir", mdir, "--database-url", database)
    assert code == 130, err
    assert err == ("sqlmigrate: interrupted during 001_slow (in the scratch database); the scratch database "
                   "was dropped and the target database was not changed\n")
    assert ours not in databases(server)
    assert tracking_ids(db) == ["001"] and tables(db) == {"schema_migrations", "t"}

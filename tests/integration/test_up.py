"""`up` against a real server: order, tracking rows, --to, --dry-run, --table, refusals, sessions, JSON."""
from __future__ import annotations

import json
import re

from tests.conftest import run_cli, tables, tracking_ids, tracking_row
from tests.integration.helpers import (FINDING_KEYS, NOTICE_KEYS, ONE, STEP_KEYS, applied, check, one_json, run,
                                       sha256, up)

THREE = {
    "1_one": ("create table one (id int);\n", "drop table one;\n"),
    "2_two": ("create table two (id int);\n", "drop table two;\n"),
    "10_ten": ("create table ten (id int);\n", "drop table ten;\n"),
}


def test_applies_in_integer_id_order_with_tracking_rows(database, db, write_migrations):
    # "10" sorts before "2" as a string; 10_ten would fail if it ran before 2_two
    mdir = write_migrations({
        "1_one": ("create table one (id int);\n", "drop table one;\n"),
        "2_two": ("create table two (id int);\n", "drop table two;\n"),
        "10_ten": ("create table ten (two_id int);\ninsert into two values (1);\n", "drop table ten;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tables(db) == {"one", "two", "ten", "schema_migrations"}
    rows = db.execute(
        "select id, name, checksum, executed_at, down_sql from schema_migrations order by executed_at"
    ).fetchall()
    assert [r[0] for r in rows] == ["1", "2", "10"]
    assert [r[1] for r in rows] == ["one", "two", "ten"]
    assert rows[2][2] == sha256(b"create table ten (two_id int);\ninsert into two values (1);\n")
    assert all(r[3] is not None for r in rows)
    assert rows[0][4] == "drop table one;\n"
    out = result.stdout
    assert out.index("applying 1_one") < out.index("applying 2_two") < out.index("applying 10_ten")
    assert re.search(r"^applying 10_ten \.\.\. ok \(\d+ ms\)$", out, re.MULTILINE)
    assert re.search(r"^applied 3 migration\(s\) in \d+\.\d\d s$", out, re.MULTILINE)


def test_tracking_table_columns_have_the_spec_types(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    assert up(mdir, database).exit_code == 0
    columns = dict(db.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = 'schema_migrations'::regclass and attnum > 0 and not attisdropped"
    ).fetchall())
    assert columns["id"] == "text"
    assert columns["name"] == "text"
    assert columns["checksum"] == "text"
    assert columns["executed_at"] == "timestamp with time zone"
    primary = db.execute(
        "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
        "and a.attnum = any(i.indkey) where i.indrelid = 'schema_migrations'::regclass and i.indisprimary"
    ).fetchall()
    assert primary == [("id",)]


def test_checksum_ignores_bom_and_crlf(database, db, write_migrations):
    body = "create table t (\r\n  id int\r\n);\r\n"
    mdir = write_migrations({"001_t": (b"\xef\xbb\xbf" + body.encode(), "drop table t;\n")})
    assert up(mdir, database).exit_code == 0
    (stored,) = db.execute("select checksum from schema_migrations").fetchone()
    assert stored == sha256(body.replace("\r\n", "\n"))
    status = run("status", mdir, database)
    assert "applied" in status.stdout and "modified" not in status.stdout


def test_second_up_has_nothing_to_apply(database, db, write_migrations):
    mdir = write_migrations(THREE)
    assert up(mdir, database).exit_code == 0
    again = up(mdir, database)
    assert again.exit_code == 0
    assert "nothing to apply" in again.stdout
    assert "applying" not in again.stdout
    assert tracking_ids(db) == ["1", "2", "10"]


def test_to_stops_after_that_id(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--to", "2")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["1", "2"]
    assert "ten" not in tables(db)


def test_to_says_what_it_left_pending(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--to", "1")
    assert result.exit_code == 0, result.stderr
    assert "note: 2 pending migration(s) above --to 1 not applied: 2_two, 10_ten" in result.stderr
    again = up(mdir, database, "--to", "1")
    assert again.exit_code == 0
    assert again.stdout == "nothing to apply up to --to (2 pending above it)\n"
    payload = json.loads(up(mdir, database, "--to", "1", "--format", "json").stdout)
    assert payload["notes"] == ["2 pending migration(s) above --to 1 not applied: 2_two, 10_ten"]
    assert tracking_ids(db) == ["1"]


def test_to_1_means_001(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table a (id int);\n", "drop table a;\n"),
        "002_b": ("create table b (id int);\n", "drop table b;\n"),
    })
    result = up(mdir, database, "--to", "1")
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001"]
    assert tables(db) == {"a", "schema_migrations"}


def test_to_unknown_id_is_a_usage_error(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--to", "7")
    assert result.exit_code == 2
    assert "--to 7: no migration has that id" in result.stderr
    assert "Traceback" not in result.stderr
    assert tables(db) == set()


def test_to_not_digits_is_a_usage_error(database, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--to", "latest")
    assert result.exit_code == 2
    assert "is not an id" in result.stderr


def test_dry_run_prints_transactions_and_changes_nothing(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("-- a comment\ncreate table a (id int);\ninsert into a values (1);\n", "drop table a;\n"),
        "002_b": ("create table b (id int)", "drop table b;\n"),
    })
    result = up(mdir, database, "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    a_begin = lines.index("BEGIN;")
    assert lines[a_begin + 1:a_begin + 3] == ["create table a (id int);", "insert into a values (1);"]
    assert lines.index("COMMIT;") > a_begin + 2
    assert "create table b (id int);" in lines  # the missing final ';' is added
    assert lines.count("BEGIN;") == 2 and lines.count("COMMIT;") == 2
    assert result.stdout.index("create table a") < result.stdout.index("create table b")
    # not even the tracking table
    assert tables(db) == set()


def test_dry_run_of_no_transaction_migration_has_no_begin(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table a (id int);\n", "drop table a;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently a_id on a (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently a_id;\n"),
    })
    result = up(mdir, database, "--dry-run")
    assert result.exit_code == 0, result.stderr
    second = result.stdout[result.stdout.index("002_idx"):]
    assert "create index concurrently a_id on a (id);" in second
    assert "BEGIN;" not in second
    assert tables(db) == set()


def test_dry_run_after_partial_apply_lists_only_pending(database, db, write_migrations):
    mdir = write_migrations(THREE)
    assert up(mdir, database, "--to", "1").exit_code == 0
    result = up(mdir, database, "--dry-run")
    assert result.exit_code == 0
    assert "create table one" not in result.stdout
    assert "create table two (id int);" in result.stdout
    assert tracking_ids(db) == ["1"]


def test_table_in_existing_schema(database, db, write_migrations):
    db.execute("create schema myschema")
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--table", "myschema.tracking")
    assert result.exit_code == 0, result.stderr
    assert tables(db, "myschema") == {"tracking"}
    assert "schema_migrations" not in tables(db)
    ids = db.execute("select id from myschema.tracking order by id::int").fetchall()
    assert [r[0] for r in ids] == ["1", "2", "10"]
    status = run("status", mdir, database, table="myschema.tracking")
    assert status.exit_code == 0
    assert status.stdout.count("applied") >= 3 and "pending" not in status.stdout


def test_table_from_environment(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = run_cli("up", env={"DATABASE_URL": database, "SQLMIGRATE_DIR": str(mdir),
                                "SQLMIGRATE_TABLE": "from_env"})
    assert result.exit_code == 0, result.stderr
    assert "from_env" in tables(db) and "schema_migrations" not in tables(db)


def test_table_in_missing_schema_is_a_clear_error(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--table", "nosuch.tracking")
    assert result.exit_code == 2
    assert "schema 'nosuch' of --table nosuch.tracking does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert tables(db) == set()


def test_table_name_needing_quotes(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--table", "Weird Name")
    assert result.exit_code == 0, result.stderr
    assert "Weird Name" in tables(db)
    assert db.execute('select count(*) from "Weird Name"').fetchone() == (3,)
    again = up(mdir, database, "--table", "Weird Name")
    assert again.exit_code == 0 and "nothing to apply" in again.stdout


def test_table_name_with_a_quote_in_it(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = up(mdir, database, "--table", 'odd"; drop table one; --')
    assert result.exit_code == 0, result.stderr
    assert 'odd"; drop table one; --' in tables(db)
    assert "one" in tables(db)


def test_foreign_tracking_table_is_refused(database, db, write_migrations):
    db.execute("create table schema_migrations (version bigint primary key)")
    db.execute("insert into schema_migrations values (20200101000000)")
    mdir = write_migrations(THREE)
    result = up(mdir, database)
    assert result.exit_code == 1
    assert "table schema_migrations exists but is not a sqlmigrate tracking table" in result.stderr
    assert "--table" in result.stderr
    assert "Traceback" not in result.stderr
    assert tables(db) == {"schema_migrations"}
    assert db.execute("select version from schema_migrations").fetchall() == [(20200101000000,)]
    status = run("status", mdir, database)
    assert status.exit_code == 1
    assert "not a sqlmigrate tracking table" in status.stderr


def test_modified_applied_migration_refuses_up(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    assert up(mdir, database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("create table a (id bigint);\n")
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    result = up(mdir, database)
    assert result.exit_code == 1
    assert "applied migration(s) changed on disk: 001_a" in result.stderr
    assert "sqlmigrate repair" in result.stderr
    assert "git checkout" in result.stderr
    assert tracking_ids(db) == ["001"]
    assert "b" not in tables(db)


def test_reformatted_applied_migration_does_not_block(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    assert up(mdir, database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("-- licence header\nCREATE TABLE a (\n    id INT\n);\n")
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]


def test_freshly_generated_migration_is_refused(database, db, tmp_path):
    mdir = tmp_path / "migrations"
    gen = run_cli("generate", "add users", "--dir", mdir)
    assert gen.exit_code == 0, gen.stderr
    result = up(mdir, database)
    assert result.exit_code == 1
    assert "001_add_users/up.sql:1:1: error: up.sql holds no statement [empty-up]" in result.stderr
    assert "nothing was applied" in result.stderr
    assert tables(db) == set()


def test_validation_error_in_any_pending_migration_blocks_all(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table a (id int);\n", "drop table a;\n"),
        "002_b": ("create table b (id int);\ncommit;\n", "drop table b;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 1
    assert "002_b/up.sql:2:1: error:" in result.stderr and "[transaction-control]" in result.stderr
    assert tables(db) == set()


def test_down_sql_error_is_a_warning_for_up(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table a (id int);\n", "drop index concurrently a_id;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "001_a/down.sql:1:1: warning:" in result.stderr
    assert "[needs-no-transaction]" in result.stderr
    assert tracking_ids(db) == ["001"]


def test_out_of_order_pending_is_refused_unless_allowed(database, db, write_migrations):
    mdir = write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    assert up(mdir, database).exit_code == 0
    write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    refused = up(mdir, database)
    assert refused.exit_code == 1
    assert "older than the newest applied one (002_b): 001_a" in refused.stderr
    assert "a" not in tables(db)
    allowed = up(mdir, database, "--allow-out-of-order")
    assert allowed.exit_code == 0, allowed.stderr
    assert tracking_ids(db) == ["001", "002"]


# -- SPEC 5: each migration starts from a clean session ---------------------------


def test_set_in_one_migration_does_not_leak_into_the_next(database, db, write_migrations):
    db.execute("create schema other")
    mdir = write_migrations({
        "001_set": ("set timezone = 'Pacific/Chatham';\nset search_path = other;\n"
                    "create table in_other (id int);\n", "drop table other.in_other;\n"),
        "002_see": ("create table seen as select current_setting('timezone') as tz, "
                    "current_schema() as schema;\n", "drop table seen;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tables(db, "other") == {"in_other"}
    # the tracking rows went to the tracking table, not to other.schema_migrations
    assert tracking_ids(db) == ["001", "002"]
    tz, schema = db.execute("select tz, schema from public.seen").fetchone()
    assert tz != "Pacific/Chatham"
    assert schema == "public"


def test_set_in_no_transaction_migration_does_not_leak(database, db, write_migrations):
    mdir = write_migrations({
        "001_set": ("-- sqlmigrate: no-transaction\nset timezone = 'Pacific/Chatham';\n"
                    "create table a (id int);\n", "drop table a;\n"),
        "002_see": ("create table seen as select current_setting('timezone') as tz;\n", "drop table seen;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    (tz,) = db.execute("select tz from seen").fetchone()
    assert tz != "Pacific/Chatham"
    assert tracking_row(db, "001") == ("applied",)


def test_set_role_does_not_leak(database, db, write_migrations):
    role = "sqlmigrate_test_role"
    db.execute(f"drop role if exists {role}")
    db.execute(f"create role {role}")
    try:
        # the role holds within its migration, also between the statements of a
        # no-transaction one (whose progress rows are written in between)
        check_role = (f"do $$ begin if current_user <> '{role}' then raise exception 'role lost'; "
                      "end if; end $$;\n")
        mdir = write_migrations({
            "001_role": (f"set role {role};\nselect 1;\n{check_role}", "select 1;\n"),
            "002_see": ("create table seen as select current_user::text as who;\n", "drop table seen;\n"),
            "003_nt": (f"-- sqlmigrate: no-transaction\nset role {role};\n{check_role}", "select 1;\n"),
            "004_see": ("insert into seen select current_user::text;\n", "select 1;\n"),
        })
        result = up(mdir, database)
        assert result.exit_code == 0, result.stderr
        assert [r[0] for r in db.execute("select who from seen")] == [db.info.user, db.info.user]
        assert tracking_row(db, "003", "state, statements_run") == ("applied", 2)
    finally:
        db.execute(f"drop owned by {role}")
        db.execute(f"drop role {role}")


def test_temporary_table_does_not_leak(database, db, write_migrations):
    mdir = write_migrations({
        "001_tmp": ("create temporary table scratch (id int);\n", "select 1;\n"),
        "002_see": ("create table scratch (id int);\ninsert into scratch values (1);\n",
                    "drop table scratch;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    # with the temporary table still there, the insert would have gone into it
    assert db.execute("select count(*) from public.scratch").fetchone() == (1,)


def test_url_options_hold_in_every_migration(database, db, write_migrations):
    db.execute("create schema other")
    mdir = write_migrations({
        "001_set": ("set search_path = public;\ncreate table a (id int);\n", "drop table a;\n"),
        "002_see": ("create table b as select current_schema() as schema, "
                    "current_setting('search_path') as path;\n", "drop table b;\n"),
    })
    url = f"{database} options='-c search_path=other,public'"
    result = up(mdir, url)
    assert result.exit_code == 0, result.stderr
    assert tables(db, "other") == {"schema_migrations", "b"}
    assert tables(db) == {"a"}
    assert db.execute("select schema, path from other.b").fetchone() == ("other", "other,public")


def test_lock_timeout_option_holds_in_every_migration(database, db, write_migrations):
    mdir = write_migrations({
        "001_set": ("set lock_timeout = '7s';\ncreate table a (id int);\n", "drop table a;\n"),
        "002_see": ("create table b as select current_setting('lock_timeout') as lt, "
                    "current_setting('statement_timeout') as st;\n", "drop table b;\n"),
    })
    result = up(mdir, database, "--lock-timeout", "3s", "--statement-timeout", "1min")
    assert result.exit_code == 0, result.stderr
    assert db.execute("select lt, st from b").fetchone() == ("3s", "1min")


def test_layout_errors_block_up(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    (mdir / "stray").mkdir()
    result = up(mdir, database)
    assert result.exit_code == 1
    assert f"{mdir}/stray:1:1: error:" in result.stderr and "[bad-name]" in result.stderr
    assert tables(db) == set()
    (mdir / "stray").rmdir()
    write_migrations({"002_b": ("create table b (id int);\n", None)})
    missing_down = up(mdir, database)
    assert missing_down.exit_code == 1
    assert "002_b:1:1: error: migration folder has no down.sql [missing-down]" in missing_down.stderr
    assert tables(db) == set()
    write_migrations({"1_dup": ("select 1;\n", "select 1;\n")})
    (mdir / "002_b" / "down.sql").write_text("drop table b;\n")
    duplicate = up(mdir, database)
    assert duplicate.exit_code == 1
    assert "[duplicate-id]" in duplicate.stderr
    assert tables(db) == set()


# -- what up validates: every pending migration, above --to too; not the applied ones --------------


def test_up_to_refuses_on_an_error_in_a_pending_migration_above_it(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_b": ("create table b (id int);\nbegin;\n", "drop table b;\n")})
    for args in (("--to", "1"), ("--to", "1", "--dry-run")):
        result = run("up", mdir, database, *args)
        assert result.exit_code == 1, result
        assert f"{mdir}/002_b/up.sql:2:1: error: BEGIN at top level" in result.stderr
        assert "[transaction-control]" in result.stderr
        assert "validation failed; nothing was applied" in result.stderr
        assert "applying" not in result.stdout
    assert tables(db) == set()  # not even the tracking table


def test_up_to_shows_down_sql_errors_above_it_as_warnings(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_b": ("create table b (id int);\n", "commit;\n")})
    result = run("up", mdir, database, "--to", "1")
    assert result.exit_code == 0, result.stderr
    assert f"{mdir}/002_b/down.sql:1:1: warning: COMMIT at top level" in result.stderr
    assert "(blocks down, not up)" in result.stderr
    assert tracking_ids(db) == ["001"]


def test_check_errors_in_an_applied_up_sql_do_not_block_up_unless_it_is_modified(database, db, write_migrations):
    """Decided (README, `up`): applied migrations are not validated again; their up.sql already ran.
    A content edit makes them modified, which does block."""
    mdir = applied(write_migrations, database, ONE)
    up_sql = mdir / "001_a" / "up.sql"
    up_sql.write_text("create table a (id int);\n-- sqlmigrate: no-transaction\n")  # a comment only
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    checked = check(mdir)
    assert checked.exit_code == 1 and f"{mdir}/001_a/up.sql:2:1: error:" in checked.stdout
    status = run("status", mdir, database, "--format", "json")
    assert json.loads(status.stdout)["migrations"][0]["state"] == "reformatted"
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]
    up_sql.write_text("create table a (id bigint);\n")
    write_migrations({"003_c": ("create table c (id int);\n", "drop table c;\n")})
    refused = run("up", mdir, database)
    assert refused.exit_code == 1
    assert "applied migration(s) changed on disk: 001_a" in refused.stderr
    assert "c" not in tables(db)


# -- the JSON report -------------------------------------------------------------------------------


PLANNED = {
    "001_a": ("-- a comment\ncreate table a (id int);\ninsert into a values (1);\n", "drop table a;\n"),
    "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently a_id on a (id);\n",
                "-- sqlmigrate: no-transaction\ndrop index concurrently a_id;\n"),
    "003_clean": ("delete from a;\n", "select 1;\n"),
}


def test_up_dry_run_json_shape(database, db, write_migrations):
    mdir = write_migrations(PLANNED)
    result = run("up", mdir, database, "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # warnings go into the object, not to stderr
    payload = one_json(result.stdout)
    assert set(payload) == {"command", "exit_code", "dry_run", "warnings", "notes", "planned", "backup"}
    assert payload["backup"] is None  # a dry run never takes one
    assert (payload["command"], payload["exit_code"], payload["dry_run"], payload["notes"]) == ("up", 0, True, [])
    [warning] = payload["warnings"]
    assert set(warning) == FINDING_KEYS
    assert (warning["path"], warning["line"], warning["col"], warning["severity"], warning["rule"]) == (
        f"{mdir}/003_clean/up.sql", 1, 1, "warning", "destructive")
    assert payload["planned"] == [
        {"id": "001", "name": "a", "path": f"{mdir}/001_a/up.sql", "transactional": True,
         "statements": ["create table a (id int);", "insert into a values (1);"]},
        {"id": "002", "name": "idx", "path": f"{mdir}/002_idx/up.sql", "transactional": False,
         "statements": ["create index concurrently a_id on a (id);"]},
        {"id": "003", "name": "clean", "path": f"{mdir}/003_clean/up.sql", "transactional": True,
         "statements": ["delete from a;"]},
    ]
    assert tables(db) == set()  # changes nothing, not even the tracking table


def test_up_json_shape_without_dry_run(database, db, write_migrations):
    mdir = write_migrations(PLANNED)
    payload = one_json(run("up", mdir, database, "--format", "json").stdout)
    assert set(payload) == {"command", "exit_code", "dry_run", "warnings", "notes", "done", "failed", "not_run",
                            "backup"}
    assert payload["backup"] is None
    assert (payload["dry_run"], payload["failed"], payload["not_run"]) == (False, None, [])
    assert [set(d) for d in payload["done"]] == [STEP_KEYS | NOTICE_KEYS | {"duration_s", "attempts"}] * 3
    assert [d["attempts"] for d in payload["done"]] == [1, 1, 1]
    assert [(d["id"], d["transactional"]) for d in payload["done"]] == [("001", True), ("002", False),
                                                                        ("003", True)]
    assert all(isinstance(d["duration_s"], float) and d["duration_s"] >= 0 for d in payload["done"])
    assert tracking_ids(db) == ["001", "002", "003"]

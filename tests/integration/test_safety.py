"""The safety commands against a real server: verify, repair, baseline, out-of-order, reformatted.

SPEC 2 (checksums, content checksum) and SPEC 3 (verify, repair, baseline, up refusals).
"""
from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import tables, tracking_ids, tracking_row
from tests.integration.helpers import ONE, TWO, applied, check, error_object, one_json, run, sha256, status_rows


def states(mdir, database) -> dict[str, str]:
    result = run("status", mdir, database, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {m["id"]: m["state"] for m in json.loads(result.stdout)["migrations"]}


FOUR = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("create table b (id int);\n", "drop table b;\n"),
    "003_c": ("create table c (id int);\n", "drop table c;\n"),
    "004_d": ("create table d (id int);\n", "drop table d;\n"),
}

# a no-transaction migration whose second statement fails (column "nope")
BROKEN_CONCURRENTLY = {
    "001_t": ("create table t (id int);\n", "drop table t;\n"),
    "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n"
                "create index concurrently t_nope on t (nope);\n",
                "-- sqlmigrate: no-transaction\ndrop index concurrently if exists t_id;\n"),
}


# -- verify ------------------------------------------------------------------------


def test_verify_passes_with_pending_migrations(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"], "002_b": FOUR["002_b"]})
    assert run("up", mdir, database, "--to", "1").exit_code == 0
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "verify ok: 1 applied migration(s) match their files; 1 pending\n"
    assert result.stderr == ""


def test_verify_on_a_database_never_migrated_passes_and_creates_nothing(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "0 applied migration(s) match their files; 4 pending" in result.stdout
    assert tables(db) == set()


def test_verify_names_each_modified_missing_and_failed_migration(database, db, write_migrations):
    mdir = write_migrations({**FOUR, "005_t": BROKEN_CONCURRENTLY["001_t"],
                             "006_idx": BROKEN_CONCURRENTLY["002_idx"]})
    assert run("up", mdir, database).exit_code == 4  # 006 fails part-way and is recorded as failed
    (mdir / "002_b" / "up.sql").write_text("create table b (id bigint);\n")
    shutil.rmtree(mdir / "003_c")
    result = run("verify", mdir, database)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "002_b: modified" in lines
    assert "  up.sql changed since it was applied" in lines
    assert "003_c: missing" in lines
    assert "006_idx: failed" in lines
    assert "  no-transaction migration stopped after 1 statement(s); fix it, then run repair" in lines
    assert lines[-1] == "verify failed: 3 problem(s) among 6 applied migration(s)"
    assert "001_a" not in result.stderr and "004_d" not in result.stderr
    assert "Traceback" not in result.stderr

    payload = json.loads(run("verify", mdir, database, "--format", "json").stdout)
    assert payload["exit_code"] == 1
    assert [(p["id"], p["state"]) for p in payload["problems"]] == [
        ("002", "modified"), ("003", "missing"), ("006", "failed")]


@pytest.mark.parametrize("problem", ["modified", "missing", "failed"])
def test_verify_fails_on_each_problem_alone(problem, database, db, write_migrations):
    mdir = write_migrations(BROKEN_CONCURRENTLY if problem == "failed" else FOUR)
    run("up", mdir, database)
    if problem == "modified":
        (mdir / "004_d" / "up.sql").write_text("create table d (id int, x int);\n")
    elif problem == "missing":
        shutil.rmtree(mdir / "004_d")
    result = run("verify", mdir, database)
    assert result.exit_code == 1
    name = "002_idx" if problem == "failed" else "004_d"
    assert f"{name}: {problem}" in result.stderr.splitlines()
    assert "verify failed: 1 problem(s)" in result.stderr


def test_verify_treats_reformatted_and_edited_down_sql_as_information(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"], "002_b": FOUR["002_b"]})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("-- Copyright 2026 Example\nCREATE TABLE a (\n    id INT\n);\n")
    (mdir / "002_b" / "down.sql").write_text("drop table if exists b;\n")
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "001_a: reformatted (comments, spacing or case only; not a problem)" in result.stdout
    assert "verify ok: 2 applied migration(s) match their files; 0 pending" in result.stdout
    assert result.stderr == ""
    payload = json.loads(run("verify", mdir, database, "--format", "json").stdout)
    assert payload["problems"] == [] and payload["reformatted"] == ["001"]


def test_verify_reports_an_edited_down_sql_as_information(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    (mdir / "001_a" / "down.sql").write_text("drop table if exists a;\n")
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "001_a: down.sql edited since it was applied (not a problem; `down` runs the file on disk)" \
        in result.stdout
    assert "002_b" not in result.stdout
    payload = json.loads(run("verify", mdir, database, "--format", "json").stdout)
    assert payload["exit_code"] == 0 and payload["problems"] == [] and payload["down_edited"] == ["001"]


# -- a folder added with the id of an applied migration --------------------------------------------


DUPLICATE_OF_APPLIED = {"1_b": ("create table b (id int);\n", "drop table b;\n"),
                        "002_c": ("create table c (id int);\n", "drop table c;\n")}


def test_verify_names_the_duplicate_folder_not_a_modified_migration(database, db, write_migrations):
    mdir = applied(write_migrations, database, DUPLICATE_OF_APPLIED)
    write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    finding = (f"{mdir}/001_a:1:1: error: id 001 is the same as 1_b, which is applied (ids compare as integers) "
               "[duplicate-id]")
    status = run("status", mdir, database)
    assert status.exit_code == 0
    assert status.stderr.splitlines()[0] == finding
    assert [cells[:3] for cells in status_rows(status.stdout).values()] == [["1", "b", "applied"],
                                                                         ["002", "c", "applied"]]
    verify = run("verify", mdir, database)
    assert verify.exit_code == 1
    assert finding in verify.stderr.splitlines()
    assert "verify failed: a folder has the same id as an applied migration" in verify.stderr
    assert "modified" not in verify.stdout + verify.stderr
    payload = json.loads(run("verify", mdir, database, "--format", "json").stdout)
    assert payload["exit_code"] == 1 and payload["command"] == "verify"
    assert [(f["path"], f["rule"]) for f in payload["findings"]] == [(f"{mdir}/001_a", "duplicate-id")]
    # up still refuses on the duplicate, and changes nothing
    write_migrations({"003_d": ("create table d (id int);\n", "drop table d;\n")})
    refused = run("up", mdir, database)
    assert refused.exit_code == 1
    assert finding in refused.stderr.splitlines()
    assert "validation failed; nothing was applied" in refused.stderr
    assert "changed on disk" not in refused.stderr
    assert tracking_ids(db) == ["1", "002"]
    # down of the applied migration runs its own down.sql, not the newcomer's
    assert run("down", mdir, database, "--all", "--yes").exit_code == 0
    assert tables(db) == {"schema_migrations"}
    assert tracking_ids(db) == []


def test_verify_leaves_a_duplicate_among_pending_folders_to_check(database, db, write_migrations):
    mdir = applied(write_migrations, database, ONE)
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n"),
                      "2_c": ("create table c (id int);\n", "drop table c;\n")})
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr  # pending ones are fine (SPEC 3); check and up refuse them
    assert check(mdir).exit_code == 1


# -- repair ------------------------------------------------------------------------


def test_repair_records_new_checksums_then_verify_and_up_pass(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"], "002_b": FOUR["002_b"]})
    assert run("up", mdir, database).exit_code == 0
    modified = b"create table a (id int);\ncomment on table a is 'done by hand';\n"
    reformatted = b"-- header\nCREATE TABLE b (id INT);\n"
    (mdir / "001_a" / "up.sql").write_bytes(modified)
    (mdir / "002_b" / "up.sql").write_bytes(reformatted)
    write_migrations({"003_c": FOUR["003_c"]})
    assert run("up", mdir, database).exit_code == 1  # refused: 001 is modified
    assert run("verify", mdir, database).exit_code == 1

    result = run("repair", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "001_a: recorded the current checksums of up.sql (and its down.sql)",
        "002_b: recorded the current checksums of up.sql (and its down.sql)",
    ]
    assert tracking_row(db, "001", "checksum") == (sha256(modified),)
    assert tracking_row(db, "002", "checksum") == (sha256(reformatted),)
    assert states(mdir, database) == {"001": "applied", "002": "applied", "003": "pending"}
    assert run("verify", mdir, database).exit_code == 0
    # repair changed only the tracking table, never ran SQL
    assert db.execute("select obj_description('a'::regclass)").fetchone() == (None,)
    up = run("up", mdir, database)
    assert up.exit_code == 0, up.stderr
    assert tracking_ids(db) == ["001", "002", "003"]
    again = run("repair", mdir, database)
    assert again.exit_code == 0 and again.stdout == "nothing to repair\n"


def test_repair_one_id_touches_only_that_one(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"], "002_b": FOUR["002_b"]})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("create table a (id bigint);\n")
    (mdir / "002_b" / "up.sql").write_text("create table b (id bigint);\n")
    before = tracking_row(db, "002", "checksum")
    result = run("repair", mdir, database, "1")  # ids compare as integers: 1 is 001
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "001_a: recorded the current checksums of up.sql (and its down.sql)\n"
    assert tracking_row(db, "002", "checksum") == before
    assert states(mdir, database) == {"001": "applied", "002": "modified"}
    # the same migration named twice (2 and 002) is repaired, and reported, once
    result = run("repair", mdir, database, "2", "002")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "002_b: recorded the current checksums of up.sql (and its down.sql)\n"
    assert states(mdir, database) == {"001": "applied", "002": "applied"}


def test_repair_of_an_unknown_id_is_a_usage_error(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"]})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("create table a (id bigint);\n")
    before = tracking_row(db, "001", "checksum")
    for wanted in ("9", "x1"):
        result = run("repair", mdir, database, "1", wanted)
        assert result.exit_code == 2, result
        assert f"repair {wanted}: no migration has that id" in result.stderr
        assert "Traceback" not in result.stderr
    # nothing changed: the known id given alongside was not repaired either
    assert tracking_row(db, "001", "checksum") == before


def test_repair_clears_a_failed_no_transaction_up(database, db, write_migrations):
    mdir = write_migrations(BROKEN_CONCURRENTLY)
    assert run("up", mdir, database).exit_code == 4
    assert states(mdir, database)["002"] == "failed"
    # the fix: the first statement already ran, the second names the right column
    (mdir / "002_idx" / "up.sql").write_text(
        "-- sqlmigrate: no-transaction\ncreate index concurrently if not exists t_id on t (id);\n"
        "create index concurrently t_id_2 on t (id);\n")
    refused = run("up", mdir, database)
    assert refused.exit_code == 1
    assert "migration 002_idx failed part-way (no-transaction); nothing was run" in refused.stderr

    result = run("repair", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "002_idx: cleared the failed run; the migration is pending again\n"
    assert states(mdir, database) == {"001": "applied", "002": "pending"}
    again = run("up", mdir, database)
    assert again.exit_code == 0, again.stderr
    assert tracking_row(db, "002", "state, statements_run") == ("applied", 2)
    indexes = {r[0] for r in db.execute("select indexname from pg_indexes where tablename = 't'")}
    assert indexes == {"t_id", "t_id_2"}


def test_repair_clears_a_failed_no_transaction_down(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id;\ndrop index concurrently t_nope;\n"),
    })
    assert run("up", mdir, database).exit_code == 0
    down = run("down", mdir, database)
    assert down.exit_code == 4
    assert tracking_row(db, "002", "state, failed_during") == ("failed", "down")
    assert states(mdir, database)["002"] == "failed"
    verify = run("verify", mdir, database)
    assert verify.exit_code == 1
    assert ("  no-transaction rollback (down.sql) stopped after 1 statement(s); fix it, then run repair "
            "(the migration counts as applied again)") in verify.stderr.splitlines()
    assert run("down", mdir, database).exit_code == 1  # refused until repaired

    result = run("repair", mdir, database, "002")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "002_idx: cleared the failed rollback; the migration is applied again\n"
    assert states(mdir, database) == {"001": "applied", "002": "applied"}
    assert tracking_row(db, "002", "state, failed_during, statements_run") == ("applied", None, None)
    assert run("verify", mdir, database).exit_code == 0
    # after fixing down.sql the rollback works
    (mdir / "002_idx" / "down.sql").write_text(
        "-- sqlmigrate: no-transaction\ndrop index concurrently if exists t_id;\n")
    again = run("down", mdir, database)
    assert again.exit_code == 0, again.stderr
    assert tracking_ids(db) == ["001"]


def test_repair_of_an_applied_migration_is_refused(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"]})
    assert run("up", mdir, database).exit_code == 0
    result = run("repair", mdir, database, "001")
    assert result.exit_code == 2
    assert "001_a is applied; only modified, reformatted or failed migrations can be repaired" in result.stderr


def test_repair_json(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"]})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("CREATE TABLE a (id INT);\n")
    payload = json.loads(run("repair", mdir, database, "--format", "json").stdout)
    assert payload["repaired"] == [{"id": "001", "name": "a", "action": "record-checksums", "was": "reformatted"}]


# -- baseline ----------------------------------------------------------------------


def test_baseline_records_without_running_then_up_applies_the_rest(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    result = run("baseline", mdir, database, "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "recorded 001_a as applied (not run)",
        "recorded 002_b as applied (not run)",
        "baseline: 2 migration(s) recorded",
    ]
    assert tables(db) == {"schema_migrations"}  # nothing ran
    assert tracking_ids(db) == ["001", "002"]
    for id_, folder in (("001", "001_a"), ("002", "002_b")):
        assert tracking_row(db, id_, "checksum") == (sha256((mdir / folder / "up.sql").read_bytes()),)
    assert tracking_row(db, "002", "down_sql") == ("drop table b;\n",)
    assert states(mdir, database) == {"001": "applied", "002": "applied", "003": "pending", "004": "pending"}
    assert run("verify", mdir, database).exit_code == 0
    # the content checksum was recorded too: a reformat is told apart from an edit
    (mdir / "001_a" / "up.sql").write_text("-- adopted\nCREATE TABLE a (id INT);\n")
    (mdir / "002_b" / "up.sql").write_text("create table b (id bigint);\n")
    assert states(mdir, database)["001"] == "reformatted"
    assert states(mdir, database)["002"] == "modified"
    (mdir / "002_b" / "up.sql").write_text(FOUR["002_b"][0])

    up = run("up", mdir, database)
    assert up.exit_code == 0, up.stderr
    assert "applying 001_a" not in up.stdout and "applying 003_c" in up.stdout
    assert tables(db) == {"schema_migrations", "c", "d"}
    assert tracking_ids(db) == ["001", "002", "003", "004"]


def test_baseline_says_which_down_sql_it_could_not_store(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    (mdir / "002_b" / "down.sql").write_bytes(b"drop table \xff;\n")
    (mdir / "001_a" / "down.sql").unlink()
    result = run("baseline", mdir, database, "2")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "note: 001_a: down.sql is missing, so no copy of it is stored; `down` of it will need the file on disk",
        "note: 002_b: down.sql is not UTF-8, so no copy of it is stored; `down` of it will need the file on disk",
    ]
    assert db.execute("select count(*) from schema_migrations where down_sql is null").fetchone() == (2,)


def test_baseline_refuses_when_the_tracking_table_has_rows(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    assert run("up", mdir, database, "--to", "1").exit_code == 0
    result = run("baseline", mdir, database, "3")
    assert result.exit_code == 1
    assert ("sqlmigrate: the tracking table already has 1 row(s); baseline only adopts a database "
            "whose tracking table is empty; nothing was changed") in result.stderr
    assert tracking_ids(db) == ["001"]


def test_baseline_of_an_unknown_id_is_a_usage_error(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    result = run("baseline", mdir, database, "7")
    assert result.exit_code == 2
    assert "sqlmigrate: baseline 7: no migration has that id" in result.stderr  # not "--to": never typed
    assert tables(db) == set()


def test_baseline_json_shape_and_refusal_object(database, db, write_migrations):
    mdir = write_migrations({k: FOUR[k] for k in ("001_a", "002_b", "003_c")})
    result = run("baseline 2", mdir, database, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert one_json(result.stdout) == {"command": "baseline", "exit_code": 0,
                                       "recorded": [{"id": "001", "name": "a"}, {"id": "002", "name": "b"}],
                                       "notes": []}
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"schema_migrations"}  # recorded, not run
    again = run("baseline 3", mdir, database, "--format", "json")
    assert again.exit_code == 1
    refusal = error_object(again.stdout, "baseline", 1)
    assert "tracking table already has 2 row(s)" in refusal["error"]
    assert tracking_ids(db) == ["001", "002"]


# -- out of order ------------------------------------------------------------------


def test_out_of_order_is_refused_naming_both_ids_unless_allowed(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"], "003_c": FOUR["003_c"]})
    assert run("up", mdir, database).exit_code == 0
    write_migrations({"002_b": FOUR["002_b"]})
    refused = run("up", mdir, database)
    assert refused.exit_code == 1
    assert ("sqlmigrate: pending migration(s) older than the newest applied one (003_c): 002_b"
            in refused.stderr.splitlines())
    assert "--allow-out-of-order" in refused.stderr
    assert "b" not in tables(db)
    assert tracking_ids(db) == ["001", "003"]
    allowed = run("up", mdir, database, "--allow-out-of-order")
    assert allowed.exit_code == 0, allowed.stderr
    assert "applying 002_b" in allowed.stdout
    assert tracking_ids(db) == ["001", "002", "003"]
    assert "b" in tables(db)


def test_out_of_order_refusal_is_not_affected_by_to(database, db, write_migrations):
    mdir = write_migrations({"001_a": FOUR["001_a"], "003_c": FOUR["003_c"]})
    assert run("up", mdir, database).exit_code == 0
    write_migrations({"002_b": FOUR["002_b"], "004_d": FOUR["004_d"]})
    refused = run("up", mdir, database, "--to", "4")
    assert refused.exit_code == 1
    assert "(003_c): 002_b" in refused.stderr
    assert tracking_ids(db) == ["001", "003"]  # 004 was not applied either: a refused up changes nothing


# -- SPEC 2: the content checksum ----------------------------------------------------

ORIGINAL = "create table things (\n  id int primary key,\n  label text default 'Hello',\n  \"Mixed\" int\n);\n"

REFORMATTED = {
    "licence header": "-- Copyright (c) 2026 Example Ltd.\n-- SPDX-License-Identifier: MIT\n\n" + ORIGINAL,
    "re-indented": "create table things (id int primary key,\n\tlabel text   default 'Hello',\n\t\t\"Mixed\" int);",
    "keywords upper-cased":
        "CREATE TABLE things (\n  id INT PRIMARY KEY,\n  label TEXT DEFAULT 'Hello',\n  \"Mixed\" INT\n);\n",
    "unquoted names upper-cased": ORIGINAL.replace("things", "THINGS").replace("label", "Label"),
    "block comment": "/* things */ " + ORIGINAL.replace("id int", "id /* key */ int"),
}

MODIFIED = {
    "string literal": ORIGINAL.replace("'Hello'", "'hello'"),
    "quoted identifier case": ORIGINAL.replace('"Mixed"', '"MIXED"'),
    "number": ORIGINAL.replace("int primary key", "numeric(10, 2) primary key"),
    "statement added": ORIGINAL + "create index on things (label);\n",
}


@pytest.mark.parametrize("kind", sorted(REFORMATTED))
def test_reformatted_up_sql_is_information_only(kind, database, db, write_migrations):
    mdir = write_migrations({"001_things": (ORIGINAL, "drop table things;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_things" / "up.sql").write_text(REFORMATTED[kind])
    assert states(mdir, database) == {"001": "reformatted"}
    verify = run("verify", mdir, database)
    assert verify.exit_code == 0, verify.stderr
    assert "001_things: reformatted" in verify.stdout
    write_migrations({"002_more": ("create table more (id int);\n", "drop table more;\n")})
    up = run("up", mdir, database)
    assert up.exit_code == 0, up.stderr
    assert tracking_ids(db) == ["001", "002"]


def test_crlf_line_endings_are_no_change_at_all(database, db, write_migrations):
    # SPEC 2: CRLF becomes LF before hashing, so the checksum itself is unchanged: not even reformatted
    mdir = write_migrations({"001_things": (ORIGINAL, "drop table things;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_things" / "up.sql").write_bytes(b"\xef\xbb\xbf" + ORIGINAL.replace("\n", "\r\n").encode())
    assert states(mdir, database) == {"001": "applied"}
    assert run("verify", mdir, database).exit_code == 0
    # CRLF together with upper-cased keywords: reformatted
    (mdir / "001_things" / "up.sql").write_bytes(REFORMATTED["keywords upper-cased"].replace("\n", "\r\n").encode())
    assert states(mdir, database) == {"001": "reformatted"}


@pytest.mark.parametrize("kind", sorted(MODIFIED))
def test_semantic_edit_is_modified_and_blocks_up(kind, database, db, write_migrations):
    mdir = write_migrations({"001_things": (ORIGINAL, "drop table things;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_things" / "up.sql").write_text(MODIFIED[kind])
    assert states(mdir, database) == {"001": "modified"}
    verify = run("verify", mdir, database)
    assert verify.exit_code == 1
    assert "001_things: modified" in verify.stderr
    write_migrations({"002_more": ("create table more (id int);\n", "drop table more;\n")})
    up = run("up", mdir, database)
    assert up.exit_code == 1
    assert "sqlmigrate: applied migration(s) changed on disk: 001_things" in up.stderr
    assert "more" not in tables(db)


def test_reformatted_directive_spelling_is_not_a_change_but_a_new_directive_is(database, db, write_migrations):
    up_sql = "-- sqlmigrate: no-transaction\ncreate table t (id int);\n"
    mdir = write_migrations({"001_t": (up_sql, "drop table t;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_t" / "up.sql").write_text("--SQLMIGRATE :  No-Transaction\nCREATE TABLE t (id INT);\n")
    assert states(mdir, database) == {"001": "reformatted"}
    (mdir / "001_t" / "up.sql").write_text("create table t (id int);\n")  # the directive removed
    assert states(mdir, database) == {"001": "modified"}


def test_reordering_ignore_rules_after_apply_is_reformatted(database, db, write_migrations):
    up_sql = "-- sqlmigrate: ignore destructive, lock-unsafe\ncreate table a (id int);\ncreate index on a (id);\n"
    mdir = applied(write_migrations, database, {"001_a": (up_sql, "drop table a;\n")})
    (mdir / "001_a" / "up.sql").write_text(up_sql.replace("destructive, lock-unsafe", "lock-unsafe, destructive"))
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    status = json.loads(run("status", mdir, database, "--format", "json").stdout)
    assert [(m["id"], m["state"]) for m in status["migrations"]] == [("001", "reformatted"), ("002", "pending")]
    assert run("verify", mdir, database).exit_code == 0
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]
    # dropping a rule from the list is a change of content
    (mdir / "001_a" / "up.sql").write_text(up_sql.replace("destructive, lock-unsafe", "lock-unsafe"))
    status = json.loads(run("status", mdir, database, "--format", "json").stdout)
    assert status["migrations"][0]["state"] == "modified"

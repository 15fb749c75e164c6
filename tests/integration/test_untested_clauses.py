"""Clauses that worked without a test (spec audit, last section), now pinned.

check --format json/github and --strict through the command line; the JSON
shapes of up --dry-run, down, baseline and check; `empty` migrations against a
real server; down --dry-run from the stored down.sql; Ctrl-C during down; the
exit-5 JSON object; duration forms; touches-tracking-table with spaced and
quoted qualified names; status with a duplicate id.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time

import pytest

from tests.conftest import run_cli, run_process, start_process, tables, tracking_ids, wait_running, interrupt_process as interrupt, finish_process as finish

FINDING_KEYS = {"path", "line", "col", "severity", "rule", "message", "hint"}  # README, check --format json
STEP_KEYS = {"id", "name", "path", "transactional"}
NOTICE_KEYS = {"notices", "notices_omitted"}  # of a step that ran
# README: when a command stops early the object is {"error", "exit_code", "details", "findings"}; the README
# also says every object has "command" (missing at the audit, being added): allowed, not required, here
ERROR_KEYS = {"command", "error", "exit_code", "details", "findings"}


def error_object(stdout: str, command: str, exit_code: int) -> dict:
    payload = one_json(stdout)
    assert {"error", "exit_code"} <= set(payload) <= ERROR_KEYS, payload
    assert payload["exit_code"] == exit_code
    assert payload.get("command", command) == command
    return payload


def run(command, mdir, database, *args):
    return run_cli(command, "--dir", mdir, "--database-url", database, *args)


def check(mdir, *args):
    return run_cli("check", "--dir", mdir, *args)


def one_json(stdout: str) -> dict:
    """stdout holds exactly one JSON object (json.loads refuses trailing text)."""
    payload = json.loads(stdout)
    assert isinstance(payload, dict), payload
    return payload


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def objects(db) -> list[tuple]:
    """Every relation, function and type the user made in public, the tracking table left out."""
    rels = db.execute(
        "select c.relname, c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relname not like 'schema_migrations%' order by 1").fetchall()
    funcs = db.execute("select p.proname, 'f' from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                       "where n.nspname = 'public' order by 1").fetchall()
    return rels + funcs


def tracking_columns(db, table: str = "schema_migrations") -> list[str]:
    rows = db.execute("select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 "
                      "and not attisdropped order by attnum", (table,)).fetchall()
    return [r[0] for r in rows]


# -- check --format json | github, --strict -----------------------------------------

CHECKED = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    # a warning (line 2, col 3) and an error (line 3, col 1)
    "002_b": ("select 1;\n  drop table a;\ncommit;\n", "select 1;\n"),
}

DESTRUCTIVE = ("DROP TABLE destroys data", "make sure this is intended; silence with -- sqlmigrate: ignore destructive")
COMMIT = ("COMMIT at top level: sqlmigrate runs each migration in its own transaction",
          "remove it; use no-transaction for statements that must run outside one")


def test_check_json_has_the_documented_keys_and_values(write_migrations):
    mdir = write_migrations(CHECKED)
    result = check(mdir, "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == ""
    payload = one_json(result.stdout)
    assert payload["command"] == "check" and payload["exit_code"] == 1
    findings = payload["findings"]
    assert all(set(f) == FINDING_KEYS for f in findings), findings
    assert findings == [
        {"path": f"{mdir}/002_b/up.sql", "line": 2, "col": 3, "severity": "warning", "rule": "destructive",
         "message": DESTRUCTIVE[0], "hint": DESTRUCTIVE[1]},
        {"path": f"{mdir}/002_b/up.sql", "line": 3, "col": 1, "severity": "error", "rule": "transaction-control",
         "message": COMMIT[0], "hint": COMMIT[1]},
    ]
    assert all(isinstance(f["line"], int) and isinstance(f["col"], int) for f in findings)


def test_check_json_of_a_clean_folder_is_an_empty_list_and_exit_0(write_migrations):
    mdir = write_migrations({"001_a": CHECKED["001_a"]})
    result = check(mdir, "--format", "json")
    assert result.exit_code == 0
    assert one_json(result.stdout) == {"command": "check", "exit_code": 0, "findings": []}


def test_check_json_folder_finding_points_at_1_1(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", None)})
    payload = one_json(check(mdir, "--format", "json").stdout)
    [finding] = payload["findings"]
    assert (finding["path"], finding["line"], finding["col"], finding["severity"], finding["rule"]) == (
        f"{mdir}/001_a", 1, 1, "error", "missing-down")


def test_check_github_prints_exact_annotations_and_nothing_else(write_migrations):
    mdir = write_migrations(CHECKED)
    result = run_process("check", "--dir", mdir, "--format", "github")  # a real process, as in CI
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"::warning file={mdir}/002_b/up.sql,line=2,col=3::{DESTRUCTIVE[0]} [destructive]",
        f"::error file={mdir}/002_b/up.sql,line=3,col=1::{COMMIT[0]} [transaction-control]",
    ]
    assert result.stdout.endswith("\n")
    assert result.stderr == ""


def test_check_github_warning_only_exits_0_and_clean_prints_nothing(write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ndrop table a;\n", "select 1;\n")})
    result = check(mdir, "--format", "github")
    assert result.exit_code == 0
    assert result.stdout == f"::warning file={mdir}/001_a/up.sql,line=2,col=1::{DESTRUCTIVE[0]} [destructive]\n"
    (mdir / "001_a" / "up.sql").write_text("create table a (id int);\n")
    clean = check(mdir, "--format", "github")
    assert (clean.exit_code, clean.stdout, clean.stderr) == (0, "", "")


WARNING_ONLY = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("delete from a;\n", "select 1;\n"),  # destructive: a warning, no error
}


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_check_strict_exits_1_on_a_warning_only_folder(fmt, write_migrations):
    mdir = write_migrations(WARNING_ONLY)
    lenient = check(mdir, "--format", fmt)
    strict = check(mdir, "--format", fmt, "--strict")
    assert lenient.exit_code == 0, lenient.stdout
    assert strict.exit_code == 1, strict.stdout
    # the same findings either way: --strict changes only the exit status
    if fmt == "json":
        assert one_json(lenient.stdout)["exit_code"] == 0
        assert one_json(strict.stdout)["exit_code"] == 1
        assert one_json(lenient.stdout)["findings"] == one_json(strict.stdout)["findings"]
        assert [f["rule"] for f in one_json(strict.stdout)["findings"]] == ["destructive"]
    else:
        assert lenient.stdout == strict.stdout
        assert f"{mdir}/002_b/up.sql" in strict.stdout and "[destructive]" in strict.stdout
    if fmt == "text":
        assert "checked 2 migration(s): 0 error(s), 1 warning(s)" in strict.stdout


def test_check_strict_passes_when_the_warning_is_ignored(write_migrations):
    mdir = write_migrations({**WARNING_ONLY, "002_b": ("-- sqlmigrate: ignore destructive\ndelete from a;\n",
                                                       "select 1;\n")})
    result = check(mdir, "--strict")
    assert result.exit_code == 0, result.stdout
    assert "0 error(s), 0 warning(s)" in result.stdout


# -- JSON shapes of up --dry-run, down, baseline --------------------------------------

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
    assert (payload["command"], payload["exit_code"], payload["dry_run"], payload["notes"]) == ("up", 0, True, [])
    assert payload["backup"] is None  # a dry run never takes one
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
    assert (payload["dry_run"], payload["failed"], payload["not_run"], payload["backup"]) == (False, None, [], None)
    assert [set(d) for d in payload["done"]] == [STEP_KEYS | NOTICE_KEYS | {"duration_s"}] * 3
    assert [(d["id"], d["transactional"]) for d in payload["done"]] == [("001", True), ("002", False),
                                                                        ("003", True)]
    assert all(isinstance(d["duration_s"], float) and d["duration_s"] >= 0 for d in payload["done"])
    assert tracking_ids(db) == ["001", "002", "003"]


FOUR = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("create table b (id int);\n", "drop table b;\n"),
    "003_c": ("create table c (id int);\n", "drop table c;\nselect 'stored-marker';\n"),
}


def applied(write_migrations, database, migrations=FOUR):
    mdir = write_migrations(migrations)
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    return mdir


def test_down_json_shape_with_the_stored_down_note(database, db, write_migrations):
    mdir = applied(write_migrations, database)
    shutil.rmtree(mdir / "003_c")
    result = run("down", mdir, database, "--steps", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    payload = one_json(result.stdout)
    assert set(payload) == {"command", "exit_code", "dry_run", "warnings", "notes", "done", "failed", "not_run"}
    assert (payload["command"], payload["exit_code"], payload["dry_run"]) == ("down", 0, False)
    assert payload["warnings"] == []
    assert payload["notes"] == ["003_c: folder or down.sql gone; using the down.sql stored at apply time"]
    assert (payload["failed"], payload["not_run"]) == (None, [])
    done = payload["done"]
    assert [set(d) for d in done] == [STEP_KEYS | NOTICE_KEYS | {"duration_s"}] * 2
    assert [(d["id"], d["name"], d["transactional"]) for d in done] == [("003", "c", True), ("002", "b", True)]
    assert done[1]["path"] == f"{mdir}/002_b/down.sql"
    assert "003_c/down.sql" in done[0]["path"] and "stored" in done[0]["path"]
    assert tracking_ids(db) == ["001"]
    assert tables(db) == {"a", "schema_migrations"}


def test_down_json_failure_shape(database, db, write_migrations):
    mdir = applied(write_migrations, database, {**FOUR, "003_c": ("create table c (id int);\n",
                                                                  "drop table c;\ndrop table nope;\n")})
    result = run("down", mdir, database, "--steps", "2", "--format", "json")
    assert result.exit_code == 4
    payload = one_json(result.stdout)
    assert payload["exit_code"] == 4 and payload["done"] == []
    failed = payload["failed"]
    assert set(failed) == STEP_KEYS | NOTICE_KEYS | {"statements_run", "error"}
    assert (failed["id"], failed["name"], failed["path"]) == ("003", "c", f"{mdir}/003_c/down.sql")
    assert set(failed["error"]) == {"path", "line", "col", "sqlstate", "message", "detail", "hint", "context"}
    assert (failed["error"]["line"], failed["error"]["col"], failed["error"]["sqlstate"]) == (2, 1, "42P01")
    assert [(s["id"], s["name"]) for s in payload["not_run"]] == [("002", "b")]
    assert tracking_ids(db) == ["001", "002", "003"]
    assert tables(db) == {"a", "b", "c", "schema_migrations"}


def test_baseline_json_shape_and_refusal_object(database, db, write_migrations):
    mdir = write_migrations(FOUR)
    result = run_cli("baseline", "2", "--dir", mdir, "--database-url", database, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert one_json(result.stdout) == {"command": "baseline", "exit_code": 0,
                                       "recorded": [{"id": "001", "name": "a"}, {"id": "002", "name": "b"}],
                                       "notes": []}
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"schema_migrations"}  # recorded, not run
    again = run_cli("baseline", "3", "--dir", mdir, "--database-url", database, "--format", "json")
    assert again.exit_code == 1
    refusal = error_object(again.stdout, "baseline", 1)
    assert "tracking table already has 2 row(s)" in refusal["error"]
    assert tracking_ids(db) == ["001", "002"]


# -- `-- sqlmigrate: empty` against a real server -------------------------------------

EMPTY = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    # an up emptied after a squash, with nothing to undo either
    "002_squashed": ("-- sqlmigrate: empty\n-- squashed into 001_a\n", "-- Sqlmigrate :  EMPTY\n"),
    # a down that has nothing to undo on purpose
    "003_seed": ("insert into a values (1);\n", "-- sqlmigrate: empty\n"),
}


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
    row = db.execute("select name, checksum, state from schema_migrations where id = '002'").fetchone()
    assert row == ("squashed", sha256(EMPTY["002_squashed"][0]), "applied")

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


# -- down --dry-run with the folder gone ------------------------------------------------


@pytest.mark.parametrize("gone", ["folder", "down.sql"])
def test_down_dry_run_prints_the_stored_down_sql_when_the_file_is_gone(gone, database, db, write_migrations):
    mdir = applied(write_migrations, database)
    if gone == "folder":
        shutil.rmtree(mdir / "003_c")
    else:
        (mdir / "003_c" / "down.sql").unlink()
    result = run("down", mdir, database, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert one_line(result.stderr) == "note: 003_c: folder or down.sql gone; using the down.sql stored at apply time"
    lines = result.stdout.splitlines()
    start = lines.index("-- 003_c: 003_c/down.sql (stored at apply time)")
    assert lines[start + 1:start + 6] == ["BEGIN;", "drop table c;", "select 'stored-marker';",
                                          "-- delete the row of 003 in schema_migrations", "COMMIT;"]
    # changes nothing
    assert tracking_ids(db) == ["001", "002", "003"]
    assert tables(db) == {"a", "b", "c", "schema_migrations"}

    payload = one_json(run("down", mdir, database, "--dry-run", "--format", "json").stdout)
    assert payload["dry_run"] is True and "done" not in payload
    assert payload["notes"] == ["003_c: folder or down.sql gone; using the down.sql stored at apply time"]
    [planned] = payload["planned"]
    assert (planned["id"], planned["statements"]) == ("003", ["drop table c;", "select 'stored-marker';"])
    assert tracking_ids(db) == ["001", "002", "003"]


# -- Ctrl-C during down -----------------------------------------------------------------

SLOW_DOWN = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_slow": ("create table slow (id int);\ninsert into slow values (1);\n",
                 "drop table slow;\nselect pg_sleep(30);\n"),
}






def sqlmigrate_sessions(db) -> int:
    return db.execute("select count(*) from pg_stat_activity where application_name = 'sqlmigrate' "
                      "and datname = current_database()").fetchone()[0]


def test_ctrl_c_during_down_rolls_the_step_back_and_exits_130(database, db, write_migrations):
    mdir = applied(write_migrations, database, SLOW_DOWN)
    proc = start_process("down", "--dir", mdir, "--database-url", database)
    wait_running(db, "pg_sleep")
    started = time.monotonic()
    code, out, err = interrupt(proc)
    assert time.monotonic() - started < 5  # the server-side sleep was cancelled
    assert code == 130
    assert one_line(err) == "sqlmigrate: interrupted during 002_slow; its transaction was rolled back"
    assert "Traceback" not in err
    assert out.splitlines()[-1] == "rolling back 002_slow ... stopped"
    # the step was rolled back: its tracking row and its schema are both intact
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"a", "slow", "schema_migrations"}
    assert db.execute("select count(*) from slow").fetchone() == (1,)
    assert db.execute("select state from schema_migrations where id = '002'").fetchone() == ("applied",)
    status = one_json(run("status", mdir, database, "--format", "json").stdout)
    assert [m["state"] for m in status["migrations"]] == ["applied", "applied"]


def test_ctrl_c_during_down_with_json_prints_one_object(database, db, write_migrations):
    mdir = applied(write_migrations, database, SLOW_DOWN)
    proc = start_process("down", "--dir", mdir, "--database-url", database, "--format", "json")
    wait_running(db, "pg_sleep")
    code, out, err = interrupt(proc)
    assert code == 130
    assert "Traceback" not in err
    payload = error_object(out, "down", 130)
    assert payload["error"] == "interrupted during 002_slow; its transaction was rolled back"
    assert not {"details", "findings"} & set(payload)
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"a", "slow", "schema_migrations"}


# -- exit 5 with --format json ------------------------------------------------------------

HOLDER = {
    "001_slow": ("create table runs (id text);\ninsert into runs values ('001');\nselect pg_sleep(4);\n",
                 "drop table runs;\n"),
    "002_a": ("create table a (id int);\n", "drop table a;\n"),
}




@pytest.mark.parametrize("command", ["up", "down"])
def test_lock_wait_timeout_json_is_one_object_with_exit_5(command, database, db, write_migrations):
    mdir = write_migrations(HOLDER)
    first = start_process("up", "--dir", mdir, "--database-url", database)
    try:
        holder = wait_running(db, "pg_sleep")
        result = run_cli(command, "--dir", mdir, "--database-url", database, "--lock-wait", "1",
                         "--format", "json")
    finally:
        code1, _, err1 = finish(first)
    assert code1 == 0, err1
    assert result.exit_code == 5
    payload = error_object(result.stdout, command, 5)
    assert not {"details", "findings"} & set(payload)
    assert re.fullmatch(rf"gave up after 1s waiting for the migration lock on schema_migrations "
                        rf"\(held by pid {holder} \(sqlmigrate\), connected since \S+\)", payload["error"]), payload
    # the wait message still goes to stderr, outside the JSON
    assert one_line(result.stderr).startswith(f"waiting for the migration lock: held by pid {holder} (sqlmigrate)")
    # the waiting side changed nothing: the first run applied each migration once
    assert tracking_ids(db) == ["001", "002"]
    assert db.execute("select count(*) from runs").fetchone() == (1,)


# -- duration forms ---------------------------------------------------------------------

SEEN = "create table seen as select current_setting('lock_timeout') as lt, current_setting('statement_timeout') as st;\n"


@pytest.mark.parametrize("value, shown", [("5 s", "5s"), ("1h", "1h"), ("1d", "1d"), (" 2 min ", "2min")])
def test_duration_forms_reach_the_server(value, shown, database, db, write_migrations):
    mdir = write_migrations({"001_seen": (SEEN, "drop table seen;\n")})
    result = run("up", mdir, database, "--lock-timeout", value, "--statement-timeout", value)
    assert result.exit_code == 0, result.stderr
    assert db.execute("select lt, st from seen").fetchone() == (shown, shown)


def test_duration_forms_hold_for_down_too(database, db, write_migrations):
    mdir = applied(write_migrations, database, {
        "001_a": ("create table a (id int);\n", "drop table a;\n"),
        "002_b": ("create table b (id int);\n",
                  "drop table b;\ncreate table seen_down as select current_setting('lock_timeout') as lt, "
                  "current_setting('statement_timeout') as st;\n"),
    })
    result = run("down", mdir, database, "--lock-timeout", "5 s", "--statement-timeout", "1d")
    assert result.exit_code == 0, result.stderr
    assert db.execute("select lt, st from seen_down").fetchone() == ("5s", "1d")


def test_duration_in_seconds_with_a_space_really_times_out(database, db, write_migrations):
    # "1 s" is one second, not one millisecond nor ignored: a 3 s sleep is cancelled after about 1 s
    mdir = write_migrations({"001_slow": ("select pg_sleep(3);\n", "select 1;\n")})
    started = time.monotonic()
    result = run("up", mdir, database, "--statement-timeout", "1 s")
    elapsed = time.monotonic() - started
    assert result.exit_code == 4
    assert "001_slow/up.sql:1:1: ERROR 57014: canceling statement due to statement timeout" in result.stderr
    assert 0.9 <= elapsed < 2.9
    assert tracking_ids(db) == []


# -- touches-tracking-table with spaced and quoted qualified names ---------------------

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


# -- status with a duplicate id -----------------------------------------------------------

DUPLICATE = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "1_b": ("create table b (id int);\n", "drop table b;\n"),
    "002_c": ("create table c (id int);\n", "drop table c;\n"),
}


def test_status_with_a_duplicate_id_reports_it_and_exits_0(database, db, write_migrations):
    mdir = write_migrations(DUPLICATE)
    result = run("status", mdir, database)
    assert result.exit_code == 0  # status always exits 0; verify, check and up are the gates
    assert result.stderr.splitlines()[0] == (
        f"{mdir}/1_b:1:1: error: id 1 is the same as 001_a (ids compare as integers) [duplicate-id]")
    rows = [cells for cells in map(str.split, result.stdout.splitlines()) if len(cells) >= 4 and cells[0].isdigit()]
    assert [r[:3] for r in rows] == [["001", "a", "pending"], ["002", "c", "pending"]]
    payload = one_json(run("status", mdir, database, "--format", "json").stdout)
    assert [(m["id"], m["name"], m["state"]) for m in payload["migrations"]] == [
        ("001", "a", "pending"), ("002", "c", "pending")]
    [finding] = payload["findings"]
    assert (finding["path"], finding["line"], finding["col"], finding["severity"], finding["rule"]) == (
        f"{mdir}/1_b", 1, 1, "error", "duplicate-id")
    # status creates nothing, and up refuses the folder
    assert tables(db) == set()
    refused = run("up", mdir, database)
    assert refused.exit_code == 1 and "[duplicate-id]" in refused.stderr
    assert tables(db) == set()


def test_status_with_a_duplicate_of_an_applied_id_keeps_the_applied_folder(database, db, write_migrations):
    mdir = write_migrations({k: v for k, v in DUPLICATE.items() if k != "001_a"})
    assert run("up", mdir, database).exit_code == 0
    write_migrations({"001_a": DUPLICATE["001_a"]})
    payload = one_json(run("status", mdir, database, "--format", "json").stdout)
    assert [f["rule"] for f in payload["findings"]] == ["duplicate-id"]
    states = {(m["id"], m["name"]): m["state"] for m in payload["migrations"]}
    # the applied migration is 1_b, whose up.sql did not change
    assert "modified" not in states.values(), payload["migrations"]
    assert states.get(("1", "b")) == "applied", payload["migrations"]

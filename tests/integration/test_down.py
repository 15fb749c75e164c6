"""`down` against a real server: steps, --to, --all and its prompt, --dry-run, refusals, stored down.sql, JSON, Ctrl-C."""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import (run_process, start_on_a_terminal, start_process, tables, tracking_ids, tracking_row,
                            wait_running, interrupt_process as interrupt)
from tests.integration.helpers import (NOTICE_KEYS, STEP_KEYS, TWO, applied, error_object, no_crash, one_json,
                                       one_line, run)

FOUR = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("create table b (id int);\n", "drop table b;\n"),
    "003_c": ("create table c (id int);\n", "drop table c;\n"),
    "010_d": ("create table d (id int);\n", "drop table d;\n"),
}


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
    mdir = applied(write_migrations, database, TWO)
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
    mdir = applied(write_migrations, database, TWO)
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
    mdir = applied(write_migrations, database, TWO)
    (mdir / "002_b" / "up.sql").write_text("create table b (id bigint);\n")
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert ("note: 002_b: up.sql changed since it was applied; its down.sql on disk runs, which may not undo "
            "what the database ran (`sqlmigrate status`)") in result.stderr.splitlines()
    assert tracking_ids(db) == ["001"] and "b" not in tables(db)
    assert run("up", mdir, database).exit_code == 0
    assert db.execute("select data_type from information_schema.columns where table_name = 'b'").fetchone() \
        == ("bigint",)


# -- the down.sql on disk is checked; the stored copy serves only when the file is gone ------------


def test_down_refuses_a_down_sql_on_disk_that_is_not_utf8(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    (mdir / "002_b" / "down.sql").write_bytes(b"-- caf\xe9\ndrop table b;\n")
    for args in ((), ("--dry-run",)):
        result = run("down", mdir, database, *args)
        assert result.exit_code == 1, result
        no_crash(result.stderr)
        assert f"{mdir}/002_b/down.sql:1:1: error: file is not valid UTF-8 (invalid byte at offset 6) [not-utf8]" \
            in result.stderr
        assert "down.sql validation failed; nothing was rolled back" in result.stderr
        assert "stored at apply time" not in result.stdout + result.stderr
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"a", "b", "schema_migrations"}
    # fixed: it runs (the file on disk, not the stored copy)
    (mdir / "002_b" / "down.sql").write_text("drop table b;\ncreate table b_gone (id int);\n")
    ok = run("down", mdir, database)
    assert ok.exit_code == 0, ok.stderr
    assert tables(db) == {"a", "b_gone", "schema_migrations"}


def test_down_of_a_not_utf8_down_sql_that_was_never_stored_shows_the_finding(database, db, write_migrations):
    # applied with a bad down.sql (a down.sql error does not block up): nothing stored
    mdir = applied(write_migrations, database, {"001_a": ("create table a (id int);\n", b"drop table \xff;\n")})
    result = run("down", mdir, database)
    assert result.exit_code == 1
    no_crash(result.stderr)
    assert f"{mdir}/001_a/down.sql:1:1: error: file is not valid UTF-8 (invalid byte at offset 11) [not-utf8]" \
        in result.stderr
    assert "none stored" not in result.stderr
    assert tracking_ids(db) == ["001"] and "a" in tables(db)


def test_down_uses_the_stored_down_sql_when_only_the_file_is_gone(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    (mdir / "002_b" / "down.sql").unlink()
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "002_b: folder or down.sql gone; using the down.sql stored at apply time" in result.stderr
    assert tracking_ids(db) == ["001"] and tables(db) == {"a", "schema_migrations"}


# -- down --dry-run with the folder gone -----------------------------------------------------------


# 003_c's down.sql prints a marker, which tells its stored copy from another
MARKED = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("create table b (id int);\n", "drop table b;\n"),
    "003_c": ("create table c (id int);\n", "drop table c;\nselect 'stored-marker';\n"),
}


@pytest.mark.parametrize("gone", ["folder", "down.sql"])
def test_down_dry_run_prints_the_stored_down_sql_when_the_file_is_gone(gone, database, db, write_migrations):
    mdir = applied(write_migrations, database, MARKED)
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


# -- the JSON report -------------------------------------------------------------------------------


def test_down_json_shape_with_the_stored_down_note(database, db, write_migrations):
    mdir = applied(write_migrations, database, MARKED)
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
    assert [set(d) for d in done] == [STEP_KEYS | NOTICE_KEYS | {"duration_s", "attempts"}] * 2
    assert [(d["id"], d["name"], d["transactional"]) for d in done] == [("003", "c", True), ("002", "b", True)]
    assert done[1]["path"] == f"{mdir}/002_b/down.sql"
    assert "003_c/down.sql" in done[0]["path"] and "stored" in done[0]["path"]
    assert tracking_ids(db) == ["001"]
    assert tables(db) == {"a", "schema_migrations"}


def test_down_json_failure_shape(database, db, write_migrations):
    mdir = applied(write_migrations, database, {**MARKED, "003_c": ("create table c (id int);\n",
                                                                  "drop table c;\ndrop table nope;\n")})
    result = run("down", mdir, database, "--steps", "2", "--format", "json")
    assert result.exit_code == 4
    payload = one_json(result.stdout)
    assert payload["exit_code"] == 4 and payload["done"] == []
    failed = payload["failed"]
    assert set(failed) == STEP_KEYS | NOTICE_KEYS | {"statements_run", "error", "attempts"}
    assert (failed["id"], failed["name"], failed["path"]) == ("003", "c", f"{mdir}/003_c/down.sql")
    assert set(failed["error"]) == {"path", "line", "col", "sqlstate", "message", "detail", "hint", "context"}
    assert (failed["error"]["line"], failed["error"]["col"], failed["error"]["sqlstate"]) == (2, 1, "42P01")
    assert [(s["id"], s["name"]) for s in payload["not_run"]] == [("002", "b")]
    assert tracking_ids(db) == ["001", "002", "003"]
    assert tables(db) == {"a", "b", "c", "schema_migrations"}


# -- down --all asks on a terminal -----------------------------------------------------------------


def wait_for_prompt(proc: subprocess.Popen, timeout: float = 30) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    fd = proc.stderr.fileno()
    while "Type 'yes' to continue: " not in seen:
        assert time.monotonic() < deadline, f"no prompt on stderr; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096).decode()
            assert chunk, f"stderr closed before the prompt: {seen!r}"
            seen += chunk
    return seen


def test_down_all_prompt_goes_to_stderr_and_json_stays_one_object(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--format", "json", "--dir", mdir, "--database-url", database)
    try:
        prompt = wait_for_prompt(proc)
        os.write(master, b"yes\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert prompt.startswith("Roll back EVERY applied migration?")
    payload = json.loads(out)  # the whole of stdout: the prompt is not in it
    assert payload["command"] == "down" and [d["id"] for d in payload["done"]] == ["002", "001"]
    assert tracking_ids(db) == []


def test_ctrl_d_at_the_down_all_prompt_refuses(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--dir", mdir, "--database-url", database)
    try:
        prompt = wait_for_prompt(proc)
        os.write(master, b"\x04")  # Ctrl-D: end of input
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 1, err
    err = prompt + err
    assert "internal error" not in err and "Traceback" not in err and "EOFError" not in err
    assert err.splitlines()[-1] == "sqlmigrate: down --all cancelled (no answer); nothing was rolled back"
    assert "Roll back EVERY" not in out
    assert tracking_ids(db) == ["001", "002"] and tables(db) == {"a", "b", "schema_migrations"}


def test_ctrl_c_at_the_prompt_in_json_mode_prints_one_json_object(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--format", "json", "--dir", mdir,
                                       "--database-url", database)
    try:
        wait_for_prompt(proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads(out) == {"command": "down", "error": "interrupted", "exit_code": 130}
    assert tracking_ids(db) == ["001", "002"]


def test_answer_other_than_yes_refuses(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--dir", mdir, "--database-url", database)
    try:
        wait_for_prompt(proc)
        os.write(master, b"no\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 1
    assert "sqlmigrate: down --all cancelled; nothing was rolled back" in err
    assert tracking_ids(db) == ["001", "002"]


# -- Ctrl-C during down ----------------------------------------------------------------------------


SLOW_DOWN = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_slow": ("create table slow (id int);\ninsert into slow values (1);\n",
                 "drop table slow;\nselect pg_sleep(30);\n"),
}


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
    assert tracking_row(db, "002") == ("applied",)
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

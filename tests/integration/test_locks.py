"""SPEC 5: the advisory lock between real processes, --lock-wait, --lock-timeout, --statement-timeout.

Concurrency is proved with real `python -m sqlmigrate` processes and real
connections, never a mocked lock.
"""
from __future__ import annotations

import re
import time

import psycopg
import pytest

from tests.conftest import (runner_pids, running, tables, tracking_ids, start_process as start,
                            finish_process as finish, wait_for, wait_running)
from tests.integration.helpers import applied, error_object, one_line, run


COUNTED = {
    # each migration leaves one row in `runs` per execution: applied twice would show
    "001_slow": ("create table runs (id text);\ninsert into runs values ('001');\nselect pg_sleep(2);\n",
                 "drop table runs;\n"),
    "002_a": ("create table a (id int);\ninsert into runs values ('002');\n", "drop table a;\n"),
    "003_b": ("create table b (id int);\ninsert into runs values ('003');\n", "drop table b;\n"),
}


def test_second_up_waits_names_the_holder_and_applies_nothing_twice(database, db, write_migrations):
    mdir = write_migrations(COUNTED)
    first = start("up", "--dir", mdir, "--database-url", database)
    holder = wait_running(db, "pg_sleep")
    second = start("up", "--dir", mdir, "--database-url", database)
    code2, out2, err2 = finish(second)
    code1, out1, err1 = finish(first)
    assert code1 == 0, err1
    assert code2 == 0, err2
    assert f"waiting for the migration lock: held by pid {holder} (sqlmigrate)" in err2
    assert "Traceback" not in err2
    # the second one read the state under the lock, after the first had finished
    assert out2 == "nothing to apply: the database is up to date\n"
    assert "applied 3 migration(s)" in out1
    assert db.execute("select id, count(*) from runs group by id order by id").fetchall() == [
        ("001", 1), ("002", 1), ("003", 1)]
    assert tracking_ids(db) == ["001", "002", "003"]


def test_waiting_side_takes_over_the_rest(database, db, write_migrations):
    # the first stops after 001 (--to 1): the second, having waited, applies 002 and 003
    mdir = write_migrations(COUNTED)
    first = start("up", "--dir", mdir, "--database-url", database, "--to", "1")
    wait_running(db, "pg_sleep")
    second = start("up", "--dir", mdir, "--database-url", database)
    code2, out2, err2 = finish(second)
    code1, out1, _ = finish(first)
    assert (code1, code2) == (0, 0), err2
    assert "waiting for the migration lock" in err2
    assert "applying 001_slow" in out1 and "applying 002_a" not in out1
    assert "applying 001_slow" not in out2 and "applying 002_a" in out2 and "applying 003_b" in out2
    assert db.execute("select id, count(*) from runs group by id order by id").fetchall() == [
        ("001", 1), ("002", 1), ("003", 1)]


def test_lock_wait_gives_up_with_exit_5(database, db, write_migrations):
    mdir = write_migrations(COUNTED)
    first = start("up", "--dir", mdir, "--database-url", database)
    holder = wait_running(db, "pg_sleep")
    started = time.monotonic()
    second = run("up", mdir, database, "--lock-wait", "1")
    waited = time.monotonic() - started
    assert second.exit_code == 5
    assert 0.9 <= waited < 1.9
    lines = second.stderr.splitlines()
    assert lines[0].startswith(f"waiting for the migration lock: held by pid {holder} (sqlmigrate), connected since ")
    assert re.fullmatch(
        rf"sqlmigrate: gave up after 1s waiting for the migration lock on schema_migrations "
        rf"\(held by pid {holder} \(sqlmigrate\), connected since \S+\)", lines[-1]), lines
    assert len(lines) == 2 and second.stdout == ""
    code1, _, err1 = finish(first)
    assert code1 == 0, err1
    assert db.execute("select count(*) from runs").fetchone() == (3,)


def test_lock_is_per_tracking_table(database, db, write_migrations, tmp_path):
    # a run on another tracking table does not wait for this one
    mdir = write_migrations(COUNTED)
    first = start("up", "--dir", mdir, "--database-url", database)
    wait_running(db, "pg_sleep")
    other = write_migrations({"009_x": ("create table x (id int);\n", "drop table x;\n")},
                             directory=tmp_path / "other")
    result = run("up", other, database, "--lock-wait", "0.5", table="other_migrations")
    assert result.exit_code == 0, result.stderr
    assert "waiting" not in result.stderr
    assert running(db, "pg_sleep") is not None  # the first one was still running meanwhile
    assert finish(first)[0] == 0
    assert tracking_ids(db, "other_migrations") == ["009"]


def test_repair_and_baseline_take_the_lock_too(database, db, write_migrations):
    mdir = write_migrations(COUNTED)
    first = start("up", "--dir", mdir, "--database-url", database)
    wait_running(db, "pg_sleep")
    for command in ("repair", "baseline 1", "down"):
        result = run(command, mdir, database, "--lock-wait", "0.2")
        assert result.exit_code == 5, (command, result)
        assert "gave up after 0.2s waiting for the migration lock" in result.stderr
    assert finish(first)[0] == 0


def test_create_index_concurrently_does_not_wait_for_the_waiting_process(database, db, write_migrations):
    # SPEC 5: the waiting side polls outside any transaction, so the running side's
    # CREATE INDEX CONCURRENTLY (which waits for every older snapshot) is not blocked by it
    mdir = write_migrations({
        "001_t": ("create table t (id int);\ninsert into t select generate_series(1, 1000);\n",
                  "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\nselect pg_sleep(1.5);\n"
                    "create index concurrently t_id on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id;\n"),
    })
    a = start("up", "--dir", mdir, "--database-url", database)
    a_pid = wait_running(db, "pg_sleep")
    b = start("up", "--dir", mdir, "--database-url", database)
    b_pid = wait_for(lambda: next((p for p in runner_pids(db) if p != a_pid), None), "B to connect")
    # B is connected (and polling) while A is still before its CREATE INDEX CONCURRENTLY
    assert running(db, "pg_sleep") == a_pid, "B connected too late: A's sleep was over"
    code_a, out_a, err_a = finish(a, timeout=20)
    code_b, out_b, err_b = finish(b, timeout=20)
    assert code_a == 0, err_a
    assert code_b == 0, err_b
    assert f"held by pid {a_pid}" in err_b
    assert out_b == "nothing to apply: the database is up to date\n"
    assert db.execute("select indisvalid from pg_index where indexrelid = 't_id'::regclass").fetchone() == (True,)
    assert b_pid != a_pid


def test_lock_timeout_fails_fast_with_55p03(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
    })
    assert run("up", mdir, database).exit_code == 0
    write_migrations({"002_col": ("select 1;\n\nalter table t add column x int;\n", "alter table t drop column x;\n")})
    with psycopg.connect(database) as holder:  # not autocommit: the lock is held until rollback
        holder.execute("lock table t in access exclusive mode")
        started = time.monotonic()
        result = run("up", mdir, database, "--lock-timeout", "100ms")
        elapsed = time.monotonic() - started
        holder.rollback()
    assert result.exit_code == 4
    assert elapsed < 3
    assert "002_col/up.sql:3:1: ERROR 55P03: canceling statement due to lock timeout" in result.stderr
    assert "Traceback" not in result.stderr
    assert tracking_ids(db) == ["001"]
    assert db.execute("select count(*) from pg_attribute where attrelid = 't'::regclass and attname = 'x'"
                      ).fetchone() == (0,)
    # without the other session the same migration applies
    assert run("up", mdir, database, "--lock-timeout", "100ms").exit_code == 0


def test_statement_timeout_stops_a_slow_migration(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_slow": ("insert into t values (1);\nselect pg_sleep(5);\n", "delete from t;\n"),
    })
    started = time.monotonic()
    result = run("up", mdir, database, "--statement-timeout", "200ms")
    assert time.monotonic() - started < 3
    assert result.exit_code == 4
    assert "002_slow/up.sql:2:1: ERROR 57014: canceling statement due to statement timeout" in result.stderr
    assert tracking_ids(db) == ["001"]
    assert db.execute("select count(*) from t").fetchone() == (0,)  # rolled back
    # a generous timeout lets the same SQL through
    fast = write_migrations({"002_slow": ("insert into t values (1);\nselect pg_sleep(0.1);\n", "delete from t;\n")})
    assert run("up", fast, database, "--statement-timeout", "5s").exit_code == 0
    assert "t" in tables(db)


# -- --lock-wait running out with --format json ----------------------------------------------------


HOLDER = {
    "001_slow": ("create table runs (id text);\ninsert into runs values ('001');\nselect pg_sleep(4);\n",
                 "drop table runs;\n"),
    "002_a": ("create table a (id int);\n", "drop table a;\n"),
}


@pytest.mark.parametrize("command", ["up", "down"])
def test_lock_wait_timeout_json_is_one_object_with_exit_5(command, database, db, write_migrations):
    mdir = write_migrations(HOLDER)
    first = start("up", "--dir", mdir, "--database-url", database)
    try:
        holder = wait_running(db, "pg_sleep")
        result = run(command, mdir, database, "--lock-wait", "1", "--format", "json")
    finally:
        code1, _, err1 = finish(first)
    assert code1 == 0, err1
    assert result.exit_code == 5
    payload = error_object(result.stdout, command, 5)
    assert not {"details", "findings"} & set(payload)
    assert re.fullmatch(rf"gave up after 1s waiting for the migration lock on schema_migrations "
                        rf"\(held by pid {holder} \(sqlmigrate\), connected since \S+\)", payload["error"]), payload
    # the wait message still goes to stderr, outside the JSON
    wait_line = one_line(result.stderr, crash_check=False)
    assert wait_line.startswith(f"waiting for the migration lock: held by pid {holder} (sqlmigrate)")
    # the waiting side changed nothing: the first run applied each migration once
    assert tracking_ids(db) == ["001", "002"]
    assert db.execute("select count(*) from runs").fetchone() == (1,)


# -- the forms a duration takes --------------------------------------------------------------------


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

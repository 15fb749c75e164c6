"""SPEC 7: lock retries that name the blocking session, and progress of long statements.

A real second session holds the lock; real processes run sqlmigrate.
"""
from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from tests.conftest import run_cli, run_on_a_terminal, run_process, tracking_ids

TABLE_THEN_COLUMN = {
    "001_t": ("create table t (id int);\n", "drop table t;\n"),
    "002_x": ("alter table t add column x int;\n", "alter table t drop column x;\n"),
}


class LockHolder:
    """A session of its own (application_name lock_holder) holding ACCESS EXCLUSIVE on t until released."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.conn = psycopg.connect(database, autocommit=True, application_name="lock_holder")
        self.conn.execute("begin")
        self.conn.execute("lock table t in access exclusive mode")
        self.pid = self.conn.info.backend_pid

    def release_once_retried(self, timeout: float = 60) -> threading.Thread:
        """Release once another session has waited for t, stopped waiting (its lock timeout) and waited
        again (its retry), however long the process took to start."""
        def watch() -> None:
            with psycopg.connect(self.database, autocommit=True) as probe:
                waits, waiting, deadline = 0, False, time.monotonic() + timeout
                while waits < 2 and time.monotonic() < deadline:
                    row = probe.execute("select exists (select 1 from pg_locks where relation = 't'::regclass "
                                        "and not granted)").fetchone()
                    now = bool(row and row[0])
                    waits += now and not waiting
                    waiting = now
                    time.sleep(0.005)
            self.release()

        thread = threading.Thread(target=watch)
        thread.start()
        return thread

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.execute("commit")
            self.conn.close()


@pytest.fixture
def at_001(database, write_migrations):
    mdir = write_migrations(TABLE_THEN_COLUMN)
    assert run_cli("up", "--to", "1", "--dir", mdir, "--database-url", database).exit_code == 0
    return mdir


def test_a_lock_timeout_is_retried_until_the_lock_is_free(database, db, at_001):
    holder = LockHolder(database)
    timer = holder.release_once_retried()
    try:
        result = run_process("up", "--dir", at_001, "--database-url", database, "--lock-timeout", "200ms",
                             "--lock-retries", "6", "--format", "json")
    finally:
        timer.join()
    assert result.exit_code == 0, result.stdout + result.stderr
    [done] = json.loads(result.stdout)["done"]
    assert done["id"] == "002" and done["attempts"] >= 2
    assert tracking_ids(db) == ["001", "002"]
    assert db.execute("select count(*) from information_schema.columns "
                      "where table_name = 't' and column_name = 'x'").fetchone() == (1,)


def test_each_retry_prints_the_attempt_and_the_blocking_session(database, db, at_001):
    holder = LockHolder(database)
    timer = holder.release_once_retried()
    try:
        result = run_process("up", "--dir", at_001, "--database-url", database, "--lock-timeout", "200ms",
                             "--lock-retries", "6")
    finally:
        timer.join()
    assert result.exit_code == 0, result.stderr
    assert "applying 002_x ... lock timeout\n" in result.stdout
    assert "applying 002_x (attempt 2) ..." in result.stdout
    retry = next(line for line in result.stderr.splitlines() if "attempt 2 of 7" in line)
    assert retry.startswith("  002_x: a statement timed out waiting for a lock; rolled back, attempt 2 of 7 in ")
    assert f"the lock was held by pid {holder.pid} (" in retry
    assert "lock_holder" in retry and "lock table t in access exclusive mode" in retry


def test_when_retries_run_out_it_fails_with_exit_4_naming_the_blocker(database, db, at_001):
    holder = LockHolder(database)
    try:
        result = run_process("up", "--dir", at_001, "--database-url", database, "--lock-timeout", "100ms",
                             "--lock-retries", "2", "--format", "json")
    finally:
        holder.release()
    assert result.exit_code == 4, result.stdout + result.stderr
    failed = json.loads(result.stdout)["failed"]
    assert (failed["id"], failed["attempts"], failed["error"]["sqlstate"]) == ("002", 3, "55P03")
    assert f"the lock was held by pid {holder.pid} (" in failed["error"]["hint"]
    assert tracking_ids(db) == ["001"]
    assert db.execute("select count(*) from information_schema.columns "
                      "where table_name = 't' and column_name = 'x'").fetchone() == (0,)


def test_without_retries_a_lock_timeout_fails_at_once_and_names_the_blocker(database, db, at_001):
    holder = LockHolder(database)
    try:
        result = run_process("up", "--dir", at_001, "--database-url", database, "--lock-timeout", "300ms")
    finally:
        holder.release()
    assert result.exit_code == 4
    assert "002_x/up.sql:1:1: ERROR 55P03: canceling statement due to lock timeout" in result.stderr
    assert f"HINT: the lock was held by pid {holder.pid} (" in result.stderr
    assert tracking_ids(db) == ["001"]


def test_a_no_transaction_migration_is_never_retried(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_x": ("-- sqlmigrate: no-transaction\nalter table t add column x int;\n",
                  "alter table t drop column x;\n"),
    })
    assert run_cli("up", "--to", "1", "--dir", mdir, "--database-url", database).exit_code == 0
    holder = LockHolder(database)
    try:
        result = run_process("up", "--dir", mdir, "--database-url", database, "--lock-timeout", "200ms",
                             "--lock-retries", "3", "--format", "json")
    finally:
        holder.release()
    assert result.exit_code == 4
    failed = json.loads(result.stdout)["failed"]
    assert (failed["attempts"], failed["error"]["sqlstate"]) == (1, "55P03")
    assert db.execute("select state from schema_migrations where id = '002'").fetchone() == ("failed",)


def test_lock_retries_without_a_lock_timeout_is_a_usage_error(database, at_001):
    result = run_cli("up", "--dir", at_001, "--database-url", database, "--lock-retries", "2")
    assert result.exit_code == 2
    assert "--lock-retries needs a lock timeout above 0" in result.stderr
    zero = run_cli("up", "--dir", at_001, "--database-url", database, "--lock-retries", "2", "--lock-timeout", "0")
    assert zero.exit_code == 2 and "(lock_timeout is 0, from --lock-timeout)" in zero.stderr


def test_a_long_statement_prints_progress_lines_when_not_on_a_terminal(database, db, write_migrations):
    mdir = write_migrations({"001_slow": ("select pg_sleep(3.5);\n", "select 1;\n")})
    result = run_process("up", "--dir", mdir, "--database-url", database,
                         env={"SQLMIGRATE_PROGRESS_INTERVAL": "1"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "applying 001_slow ..."
    running = [line for line in lines if line.startswith("  still running 001_slow (")]
    assert running and running[0] == "  still running 001_slow (2s)"
    assert lines[len(running) + 1].startswith("applying 001_slow ... ok (")


def test_create_index_progress_names_its_phase(database, db, write_migrations):
    db.execute("create table big as select g as id, md5(g::text) as v from generate_series(1, 2500000) g")
    mdir = write_migrations({"001_index": ("create index big_v on big (v, id);\n", "drop index big_v;\n")})
    result = run_process("up", "--dir", mdir, "--database-url", database,
                         env={"SQLMIGRATE_PROGRESS_INTERVAL": "0.1"})
    assert result.exit_code == 0, result.stderr
    phases = [line for line in result.stdout.splitlines() if line.startswith("  still running 001_index: ")]
    if not phases:  # the build took under the 2 s after which progress shows: nothing to assert on
        pytest.fail("CREATE INDEX finished in under 2 s; progress was never reported (grow the table)")
    assert any("building index" in line for line in phases), phases


def test_json_output_prints_no_progress(database, write_migrations):
    mdir = write_migrations({"001_slow": ("select pg_sleep(2.5);\n", "select 1;\n")})
    result = run_process("up", "--dir", mdir, "--database-url", database, "--format", "json",
                         env={"SQLMIGRATE_PROGRESS_INTERVAL": "0.5"})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["done"][0]["attempts"] == 1


def test_a_bad_progress_interval_is_a_usage_error(database, write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    result = run_cli("up", "--dir", mdir, "--database-url", database,
                     env={"SQLMIGRATE_PROGRESS_INTERVAL": "soon"})
    assert result.exit_code == 2
    assert "SQLMIGRATE_PROGRESS_INTERVAL='soon'" in result.stderr


def test_on_a_terminal_the_migration_line_is_rewritten_with_its_elapsed_time(database, write_migrations):
    mdir = write_migrations({"001_slow": ("select pg_sleep(3.2);\n", "select 1;\n")})
    code, text = run_on_a_terminal("up", "--dir", mdir, "--database-url", database)
    assert code == 0
    assert "\r\x1b[Kapplying 001_slow ... (2s)" in text
    assert "\r\x1b[Kapplying 001_slow ... (3s)" in text
    assert "\r\x1b[Kapplying 001_slow ... \x1b[32mok\x1b[0m (" in text


@pytest.mark.parametrize("statement, left", [
    ("create unique index concurrently t_id on t (id);\n", "t_id"),
    # the index's function fails only once the migration's session asks it to
    ("set sqlmigrate_test.fail = 'on';\nreindex index concurrently t_f;\n", "t_f_ccnew"),
])
def test_a_failed_concurrent_index_build_names_the_invalid_index_it_left(database, db, write_migrations,
                                                                        statement, left):
    db.execute("""
        create table t (id int); insert into t values (1), (1);
        create function f(int) returns int language plpgsql immutable as $$
        begin
            if current_setting('sqlmigrate_test.fail', true) = 'on' then raise exception 'f fails'; end if;
            return $1;
        end $$;
        create index t_f on t (f(id))""")
    mdir = write_migrations({"001_index": ("-- sqlmigrate: no-transaction\n" + statement, "select 1;\n")})
    result = run_process("up", "--dir", mdir, "--database-url", database)
    assert result.exit_code == 4, result.stderr
    assert f"HINT: PostgreSQL left the INVALID index {left} behind: run `DROP INDEX CONCURRENTLY {left};` " \
           "before running the migration again" in result.stderr
    assert db.execute("select indisvalid from pg_index where indexrelid = %s::regclass", (left,)).fetchone() == (False,)

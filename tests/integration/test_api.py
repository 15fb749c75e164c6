"""The library API (sqlmigrate.api): the commands as functions that print nothing,
never fork the caller and raise the exceptions of sqlmigrate.errors."""
from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest

import sqlmigrate
from sqlmigrate import api
from sqlmigrate.errors import DatabaseUnavailable, MigrationFailed, Refused, SqlMigrateError, UsageError
from sqlmigrate.model import State
from tests.conftest import database_running, tables, tracking_ids, wait_for

FIVE = {f"00{n}_t{n}": (f"create table t{n} (id int);\n", f"drop table t{n};\n") for n in range(1, 6)}


@pytest.fixture(autouse=True)
def no_fork(monkeypatch):
    """A library call must never fork the caller's process."""
    def refuse(*args, **kwargs):
        raise AssertionError("the library forked the caller's process")

    monkeypatch.setattr(os, "fork", refuse)


def test_migrate_rollback_and_status(database, db, write_migrations, capfd):
    mdir = write_migrations(FIVE)
    assert sqlmigrate.migrate(database, mdir, to="2") == ["001", "002"]
    assert sqlmigrate.migrate(database, mdir) == ["003", "004", "005"]
    assert sqlmigrate.migrate(database, mdir) == []
    assert api.rollback(database, mdir) == ["005"]
    assert api.rollback(database, mdir, steps=2) == ["004", "003"]
    statuses = api.status(database, mdir)
    assert [(s.id, s.state) for s in statuses] == [("001", State.APPLIED), ("002", State.APPLIED),
                                                    ("003", State.PENDING), ("004", State.PENDING),
                                                    ("005", State.PENDING)]
    assert api.rollback(database, mdir, to="1") == ["002"]
    assert api.rollback(database, mdir, all=True) == ["001"]  # no confirmation asked
    assert tracking_ids(db) == [] and tables(db) == {"schema_migrations"}
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_rollback_refuses_more_than_one_of_steps_to_and_all(database, db, write_migrations):
    mdir = write_migrations(FIVE)
    sqlmigrate.migrate(database, mdir)
    for kwargs in (dict(steps=1, all=True), dict(steps=1, to="2"), dict(to="2", all=True)):
        with pytest.raises(UsageError) as raised:
            api.rollback(database, mdir, **kwargs)
        assert raised.value.exit_code == 2
        assert raised.value.message == "rollback: give at most one of steps, to and all"
    assert tracking_ids(db) == ["001", "002", "003", "004", "005"]


def test_failures_raise_the_documented_exceptions(database, db, write_migrations, tmp_path, capfd):
    mdir = write_migrations({**FIVE, "006_bad": ("create table t6 (id int);\ninsert into t1 values ('x');\n",
                                                 "drop table t6;\n")})
    with pytest.raises(MigrationFailed) as failed:
        sqlmigrate.migrate(database, mdir)
    assert failed.value.exit_code == 4
    assert failed.value.message.startswith(f"{mdir}/006_bad/up.sql:2:") and "ERROR 22P02" in failed.value.message
    assert tracking_ids(db) == ["001", "002", "003", "004", "005"] and "t6" not in tables(db)

    (mdir / "006_bad").rename(tmp_path / "gone")
    (mdir / "001_t1" / "up.sql").write_text("create table t1 (id bigint);\n")
    with pytest.raises(Refused) as refused:
        sqlmigrate.migrate(database, mdir)
    assert refused.value.exit_code == 1 and "changed on disk: 001_t1" in refused.value.message

    with pytest.raises(UsageError):
        sqlmigrate.migrate(database, tmp_path / "nowhere")
    with pytest.raises(DatabaseUnavailable) as unavailable:
        api.status("postgresql://u:secretpw@127.0.0.1:1/db", mdir)
    assert unavailable.value.exit_code == 3 and "secretpw" not in unavailable.value.message
    for exc in (failed.value, refused.value, unavailable.value):
        assert isinstance(exc, SqlMigrateError)
    assert capfd.readouterr() == ("", "")


def test_ctrl_c_stays_a_keyboard_interrupt(server, database, db, write_migrations):
    """A caller's `except KeyboardInterrupt` must see Ctrl-C (and `except Exception`
    must not swallow it); the message says what the migration left."""
    marker = uuid.uuid4().hex
    mdir = write_migrations({"001_a": FIVE["001_t1"],
                             "002_slow": (f"create table slow (id int);\nselect pg_sleep(30), '{marker}';\n",
                                          "drop table slow;\n")})
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt_once_running():
        wait_for(lambda: database_running(server, marker), "the migration to reach its pg_sleep", 30)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_once_running)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as interrupted:
            sqlmigrate.migrate(database, mdir)
    finally:
        killer.join()
        signal.signal(signal.SIGINT, previous)
    assert str(interrupted.value) == "interrupted during 002_slow; its transaction was rolled back"
    assert tracking_ids(db) == ["001"] and "slow" not in tables(db)


def test_migrate_out_of_order_only_when_allowed(database, db, write_migrations, tmp_path):
    mdir = write_migrations({k: FIVE[k] for k in ("001_t1", "003_t3")})
    assert sqlmigrate.migrate(database, mdir) == ["001", "003"]
    write_migrations({"002_t2": FIVE["002_t2"]})
    with pytest.raises(Refused) as refused:
        sqlmigrate.migrate(database, mdir)
    assert "older than the newest applied one" in refused.value.message
    assert sqlmigrate.migrate(database, mdir, allow_out_of_order=True) == ["002"]
    assert tracking_ids(db) == ["001", "002", "003"]

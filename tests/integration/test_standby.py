"""SPEC 7, standbys, against a real streaming standby: up, down, repair and
baseline change nothing there and exit 3; status and verify work, reading a
tracking table that does not exist as empty.
"""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.conftest import run_cli, tables, tracking_ids
from tests.extra_servers import StandbyPair

STANDBY = "is a read-only standby (the server is in recovery): run `sqlmigrate {command}` against the primary; " \
          "nothing was changed"


@pytest.fixture(scope="session")
def pair():
    try:
        servers = StandbyPair()
    except Exception as exc:  # noqa: BLE001 - reported as the one line below
        pytest.fail(f"could not start a primary with a streaming standby: {exc}", pytrace=False)
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def replicated(pair):
    """A fresh database on the primary: (primary conninfo, standby conninfo), dropped at the end."""
    name = f"sqlmigrate_standby_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pair.primary("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield pair.primary(name), pair.standby(name)
    finally:
        with psycopg.connect(pair.primary("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


MIGRATIONS = {
    "001_one": ("create table one (id int);\ninsert into one values (1);\n", "drop table one;\n"),
    "002_two": ("create table two (id int);\n", "drop table two;\n"),
}


def _state(url: str) -> tuple[set[str], list[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        names = tables(conn)
        return names, tracking_ids(conn) if "schema_migrations" in names else []


@pytest.mark.parametrize("command", [["up"], ["up", "--dry-run"], ["down"], ["down", "--all", "--yes"],
                                     ["repair"], ["repair", "1"], ["baseline", "2"]], ids=" ".join)
def test_commands_that_write_exit_3_on_a_standby(pair, replicated, write_migrations, command):
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    assert run_cli("up", "--dir", mdir, "--database-url", primary, "--to", "1").exit_code == 0
    pair.wait_for_replay()
    assert _state(standby) == ({"one", "schema_migrations"}, ["001"])
    result = run_cli(*command, "--dir", mdir, "--database-url", standby)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert STANDBY.format(command=command[0]) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    pair.wait_for_replay()
    for url in (primary, standby):
        assert _state(url) == ({"one", "schema_migrations"}, ["001"])


def test_up_on_a_standby_without_a_tracking_table(pair, replicated, write_migrations):
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    pair.wait_for_replay()
    result = run_cli("up", "--dir", mdir, "--database-url", standby, "--format", "json")
    assert result.exit_code == 3
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == 3 and STANDBY.format(command="up") in payload["error"]
    assert _state(primary) == (set(), []) and _state(standby) == (set(), [])


def test_status_and_verify_work_on_a_standby(pair, replicated, write_migrations):
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    assert run_cli("up", "--dir", mdir, "--database-url", primary, "--to", "1").exit_code == 0
    pair.wait_for_replay()
    status = run_cli("status", "--dir", mdir, "--database-url", standby, "--format", "json")
    assert status.exit_code == 0, status.stderr
    assert [(m["id"], m["state"]) for m in json.loads(status.stdout)["migrations"]] == [
        ("001", "applied"), ("002", "pending")]
    text = run_cli("status", "--dir", mdir, "--database-url", standby)
    assert text.exit_code == 0 and "1 applied, 1 pending" in text.stdout
    verified = run_cli("verify", "--dir", mdir, "--database-url", standby)
    assert verified.exit_code == 0, verified.stderr
    assert "verify ok: 1 applied migration(s) match their files; 1 pending" in verified.stdout
    # an edit to an applied migration is found on the standby too
    (mdir / "001_one" / "up.sql").write_text("create table one (id bigint);\n")
    modified = run_cli("verify", "--dir", mdir, "--database-url", standby)
    assert modified.exit_code == 1
    assert "001_one: modified" in modified.stderr


def test_status_and_verify_on_a_standby_read_a_missing_tracking_table_as_empty(pair, replicated,
                                                                              write_migrations):
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    pair.wait_for_replay()
    status = run_cli("status", "--dir", mdir, "--database-url", standby, "--format", "json")
    assert status.exit_code == 0, status.stderr
    assert [m["state"] for m in json.loads(status.stdout)["migrations"]] == ["pending", "pending"]
    verified = run_cli("verify", "--dir", mdir, "--database-url", standby)
    assert verified.exit_code == 0, verified.stderr
    assert "0 applied migration(s)" in verified.stdout
    # nothing was created, on either server
    pair.wait_for_replay()
    assert _state(primary) == (set(), []) and _state(standby) == (set(), [])


def test_the_primary_still_takes_every_command(pair, replicated, write_migrations):
    """The standby check answers from the server, not from how the target is reached."""
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    for command in (["up"], ["down"], ["repair"]):
        result = run_cli(*command, "--dir", mdir, "--database-url", primary)
        assert result.exit_code == 0, result.stderr
    pair.wait_for_replay()
    assert _state(standby) == ({"one", "schema_migrations"}, ["001"])


@pytest.mark.parametrize("command", ["drift", "test"])
def test_scratch_commands_on_a_standby_ask_for_a_scratch_url(pair, replicated, write_migrations, command):
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    assert run_cli("up", "--dir", mdir, "--database-url", primary).exit_code == 0
    pair.wait_for_replay()
    result = run_cli(command, "--dir", mdir, "--database-url", standby)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "is a read-only standby, where no scratch database can be created: give --scratch-url" in result.stderr
    assert "Traceback" not in result.stderr


def test_drift_and_test_on_a_standby_build_on_the_scratch_url(pair, replicated, write_migrations):
    primary, standby = replicated
    mdir = write_migrations(MIGRATIONS)
    assert run_cli("up", "--dir", mdir, "--database-url", primary).exit_code == 0
    with psycopg.connect(primary, autocommit=True) as conn:
        conn.execute("create table by_hand (id int)")
    pair.wait_for_replay()
    scratch = pair.primary("postgres")
    drifted = run_cli("drift", "--dir", mdir, "--database-url", standby, "--scratch-url", scratch, "--format", "json")
    assert drifted.exit_code == 1, drifted.stdout + drifted.stderr  # the standby has the hand-made table
    report = json.loads(drifted.stdout)
    assert [d["object"] for d in report["differences"]] == ["table by_hand"]
    tested = run_cli("test", "--dir", mdir, "--database-url", standby, "--scratch-url", scratch)
    assert tested.exit_code == 0, tested.stdout + tested.stderr
    with psycopg.connect(scratch, autocommit=True) as conn:  # every scratch database dropped again
        left = conn.execute("select count(*) from pg_database where datname like 'sqlmigrate_scratch_%'").fetchone()
        assert left == (0,)

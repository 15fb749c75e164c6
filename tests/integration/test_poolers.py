"""SPEC 7, connection poolers, against a real PgBouncer with stock settings:
in session mode everything works as on a direct connection (no startup
parameter PgBouncer refuses is sent); in transaction or statement mode the
commands that take the lock exit 3 before anything runs.
"""
from __future__ import annotations

import json
import re

import psycopg
import pytest

from tests.conftest import run_cli, tables, tracking_ids, wait_for
from tests.extra_servers import PgBouncer

POOLER = "a connection pooler in transaction mode (or statement mode) is in the way"
NEEDED = "use session pooling or a direct connection to the server; nothing was changed"


def _pooler(server: str, mode: str, settings: str = ""):
    try:
        bouncer = PgBouncer(server, mode, settings=settings)
    except Exception as exc:  # noqa: BLE001 - reported as the one line below
        pytest.fail(f"could not start PgBouncer in {mode} mode: {exc}", pytrace=False)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def session_pooler(server):
    yield from _pooler(server, "session")


@pytest.fixture(scope="session")
def transaction_pooler(server):
    yield from _pooler(server, "transaction")


@pytest.fixture(scope="session")
def round_robin_pooler(server):
    """Transaction mode handing out its server sessions in turn, with several kept open."""
    yield from _pooler(server, "transaction", "server_round_robin = 1\nmin_pool_size = 3\ndefault_pool_size = 6")


@pytest.fixture(scope="session")
def statement_pooler(server):
    yield from _pooler(server, "statement")


# Each migration notes the session it runs in: a SET of the one before must not
# show, --lock-timeout must, and nothing of the pooler check stays behind.
SEEN = ("insert into seen select '{id}', current_setting('lock_timeout'), current_setting('timezone'), "
        "current_setting('standard_conforming_strings'), coalesce(current_setting('sqlmigrate.session', true), '');\n")
SESSIONS = {
    "001_seen": ("create table seen (id text, lock_timeout text, timezone text, scs text, marker text);\n"
                 + SEEN.format(id="001") + "set lock_timeout = '7s';\nset timezone = 'Asia/Tokyo';\n"
                 + SEEN.format(id="001 after set"),
                 "drop table seen;\n"),
    "002_table": ("create table two (id int);\n" + SEEN.format(id="002"), "drop table two;\n"),
    "003_index": ("-- sqlmigrate: no-transaction\nset timezone = 'Asia/Tokyo';\n"
                  "create index concurrently two_id on two (id);\n", "drop index two_id;\n"),
    "004_last": (SEEN.format(id="004"), "delete from seen where id = '004';\n"),
}


def _normalised(text: str) -> str:
    """Output with what differs between two databases and two runs replaced."""
    text = re.sub(r"database: .*?  table:", "database: X  table:", text)
    text = re.sub(r"\(\d+ ms\)", "(N ms)", text)
    text = re.sub(r"in \d+\.\d+ s", "in N s", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}", "TIME", text)
    return text


def _run_all(mdir, url: str) -> list[tuple[int, str, str]]:
    runs = [
        run_cli("up", "--dir", mdir, "--database-url", url, "--lock-timeout", "5s"),
        run_cli("status", "--dir", mdir, "--database-url", url),
        run_cli("down", "--dir", mdir, "--database-url", url, "--steps", "2", "--lock-timeout", "5s"),
        run_cli("up", "--dir", mdir, "--database-url", url, "--to", "3"),
        run_cli("verify", "--dir", mdir, "--database-url", url),
    ]
    return [(r.exit_code, _normalised(r.stdout), _normalised(r.stderr)) for r in runs]


def test_session_mode_works_exactly_as_a_direct_connection(new_database, session_pooler, write_migrations):
    mdir = write_migrations(SESSIONS)
    direct, pooled = new_database(), new_database()
    through_pooler = _run_all(mdir, session_pooler.url(pooled))
    assert _run_all(mdir, direct) == through_pooler
    assert [code for code, _, _ in through_pooler] == [0, 0, 0, 0, 0], through_pooler
    assert "applied 4 migration(s)" in through_pooler[0][1]
    assert "rolled back 2 migration(s)" in through_pooler[2][1]
    for url in (direct, pooled):
        with psycopg.connect(url, autocommit=True) as conn:
            assert tracking_ids(conn) == ["001", "002", "003"]
            seen = {r[0]: r[1:] for r in conn.execute("select * from seen")}
            zone = conn.execute("show timezone").fetchone()[0]  # type: ignore[index]
        assert zone != "Asia/Tokyo"
        # --lock-timeout held in every migration, a migration's own SET did not leak
        # into the next, and the pooler check left nothing in the session
        assert seen == {
            "001": ("5s", zone, "on", ""),
            "001 after set": ("7s", "Asia/Tokyo", "on", ""),
            "002": ("5s", zone, "on", ""),
        }, url


def test_session_mode_status_in_json_as_direct(database, new_database, session_pooler, write_migrations):
    mdir = write_migrations(SESSIONS)
    pooled = new_database()
    for url in (database, session_pooler.url(pooled)):
        assert run_cli("up", "--dir", mdir, "--database-url", url, "--to", "2").exit_code == 0
    direct_status, pooled_status = (
        json.loads(run_cli("status", "--dir", mdir, "--database-url", url, "--format", "json").stdout)
        for url in (database, session_pooler.url(pooled)))
    assert ([(m["id"], m["state"]) for m in direct_status["migrations"]]
            == [(m["id"], m["state"]) for m in pooled_status["migrations"]]
            == [("001", "applied"), ("002", "applied"), ("003", "pending"), ("004", "pending")])


def test_session_mode_backup_through_the_pooler(database, session_pooler, write_migrations, tmp_path):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    result = run_cli("up", "--dir", mdir, "--database-url", session_pooler.url(database), "--backup",
                     tmp_path / "backups")
    assert result.exit_code == 0, result.stderr
    assert [p.suffix for p in (tmp_path / "backups").iterdir()] == [".dump"]


def test_options_in_the_url_are_refused_by_the_pooler_with_a_hint(database, session_pooler, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    url = f"{session_pooler.url(database)} options='-c search_path=public'"
    result = run_cli("up", "--dir", mdir, "--database-url", url)
    assert result.exit_code == 3
    assert "unsupported startup parameter: options" in result.stderr
    assert "refuses the options that the URL or PGOPTIONS give" in result.stderr
    assert "Traceback" not in result.stderr


APPLIED_AND_PENDING = {
    "001_one": ("create table one (id int);\n", "drop table one;\n"),
    "002_two": ("create table two (id int);\n", "drop table two;\n"),
}


@pytest.mark.parametrize("command", [["up", "--lock-timeout", "5s"], ["down"], ["repair"], ["baseline", "1"]],
                         ids=lambda c: c[0])
def test_transaction_mode_refused_before_anything_runs(database, db, transaction_pooler, write_migrations,
                                                       command):
    mdir = write_migrations(APPLIED_AND_PENDING)
    assert run_cli("up", "--dir", mdir, "--database-url", database, "--to", "1").exit_code == 0
    result = run_cli(command[0], "--dir", mdir, "--database-url", transaction_pooler.url(database), *command[1:])
    assert result.exit_code == 3, result.stdout + result.stderr
    assert POOLER in result.stderr and NEEDED in result.stderr
    assert f"`sqlmigrate {command[0]}` needs one server session" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert tables(db) == {"one", "schema_migrations"}
    assert tracking_ids(db) == ["001"]


def test_transaction_mode_up_creates_no_tracking_table(database, db, transaction_pooler, write_migrations):
    mdir = write_migrations(APPLIED_AND_PENDING)
    result = run_cli("up", "--dir", mdir, "--database-url", transaction_pooler.url(database), "--format", "json")
    assert result.exit_code == 3
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == 3 and payload["error"].startswith(POOLER)
    assert tables(db) == set()


def test_transaction_mode_handing_out_sessions_in_turn_is_refused(database, db, round_robin_pooler,
                                                                  write_migrations):
    mdir = write_migrations(APPLIED_AND_PENDING)
    for _ in range(3):
        result = run_cli("up", "--dir", mdir, "--database-url", round_robin_pooler.url(database))
        assert result.exit_code == 3, result.stdout + result.stderr
        assert POOLER in result.stderr
    assert tables(db) == set()


def test_transaction_mode_still_reads(database, transaction_pooler, write_migrations):
    """status and verify take no lock and need no session of their own."""
    mdir = write_migrations(APPLIED_AND_PENDING)
    assert run_cli("up", "--dir", mdir, "--database-url", database, "--to", "1").exit_code == 0
    url = transaction_pooler.url(database)
    status = run_cli("status", "--dir", mdir, "--database-url", url, "--format", "json")
    assert status.exit_code == 0, status.stderr
    assert [m["state"] for m in json.loads(status.stdout)["migrations"]] == ["applied", "pending"]
    assert run_cli("verify", "--dir", mdir, "--database-url", url).exit_code == 0


def test_statement_mode_refused_before_anything_runs(database, db, statement_pooler, write_migrations):
    mdir = write_migrations(APPLIED_AND_PENDING)
    result = run_cli("up", "--dir", mdir, "--database-url", statement_pooler.url(database))
    assert result.exit_code == 3
    assert POOLER in result.stderr and "statement pooling mode" in result.stderr and NEEDED in result.stderr
    assert tables(db) == set()


def test_dry_run_takes_no_lock_and_needs_no_session(database, db, transaction_pooler, write_migrations):
    mdir = write_migrations(APPLIED_AND_PENDING)
    result = run_cli("up", "--dir", mdir, "--database-url", transaction_pooler.url(database), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "create table one" in result.stdout
    assert tables(db) == set()


# -- the settings, without a pooler ---------------------------------------------------------


def test_settings_are_set_again_after_each_migration(database, db, write_migrations):
    """standard_conforming_strings off by default for the database: sqlmigrate SETs
    it on after connecting, and again after the reset that follows each migration."""
    db.execute(psycopg.sql.SQL("alter database {} set standard_conforming_strings = off").format(
        psycopg.sql.Identifier(db.info.dbname)))
    mdir = write_migrations(SESSIONS)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--lock-timeout", "5s")
    assert result.exit_code == 0, result.stderr
    rows = {r[0]: (r[1], r[3]) for r in db.execute("select * from seen")}
    assert rows == {"001": ("5s", "on"), "001 after set": ("7s", "on"), "002": ("5s", "on"), "004": ("5s", "on")}


def test_a_direct_connection_passes_the_check_and_keeps_nothing_of_it(database, db, write_migrations):
    mdir = write_migrations(APPLIED_AND_PENDING)
    for command in (["up", "--to", "1"], ["repair"], ["up"], ["down"]):
        result = run_cli(*command, "--dir", mdir, "--database-url", database)
        assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001"]
    assert tables(db) == {"one", "schema_migrations"}
    # the second connection of the check is gone with the run
    wait_for(lambda: db.execute("select count(*) from pg_stat_activity where application_name = 'sqlmigrate' "
                                "and datname = current_database()").fetchone() == (0,),
             "every sqlmigrate session to end")


def test_many_targets_some_through_a_session_pooler(new_database, session_pooler, transaction_pooler,
                                                     write_migrations):
    """SPEC 10 with SPEC 7: targets behind a session pooler run as direct ones; one behind a
    transaction pooler is refused on its own, changing nothing there, and the others go on."""
    mdir = write_migrations(SESSIONS)
    direct, pooled, refused = new_database(), new_database(), new_database()
    urls = [direct, session_pooler.url(pooled), transaction_pooler.url(refused)]
    args = [part for url in urls for part in ("--database-url", url)]
    result = run_cli("up", "--dir", mdir, *args, "--lock-timeout", "5s", "--on-error", "continue",
                     "--format", "json")
    assert result.exit_code == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [t["exit_code"] for t in report["targets"]] == [0, 0, 3]
    assert POOLER in report["targets"][2]["report"]["error"]
    for url in (direct, pooled):
        with psycopg.connect(url) as conn:
            assert tracking_ids(conn) == ["001", "002", "003", "004"]
            # the pooled target's sessions kept --lock-timeout and dropped a migration's own SET
            assert conn.execute("select lock_timeout, timezone from seen where id = '004'").fetchone()[0] == "5s"
    with psycopg.connect(refused) as conn:
        assert tables(conn) == set()

"""Bad input and a hostile environment: each gives one clear message and its exit code, no traceback.

SPEC 5 exit status: 1 refusal, 2 usage error, 3 cannot connect or database error
outside migration SQL, 4 a migration's SQL failed, 130 Ctrl-C.
"""
from __future__ import annotations

import json
import socket
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.conftest import (_ThrowawayCluster, free_port, run_cli, run_process, runner_pids, tables, tracking_ids,
                            tracking_row, start_process as start, wait_for, wait_running, with_params,
                            interrupt_process as interrupt)
from tests.integration.helpers import ONE, TWO, applied, no_crash, one_line, run

# -- cannot connect ----------------------------------------------------------------


def test_unreachable_host_exits_3(write_migrations):
    mdir = write_migrations(ONE)
    for url in ("postgresql://u:secretpw@127.0.0.1:1/db", "postgresql://u:secretpw@no-such-host.invalid/db"):
        result = run_process("up", "--dir", mdir, "--database-url", url)
        assert result.exit_code == 3, result
        line = one_line(result.stderr)
        assert line.startswith(f"sqlmigrate: cannot connect to {url.replace('secretpw', '***')}: ")
        assert "secretpw" not in result.stdout + result.stderr
    refused = run_process("status", "--dir", mdir, "--database-url", "postgresql://127.0.0.1:1/db")
    assert one_line(refused.stderr) == (
        'sqlmigrate: cannot connect to postgresql://127.0.0.1:1/db: connection to server at "127.0.0.1", port 1 '
        "failed: Connection refused (is the server running on that host and accepting TCP/IP connections?)")
    unresolved = run_process("status", "--dir", mdir, "--database-url", "postgresql://no-such-host.invalid/db")
    assert "no-such-host.invalid" in one_line(unresolved.stderr)


def test_nonexistent_database_exits_3(database, write_migrations):
    mdir = write_migrations(ONE)
    url = with_params(database, dbname="sqlmigrate_no_such_db")
    for command in ("up", "status", "verify", "down", "repair", "baseline 1"):
        result = run(command, mdir, url)
        assert result.exit_code == 3, (command, result)
        assert one_line(result.stderr) == \
            f'sqlmigrate: cannot connect to {url}: database "sqlmigrate_no_such_db" does not exist'


@pytest.fixture(scope="module")
def password_cluster():
    """A private server that asks for passwords (the shared one trusts everyone), on 127.0.0.1."""
    cluster = _ThrowawayCluster()
    try:
        with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
            conn.execute("create role app login password 'right-pw'")
        (cluster.data / "pg_hba.conf").write_text(
            "local all postgres trust\n"
            "local replication postgres trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        options = f"-k {cluster.base} -p {cluster.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        cluster._run([cluster.pg_ctl, "-D", str(cluster.data), "-o", options, "-l", str(cluster.base / "log"),
                      "-w", "restart"])
        yield cluster
    finally:
        cluster.stop()


def test_wrong_password_exits_3_and_never_shows_it(password_cluster, write_migrations, tmp_path):
    mdir = write_migrations(ONE)
    port = password_cluster.port
    no_passfile = {"PGPASSFILE": str(tmp_path / "none"), "PGPASSWORD": ""}
    good = run_process("status", "--dir", mdir, "--database-url",
                       f"postgresql://app:right-pw@127.0.0.1:{port}/postgres", env=no_passfile)
    assert good.exit_code == 0, good.stderr  # the same URL with the right password works

    url = f"postgresql://app:wrong-pw@127.0.0.1:{port}/postgres"
    result = run_process("up", "--dir", mdir, "--database-url", url, env=no_passfile)
    assert result.exit_code == 3
    assert one_line(result.stderr) == (
        f"sqlmigrate: cannot connect to postgresql://app:***@127.0.0.1:{port}/postgres: "
        'password authentication failed for user "app"'
    )
    assert "wrong-pw" not in result.stdout + result.stderr

    missing = run_process("up", "--dir", mdir, "--database-url", f"postgresql://app@127.0.0.1:{port}/postgres",
                          env=no_passfile)
    assert missing.exit_code == 3
    assert "no password supplied" in one_line(missing.stderr)


# -- privileges and a read-only database ---------------------------------------------


@pytest.fixture
def plain_role(database):
    """A login role that may not CREATE in schema public (PostgreSQL 15's default)."""
    name = f"sqlmigrate_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
        conn.execute(sql.SQL("revoke create on schema public from public"))
    yield name
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def test_tracking_table_creation_refused_exits_3(database, db, plain_role, write_migrations):
    mdir = write_migrations(ONE)
    result = run("up", mdir, with_params(database, user=plain_role))
    assert result.exit_code == 3
    assert one_line(result.stderr) == ("sqlmigrate: database error while creating the tracking table "
                                       "schema_migrations: 42501 permission denied for schema public")
    assert tables(db) == set()


def test_migration_refused_create_exits_4_with_42501(database, db, plain_role, write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    assert run("up", mdir, database).exit_code == 0  # the owner creates the tracking table
    db.execute(sql.SQL("grant select, insert, update, delete on schema_migrations to {}").format(
        sql.Identifier(plain_role)))
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    result = run("up", mdir, with_params(database, user=plain_role))
    assert result.exit_code == 4
    assert "002_b/up.sql:1:14: ERROR 42501: permission denied for schema public" in result.stderr
    assert "002_b FAILED and was rolled back" in result.stderr
    assert "Traceback" not in result.stderr
    assert tracking_ids(db) == ["001"]
    assert "b" not in tables(db)


def test_read_only_database(database, db, write_migrations):
    mdir = write_migrations(TWO)
    assert run("up", mdir, database, "--to", "1").exit_code == 0
    dbname = db.info.dbname
    other = with_params(database, dbname=f"{dbname}_ro")
    with psycopg.connect(with_params(database, dbname="postgres"), autocommit=True) as admin:
        for name in (dbname, f"{dbname}_ro"):
            if name != dbname:
                admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("alter database {} set default_transaction_read_only = on").format(
                sql.Identifier(name)))
    try:
        # the tracking table exists: the migration's own SQL is refused
        result = run("up", mdir, database)
        assert result.exit_code == 4
        assert "002_b/up.sql:1:1: ERROR 25006: cannot execute CREATE TABLE in a read-only transaction" \
            in result.stderr
        assert tracking_ids(db) == ["001"]
        # a fresh database: the tracking table itself cannot be created
        fresh = run("up", mdir, other)
        assert fresh.exit_code == 3
        assert one_line(fresh.stderr) == (
            "sqlmigrate: database error while creating the tracking table schema_migrations: "
            "25006 cannot execute CREATE TABLE in a read-only transaction")
        # reading still works
        assert run("status", mdir, database).exit_code == 0
        assert run("verify", mdir, database).exit_code == 0
    finally:
        with psycopg.connect(with_params(database, dbname="postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(f"{dbname}_ro")))


def test_standby_server(password_cluster, write_migrations):
    """A hot standby, the truly read-only server: its tracking table came by replication."""
    primary = password_cluster
    with psycopg.connect(primary.conninfo, autocommit=True) as conn:
        conn.execute("create database standby_app")
        conn.execute("create database standby_fresh")
    on_primary = primary.conninfo.replace("dbname=postgres", "dbname=standby_app")
    mdir = write_migrations(ONE)
    assert run("up", mdir, on_primary).exit_code == 0
    write_migrations(TWO)
    standby = primary.base / "standby"
    port = free_port()
    # a copy of the cleanly stopped primary plus standby.signal is a hot standby that
    # stays in recovery: no pg_basebackup needed, which the server builds that
    # scripts/pg-matrix.sh puts first on PATH do not have (initdb, pg_ctl, postgres only)
    primary._run([primary.pg_ctl, "-D", str(primary.data), "-m", "fast", "-w", "stop"])
    primary._run(["cp", "-a", str(primary.data), str(standby)])
    primary._run(["touch", str(standby / "standby.signal")])
    # restart on a stopped server starts it with its previous options (postmaster.opts)
    primary._run([primary.pg_ctl, "-D", str(primary.data), "-l", str(primary.base / "log"), "-w", "restart"])
    primary._run([primary.pg_ctl, "-D", str(standby), "-l", str(primary.base / "standby.log"), "-w", "start",
                  "-o", f"-k {primary.base} -p {port} -c listen_addresses='' -c fsync=off"])
    try:
        on_standby = f"host={primary.base} port={port} user=postgres dbname=standby_app"
        # SPEC 7: refused before anything runs, not failed at the first statement
        result = run("up", mdir, on_standby)
        assert result.exit_code == 3
        assert one_line(result.stderr) == (
            f"sqlmigrate: standby_app on socket {primary.base}:{port} as postgres is a read-only standby (the "
            "server is in recovery): run `sqlmigrate up` against the primary; nothing was changed")
        assert run("verify", mdir, on_standby).exit_code == 0
        fresh = run("up", mdir, on_standby.replace("standby_app", "standby_fresh"))
        assert fresh.exit_code == 3
        assert "standby_fresh on socket" in one_line(fresh.stderr)
        assert "is a read-only standby" in fresh.stderr
    finally:
        primary._run([primary.pg_ctl, "-D", str(standby), "-m", "immediate", "stop"])


# -- the tracking table ------------------------------------------------------------


def test_foreign_tracking_table_exits_1_for_every_command(database, db, write_migrations):
    db.execute("create table schema_migrations (version bigint primary key)")
    mdir = write_migrations(ONE)
    for command in ("up", "down", "status", "verify", "repair", "baseline 1"):
        result = run(command, mdir, database)
        assert result.exit_code == 1, (command, result)
        assert result.stderr.splitlines()[0] == (
            "sqlmigrate: table schema_migrations exists but is not a sqlmigrate tracking table "
            "(no column checksum, executed_at, id, name); nothing was changed"), command
        assert "Traceback" not in result.stderr
    assert tables(db) == {"schema_migrations"}


def test_table_in_a_schema_that_does_not_exist_exits_2(database, db, write_migrations):
    mdir = write_migrations(ONE)
    for command in ("up", "up --dry-run", "down", "status", "verify", "repair", "baseline 1"):
        result = run(command, mdir, database, "--table", "nosuch.schema_migrations")
        assert result.exit_code == 2, (command, result)
        assert one_line(result.stderr) == \
            "sqlmigrate: schema 'nosuch' of --table nosuch.schema_migrations does not exist", command
    assert tables(db) == set()


def test_to_an_id_that_does_not_exist_exits_2(database, db, write_migrations):
    mdir = write_migrations(TWO)
    assert run("up", mdir, database, "--to", "1").exit_code == 0
    for command in ("up", "down"):
        result = run(command, mdir, database, "--to", "7")
        assert result.exit_code == 2, result
        assert one_line(result.stderr) == "sqlmigrate: --to 7: no migration has that id"
        bad = run(command, mdir, database, "--to", "two")
        assert bad.exit_code == 2
        assert one_line(bad.stderr) == "sqlmigrate: --to 'two' is not an id (digits)"
    assert tracking_ids(db) == ["001"]


@pytest.mark.parametrize("option, value, message", [
    ("--lock-timeout", "soon", "'soon' is not a duration like 500ms, 5s or 1min"),
    ("--lock-timeout", "-5", "'-5' is not a duration like 500ms, 5s or 1min"),
    ("--lock-timeout", "5 hours", "'5 hours' is not a duration like 500ms, 5s or 1min"),
    ("--lock-timeout", "500us", "'500us' is less than 1ms, which PostgreSQL would round to 0 (no timeout)"),
    ("--statement-timeout", "100d", "'100d' is longer than PostgreSQL allows"),
    ("--lock-wait", "soon", "'soon' is not a number of seconds"),
])
def test_bad_timeout_values_are_usage_errors(option, value, message, database, db, write_migrations):
    mdir = write_migrations(ONE)
    result = run("up", mdir, database, option, value)
    assert result.exit_code == 2
    assert f"sqlmigrate: argument {option}: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert tables(db) == set()


@pytest.mark.parametrize("value, shown", [("0", "0"), ("1.5s", "1500ms"), ("2min", "2min"), ("250", "250ms")])
def test_good_timeout_values_reach_the_server(value, shown, database, db, write_migrations):
    mdir = write_migrations({"001_seen": ("create table seen as select current_setting('lock_timeout') as lt;\n",
                                          "drop table seen;\n")})
    result = run("up", mdir, database, "--lock-timeout", value)
    assert result.exit_code == 0, result.stderr
    assert db.execute("select lt from seen").fetchone() == (shown,)


# -- Ctrl-C --------------------------------------------------------------------------


def test_ctrl_c_during_a_migration_rolls_it_back_and_exits_130(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_slow": ("create table slow (id int);\nselect pg_sleep(30);\n",
                                                  "drop table slow;\n")})
    proc = start("up", "--dir", mdir, "--database-url", database)
    wait_running(db, "pg_sleep")
    started = time.monotonic()
    code, out, err = interrupt(proc)
    assert time.monotonic() - started < 5  # the server-side sleep was cancelled, not waited for
    assert code == 130
    assert one_line(err) == "sqlmigrate: interrupted during 002_slow; its transaction was rolled back"
    assert out.splitlines()[-1] == "applying 002_slow ... stopped"
    assert tracking_ids(db) == ["001"]
    assert tables(db) == {"a", "schema_migrations"}
    # the lock went with the process: the next run does not wait
    again = run("up", mdir, database, "--lock-wait", "0", "--to", "1")
    assert again.exit_code == 0, again.stderr


def test_ctrl_c_during_a_no_transaction_migration_says_it_is_recorded_as_failed(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\nselect pg_sleep(30);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id;\n"),
    })
    proc = start("up", "--dir", mdir, "--database-url", database)
    wait_running(db, "pg_sleep")
    code, _out, err = interrupt(proc)
    assert code == 130
    assert one_line(err) == (
        "sqlmigrate: interrupted during 002_idx; it ran outside a transaction and is recorded as failed "
        "after 1 statement(s): check the database by hand, then run `sqlmigrate repair`")
    assert tracking_row(db, "002", "state, statements_run") == ("failed", 1)


def test_ctrl_c_while_waiting_for_the_lock_exits_130(database, db, write_migrations):
    mdir = write_migrations({"001_slow": ("select pg_sleep(2);\n", "select 1;\n")})
    holder = start("up", "--dir", mdir, "--database-url", database)
    wait_running(db, "pg_sleep")
    waiter = start("up", "--dir", mdir, "--database-url", database)
    wait_for(lambda: len(runner_pids(db)) >= 2, "the second run to connect", timeout=10)
    time.sleep(0.3)  # past its first poll of the lock
    code, out, err = interrupt(waiter)
    assert code == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("waiting for the migration lock: held by pid")
    assert lines[1:] == ["sqlmigrate: interrupted while waiting for the migration lock; nothing was changed"]
    assert out == ""
    assert holder.wait(timeout=15) == 0
    assert tracking_ids(db) == ["001"]


def test_a_server_that_never_answers_gives_up_at_the_urls_connect_timeout(write_migrations):
    """A host that accepts the connection and then says nothing (a stuck proxy): exit 3 after
    `connect_timeout`, password masked. (Without one in the URL or PGCONNECT_TIMEOUT,
    psycopg gives up after 130 s: README "When things go wrong".)"""
    import threading

    mdir = write_migrations(ONE)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    port = listener.getsockname()[1]
    try:
        started = time.monotonic()
        result = run("up", mdir, f"postgresql://app:secret@127.0.0.1:{port}/app?connect_timeout=2")
        waited = time.monotonic() - started
    finally:
        for conn in held:
            conn.close()
        listener.close()
    assert result.exit_code == 3
    assert one_line(result.stderr) == (f"sqlmigrate: cannot connect to postgresql://app:***@127.0.0.1:{port}/app"
                                       "?connect_timeout=2: connection timeout expired")
    assert held, "the client never reached the silent server"
    assert 1.5 < waited < 30


# -- --format json: one object on stdout, for usage errors too -------------------------------------


def test_usage_errors_in_json_mode_print_one_json_object(database, write_migrations):
    mdir = write_migrations(ONE)
    cases = [
        (("up", "--format", "json", "--bogus"), "up", "unrecognized arguments: --bogus"),
        (("down", "--steps", "0", "--format=json"), "down", "argument --steps: '0' is not a positive whole number"),
        (("status", "--form", "json", "--lock-wait", "1"), "status", "unrecognized arguments: --lock-wait 1"),
        (("nope", "--format", "json"), None, "invalid choice: 'nope'"),
    ]
    for args, command, message in cases:
        result = run_cli(*args, "--dir", mdir, "--database-url", database)
        assert result.exit_code == 2, result
        payload = json.loads(result.stdout)
        assert payload["command"] == command and payload["exit_code"] == 2
        assert message in payload["error"]
        assert result.stderr == ""
    # text mode is unchanged: usage on stderr, nothing on stdout
    text = run_cli("up", "--bogus", "--dir", mdir)
    assert text.exit_code == 2 and text.stdout == ""
    assert text.stderr.startswith("usage: sqlmigrate ")
    assert "sqlmigrate: unrecognized arguments: --bogus" in text.stderr


def test_json_error_objects_name_their_command(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_b": ("begin;\n", "select 1;\n")})
    refused = run("up", mdir, database, "--format", "json")
    assert refused.exit_code == 1
    payload = json.loads(refused.stdout)
    assert payload["command"] == "up" and payload["exit_code"] == 1
    assert payload["findings"][0]["path"] == f"{mdir}/002_b/up.sql"
    usage = run("down", mdir, database, "--format", "json", "--to", "9")
    assert usage.exit_code == 2
    assert json.loads(usage.stdout) == {"command": "down", "error": "--to 9: no migration has that id",
                                        "exit_code": 2}


# -- ids are ASCII digits --------------------------------------------------------------------------


def test_non_ascii_digits_are_a_usage_error(database, db, write_migrations):
    mdir = applied(write_migrations, database, ONE)
    for command, args, message in (
        ("up", ("--to", "²"), "--to '²' is not an id (digits)"),
        ("down", ("--to", "٣"), "--to '٣' is not an id (digits)"),
        ("repair", ("²",), "repair ²: no migration has that id"),
        ("down", ("--steps", "²"), "argument --steps: '²' is not a positive whole number"),
    ):
        result = run(command, mdir, database, *args)
        assert result.exit_code == 2, (command, args, result)
        no_crash(result.stderr)
        assert message in result.stderr
    assert tracking_ids(db) == ["001"]


def test_baseline_with_a_non_ascii_digit_is_a_usage_error(database, db, write_migrations):
    mdir = write_migrations(ONE)
    result = run("baseline ²", mdir, database)
    assert result.exit_code == 2
    no_crash(result.stderr)
    assert "baseline '²' is not an id (digits)" in result.stderr
    assert tables(db) == set()

"""SPEC 10: status, verify, up and down on many databases at once.

On real servers: a hundred databases on the local one, a second throwaway
cluster, an unreachable address, schema-per-tenant; Ctrl-C as a real SIGINT
to a real process.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from sqlmigrate import api
from sqlmigrate import sqlfile
from tests.conftest import (_ThrowawayCluster, with_params, interrupt_process, run_cli, running, start_process,
                            tables, tracking_ids, wait_for)

UNREACHABLE = "postgresql://fleet:secretpw@127.0.0.1:1/nowhere"
TWO = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("create table b (id int);\n", "drop table b;\n"),
}


@pytest.fixture
def databases(server):
    """Factory: `make(n, on=server)` creates n fresh databases (in parallel), all dropped at the end."""
    created: list[tuple[str, str]] = []

    def create(admin: str, name: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))

    def make(count: int, on: str = server) -> list[str]:
        names = [f"sqlmigrate_fleet_{uuid.uuid4().hex[:10]}" for _ in range(count)]
        created.extend((on, name) for name in names)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda name: create(on, name), names))
        return [with_params(on, dbname=name) for name in names]

    yield make

    def drop(item: tuple[str, str]) -> None:
        admin, name = item
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(drop, created))


@pytest.fixture(scope="module")
def second_server():
    """Admin conninfo of a throwaway cluster of its own, on a free port."""
    try:
        cluster = _ThrowawayCluster()
    except Exception as exc:  # noqa: BLE001 - one line, as the server fixture does
        pytest.fail(f"could not start a second PostgreSQL server: {exc}", pytrace=False)
    try:
        yield cluster.conninfo
    finally:
        cluster.stop()


def urls_args(urls: list[str]) -> list[str]:
    return [arg for url in urls for arg in ("--database-url", url)]


def ids_in(url: str, table: str = "schema_migrations", schema: str = "public") -> list[str]:
    """The ids in a database's tracking table, [] when it has none."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select to_regclass(%s)", (f"{schema}.{table}",)).fetchone() == (None,):
            return []
        return tracking_ids(conn, table) if schema == "public" else [r[0] for r in conn.execute(
            sql.SQL("select id from {} order by id").format(sql.Identifier(schema, table))).fetchall()]


def tables_in(url: str, schema: str = "public") -> set[str]:
    with psycopg.connect(url) as conn:
        return tables(conn, schema)


def line_of(output: str, target: str) -> str:
    """The line about `target` (its display name, followed by ': ')."""
    found = [line for line in output.splitlines() if f" {target}: " in line]
    assert len(found) == 1, output
    return found[0]


# -- a hundred databases -------------------------------------------------------------


def test_up_status_and_verify_on_a_hundred_databases(databases, write_migrations):
    urls = databases(100)
    mdir = write_migrations(TWO)
    up = run_cli("up", "--dir", mdir, *urls_args(urls), "--jobs", "8")
    assert up.exit_code == 0, up.stderr
    assert up.stdout.splitlines()[-1] == "up: 100 ok, 0 failed"
    for url in urls:
        assert line_of(up.stdout, url).startswith("ok          ")
        assert "applied 2 migration(s)" in line_of(up.stdout, url)
        assert ids_in(url) == ["001", "002"]

    again = run_cli("up", "--dir", mdir, *urls_args(urls))
    assert again.exit_code == 0
    assert again.stdout.count("nothing to apply: up to date") == 100

    status = run_cli("status", "--dir", mdir, *urls_args(urls), "--format", "json")
    assert status.exit_code == 0
    shown = json.loads(status.stdout)
    assert [t["target"] for t in shown["targets"]] == urls  # in the order given
    assert shown["summary"]["ok"] == 100
    assert all([m["state"] for m in t["report"]["migrations"]] == ["applied", "applied"]
               for t in shown["targets"])

    verify = run_cli("verify", "--dir", mdir, *urls_args(urls))
    assert verify.exit_code == 0
    assert verify.stdout.splitlines()[-1] == "verify: 100 ok, 0 failed"


def test_the_folder_is_lexed_once_for_all_targets(databases, write_migrations, monkeypatch):
    """Each file is lexed by the first target that needs it; the others reuse it."""
    urls = databases(6)
    mdir = write_migrations({**TWO, "003_c": ("create table c (id int);\n", "drop table c;\n")})
    lexed: list[str] = []
    real_parse = sqlfile.parse

    def counted(path, *args, **kwargs):
        lexed.append(str(path))
        return real_parse(path, *args, **kwargs)

    monkeypatch.setattr(sqlfile, "parse", counted)
    result = run_cli("up", "--dir", mdir, *urls_args(urls))
    assert result.exit_code == 0, result.stderr
    assert sorted(lexed) == sorted(str(mdir / folder / name) for folder in ("001_a", "002_b", "003_c")
                                   for name in ("up.sql", "down.sql"))
    assert all(ids_in(url) == ["001", "002", "003"] for url in urls)


# -- several servers, unreachable, failing, locked ---------------------------------------


def test_targets_file_across_two_servers_with_variables(databases, second_server, write_migrations, tmp_path):
    here, there = databases(1)[0], databases(1, on=second_server)[0]
    there_name = psycopg.conninfo.conninfo_to_dict(there)["dbname"]
    listing = tmp_path / "targets.txt"
    listing.write_text(f"# the shards\n\n{here}\n   # the second server\n"
                       f"{there.replace(there_name, '${SHARD_DB}')}\n")
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, "--targets", listing, "--format", "json",
                     env={"SHARD_DB": there_name})
    assert result.exit_code == 0, result.stdout
    shown = json.loads(result.stdout)
    assert [t["target"] for t in shown["targets"]] == [here, there]
    assert [t["state"] for t in shown["targets"]] == ["ok", "ok"]
    assert ids_in(here) == ids_in(there) == ["001", "002"]
    status = run_cli("status", "--dir", mdir, "--targets", listing, "--format", "json",
                     env={"SHARD_DB": there_name})
    ports = [t["report"]["database"].split(":")[-1].split()[0] for t in json.loads(status.stdout)["targets"]]
    assert ports[0] != ports[1]  # two servers


def test_an_unreachable_target_is_named_masked_and_the_others_applied(databases, write_migrations):
    first, last = databases(2)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args([first, UNREACHABLE, last]), "--on-error", "continue")
    assert result.exit_code == 3
    assert "secretpw" not in result.stdout + result.stderr
    line = line_of(result.stderr, "postgresql://fleet:***@127.0.0.1:1/nowhere")
    assert line.startswith("unreachable ")
    assert "Connection refused" in line
    assert result.stdout.splitlines()[-1] == "up: 2 ok, 0 failed, 1 unreachable"
    assert ids_in(first) == ids_in(last) == ["001", "002"]


def failing_second(databases, count: int) -> list[str]:
    """`count` databases; in the second, table a exists already, so 001_a fails there."""
    urls = databases(count)
    with psycopg.connect(urls[1], autocommit=True) as conn:
        conn.execute("create table a (id int)")
    return urls


def test_a_failure_starts_no_new_target_by_default(databases, write_migrations):
    urls = failing_second(databases, 4)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args(urls), "--jobs", "1")
    assert result.exit_code == 4
    assert line_of(result.stderr, urls[1]) == (
        f"FAILED      {urls[1]}: {mdir}/001_a/up.sql:1:1: ERROR 42P07: relation \"a\" already exists")
    for url in urls[2:]:
        assert line_of(result.stdout, url) == f"skipped     {url}: not started after a failure"
        assert ids_in(url) == [] and tables_in(url) == set()
    assert result.stdout.splitlines()[-1] == "up: 1 ok, 1 failed, 2 skipped"
    assert ids_in(urls[0]) == ["001", "002"]


def test_on_error_continue_runs_every_target(databases, write_migrations):
    urls = failing_second(databases, 4)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args(urls), "--jobs", "1", "--on-error", "continue")
    assert result.exit_code == 4
    assert result.stdout.splitlines()[-1] == "up: 3 ok, 1 failed"
    assert [ids_in(url) for url in urls] == [["001", "002"], [], ["001", "002"], ["001", "002"]]


def test_a_failed_canary_starts_no_other_target(databases, write_migrations):
    urls = failing_second(databases, 5)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args(urls), "--canary", "2", "--on-error", "continue")
    assert result.exit_code == 4
    for url in urls[2:]:
        assert line_of(result.stdout, url) == f"skipped     {url}: not started: a canary target failed"
        assert ids_in(url) == []
    assert result.stdout.splitlines()[-1] == "up: 1 ok, 1 failed, 3 skipped"


def test_canaries_first_then_the_rest(databases, write_migrations):
    urls = databases(4)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args(urls), "--canary", "1", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["summary"]["ok"] == 4
    with psycopg.connect(urls[0]) as first:
        canary_done = first.execute("select max(executed_at) from schema_migrations").fetchone()[0]
    for url in urls[1:]:
        with psycopg.connect(url) as conn:
            assert conn.execute("select min(executed_at) from schema_migrations").fetchone()[0] > canary_done


def test_canary_larger_than_the_number_of_targets_runs_them_all(databases, write_migrations):
    urls = databases(3)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args(urls), "--canary", "10")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "up: 3 ok, 0 failed"


def test_a_locked_target_waits_its_lock_wait_while_the_others_go_on(databases, write_migrations, tmp_path):
    free1, locked, free2 = databases(3)
    slow = tmp_path / "slow"
    (slow / "001_slow").mkdir(parents=True)
    (slow / "001_slow" / "up.sql").write_text("select pg_sleep(60);\n")
    (slow / "001_slow" / "down.sql").write_text("select 1;\n")
    holder = start_process("up", "--dir", slow, "--database-url", locked)
    try:
        with psycopg.connect(locked, autocommit=True) as conn:
            wait_for(lambda: running(conn, "pg_sleep(60)"), "the other run to hold the lock")
        mdir = write_migrations(TWO)
        began = time.monotonic()
        result = run_cli("up", "--dir", mdir, *urls_args([locked, free1, free2]), "--lock-wait", "2",
                         "--jobs", "3", "--on-error", "continue")
        took = time.monotonic() - began
    finally:
        interrupt_process(holder)
    assert result.exit_code == 5
    assert f"{locked}: waiting for the migration lock: held by pid" in result.stderr
    assert "gave up after 2s waiting for the migration lock on schema_migrations" in line_of(result.stderr, locked)
    assert line_of(result.stdout, free1).startswith("ok ")
    assert ids_in(free1) == ids_in(free2) == ["001", "002"]
    assert took < 10  # the others did not queue behind the wait


# -- schema per tenant -------------------------------------------------------------------


def test_fifty_tenant_schemas_each_with_its_own_tracking_table(database, db, write_migrations):
    for n in range(1, 51):
        db.execute(f"create schema tenant_{n:02d}")
    db.execute("create schema tenantless")  # matches tenant% but not tenant\_%
    mdir = write_migrations({
        "001_a": ("create table a (id int);\nset search_path = public;\n", "drop table a;\n"),
        # the SET of 001 does not leak: this one is in the tenant's schema too
        "002_b": ("create table b (id int);\n", "drop table b;\n"),
    })
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--schemas", "tenant\\_%")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "up: 50 ok, 0 failed"
    assert line_of(result.stdout, f"{database} (schema tenant_07)").startswith("ok ")
    for n in range(1, 51):
        schema = f"tenant_{n:02d}"
        assert tables(db, schema) == {"a", "b", "schema_migrations"}, schema
        assert ids_in(database, schema=schema) == ["001", "002"]
    assert tables(db, "public") == set() and tables(db, "tenantless") == set()

    status = run_cli("status", "--dir", mdir, "--database-url", database, "--schemas", "tenant\\_%",
                     "--format", "json")
    shown = json.loads(status.stdout)["targets"]
    assert [t["schema"] for t in shown] == [f"tenant_{n:02d}" for n in range(1, 51)]
    assert shown[0]["report"]["table"] == "tenant_01.schema_migrations"


def test_schemas_in_several_databases(databases, write_migrations):
    one, two, none = databases(3)
    for url, schemas in ((one, ("shop_a", "shop_b")), (two, ("shop_c",)), (none, ("other",))):
        with psycopg.connect(url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args([one, two, none]), "--schemas", "shop%", "--format", "json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert [(t["target"], t["schema"]) for t in shown["targets"]] == [
        (f"{one} (schema shop_a)", "shop_a"), (f"{one} (schema shop_b)", "shop_b"), (f"{two} (schema shop_c)", "shop_c")]
    assert shown["notes"] == [f"no schema of {none} matches 'shop%'"]
    assert ids_in(two, schema="shop_c") == ["001", "002"]


def test_a_database_whose_schemas_cannot_be_listed_is_a_target_of_its_own(database, db, write_migrations):
    db.execute("create schema shop_a")
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args([UNREACHABLE, database]), "--schemas", "shop%",
                     "--on-error", "continue")
    assert result.exit_code == 3
    assert line_of(result.stderr, "postgresql://fleet:***@127.0.0.1:1/nowhere").startswith("unreachable ")
    assert line_of(result.stdout, f"{database} (schema shop_a)").startswith("ok ")
    assert result.stdout.splitlines()[-1] == "up: 1 ok, 0 failed, 1 unreachable"


def test_a_tenant_whose_schema_is_gone_fails_rather_than_run_elsewhere(database, db, write_migrations):
    """The check behind a schema dropped between listing and running: the
    session's search_path must resolve to the tenant's schema."""
    from sqlmigrate import commands, fleet
    from sqlmigrate.config import Settings
    from sqlmigrate.target import Target

    settings = Settings(database_url=database, directory=write_migrations(TWO))
    job = fleet.job("up", settings, commands.scan_folder(settings), to=None)
    report = fleet.run(job, [Target.from_settings(settings).in_schema("gone")], fleet.Options())
    (outcome,) = report.outcomes
    assert (outcome.state, outcome.exit_code) == (fleet.State.FAILED, 3)
    assert outcome.error is not None and outcome.error.message == (
        "search_path did not select schema gone (the current schema is none): was it dropped or renamed?")
    assert tables(db) == set()


def test_status_line_counts_the_states(databases, write_migrations):
    urls = databases(2)
    mdir = write_migrations(TWO)
    assert run_cli("up", "--dir", mdir, *urls_args(urls[:1]), "--to", "1").exit_code == 0
    result = run_cli("status", "--dir", mdir, *urls_args(urls))
    assert result.exit_code == 0
    assert line_of(result.stdout, urls[0]) == f"ok          {urls[0]}: 1 applied, 1 pending"
    assert line_of(result.stdout, urls[1]) == f"ok          {urls[1]}: 2 pending"
    assert result.stdout.splitlines()[-1] == "status: 2 ok, 0 failed"


def test_schemas_matching_nothing_is_a_usage_error(database, write_migrations):
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--schemas", "tenant%")
    assert result.exit_code == 2
    assert result.stderr == ("sqlmigrate: --schemas 'tenant%' matches no schema in the 1 database(s) given "
                             "(a LIKE pattern: % is any text, _ any one character, \\_ a '_')\n")


def test_schemas_with_a_table_in_a_schema_is_a_usage_error(database, db, write_migrations):
    db.execute("create schema tenant_1")
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--schemas", "tenant%",
                     "--table", "public.schema_migrations")
    assert result.exit_code == 2
    assert "give --table a name without a schema" in result.stderr
    assert tables(db, "tenant_1") == set()


# -- Ctrl-C ----------------------------------------------------------------------------


SLOW = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_slow": ("create table slow (id int);\nselect pg_sleep(60);\n", "drop table slow;\n"),
}


def sleeping(server: str, names: list[str]) -> int:
    with psycopg.connect(server, autocommit=True) as conn:
        return conn.execute("select count(*) from pg_stat_activity where application_name = 'sqlmigrate' "
                            "and state = 'active' and query like '%%pg_sleep(60)%%' and datname = any(%s)",
                            (names,)).fetchone()[0]


def test_ctrl_c_rolls_back_each_running_migration_and_starts_nothing_new(server, databases, write_migrations):
    urls = databases(4)
    names = [psycopg.conninfo.conninfo_to_dict(url)["dbname"] for url in urls]
    mdir = write_migrations(SLOW)
    proc = start_process("up", "--dir", mdir, *urls_args(urls), "--jobs", "2")
    wait_for(lambda: sleeping(server, names) == 2, "two targets to run 002_slow", 30)
    began = time.monotonic()
    code, out, err = interrupt_process(proc)
    assert time.monotonic() - began < 10
    assert code == 130, err
    assert "Traceback" not in err
    interrupted = [line for line in err.splitlines() if line.startswith("interrupted ")]
    assert len(interrupted) == 2
    assert all(line.endswith(": interrupted during 002_slow; its transaction was rolled back; "
                             "1 migration(s) applied before it stay applied") for line in interrupted)
    assert out.splitlines()[-1] == "up: 0 ok, 0 failed, 2 interrupted, 2 skipped"
    states = sorted(ids_in(url) for url in urls)
    assert states == [[], [], ["001"], ["001"]]
    assert all("slow" not in tables_in(url) for url in urls)
    assert sleeping(server, names) == 0


def test_ctrl_c_ends_a_wait_for_the_lock(server, databases, write_migrations, tmp_path):
    locked, busy = databases(2)
    holder = start_process("up", "--dir", write_migrations(SLOW), "--database-url", locked)
    other = tmp_path / "other"
    for folder, (up, down) in SLOW.items():
        (other / folder).mkdir(parents=True)
        (other / folder / "up.sql").write_text(up)
        (other / folder / "down.sql").write_text(down)
    try:
        names = [psycopg.conninfo.conninfo_to_dict(url)["dbname"] for url in (locked, busy)]
        wait_for(lambda: sleeping(server, names[:1]) == 1, "the other run to hold the lock", 30)
        proc = start_process("up", "--dir", other, *urls_args([locked, busy]), "--format", "json")
        wait_for(lambda: sleeping(server, names[1:]) == 1, "the second target to run 002_slow", 30)
        time.sleep(0.5)  # the first target polls for the lock meanwhile
        began = time.monotonic()
        code, out, err = interrupt_process(proc)
        assert time.monotonic() - began < 10  # not the 60 s of --lock-wait
    finally:
        interrupt_process(holder)
    assert code == 130, err
    shown = json.loads(out)
    assert shown["exit_code"] == 130
    first, second = shown["targets"]
    assert first["state"] == second["state"] == "interrupted"
    assert first["report"] == {"command": "up", "exit_code": 130,
                               "error": "interrupted while waiting for the migration lock; nothing was changed"}
    assert second["report"]["error"].startswith("interrupted during 002_slow; its transaction was rolled back")


def test_a_second_ctrl_c_stops_waiting_for_a_target_that_runs_no_migration(server, databases, write_migrations):
    (busy,) = databases(1)
    name = psycopg.conninfo.conninfo_to_dict(busy)["dbname"]
    mdir = write_migrations(SLOW)
    with socket.socket() as silent:  # accepts connections and never answers: libpq waits for it
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hanging = f"postgresql://fleet@127.0.0.1:{silent.getsockname()[1]}/never"
        proc = start_process("up", "--dir", mdir, *urls_args([hanging, busy]), "--jobs", "2")
        try:
            wait_for(lambda: sleeping(server, [name]) == 1, "the second target to run 002_slow", 30)
            proc.send_signal(signal.SIGINT)
            wait_for(lambda: sleeping(server, [name]) == 0, "the cancel to end 002_slow")
            time.sleep(0.5)
            assert proc.poll() is None  # still waiting for the host that does not answer
            began = time.monotonic()
            code, out, err = interrupt_process(proc)
            assert time.monotonic() - began < 5
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 130, err
    assert line_of(err, hanging) == (f"interrupted {hanging}: interrupted while it ran no migration "
                                     "(Ctrl-C twice: not waited for)")
    assert line_of(err, busy).endswith(": interrupted during 002_slow; its transaction was rolled back; "
                                       "1 migration(s) applied before it stay applied")
    assert out.splitlines()[-1] == "up: 0 ok, 0 failed, 2 interrupted"
    assert ids_in(busy) == ["001"]


def test_ctrl_c_while_the_schemas_are_listed_starts_nothing(database, db, write_migrations):
    db.execute("create schema shop_a")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hanging = f"postgresql://fleet@127.0.0.1:{silent.getsockname()[1]}/never"
        proc = start_process("up", "--dir", write_migrations(TWO), *urls_args([hanging, database]),
                             "--schemas", "shop%")
        time.sleep(1.5)  # listing: one database answered, the other never will
        began = time.monotonic()
        code, out, err = interrupt_process(proc)
        assert time.monotonic() - began < 5
    assert code == 130
    assert err == "sqlmigrate: interrupted while listing the schemas; nothing was started\n"
    assert tables(db, "shop_a") == set()


# -- output ------------------------------------------------------------------------


def test_json_holds_each_targets_own_object(databases, write_migrations):
    urls = failing_second(databases, 3)
    mdir = write_migrations(TWO)
    masked = [urls[0], urls[1], UNREACHABLE.replace("secretpw", "***")]
    result = run_cli("up", "--dir", mdir, *urls_args([urls[0], urls[1], UNREACHABLE]), "--on-error", "continue",
                     "--format", "json")
    assert "secretpw" not in result.stdout
    shown = json.loads(result.stdout)
    assert set(shown) == {"command", "exit_code", "targets", "summary", "notes"}
    assert (shown["command"], shown["exit_code"]) == ("up", 4)
    assert shown["summary"] == {"total": 3, "ok": 1, "failed": 1, "unreachable": 1, "interrupted": 0, "skipped": 0,
                                "duration_s": shown["summary"]["duration_s"]}
    assert [t["target"] for t in shown["targets"]] == masked
    ok, failed, unreachable = shown["targets"]
    assert set(ok) == {"target", "schema", "state", "exit_code", "duration_s", "reason", "report"}
    assert [t["exit_code"] for t in (ok, failed, unreachable)] == [0, 4, 3]
    assert [d["id"] for d in ok["report"]["done"]] == ["001", "002"]
    assert failed["report"]["failed"]["error"]["sqlstate"] == "42P07"
    assert unreachable["report"]["error"].startswith(f"cannot connect to {masked[2]}: ")
    # the object each holds is what --format json prints for that database alone
    status = json.loads(run_cli("status", "--dir", mdir, *urls_args(urls[:2]), "--format", "json").stdout)
    alone = json.loads(run_cli("status", "--dir", mdir, "--database-url", urls[0], "--format", "json").stdout)
    assert status["targets"][0]["report"] == alone


def test_one_database_prints_as_it_always_did(database, write_migrations):
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, "--database-url", database)
    assert result.stdout.startswith("applying 001_a ... ok")
    assert "targets" not in json.loads(run_cli("status", "--dir", mdir, "--database-url", database,
                                               "--format", "json").stdout)


def test_dry_run_on_many_targets_changes_nothing(databases, write_migrations):
    urls = databases(2)
    mdir = write_migrations(TWO)
    result = run_cli("up", "--dir", mdir, *urls_args(urls), "--dry-run")
    assert result.exit_code == 0
    assert line_of(result.stdout, urls[0]).endswith(": dry run: would have applied 001_a, 002_b")
    assert all(tables_in(url) == set() for url in urls)


def test_down_on_many_targets_needs_yes(databases, write_migrations):
    urls = databases(2)
    mdir = write_migrations(TWO)
    assert run_cli("up", "--dir", mdir, *urls_args(urls)).exit_code == 0
    refused = run_cli("down", "--dir", mdir, *urls_args(urls))
    assert refused.exit_code == 1
    assert refused.stderr == "sqlmigrate: down on many targets rolls back on every one of them: add --yes to confirm\n"
    assert all(ids_in(url) == ["001", "002"] for url in urls)
    done = run_cli("down", "--dir", mdir, *urls_args(urls), "--yes", "--steps", "2")
    assert done.exit_code == 0
    assert line_of(done.stdout, urls[1]).startswith("ok          ")
    assert "rolled back 2 migration(s)" in line_of(done.stdout, urls[1])
    assert all(ids_in(url) == [] for url in urls)


def test_verify_names_the_problem_of_each_target(databases, write_migrations):
    urls = databases(3)
    mdir = write_migrations(TWO)
    assert run_cli("up", "--dir", mdir, *urls_args(urls)).exit_code == 0
    with psycopg.connect(urls[2], autocommit=True) as conn:
        conn.execute("update schema_migrations set checksum = 'edited', content_checksum = 'edited' where id = '002'")
    result = run_cli("verify", "--dir", mdir, *urls_args(urls))
    assert result.exit_code == 1
    assert line_of(result.stderr, urls[2]) == f"FAILED      {urls[2]}: verify failed: 002_b modified"
    assert result.stdout.splitlines()[-1] == "verify: 2 ok, 1 failed"


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("content, expected", [
    (None, "sqlmigrate: targets file {path} does not exist\n"),
    ("# nothing yet\n\n", "sqlmigrate: targets file {path} lists no target (only blank lines and comments)\n"),
    ("dbname=a\n\nhost=x dbname\n", "sqlmigrate: {path}:3: invalid connection string host=x dbname: missing \"=\" "
                                    "after \"dbname\" in connection info string\n"),
    ("postgresql://u:topsecret@h:port/db\n",
     "sqlmigrate: {path}:1: invalid connection string postgresql://u:***@h:port/db: port 'port' is not a number\n"),
    ("dbname=a\npostgresql://u:${SHARD_PASSWORD}@h/db\n",
     "sqlmigrate: {path}:2: ${{SHARD_PASSWORD}} is not set in the environment\n"),
    ("postgresql://u:${SHARD-PASSWORD}@h/db\n",
     "sqlmigrate: {path}:1: '${{' starts no ${{NAME}} (a name of letters, digits and '_', then '}}')\n"),
])
def test_bad_targets_file_is_a_usage_error_naming_the_line(tmp_path, write_migrations, content, expected):
    mdir = write_migrations(TWO)
    path = tmp_path / "targets.txt"
    if content is not None:
        path.write_text(content)
    result = run_cli("up", "--dir", mdir, "--targets", path)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == expected.format(path=path)


def test_the_same_database_twice_is_refused(database, write_migrations, tmp_path):
    mdir = write_migrations(TWO)
    params = psycopg.conninfo.conninfo_to_dict(database)
    listing = tmp_path / "targets.txt"
    spelled = psycopg.conninfo.make_conninfo(**{**params, "connect_timeout": "10"})
    listing.write_text(f"# the same database, spelled otherwise\n{spelled}\n")
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--targets", listing)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"sqlmigrate: --database-url and {listing}:2 both name database "
                                    f"{params['dbname']} on ")
    with psycopg.connect(database) as conn:
        port = conn.info.port
    assert result.stderr.endswith(f":{port}; give each target once\n")
    with psycopg.connect(database) as conn:
        assert tables(conn) == set()


def test_jobs_must_be_at_least_one(database, write_migrations):
    result = run_cli("up", "--dir", write_migrations(TWO), *urls_args([database, UNREACHABLE]), "--jobs", "0")
    assert result.exit_code == 2
    assert "argument --jobs: '0' is not a positive whole number" in result.stderr


def test_a_usage_error_in_json_is_one_object(tmp_path, write_migrations):
    result = run_cli("status", "--dir", write_migrations(TWO), "--targets", tmp_path / "none.txt", "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"command": "status", "exit_code": 2,
                                         "error": f"targets file {tmp_path / 'none.txt'} does not exist"}


# -- library ----------------------------------------------------------------------------


def test_migrate_many_returns_a_result_per_target_and_prints_nothing(databases, write_migrations, capfd):
    urls = failing_second(databases, 3)
    mdir = write_migrations(TWO)
    results = api.migrate_many([urls[0], urls[1], urls[2]], mdir, jobs=1)
    assert capfd.readouterr() == ("", "")
    assert [(r.target, r.state, r.exit_code, r.applied) for r in results] == [
        (urls[0], "ok", 0, ("001", "002")), (urls[1], "failed", 4, ()), (urls[2], "skipped", None, ())]
    assert isinstance(results[1].error, api.MigrationFailed)
    assert results[1].error.message == f"{mdir}/001_a/up.sql:1:1: ERROR 42P07: relation \"a\" already exists"


def test_migrate_many_on_schemas(database, db, write_migrations):
    for schema in ("t_1", "t_2"):
        db.execute(f"create schema {schema}")
    results = api.migrate_many([database], write_migrations(TWO), schemas="t\\_%")
    assert [(r.schema, r.state, r.applied) for r in results] == [("t_1", "ok", ("001", "002")),
                                                                 ("t_2", "ok", ("001", "002"))]


def test_migrate_many_ctrl_c_stays_a_keyboard_interrupt(server, databases, write_migrations):
    urls = databases(2)
    names = [psycopg.conninfo.conninfo_to_dict(url)["dbname"] for url in urls]
    mdir = write_migrations(SLOW)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt_once_running():
        wait_for(lambda: sleeping(server, names) == 2, "both targets to run 002_slow", 30)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_once_running)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as interrupted:
            api.migrate_many(urls, mdir)
    finally:
        killer.join()
        signal.signal(signal.SIGINT, previous)
    assert str(interrupted.value) == "interrupted: the migration running on 2 target(s) was rolled back"
    assert [ids_in(url) for url in urls] == [["001"], ["001"]]


def test_backups_of_many_targets_never_overwrite_each_other(database, db, write_migrations, tmp_path):
    """Tenant schemas of one database each get a dump of their own schema, side by side."""
    mdir = write_migrations({"001_t": ("create table t (id int);\n", "drop table t;\n")})
    for tenant in ("tenant_a", "tenant_b"):
        db.execute(f"create schema {tenant}; create table {tenant}.marker_{tenant} (id int)")
    folder = tmp_path / "backups"
    result = run_cli("up", "--database-url", database, "--schemas", "tenant%", "--backup", folder, "--jobs", "1",
                     "--dir", mdir, "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    paths = [t["report"]["backup"]["path"] for t in json.loads(result.stdout)["targets"]]
    assert len(set(paths)) == 2 and sorted(p.name for p in folder.iterdir()) == sorted(
        p.rsplit("/", 1)[1] for p in paths)
    assert all(f".tenant_{c}-" in name for c, name in zip("ab", sorted(paths)))

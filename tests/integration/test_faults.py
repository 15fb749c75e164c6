"""SPEC 5 under faults, with real processes against real servers.

Concurrent runs apply each migration exactly once; SIGKILL at any moment,
a terminated backend or a restarted server leave the schema and the tracking
rows consistent, and a later `up` finishes the job.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import psycopg

from tests.conftest import (_ThrowawayCluster, free_port, runner_pids, tables, tracking_ids,
                            tracking_row, start_process as start, finish_process as finish, wait_for,
                            wait_running)
from tests.integration.helpers import run


def _has_begun(conninfo: str, proc: subprocess.Popen) -> bool:
    """True once the run is under way (connected to its database), or over."""
    if proc.poll() is not None:
        return True
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return bool(runner_pids(conn))


def counted_migrations(count: int, sleeps: list[float] | None = None) -> dict:
    """Migrations NNN_mN: create table mN (+ index, column), one row in `runs` per execution."""
    out = {}
    for n in range(1, count + 1):
        sleep = f"select pg_sleep({sleeps[n - 1]});\n" if sleeps else ""
        up = (f"create table m{n} (id bigint primary key, label text);\n"
              f"{sleep}"
              f"create index m{n}_label on m{n} (label);\n"
              f"alter table m{n} add column extra int not null default {n};\n"
              f"insert into runs values ('{n:03d}', pg_backend_pid());\n")
        out[f"{n:03d}_m{n}"] = (up, f"drop table m{n};\ndelete from runs where id = '{n:03d}';\n")
    return out


def make_runs_table(conninfo: str) -> None:
    # outside the migrations: it counts executions, committed ones only (rows roll back with their migration)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("create table runs (id text not null, pid int not null)")


def assert_consistent(conn, context: str = "") -> list[str]:
    """Every tracking row has its table and every table its row; no migration ran twice.

    Returns the applied ids.
    """
    present = tables(conn)
    has_tracking = "schema_migrations" in present
    rows = conn.execute("select id, state from schema_migrations order by id").fetchall() if has_tracking else []
    assert all(state == "applied" for _, state in rows), (context, rows)
    ids = [r[0] for r in rows]
    made = sorted(f"{int(t[1:]):03d}" for t in present if t.startswith("m") and t[1:].isdigit())
    assert made == ids, (context, made, ids)
    runs = [r[0] for r in conn.execute("select id from runs order by id")]
    assert runs == ids, (context, runs, ids)
    for id_ in ids:  # the whole migration, not part of it
        n = int(id_)
        assert conn.execute("select count(*) from pg_indexes where indexname = %s", (f"m{n}_label",)
                            ).fetchone() == (1,), (context, id_)
        assert conn.execute("select count(*) from pg_attribute where attrelid = %s::regclass "
                            "and attname = 'extra'", (f"m{n}",)).fetchone() == (1,), (context, id_)
    # the applied ones are a prefix: up stops at the first one it cannot finish
    assert ids == [f"{n:03d}" for n in range(1, len(ids) + 1)], (context, ids)
    return ids


# The first migration waits (at most 60 s) until every other runner has connected: they all
# race for the lock while it is held, however slowly a loaded machine starts them.
ALL_RUNNERS_CONNECTED = """do $$ begin
  for i in 1..1200 loop
    perform pg_stat_clear_snapshot();  -- a fresh view of the sessions, not the transaction's first
    exit when (select count(*) from pg_stat_activity where datname = current_database()
               and application_name = 'sqlmigrate' and pid <> pg_backend_pid()) >= {others};
    perform pg_sleep(0.05);
  end loop;
end $$;
"""


def test_eight_concurrent_ups_apply_each_migration_exactly_once(database, db, write_migrations):
    make_runs_table(database)
    migrations = counted_migrations(10, [0.05] * 10)
    up, down = migrations["001_m1"]
    migrations["001_m1"] = (ALL_RUNNERS_CONNECTED.format(others=7) + up, down)
    mdir = write_migrations(migrations)
    procs = [start("up", "--dir", mdir, "--database-url", database) for _ in range(8)]
    outcomes = [finish(p, timeout=60) for p in procs]
    for code, _out, err in outcomes:
        assert code == 0, err
        assert "Traceback" not in err
    assert tracking_ids(db) == [f"{n:03d}" for n in range(1, 11)]
    assert db.execute("select id, count(*) from runs group by id having count(*) <> 1").fetchall() == []
    assert db.execute("select count(*) from runs").fetchone() == (10,)
    assert_consistent(db)
    # each migration was announced by exactly one process; the others waited, then had nothing to do
    applied_lines = [line for _, out, _ in outcomes for line in out.splitlines() if line.startswith("applying")]
    assert sorted(line.split()[1] for line in applied_lines) == sorted(counted_migrations(10))
    nothing = sum(1 for _, out, _ in outcomes if out == "nothing to apply: the database is up to date\n")
    assert nothing == 7  # the others waited for the lock, then found the work done
    waited = sum(1 for _, _, err in outcomes if "waiting for the migration lock: held by pid" in err)
    assert waited == 7


def test_sigkill_at_random_moments_leaves_a_consistent_state(new_database, tmp_path, write_migrations):
    """20 runs, each SIGKILLed at a random moment; 5 databases at a time to keep it short."""
    seed = int(os.environ.get("SQLMIGRATE_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    count = 6
    stages: dict[str, int] = {"before any migration": 0, "part-way": 0, "all applied": 0}
    for batch in range(4):
        runs = []
        for index in range(5):
            conninfo = new_database()
            make_runs_table(conninfo)
            sleeps = [round(rng.uniform(0.01, 0.15), 3) for _ in range(count)]
            mdir = write_migrations(counted_migrations(count, sleeps), directory=tmp_path / f"b{batch}_{index}")
            # the kill lands this long after the run's first migration started, so
            # that a loaded machine's slow start-up does not push every kill before it
            delay = rng.uniform(0.0, 0.8)
            runs.append((conninfo, mdir, delay, start("up", "--dir", mdir, "--database-url", conninfo)))
        pending = list(runs)
        started_at: dict[int, float] = {}
        while pending:
            for entry in list(pending):
                conninfo, _mdir, delay, proc = entry
                if id(proc) not in started_at and _has_begun(conninfo, proc):
                    started_at[id(proc)] = time.monotonic()
                if id(proc) in started_at and time.monotonic() >= started_at[id(proc)] + delay:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    pending.remove(entry)
            time.sleep(0.005)
        for conninfo, mdir, delay, proc in runs:
            context = f"seed={seed} batch={batch} delay={delay:.3f}"
            with psycopg.connect(conninfo, autocommit=True) as conn:
                # a killed client's backend may outlive it briefly
                wait_for(lambda: not runner_pids(conn), f"the killed run's backend to end ({context})")
                ids = assert_consistent(conn, context)
                stages["before any migration" if not ids else "all applied" if len(ids) == count
                       else "part-way"] += 1
                later = run("up", mdir, conninfo)
                assert later.exit_code == 0, (context, later.stderr)
                assert assert_consistent(conn, context) == [f"{n:03d}" for n in range(1, count + 1)]
    # the random delays did hit the middle of runs, not only before or after them
    assert stages["part-way"] >= 3, (seed, stages)


def test_terminated_backend_mid_migration_exits_3_in_one_line(database, db, write_migrations):
    make_runs_table(database)
    migrations = counted_migrations(3)
    migrations["002_m2"] = (migrations["002_m2"][0] + "select pg_sleep(30);\n", migrations["002_m2"][1])
    mdir = write_migrations(migrations)
    proc = start("up", "--dir", mdir, "--database-url", database)
    pid = wait_running(db, "pg_sleep")
    assert db.execute("select pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    code, out, err = finish(proc, timeout=15)
    assert code == 3, err
    # one line; the reason in brackets is libpq's, which words it differently
    # depending on whether it read the server's farewell before the socket closed
    [line] = err.splitlines()
    assert line.startswith("sqlmigrate: connection lost during 002_m2 (")
    assert line.endswith("); its transaction was rolled back by the server")
    assert out.splitlines()[-1] == "applying 002_m2 ... stopped"
    assert "Traceback" not in err
    wait_for(lambda: not runner_pids(db), "the terminated backend to end")
    assert assert_consistent(db) == ["001"]
    later = run("up", write_migrations(counted_migrations(3)), database)
    assert later.exit_code == 0, later.stderr
    assert assert_consistent(db) == ["001", "002", "003"]


def test_terminated_backend_during_no_transaction_up_is_recorded_as_failed(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n"
                    "select pg_sleep(30);\ncreate index concurrently t_id2 on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently if exists t_id2;\n"
                    "drop index concurrently if exists t_id;\n"),
    })
    proc = start("up", "--dir", mdir, "--database-url", database)
    pid = wait_running(db, "pg_sleep")
    db.execute("select pg_terminate_backend(%s)", (pid,))
    code, out, err = finish(proc, timeout=15)
    assert code == 3, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sqlmigrate: connection lost during 002_idx")
    # not "rolled back": statements outside a transaction stay done
    assert "rolled back" not in lines[0]
    assert "recorded as failed after 1 statement(s)" in lines[0]
    assert "sqlmigrate repair" in lines[0]
    assert tracking_row(db, "002", "state, statements_run, failed_during") == ("failed", 1, "up")
    verify = run("verify", mdir, database)
    assert verify.exit_code == 1 and "002_idx: failed" in verify.stderr


def test_terminated_backend_during_no_transaction_down_is_recorded_as_failed(database, db, write_migrations):
    # SPEC 5: a no-transaction down that stopped part-way must not look applied (nor rolled back)
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n"
                    "create index concurrently t_id2 on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id2;\n"
                    "select pg_sleep(30);\ndrop index concurrently t_id;\n"),
    })
    assert run("up", mdir, database).exit_code == 0
    proc = start("down", "--dir", mdir, "--database-url", database)
    pid = wait_running(db, "pg_sleep")
    db.execute("select pg_terminate_backend(%s)", (pid,))
    code, _out, err = finish(proc, timeout=15)
    assert code == 3, err
    assert "recorded as failed after 1 statement(s)" in err
    assert tracking_row(db, "002", "state, statements_run, failed_during") == ("failed", 1, "down")
    assert run("down", mdir, database).exit_code == 1  # refused until repaired
    repair = run("repair", mdir, database)
    assert repair.exit_code == 0, repair.stderr
    assert "002_idx: cleared the failed rollback; the migration is applied again" in repair.stdout


def test_server_restart_mid_run_exits_3_and_leaves_a_consistent_state(write_migrations):
    cluster = _ThrowawayCluster()
    try:
        with psycopg.connect(cluster.conninfo, autocommit=True) as admin:
            admin.execute("create database restart_test")
        conninfo = cluster.conninfo.replace("dbname=postgres", "dbname=restart_test")
        make_runs_table(conninfo)
        mdir = write_migrations(counted_migrations(3, [0, 2, 0]))
        proc = start("up", "--dir", mdir, "--database-url", conninfo)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            wait_running(conn, "pg_sleep(2")
        # -l: without it the restarted server would keep this process's output pipes open
        cluster._run([cluster.pg_ctl, "-D", str(cluster.data), "-l", str(cluster.base / "log"),
                      "-m", "fast", "-w", "restart"])
        code, out, err = finish(proc, timeout=30)
        assert code in (3, 4), err
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sqlmigrate: connection lost during 002_m2"), err
        assert "Traceback" not in err
        with psycopg.connect(conninfo, autocommit=True) as conn:
            assert assert_consistent(conn) == ["001"]
            later = run("up", mdir, conninfo)
            assert later.exit_code == 0, later.stderr
            assert assert_consistent(conn) == ["001", "002", "003"]
    finally:
        cluster.stop()


def test_a_connection_lost_during_a_migration_is_settled_by_its_tracking_row(database, db, write_migrations):
    """The COMMIT goes in the same query string as the migration: when the connection breaks,
    a new one reads the tracking row, so that a break just after the COMMIT is not reported as
    a rollback. (The break itself is timed by test_terminated_backend_mid_migration_exits_3_in_one_line;
    just after a COMMIT, no test can time it, so this drives the settling step directly.)"""
    from sqlmigrate import commands
    from sqlmigrate.config import Settings
    from sqlmigrate.errors import ConnectionLost
    from sqlmigrate.target import Target

    mdir = write_migrations(counted_migrations(2))
    make_runs_table(database)
    assert run("up", mdir, database, "--to", "1").exit_code == 0

    def settled(step_id: str, is_up: bool, url: str = database) -> str:
        lost = ConnectionLost(f"connection lost during {step_id}_x (server closed the connection)",
                              step_id=step_id, is_up=is_up)
        error = commands._settled(Target.from_settings(Settings(database_url=url, directory=mdir)), lost)
        assert error.exit_code == 3
        return error.message

    assert settled("001", is_up=True) == \
        "connection lost during 001_x (server closed the connection) just after its COMMIT: it is applied"
    assert settled("002", is_up=True) == \
        "connection lost during 002_x (server closed the connection); its transaction was rolled back by the server"
    assert settled("002", is_up=False) == \
        "connection lost during 002_x (server closed the connection) just after its COMMIT: it is rolled back"
    assert settled("001", is_up=False).endswith("; its transaction was rolled back by the server")
    closed = free_port()  # nothing listens there: the row cannot be read
    assert settled("001", is_up=True, url=f"postgresql://127.0.0.1:{closed}/x").endswith(
        "; its transaction was rolled back by the server unless its COMMIT had gone through: "
        "`sqlmigrate status` tells which, once the server answers again")

"""Test fixtures: a real PostgreSQL server, a fresh database per test, inline migrations.

Server, in this order: SQLMIGRATE_TEST_DATABASE_URL, DATABASE_URL, libpq's
defaults (the local server), else a throwaway cluster started here with
initdb/pg_ctl (the system's, else those of the pip-installed build). When none
can be had, database tests fail with one line.
"""
from __future__ import annotations

import contextlib
import io
import os
import pty
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
SCRATCH = "sqlmigrate_scratch_"  # how `test` and `drift` name their scratch databases


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: object, env: dict[str, str] | None = None) -> CliResult:
    """Run the command line in-process with exactly `env` as its environment."""
    from sqlmigrate import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args], dict(env or {}))
    return CliResult(code, out.getvalue(), err.getvalue())


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment for a `python -m sqlmigrate` child, without the variables
    that would choose its database, folder or table, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLMIGRATE_DIR", "SQLMIGRATE_TABLE")}
    env.update(extra or {})
    return env


def run_process(*args: object, env: dict[str, str] | None = None, timeout: float = 120,
                input: str | None = None) -> CliResult:
    """Run `python -m sqlmigrate` as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "sqlmigrate", *map(str, args)],
        capture_output=True, text=True, env=_child_env(env), timeout=timeout, input=input, cwd=ROOT,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def modules_loaded_after(args: list[str]) -> set[str]:
    """Which of psycopg and sqlparse the command line `args` imports, run in a fresh
    interpreter (the command must exit 0)."""
    code = (
        "import contextlib, io, sys\n"
        "from sqlmigrate import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = cli.main({args!r}, {{}})\n"
        "print(code, ' '.join(m for m in ('psycopg', 'sqlparse') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    exit_code, *loaded = out.stdout.split()
    assert exit_code == "0", out.stderr
    return set(loaded)


def _interruptible() -> None:
    """In the child: take SIGINT as a terminal's Ctrl-C would deliver it. A shell
    running the tests in the background (nohup, `&`) passes SIGINT on ignored,
    and Python keeps an ignored SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_process(*args: object) -> subprocess.Popen:
    """`python -m sqlmigrate ARGS` in the background, output captured, Ctrl-C deliverable."""
    return subprocess.Popen([sys.executable, "-m", "sqlmigrate", *map(str, args)], cwd=ROOT, env=_child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)


def start_on_a_terminal(*args: object) -> tuple[subprocess.Popen, int]:
    """`python -m sqlmigrate ARGS` with a real terminal (pty) as stdin; stdout and stderr piped.
    Returns the process and the terminal's master end, for typing an answer."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sqlmigrate", *map(str, args)], cwd=ROOT, env=_child_env(),
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)
    os.close(slave)
    return proc, master


def run_on_a_terminal(*args: object, timeout: float = 60) -> tuple[int, str]:
    """`python -m sqlmigrate ARGS` with a real terminal (pty) as stdout: its exit code and
    everything it wrote there, escape sequences included (stderr is discarded)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in _child_env().items() if k != "NO_COLOR"}
    proc = subprocess.Popen([sys.executable, "-m", "sqlmigrate", *map(str, args)], cwd=ROOT, env=env,
                            stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=timeout), seen.decode()


def finish_process(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a background run; killed and reported if it hangs."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process did not finish in {timeout}s:\n{out}\n{err}") from None
    return proc.returncode, out, err


def interrupt_process(proc: subprocess.Popen, timeout: float = 15) -> tuple[int, str, str]:
    """Ctrl-C a background run; its exit code, stdout and stderr (killed if it ignores it)."""
    try:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def wait_for(probe, what: str, timeout: float = 15):
    """The first true value `probe()` returns, polling; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def runner_pids(db: psycopg.Connection) -> list[int]:
    """Backends of sqlmigrate processes connected to this database, oldest first."""
    rows = db.execute("select pid from pg_stat_activity where application_name = 'sqlmigrate' "
                      "and datname = current_database() order by backend_start").fetchall()
    return [r[0] for r in rows]


def running(db: psycopg.Connection, fragment: str) -> int | None:
    """The pid of a sqlmigrate backend of this database now running a query containing `fragment`."""
    row = db.execute("select pid from pg_stat_activity where application_name = 'sqlmigrate' "
                     "and datname = current_database() and state = 'active' and query like %s",
                     (f"%{fragment}%",)).fetchone()
    return row[0] if row else None


def wait_running(db: psycopg.Connection, fragment: str, timeout: float = 15) -> int:
    """Pid of the sqlmigrate backend of this database whose running query holds `fragment`."""
    return wait_for(lambda: running(db, fragment), f"a sqlmigrate backend running {fragment!r}", timeout)


def databases(server: str) -> set[str]:
    """Names of the databases on `server`."""
    with psycopg.connect(server, autocommit=True) as conn:
        return {r[0] for r in conn.execute("select datname from pg_database")}


def interrupt_in_scratch(server: str, marker: str, *args) -> tuple[int, str, str]:
    """Run sqlmigrate `args` (test or drift), send Ctrl-C once its scratch
    database runs the query holding `marker`; its exit code, stderr and the
    scratch database's name."""
    proc = start_process(*args)
    try:
        ours = wait_for(lambda: database_running(server, marker), "the scratch run to reach the marked query", 30)
        assert ours.startswith(SCRATCH)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err, ours


def database_running(server: str, fragment: str) -> str | None:
    """The database whose backend (other than this probe) now runs a query holding `fragment`."""
    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute("select datname from pg_stat_activity where state = 'active' "
                           "and pid <> pg_backend_pid() and query like %s", (f"%{fragment}%",)).fetchone()
    return row[0] if row else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_params(conninfo: str, **params: object) -> str:
    """`conninfo` with some parameters (dbname, user, ...) replaced."""
    return psycopg.conninfo.make_conninfo(conninfo, **params)


# -- the server -------------------------------------------------------------------


def _can_connect(conninfo: str) -> str | None:
    try:
        with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
            conn.execute("select 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def _admin_conninfo(url: str) -> str:
    """The same server, database `postgres` unless the URL names none."""
    params = psycopg.conninfo.conninfo_to_dict(url) if url else {}
    params.setdefault("dbname", "postgres")
    return psycopg.conninfo.make_conninfo(**params)


def _find_binary(name: str) -> str | None:
    """On PATH, else the newest Debian package's, else the pip-installed build's (sqlmigrate[server])."""
    from sqlmigrate import devserver

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if candidates:
        return str(candidates[0])
    build = devserver.bin_dir()
    return str(build / name) if build is not None else None


class _ThrowawayCluster:
    """A private server in a temporary folder, for machines with none running."""

    def __init__(self) -> None:
        initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("no initdb/pg_ctl on PATH, under /usr/lib/postgresql/*/bin or from "
                               "pip install 'sqlmigrate[server]'")
        self.pg_ctl = pg_ctl
        self.base = Path(tempfile.mkdtemp(prefix="sqlmigrate-pg-"))
        self.user = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            for candidate in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    self.user = pwd.getpwnam(candidate)
                    break
            if self.user is None:
                raise RuntimeError("running as root and no 'postgres' or 'nobody' user for initdb")
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.port = free_port()
        data = self.base / "data"
        self._run([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        options = f"-k {self.base} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._run([pg_ctl, "-D", str(data), "-o", options, "-l", str(self.base / "log"), "-w", "start"])
        self.data = data
        self.conninfo = f"host={self.base} port={self.port} user=postgres dbname=postgres"

    def _run(self, cmd: list[str]) -> None:
        if self.user is not None:
            cmd = ["runuser", "-u", self.user.pw_name, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.base)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    """Admin conninfo of a reachable server; fails with one line when there is none."""
    url = os.environ.get("SQLMIGRATE_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    admin = _admin_conninfo(url)
    problem = _can_connect(admin)
    if problem is None:
        yield admin
        return
    try:
        cluster = _ThrowawayCluster()
    except Exception as exc:  # noqa: BLE001 - reported as the one line below
        pytest.fail(
            f"no PostgreSQL server: {problem}; and could not start one ({exc}). "
            "Set DATABASE_URL to a server where this user may CREATE DATABASE.",
            pytrace=False,
        )
    try:
        yield cluster.conninfo
    finally:
        cluster.stop()


@pytest.fixture
def new_database(server):
    """Factory of fresh databases, each dropped at the end of the test."""
    created: list[str] = []

    def make() -> str:
        name = f"sqlmigrate_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        return with_params(server, dbname=name)

    yield make
    with psycopg.connect(server, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def database(new_database) -> str:
    """Conninfo of a fresh, empty database for this test only."""
    return new_database()


@pytest.fixture
def db(database):
    """An autocommit connection to the test database, for asserting its state."""
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


def write_files(directory: Path, files: dict[str, str | bytes | None]) -> Path:
    """Write `files` (a path under `directory` -> its text or bytes; None makes a
    folder) and return `directory`, which is made if need be."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return directory


@pytest.fixture
def write_migrations(tmp_path):
    """Write {"001_name": (up_sql, down_sql)} into a migrations folder; returns its path.

    A value of None for up or down leaves that file out; bytes are written as is.
    The folder is tmp_path/migrations unless `directory` names another.
    """
    def write(migrations: dict[str, tuple[str | bytes | None, str | bytes | None]],
              directory: Path | None = None) -> Path:
        files: dict[str, str | bytes | None] = {}
        for folder, (up, down) in migrations.items():
            files[folder] = None
            for name, content in (("up.sql", up), ("down.sql", down)):
                if content is not None:
                    files[f"{folder}/{name}"] = content
        return write_files(directory or tmp_path / "migrations", files)

    return write


def tables(conn: psycopg.Connection, schema: str = "public") -> set[str]:
    rows = conn.execute(
        "select tablename from pg_tables where schemaname = %s", (schema,)
    ).fetchall()
    return {r[0] for r in rows}


def tracking_ids(conn: psycopg.Connection, table: str = "schema_migrations") -> list[str]:
    rows = conn.execute(sql.SQL("select id from {} order by id::numeric").format(sql.Identifier(table))).fetchall()
    return [r[0] for r in rows]


def tracking_row(conn: psycopg.Connection, id_: str, columns: str = "state",
                 table: str = "schema_migrations") -> tuple | None:
    """`columns` (an SQL list, "state, statements_run") of the tracking row `id_`; None if there is none."""
    query = sql.SQL("select {} from {} where id = %s").format(sql.SQL(columns), sql.Identifier(table))
    return conn.execute(query, (id_,)).fetchone()

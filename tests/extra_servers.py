"""Servers the deploy tests run against besides the test server: a primary with
a streaming standby (initdb, pg_basebackup -R), and PgBouncer in each pool mode.

Each is started in a temporary folder, as the current user, or as `postgres`
(else `nobody`) when that is root, which initdb, postgres and pgbouncer refuse.
A server that cannot be started raises RuntimeError with one line saying why.
"""
from __future__ import annotations

import contextlib
import re
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.conftest import _find_binary


def _newest(name: str) -> str | None:
    """The program of the newest major among /usr/lib/postgresql's and the pip build's
    (sqlmigrate[server]), else PATH's: a client reads servers of its own major and older ones."""
    from sqlmigrate import devserver

    installed = [(int(p.parts[-3]), str(p)) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")
                 if p.parts[-3].isdigit()]
    build = devserver.bin_dir()
    if build is not None and (build / name).exists():
        version = subprocess.run([str(build / "pg_config"), "--version"], capture_output=True, text=True).stdout
        major = re.search(r"PostgreSQL (\d+)", version)
        if major:
            installed.append((int(major.group(1)), str(build / name)))
    if installed:
        return max(installed)[1]
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the servers: None for the current user, unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run the servers as")


class _Folder:
    """A temporary folder the server user owns; removed by stop()."""

    def __init__(self, prefix: str) -> None:
        self.user = _server_user()
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)

    def popen_user(self) -> dict:
        """subprocess keyword arguments that run a command as the server user."""
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def run(self, command: list[str], what: str, timeout: float = 120) -> None:
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.base, timeout=timeout,
                              **self.popen_user())
        if done.returncode != 0:
            said = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            # the first error says why; what follows is cleaning up ("removing data directory ...")
            errors = [line for line in said if "error:" in line or "FATAL:" in line]
            reason = (errors or said[-1:] or ["no message"])[0]
            raise RuntimeError(f"{what} failed (exit {done.returncode}): {reason}")

    def write(self, name: str, text: str) -> Path:
        path = self.base / name
        path.write_text(text)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no log"


def _start(folder: _Folder, pg_ctl: str, data: Path, port: int, what: str) -> None:
    """Start the server of `data` on a socket in `folder`, at `port`; RuntimeError with its log's last line."""
    log = folder.base / f"{data.name}.log"
    options = f"-k {folder.base} -p {port} -c listen_addresses='' -c fsync=off"
    try:
        folder.run([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"],
                   f"starting {what}")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc} ({what}'s log: {_log_tail(log)})") from None


def _major(bindir: Path) -> int:
    said = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"\(PostgreSQL\) (\d+)", said)
    return int(found.group(1)) if found else 0


class NewestServer:
    """A throwaway server of the newest major this machine has (the pip build's, sqlmigrate[server],
    where nothing newer is installed), for what only a recent PostgreSQL has; refused when older
    than `at_least`. Socket in a temporary folder, trust authentication, user `postgres`."""

    def __init__(self, at_least: int) -> None:
        initdb = _newest("initdb")
        if not initdb:
            raise RuntimeError("no initdb under /usr/lib/postgresql/*/bin, from pip install 'sqlmigrate[server]' "
                               "or on PATH")
        bindir = Path(initdb).resolve().parent
        self.major = _major(bindir)
        if self.major < at_least:
            raise RuntimeError(f"the newest PostgreSQL here ({bindir}) is {self.major or 'of unknown major'}, "
                               f"not {at_least} or later: pip install 'sqlmigrate[server]'")
        self.pg_ctl = str(bindir / "pg_ctl")
        self.folder = _Folder(f"sqlmigrate-pg{self.major}-")
        self.data, self.port = self.folder.base / "data", free_port()
        try:
            self.folder.run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                             "-E", "UTF8"], f"initdb ({initdb})")
            _start(self.folder, self.pg_ctl, self.data, self.port, f"PostgreSQL {self.major}")
        except BaseException:
            self.folder.remove()
            raise

    def conninfo(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.folder.base), port=self.port, user="postgres",
                                              dbname=dbname)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.folder.run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"], "stopping")
        self.folder.remove()


class StandbyPair:
    """A throwaway primary on one port and its hot standby, streaming from it, on another.

    Both listen on a socket in the same temporary folder (no TCP), trust
    authentication, user `postgres`.
    """

    def __init__(self) -> None:
        initdb = _find_binary("initdb")
        if not initdb:
            raise RuntimeError("no initdb on PATH or under /usr/lib/postgresql/*/bin")
        # the tools of initdb's own major: pg_basebackup must be as new as the server
        bindir = Path(initdb).resolve().parent
        self.pg_ctl = str(bindir / "pg_ctl")
        basebackup = bindir / "pg_basebackup"
        pg_basebackup = str(basebackup) if basebackup.exists() else _newest("pg_basebackup")
        if not pg_basebackup:
            raise RuntimeError(f"no pg_basebackup next to {initdb}, on PATH or under /usr/lib/postgresql/*/bin")
        self.folder = _Folder("sqlmigrate-standby-")
        base = self.folder.base
        self.primary_data, self.standby_data = base / "primary", base / "standby"
        self.primary_port, self.standby_port = free_port(), free_port()
        self.started: list[Path] = []
        try:
            self.folder.run([initdb, "-D", str(self.primary_data), "-A", "trust", "-U", "postgres", "--no-sync",
                             "-E", "UTF8"], "initdb of the primary")
            self._start(self.primary_data, self.primary_port, "the primary")
            self.folder.run([pg_basebackup, "-D", str(self.standby_data), "-R", "-X", "stream", "-c", "fast",
                             "--no-sync", "-h", str(base), "-p", str(self.primary_port), "-U", "postgres"],
                            f"pg_basebackup ({pg_basebackup}) of the primary")
            # the connection string -R wrote holds every option of pg_basebackup's own libpq, which an
            # older server's walreceiver may not know (sslnegotiation, from 17): name only what it needs
            with open(self.standby_data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
                conf.write(f"primary_conninfo = 'host={base} port={self.primary_port} user=postgres'\n")
            self._start(self.standby_data, self.standby_port, "the standby")
            with psycopg.connect(self.standby("postgres"), autocommit=True) as conn:
                if not conn.execute("select pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    raise RuntimeError("the standby started but is not in recovery")
        except BaseException:
            self.stop()
            raise

    def _start(self, data: Path, port: int, what: str) -> None:
        _start(self.folder, self.pg_ctl, data, port, what)
        self.started.append(data)

    def _conninfo(self, port: int, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.folder.base), port=port, user="postgres",
                                              dbname=dbname)

    def primary(self, dbname: str) -> str:
        return self._conninfo(self.primary_port, dbname)

    def standby(self, dbname: str) -> str:
        return self._conninfo(self.standby_port, dbname)

    def wait_for_replay(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary wrote so far."""
        with psycopg.connect(self.primary("postgres"), autocommit=True) as primary:
            lsn = primary.execute("select pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.standby("postgres"), autocommit=True) as standby:
            while True:
                row = standby.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
                if row and row[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the standby did not replay up to {lsn} in {timeout}s")
                time.sleep(0.02)

    def stop(self) -> None:
        for data in reversed(self.started):
            with contextlib.suppress(Exception):
                self.folder.run([self.pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], "stopping")
        self.started = []
        self.folder.remove()


class PgBouncer:
    """PgBouncer as a child process with stock settings but for these: it
    listens on 127.0.0.1 at a free port, trusts the test server's user, and
    sends every database to the test server in `pool_mode`."""

    def __init__(self, server: str, pool_mode: str, *, settings: str = "") -> None:
        binary = shutil.which("pgbouncer") or next(
            (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)
        if binary is None:
            raise RuntimeError("no pgbouncer on PATH or in /usr/sbin (apt-get install pgbouncer)")
        with psycopg.connect(server, autocommit=True) as conn:
            host, port, self.user = conn.info.host, conn.info.port, conn.info.user
        self.pool_mode = pool_mode
        self.port = free_port()
        self.folder = _Folder(f"sqlmigrate-pgbouncer-{pool_mode}-")
        base = self.folder.base
        users = self.folder.write("users.txt", f'"{self.user}" ""\n')
        self.log = base / "pgbouncer.log"
        ini = self.folder.write("pgbouncer.ini", "\n".join([
            "[databases]",
            f"* = host={host} port={port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {users}",
            f"pool_mode = {pool_mode}",
            f"logfile = {self.log}",
            settings,
            "",
        ]))
        # its output to a file: a pipe nobody reads would stop it once full
        self.output = base / "output"
        with self.output.open("wb") as output:
            self.process = subprocess.Popen([binary, str(ini)], cwd=base, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, **self.folder.popen_user())
        try:
            self._wait_until_it_answers(server)
        except BaseException:
            self.stop()
            raise

    def _wait_until_it_answers(self, server: str, timeout: float = 15) -> None:
        admin_db = psycopg.conninfo.conninfo_to_dict(server).get("dbname") or "postgres"
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                said = _log_tail(self.output)
                raise RuntimeError(f"pgbouncer ({self.pool_mode}) exited with {self.process.returncode}: "
                                   f"{_log_tail(self.log) if said == 'no log' else said}")
            try:
                with psycopg.connect(self.url(str(admin_db)), autocommit=True, connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.Error as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer ({self.pool_mode}) did not answer on port {self.port} in "
                                       f"{timeout}s: {str(exc).strip().splitlines()[-1]}") from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        """The conninfo of `database` on the test server, through this pooler."""
        dbname = psycopg.conninfo.conninfo_to_dict(database).get("dbname", database) if "=" in database \
            else database
        return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=self.port, user=self.user, dbname=dbname)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.folder.remove()

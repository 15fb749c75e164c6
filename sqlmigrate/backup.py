"""`up --backup DIR` (SPEC 7): a pg_dump of the target, taken under the lock
before the first pending migration runs.

Finds a pg_dump as new as the server, gives it the connection through its
environment (never its command line), writes the dump under a temporary name
and renames it only when pg_dump succeeded.
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from sqlmigrate.errors import DatabaseUnavailable, Interrupted, UsageError

if TYPE_CHECKING:
    from sqlmigrate.config import Settings
    from sqlmigrate.model import Plan

# Where PostgreSQL's packages put the client of each major, next to each other:
# PATH often holds only one of them, or a wrapper that picks one.
PG_DUMP_PLACES = (
    "/usr/lib/postgresql/*/bin/pg_dump",  # Debian, Ubuntu
    "/usr/pgsql-*/bin/pg_dump",  # PGDG packages for RHEL, Fedora
    "/opt/homebrew/opt/postgresql@*/bin/pg_dump",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin/pg_dump",  # Homebrew on Intel
)
VERSION_SECONDS = 30

# libpq's environment variable for each connection parameter that has one
_ENVIRONMENT = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER",
    "password": "PGPASSWORD", "passfile": "PGPASSFILE", "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING", "service": "PGSERVICE", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE", "requiressl": "PGREQUIRESSL",
    "sslnegotiation": "PGSSLNEGOTIATION", "sslcompression": "PGSSLCOMPRESSION", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "sslcertmode": "PGSSLCERTMODE", "sslrootcert": "PGSSLROOTCERT", "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI", "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION", "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION", "connect_timeout": "PGCONNECT_TIMEOUT", "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Connection parameters that are secrets: never on a command line
_SECRETS = {"password", "sslpassword"}


@dataclass(frozen=True)
class PgDump:
    path: str
    version: str  # as pg_dump --version says it: "15.20", "18beta1"
    major: int

    def __str__(self) -> str:
        return f"pg_dump {self.version} ({self.path})"


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    pg_dump: PgDump


def before_up(conn: psycopg.Connection, settings: Settings, plan: Plan, schema: str | None = None) -> Backup | None:
    """The dump SPEC 7 asks for before the plan's first migration; None when
    no backup folder is set or nothing is pending. Raises DatabaseUnavailable
    (pg_dump missing, too old or failing; the folder not writable), UsageError,
    Interrupted."""
    if settings.backup_dir is None or not plan.steps:
        return None
    return dump(conn, settings.database_url, settings.backup_dir, plan.steps[0].id, settings.pg_dump, schema)


def dump(conn: psycopg.Connection, url: str, directory: Path, first_id: str, pg_dump: str | None = None,
         schema: str | None = None) -> Backup:
    """`pg_dump --format=custom` of the database `conn` is connected to (of its
    `schema` alone, for a tenant schema), into
    DIR/<database>[.<schema>]-<UTC YYYYMMDDTHHMMSSZ>-before-<first_id>.dump,
    never over an existing file (runs on many targets back up side by side)."""
    env, conninfo = connection_environment(conn, url)
    server_major = conn.info.server_version // 10000
    chosen = find_pg_dump(server_major, pg_dump, env)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = _file_safe(conn.info.dbname) + (f".{_file_safe(schema)}" if schema else "")
    path = directory / f"{name}-{stamp}-before-{first_id}.dump"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # created here, readable by its owner only: the dump holds every row of the database
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".partial")
        os.close(handle)
    except OSError as exc:
        raise DatabaseUnavailable(f"backup: cannot write in {directory}: {exc.strerror or exc}; "
                                  "nothing was applied") from None
    try:
        _run(chosen, temporary, env, conninfo, conn.info.password, schema)
        size = os.path.getsize(temporary)
        path = _link_unused(temporary, path)
    except OSError as exc:
        raise DatabaseUnavailable(f"backup: cannot write {path}: {exc.strerror or exc}; nothing was applied") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    _sync_folder(directory)
    return Backup(path, size, chosen)


def _link_unused(temporary: str, path: Path) -> Path:
    """Give the finished dump its name, or the name with -2, -3, ... when another
    dump of the same second has it (shards of one database name, say): a
    hard link fails rather than replace an existing file."""
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            os.link(temporary, candidate)
        except FileExistsError:
            continue
        os.unlink(temporary)
        return candidate
    raise OSError(f"no free name next to {path}")


def _run(pg_dump: PgDump, target: str, env: dict[str, str], conninfo: str, password: str | None,
         schema: str | None = None) -> None:
    # --no-password: a missing password fails the backup instead of prompting on the terminal
    command = [pg_dump.path, "--format=custom", "--no-password", "--file", target]
    if schema:
        # a tenant's backup is its schema; the quotes keep pg_dump from reading it as a pattern
        command += ["--schema", '"' + schema.replace('"', '""') + '"']
    if conninfo:
        command += ["--dbname", conninfo]
    try:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
    except OSError as exc:
        raise DatabaseUnavailable(f"backup: {pg_dump} could not be started: {exc.strerror or exc}; "
                                  "nothing was applied") from None
    try:
        _, err = process.communicate()
    except KeyboardInterrupt:
        # the terminal's Ctrl-C reached pg_dump too; make sure it is gone before its file is
        process.kill()
        process.wait()
        raise Interrupted("interrupted during the backup; the partial dump was removed and nothing was "
                          "applied") from None
    if process.returncode != 0:
        reason = _reason(err.decode("utf-8", "replace"))
        if password:
            reason = reason.replace(password, "***")
        raise DatabaseUnavailable(f"backup: {pg_dump} failed (exit {process.returncode}): {reason}; "
                                  "no dump was kept and nothing was applied")


def _reason(stderr: str) -> str:
    """pg_dump's own words, on one line: its first error (it stops there; what
    follows is detail, such as the query that failed), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("pg_dump: error:")]
    if errors:
        return errors[0][len("pg_dump: error:"):].strip()
    return lines[-1] if lines else "no message"


def _file_safe(name: str) -> str:
    """The database name as part of a file name: no folder separator, no
    control character, no leading dot (a hidden file, or `..`)."""
    safe = re.sub(r"[/\\\x00-\x1f\x7f]", "_", name)
    return "_" + safe[1:] if safe.startswith(".") else safe or "_"


def _sync_folder(directory: Path) -> None:
    """pg_dump synced its file; the rename is made durable too, where folders can be synced."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- which pg_dump -------------------------------------------------------------------


def find_pg_dump(server_major: int, given: str | None, env: dict[str, str]) -> PgDump:
    """The pg_dump to use for a server of `server_major`.

    `given` (--pg-dump or SQLMIGRATE_PG_DUMP) is the only candidate when set.
    Otherwise, of PATH's pg_dump, those of PG_DUMP_PLACES and the pip build's
    (sqlmigrate[server]) whose major is at least the server's, the one of the
    closest major (the newest of that major) (pg_dump reads older servers, never newer
    ones). Each candidate is asked its version with the dump's own environment:
    a wrapper such as Debian's /usr/bin/pg_dump picks its version from it.
    Raises DatabaseUnavailable naming what was found and the major needed.
    """
    needed = f"the server is PostgreSQL {server_major}, so pg_dump {server_major} or newer is needed"
    if given:
        found = _version_of(given, env)
        if isinstance(found, str):
            raise DatabaseUnavailable(f"backup: the pg_dump given ({given}) cannot be used: {found}; {needed}; "
                                      "nothing was applied")
        if found.major < server_major:
            raise DatabaseUnavailable(f"backup: {found} is older than the server: {needed} (--pg-dump or "
                                      "SQLMIGRATE_PG_DUMP); nothing was applied")
        return found
    candidates: list[str] = []
    on_path = shutil.which("pg_dump", path=env.get("PATH"))
    for path in ([on_path] if on_path else []) + sorted(p for pattern in PG_DUMP_PLACES for p in glob.glob(pattern)) \
            + _pip_build("pg_dump"):
        if path not in candidates and os.access(path, os.X_OK):
            candidates.append(path)
    usable = [found for found in (_version_of(path, env) for path in candidates) if isinstance(found, PgDump)]
    fitting = [found for found in usable if found.major >= server_major]
    if fitting:
        # the closest major: its dump restores into that server without settings it does not know
        # (pg_dump 17 and newer write SET transaction_timeout, which older servers refuse)
        closest = min(found.major for found in fitting)
        return max((found for found in fitting if found.major == closest),
                   key=lambda found: _version_key(found.version))  # the first of equals: PATH's
    if usable:
        seen = ", ".join(str(found) for found in usable)
        raise DatabaseUnavailable(f"backup: found only {seen}, older than the server: {needed} (install it, or "
                                  "give its path with --pg-dump or SQLMIGRATE_PG_DUMP); nothing was applied")
    looked = "PATH, " + ", ".join(PG_DUMP_PLACES) + ", sqlmigrate[server]'s PostgreSQL build"
    raise DatabaseUnavailable(f"backup: no pg_dump found (looked in {looked}): {needed} (install it, or give its "
                              "path with --pg-dump or SQLMIGRATE_PG_DUMP); nothing was applied")


def _pip_build(program: str) -> list[str]:
    """The program of the PostgreSQL build `pip install sqlmigrate[server]` brings, if installed:
    the newest major, so its pg_dump reads every supported server."""
    from sqlmigrate.devserver import bin_dir

    found = bin_dir()
    return [str(found / program)] if found is not None and (found / program).exists() else []


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(\S*)")


def _version_of(path: str, env: dict[str, str]) -> PgDump | str:
    """What `path --version` says, or why it could not say."""
    try:
        done = subprocess.run([path, "--version"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=VERSION_SECONDS)
    except (OSError, subprocess.SubprocessError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    text = done.stdout.decode("utf-8", "replace").strip()
    match = _VERSION.search(text)
    if done.returncode != 0 or match is None:
        said = text or _reason(done.stderr.decode("utf-8", "replace"))
        return f"`{path} --version` said {said!r} (exit {done.returncode})"
    major, minor, rest = match.groups()
    version = major + (f".{minor}" if minor else "") + rest
    # before PostgreSQL 10 the major was two numbers (9.6): all older than any supported server
    return PgDump(path, version, int(major) if int(major) >= 10 else 9)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


# -- the connection, for pg_dump -------------------------------------------------------

def connection_environment(conn: psycopg.Connection, url: str) -> tuple[dict[str, str], str]:
    """pg_dump's environment: this process's (libpq's own PG* defaults
    among it, as our connection used them), then the URL's parameters, then
    where `conn` actually went (the host of a list that answered, the
    password from a password file); and a conninfo string for --dbname with
    the parameters that have no environment variable (keepalives, ...). A
    secret among those is refused (UsageError): it would be on the command line.
    """
    env = dict(os.environ)
    params = {k: v for k, v in psycopg.conninfo.conninfo_to_dict(url).items() if v is not None} if url else {}
    info = conn.info
    params.update(host=info.host, port=str(info.port), dbname=info.dbname, user=info.user)
    if "hostaddr" in params:
        params["hostaddr"] = info.hostaddr
    if info.password:
        params["password"] = info.password
    # one server now: the one `conn` reached
    for key in ("target_session_attrs", "load_balance_hosts"):
        params.pop(key, None)
    extra: dict[str, str] = {}
    for key, value in params.items():
        if key in _ENVIRONMENT:
            env[_ENVIRONMENT[key]] = str(value)
        elif key in _SECRETS:
            raise UsageError(f"--backup: pg_dump could only be given the URL's {key} on its command line, "
                             "where other users may read it; leave it out of the URL (an unencrypted key file, "
                             "say) to take a backup")
        else:
            extra[key] = str(value)
    return env, psycopg.conninfo.make_conninfo("", **extra) if extra else ""

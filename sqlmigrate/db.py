"""The only psycopg user: connect, tracking table, advisory lock, run SQL.

Identifiers are always composed with psycopg.sql, never by string formatting.
"""
from __future__ import annotations

import contextlib
import re
import time
import weakref
from datetime import datetime
from typing import Callable, Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg import generators, sql
from psycopg.pq import DiagnosticField, ExecStatus

from sqlmigrate import config
from sqlmigrate.errors import DatabaseUnavailable, Interrupted, LockTimeout, Refused, UsageError
from sqlmigrate.events import Listener, LockWaiting
from sqlmigrate.model import AppliedRow, RowState
from sqlmigrate.target import Target

APPLICATION_NAME = "sqlmigrate"
SESSION_SETTINGS = {"standard_conforming_strings": "on"}
LOCK_POLL_SECONDS = 0.2
TRACKING_COLUMNS = {"id", "name", "checksum", "executed_at"}


def connect(url: str, *, options: dict[str, str] | None = None,
            timeout: int | None = None,
            check: Callable[[psycopg.Connection], None] | None = None) -> psycopg.Connection:
    """An autocommit connection: the runner sends BEGIN/COMMIT itself.

    `options` are server settings (lock_timeout, ...) for the migration SQL.
    They are SET once connected, never sent as the `options` startup
    parameter, which a connection pooler such as PgBouncer refuses (SPEC 7);
    settings_statements(conn) sets them again after a session reset (SPEC 5).
    The URL's own `options`, and PGOPTIONS, are the user's: libpq sends them.
    `check`, if given, runs on the new connection before anything is set on
    it (preflight: a pooler in transaction mode would pass a SET on to
    other clients). `timeout` (seconds) overrides any connect_timeout. Raises
    UsageError for a URL libpq cannot parse and DatabaseUnavailable when the
    server cannot be reached, the password masked.
    """
    masked = config.mask_url(url)
    try:
        params = psycopg.conninfo.conninfo_to_dict(url) if url else {}
    except psycopg.Error as exc:
        # libpq quotes the whole URL in some of these messages, password included
        raise UsageError(f"invalid database URL {masked}: {_scrub(_first_line(exc), url, masked)}") from None
    port = str(params.get("port") or "")
    if not all(part.strip().isdigit() for part in port.split(",") if part.strip()):
        # psycopg would go on to resolve the host with it and blame the host
        raise UsageError(f"invalid database URL {masked}: port {port!r} is not a number")
    # never prepare: the DEALLOCATE ALL between migrations would drop what psycopg prepared.
    # Files are UTF-8 (SPEC 1), and are checked with standard-conforming strings,
    # PostgreSQL's default: the server must read them the same way, as it splits
    # the statements of what it is sent by those rules.
    kwargs: dict[str, object] = {"prepare_threshold": None, "client_encoding": "UTF8"}
    if timeout is not None:
        kwargs["connect_timeout"] = timeout
    if "application_name" not in params:
        kwargs["application_name"] = APPLICATION_NAME
    try:
        conn = psycopg.connect(url, autocommit=True, **kwargs)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        reason = _scrub(_connect_failure(exc), url, masked)
        if "unsupported startup parameter: options" in reason:
            reason += (" (a connection pooler such as PgBouncer refuses the options that the URL or PGOPTIONS "
                       "give: leave them out, or connect to the server directly)")
        raise DatabaseUnavailable(f"cannot connect to {masked}: {reason}") from exc
    try:
        if check is not None:
            check(conn)
        statements = _setting_statements(conn, options or {})
        if statements:
            conn.execute("; ".join(statements))
    except BaseException as exc:
        conn.close()
        if isinstance(exc, psycopg.Error):
            doing = "setting " + ", ".join(sorted({**SESSION_SETTINGS, **(options or {})}))
            raise database_error(exc, doing) from exc
        raise
    _SETTINGS[conn] = statements
    return conn


class Session:
    """One target's open connection and its tracking table, for one command."""

    def __init__(self, target: Target, conn: psycopg.Connection) -> None:
        self.target = target
        self.conn = conn
        self.tracking = Tracking(conn, target.table.spec)
        # How the lock wait and a lock retry's pause sleep. Ctrl-C reaches only the
        # main thread: a run on many targets gives its threads a pause that ends early
        # when it is pressed (fleet), raising KeyboardInterrupt as Ctrl-C would.
        self.pause: Callable[[float], None] = time.sleep

    @property
    def excluded(self) -> tuple[str, str] | None:
        """The tracking table as (schema, name), left out of schema snapshots."""
        return (self.tracking.schema, self.tracking.name) if self.tracking.schema else None

    def describe(self) -> str:
        return describe_database(self.conn)

    def lock(self, wait_seconds: float, listener: Listener) -> contextlib.AbstractContextManager[None]:
        """The migration lock of this target's tracking table (advisory_lock)."""
        display = self.target.display
        self.tracking.qualified()  # no current schema: a usage error before any lock
        key_text = self.target.lock_name(self.tracking.schema or "")
        return advisory_lock(self.conn, key_text, self.tracking.spec, wait_seconds,
                             lambda holder: listener(LockWaiting(holder, display)), self.pause)


@contextlib.contextmanager
def session(target: Target, *, timeout: int | None = None,
            check: Callable[[psycopg.Connection], None] | None = None) -> Iterator[Session]:
    """Connect to `target` (see connect) for the length of a `with` block."""
    conn = connect(target.url, options=dict(target.server_options), timeout=timeout, check=check)
    try:
        yield Session(target, conn)
    finally:
        conn.close()


# What connect() SET on each connection, to be set again after a session reset
_SETTINGS: weakref.WeakKeyDictionary[psycopg.Connection, tuple[str, ...]] = weakref.WeakKeyDictionary()


def database_identity(url: str) -> tuple[str, str, str]:
    """(host, port, database) that `url` connects to, libpq's defaults filled in,
    so that two spellings of one database compare equal. Raises UsageError when
    libpq cannot parse it (the password masked)."""
    masked = config.mask_url(url)
    try:
        params = psycopg.conninfo.conninfo_to_dict(url) if url else {}
    except psycopg.Error as exc:
        raise UsageError(f"invalid connection string {masked}: {_scrub(_first_line(exc), url, masked)}") from None
    host = str(params.get("host") or params.get("hostaddr") or _libpq_default("host"))
    port = str(params.get("port") or _libpq_default("port") or "5432")
    user = str(params.get("user") or _libpq_default("user"))
    return host, port, str(params.get("dbname") or _libpq_default("dbname") or user)


def schemas_like(conn: psycopg.Connection, pattern: str) -> list[str]:
    """The schemas whose name matches the SQL LIKE `pattern`, in byte order;
    PostgreSQL's own (pg_*, information_schema) are never a tenant's."""
    try:
        rows = conn.execute(
            "select nspname from pg_namespace where nspname like %s and nspname !~ '^pg_' "
            "and nspname <> 'information_schema' order by nspname collate \"C\"", (pattern,)).fetchall()
    except psycopg.Error as exc:
        raise database_error(exc, "listing the schemas") from exc
    return [row[0] for row in rows]


def cancel(conn: psycopg.Connection) -> None:
    """Ask the server to cancel the query `conn` is running; callable from any
    thread. Nothing happens when it runs none, or is closed; a cancel request
    that fails is as if sent too late."""
    with contextlib.suppress(psycopg.Error):
        if hasattr(conn, "cancel_safe"):  # psycopg 3.2: with a timeout, and encrypted when libpq is 17
            conn.cancel_safe(timeout=CANCEL_TIMEOUT_S)
        else:
            conn.cancel()


CANCEL_TIMEOUT_S = 5


def _libpq_default(keyword: str) -> str:
    """What libpq would use for `keyword` when the URL does not say (PGHOST, PGPORT, ...)."""
    for option in psycopg.pq.Conninfo.get_defaults():
        if option.keyword.decode() == keyword and option.val is not None:
            return option.val.decode()
    return ""




def _setting_statements(conn: psycopg.Connection, options: dict[str, str]) -> tuple[str, ...]:
    """`set NAME to VALUE` for each setting the session must have: those of
    SESSION_SETTINGS it does not have already (the server reports them at
    connection start, so checking costs no round trip), then `options`."""
    wanted = {name: value for name, value in SESSION_SETTINGS.items()
              if conn.info.parameter_status(name) != value}
    wanted.update(options)
    return tuple(sql.SQL("set {} to {}").format(sql.Identifier(name), sql.Literal(value)).as_string(conn)
                 for name, value in wanted.items())


def settings_statements(conn: psycopg.Connection) -> tuple[str, ...]:
    """The SET statements that give `conn` back the settings connect() gave it.

    RESET ALL returns a setting to its value at connection start, which a SET
    after connecting is not: the executor's session reset ends with these.
    """
    return _SETTINGS.get(conn, ())


def _scrub(text: str, url: str, masked: str) -> str:
    return text.replace(url, masked) if url else text


def describe_database(conn: psycopg.Connection) -> str:
    info = conn.info
    host = info.host if not info.host.startswith("/") else f"socket {info.host}"
    return f"{info.dbname} on {host}:{info.port} as {info.user}"


_PSYCOPG_PREFIX = re.compile(r"^connection (?:failed|is bad): ")
_SERVER_REPLY = re.compile(r"^connection to server (?:at|on) .*? failed: (?:FATAL|ERROR):\s+")


def _connect_failure(exc: BaseException) -> str:
    """libpq's reason for a failed connection, on one line.

    libpq writes `connection to server at "host", port N failed: REASON`, then
    an indented hint (`Is the server running ...?`) or the server's HINT. The
    address is kept for network failures (which address was tried matters) and
    dropped when the server itself answered (`password authentication failed`).
    """
    reason, hint = type(exc).__name__, None
    for raw in str(exc).strip().splitlines():
        line = raw.strip()
        if not line or line.startswith("DETAIL:"):
            continue
        if line.startswith("HINT:"):
            hint = line[len("HINT:"):].strip()
        elif raw[:1].isspace():
            hint = line  # libpq's own hint, indented under its reason
        else:
            # one reason per address tried: the last one is the final word
            reason, hint = _SERVER_REPLY.sub("", _PSYCOPG_PREFIX.sub("", line)), None
    if hint:
        hint = hint.rstrip(".")
        return f"{reason} ({hint[:1].lower()}{hint[1:]})"
    return reason


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # the server's DETAIL/HINT lines follow its message: keep the hint, after the reason
    hints = [line.split(":", 1)[1].strip() for line in lines if line.startswith("HINT:")]
    lines = [line for line in lines if not line.startswith(("DETAIL:", "HINT:"))]
    # libpq repeats "connection to server at ... failed:" per address; keep the last reason
    reason = lines[-1] if lines else type(exc).__name__
    return f"{reason} ({hints[-1]})" if hints else reason


def database_error(exc: psycopg.Error, doing: str) -> DatabaseUnavailable:
    diag = exc.diag
    state = f" {diag.sqlstate}" if getattr(diag, "sqlstate", None) else ""
    # the server's own message: str(exc) may end with the statement and a ^ under the error position
    message = getattr(diag, "message_primary", None) or _first_line(exc)
    return DatabaseUnavailable(f"database error while {doing}:{state} {message}")


# -- tracking table ----------------------------------------------------------------


class Tracking:
    """The tracking table of one connection."""

    def __init__(self, conn: psycopg.Connection, spec: str) -> None:
        self.conn = conn
        self.spec = spec
        schema, _, name = spec.rpartition(".")
        if not name:
            raise UsageError(f"--table {spec!r} names no table")
        self.is_schema_given = bool(schema)
        # Pinned at connection start: a migration's `SET search_path` or
        # `SET ROLE` must not send its tracking row elsewhere, or write it as another role.
        current_schema, self.owner = self._session_facts()
        self.schema: str | None = schema or current_schema
        self.name = name
        self.ident = sql.Identifier(self.schema, name) if self.schema else sql.Identifier(name)
        self._insert_heads: dict[tuple[str, ...], sql.SQL] = {}

    def _session_facts(self) -> tuple[str | None, str]:
        """The current schema (None when search_path names none) and the current role."""
        row = self._exec("select current_schema(), current_user",
                         doing="reading the current schema and role").fetchone()
        assert row is not None
        return row[0], row[1]

    def _exec(self, query, params=None, *, doing: str):
        try:
            return self.conn.execute(query, params)
        except psycopg.Error as exc:
            raise database_error(exc, doing) from exc

    def qualified(self) -> str:
        """schema.name as the server resolves it (the current schema when unqualified)."""
        if self.schema is None:
            raise UsageError("no current schema: set search_path or give --table schema.name")
        return f"{self.schema}.{self.name}"

    def exists(self) -> bool:
        regclass = self.ident.as_string(self.conn)
        row = self._exec("select to_regclass(%s) is not null", (regclass,),
                         doing="looking for the tracking table").fetchone()
        return bool(row and row[0])

    def create(self) -> None:
        """Create the table unless it exists. Raises UsageError, Refused, DatabaseUnavailable."""
        if self.schema is None:
            raise UsageError("no current schema to create the tracking table in: "
                             "set search_path or give --table schema.name")
        if self.exists():
            # not even CREATE ... IF NOT EXISTS: PostgreSQL refuses it without CREATE
            # on the schema, or in a read-only transaction, though the table is there
            self.check_shape()
            return
        self._require_schema()
        self._exec(
            sql.SQL(
                """create table if not exists {} (
                    id text primary key,
                    name text not null,
                    checksum text not null,
                    content_checksum text,
                    executed_at timestamptz not null default clock_timestamp(),
                    duration_ms integer,
                    applied_by text not null default current_user,
                    down_sql text,
                    state text not null default 'applied' check (state in ('applied', 'failed')),
                    statements_run integer,
                    failed_during text check (failed_during in ('up', 'down'))
                )"""
            ).format(self.ident),
            doing=f"creating the tracking table {self.spec}",
        )
        self.check_shape()

    def _require_schema(self) -> None:
        if self.is_schema_given:
            row = self._exec("select 1 from pg_namespace where nspname = %s", (self.schema,),
                             doing="looking for the tracking table's schema").fetchone()
            if row is None:
                raise UsageError(f"schema {self.schema!r} of --table {self.spec} does not exist")

    def check_shape(self) -> None:
        """Refuse a table of the same name left by another tool."""
        rows = self._exec(
            "select attname from pg_attribute where attrelid = to_regclass(%s) "
            "and attnum > 0 and not attisdropped",
            (self.ident.as_string(self.conn),),
            doing="reading the tracking table's columns",
        ).fetchall()
        columns = {r[0] for r in rows}
        missing = TRACKING_COLUMNS - columns
        if missing:
            raise Refused(
                f"table {self.spec} exists but is not a sqlmigrate tracking table "
                f"(no column {', '.join(sorted(missing))}); nothing was changed",
                details=("another tool may own it: choose another tracking table with --table",),
            )

    def state_of(self, id: str) -> RowState | None:
        """The state recorded for migration `id`; None when it has no row (or no table)."""
        if not self.exists():
            return None
        row = self._exec(sql.SQL("select state from {} where id = %s").format(self.ident), (id,),
                         doing="reading the tracking table").fetchone()
        return None if row is None else RowState(row[0])

    def rows(self) -> list[AppliedRow]:
        """Every tracking row, or [] when the table does not exist yet.

        Raises UsageError when --table names a schema that does not exist: a
        typo there must not make `verify` or `status` report a clean database.
        """
        if not self.exists():
            self._require_schema()
            return []
        self.check_shape()
        try:
            cur = self.conn.execute(sql.SQL("select * from {}").format(self.ident))
        except psycopg.Error as exc:
            raise database_error(exc, f"reading {self.spec}") from exc
        assert cur.description is not None
        # plain tuples, each column found by position once: a dict per row is
        # much of the cost of reading thousands of rows; a column an older
        # table lacks reads as the None appended to each row
        index = {column.name: i for i, column in enumerate(cur.description)}
        positions = [index.get(name, -1) for name in _ROW_COLUMNS]
        states = {state.value: state for state in RowState}
        out = []
        for r in cur.fetchall():
            values = (*r, None)
            (id_, name, checksum, executed_at, content_checksum, duration_ms, down_sql, state, statements_run,
             failed_during) = [values[i] for i in positions]
            out.append(AppliedRow(id=id_, name=name, checksum=checksum, executed_at=executed_at,
                                  content_checksum=content_checksum, duration_ms=duration_ms, down_sql=down_sql,
                                  state=states[state or "applied"], statements_run=statements_run,
                                  failed_during=failed_during))
        return sorted(out, key=lambda row: int(row.id) if row.is_numbered else -1)

    def insert_query(self, **columns: object) -> sql.Composed:
        return sql.Composed([self._insert_head(tuple(columns)),
                             sql.SQL(", ").join(_value(value) for value in columns.values()), _CLOSE])

    def _insert_head(self, names: tuple[str, ...]) -> sql.SQL:
        """`insert into t (a, b) values (`, quoted once per run, not once per
        migration: quoting is much of the cost of writing a row."""
        head = self._insert_heads.get(names)
        if head is None:
            head = sql.SQL(sql.SQL("insert into {} ({}) values (").format(
                self.ident, sql.SQL(", ").join(map(sql.Identifier, names))).as_string(self.conn))
            self._insert_heads[names] = head
        return head

    def delete_query(self, id: str) -> sql.Composed:
        return sql.SQL("delete from {} where id = {}").format(self.ident, sql.Literal(id))

    def update_query(self, id: str, **columns: object) -> sql.Composed:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), _value(value))
            for name, value in columns.items()
        )
        return sql.SQL("update {} set {} where id = {}").format(self.ident, assignments, sql.Literal(id))


_CLOSE = sql.SQL(")")
# AppliedRow's fields in order; all but the first four may be absent from a table of an older version
_ROW_COLUMNS = ("id", "name", "checksum", "executed_at", "content_checksum", "duration_ms", "down_sql", "state",
                "statements_run", "failed_during")


def _value(value: object) -> sql.Composable:
    """A literal, or an SQL expression given as such (computed by the server).

    A text PostgreSQL cannot hold (a down.sql with a NUL character, which `up`
    shows as a warning) is stored as NULL: the migration still runs and is
    recorded, only without a stored copy of that file."""
    if isinstance(value, str) and "\x00" in value:
        return sql.Literal(None)
    return value if isinstance(value, sql.Composable) else sql.Literal(value)


# How long the migration's transaction has run, measured by the server when the
# tracking row is written (the statements before it may still be in flight).
DURATION_MS = sql.SQL("(extract(epoch from clock_timestamp() - transaction_timestamp()) * 1000)::integer")


_SUCCEEDED = (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK, ExecStatus.EMPTY_QUERY)


def run_script(conn: psycopg.Connection, script: bytes) -> tuple[int, psycopg.Error | None]:
    """Send several statements as one simple query: one round trip for a whole
    migration with its BEGIN, tracking row and COMMIT.

    Returns how many statements succeeded and, when one failed, its error (the
    server skips everything after it). psycopg's cursor keeps only the first
    error, not how many results came before it, hence its lower-level calls.
    Ctrl-C cancels the query on the server before KeyboardInterrupt is raised.
    """
    encoding = conn.info.encoding
    conn.pgconn.send_query(script)
    results = conn.wait(generators.execute(conn.pgconn))
    for index, result in enumerate(results):
        if result.status == ExecStatus.FATAL_ERROR:
            error = pg_errors.error_from_result(result, encoding=encoding)
            if error.diag.severity_nonlocalized in ("FATAL", "PANIC"):
                conn.pgconn.finish()  # the server ends the session after these
                raise error
            return index, error
        if result.status not in _SUCCEEDED:
            return index, psycopg.InterfaceError(f"unexpected result {ExecStatus(result.status).name}")
    return len(results), None


def reads_as_several_statements(conn: psycopg.Connection, query: bytes) -> bool:
    """Whether the server's parser reads `query` as more than one statement.

    It goes as a Parse message alone (an unnamed prepare, never executed),
    which the server refuses when it finds more than one statement: SQLSTATE
    42601 with no position, where a syntax error has one. Other errors (a table
    that an earlier statement of the migration creates, say) are not this
    question's: the run itself reports them.
    """
    conn.pgconn.send_prepare(b"", query)
    for result in conn.wait(generators.execute(conn.pgconn)):
        if (result.status == ExecStatus.FATAL_ERROR
                and result.error_field(DiagnosticField.SQLSTATE) == b"42601"
                and result.error_field(DiagnosticField.STATEMENT_POSITION) is None):
            return True
    return False


def run_in_transaction(conn: psycopg.Connection, queries: list, *, doing: str) -> None:
    """Run tracking-table changes all together or not at all."""
    try:
        with conn.transaction():
            for query in queries:
                conn.execute(query)
    except psycopg.Error as exc:
        raise database_error(exc, doing) from exc


# -- advisory lock -------------------------------------------------------------------


@contextlib.contextmanager
def advisory_lock(
    conn: psycopg.Connection,
    key_text: str,
    label: str,
    wait_seconds: float,
    on_wait: Callable[[str], None],
    pause: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold a session-level advisory lock keyed on the database and `key_text`
    (Target.lock_name: the tracking table); `label` names it in messages;
    `pause` sleeps between polls.

    Polls pg_try_advisory_lock outside any transaction, so that a waiting
    process never blocks a CREATE INDEX CONCURRENTLY of the running one
    (SPEC 5). Raises LockTimeout after `wait_seconds`.
    """
    try:
        key = conn.execute(
            "select hashtextextended(current_database() || ':' || %s, 0)", (key_text,)
        ).fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + wait_seconds
        announced = False
        while True:
            got = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()[0]  # type: ignore[index]
            if got:
                break
            if not announced:
                on_wait(_lock_holder(conn, key))
                announced = True
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"gave up after {wait_seconds:g}s waiting for the migration lock "
                    f"on {label} ({_lock_holder(conn, key)})"
                )
            pause(LOCK_POLL_SECONDS)
    except psycopg.Error as exc:
        raise database_error(exc, "taking the migration lock") from exc
    except KeyboardInterrupt:
        raise Interrupted("interrupted while waiting for the migration lock; nothing was changed") from None
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            with contextlib.suppress(psycopg.Error):
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("rollback")
                conn.execute("select pg_advisory_unlock(%s)", (key,))


def _lock_holder(conn: psycopg.Connection, key: int) -> str:
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    row = conn.execute(
        """select a.pid, coalesce(nullif(a.application_name, ''), '?'), a.backend_start
           from pg_locks l join pg_stat_activity a on a.pid = l.pid
           where l.locktype = 'advisory' and l.granted and l.database = (
                 select oid from pg_database where datname = current_database())
             and l.classid::bigint = %s and l.objid::bigint = %s and l.objsubid = 1
           limit 1""",
        (classid, objid),
    ).fetchone()
    if row is None:
        return "held by another session"
    pid, app, since = row
    stamp = since.isoformat(timespec="seconds") if isinstance(since, datetime) else since
    return f"held by pid {pid} ({app}), connected since {stamp}"

"""Checks of the target before up, down, repair or baseline change it (SPEC 7):
a primary, not a standby; and one connection, one server session (no pooler in
transaction or statement mode). Run as db.connect's `check`: before any SET.
"""
from __future__ import annotations

import secrets
from typing import Callable

import psycopg

from sqlmigrate import db
from sqlmigrate.errors import DatabaseUnavailable

# A custom setting: any name with a dot is one, and needs no privilege to set
MARKER = "sqlmigrate.session"


def for_command(url: str, command: str, *, dry_run: bool = False) -> Callable[[psycopg.Connection], None]:
    """The check that `command` runs on its connection to `url` before the lock.

    Every such command is refused on a standby; all but a dry run (which takes
    no lock and runs nothing) also make sure the connection keeps its session.
    """
    def check(conn: psycopg.Connection) -> None:
        if dry_run:
            _refuse_standby(conn, command, _fetch(conn, command, "select pg_is_in_recovery()")[0])
        else:
            _check_session(conn, url, command)

    return check


def _fetch(conn: psycopg.Connection, command: str, query: str, params: tuple = ()) -> tuple:
    """The first row of `query` (an empty tuple for a statement without rows)."""
    try:
        cur = conn.execute(query, params)
        row = cur.fetchone() if cur.description is not None else ()
    except psycopg.Error as exc:
        reason = exc.diag.message_primary or str(exc).strip().splitlines()[0]
        if "pooling mode" in reason:  # PgBouncer in statement mode: "transaction blocks not allowed ..."
            raise _pooler(f"it refused a transaction of two statements ({reason})", command) from exc
        raise db.database_error(exc, "checking the target before changing it") from exc
    assert row is not None
    return tuple(row)


def _refuse_standby(conn: psycopg.Connection, command: str, is_in_recovery: bool) -> None:
    if is_in_recovery:
        raise DatabaseUnavailable(
            f"{db.describe_database(conn)} is a read-only standby (the server is in recovery): run "
            f"`sqlmigrate {command}` against the primary; nothing was changed")


def _check_session(conn: psycopg.Connection, url: str, command: str) -> None:
    """Refuse a standby, then make sure that this connection keeps one server
    session across transactions, as the session-level migration lock and the
    session reset between migrations need (SPEC 5).

    A pooler in transaction mode hands a client's connection a server
    session per transaction, and returns it to the pool in between: what one
    transaction set at session level, another client's transaction may find.
    One client alone cannot tell: a quiet pool gives it the same session back
    every time. So the probe brings a second client:

    1. this connection sets a marker of its own at session level
       (set_config(MARKER, <random>, false)) and notes its server pid;
    2. a second, short-lived connection, in an explicit transaction, reads
       the marker: should it find it, it runs in this connection's session,
       which only a pooler can arrange. A pooler that reuses the session
       released last (PgBouncer's default) fails here. The explicit
       transaction is refused by a pooler in statement mode, which also
       fails here;
    3. still on the second connection, a later transaction reads its server
       pid again: a different pid means its session did not survive the end
       of a transaction. A pooler handing out sessions in turn
       (PgBouncer's server_round_robin) fails here as soon as the pool holds
       two;
    4. this connection reads its marker and pid in a new transaction: both
       must be unchanged (on a busy pool another client may have taken its
       session in between).

    A direct connection, or a pooler in session mode, passes every step: no
    two connections share a session, and a session is never swapped, so a
    refusal is never wrong. The second connection is opened like the first,
    with nothing SET on it before the check ends, and closed at once.
    """
    token = secrets.token_hex(16)
    is_in_recovery, pid, _ = _fetch(conn, command, "select pg_is_in_recovery(), pg_backend_pid(), "
                                    "set_config(%s, %s, false)", (MARKER, token))
    _refuse_standby(conn, command, is_in_recovery)

    def look_from_a_second_session(other: psycopg.Connection) -> None:
        _fetch(other, command, "begin")
        seen, other_pid = _fetch(other, command, "select current_setting(%s, true), pg_backend_pid()", (MARKER,))
        _fetch(other, command, "commit")
        if seen == token:
            raise _pooler("a second connection ran in this connection's server session", command)
        (later_pid,) = _fetch(other, command, "select pg_backend_pid()")
        if later_pid != other_pid:
            raise _pooler(f"a connection moved from server process {other_pid} to {later_pid} between two "
                          "transactions", command)

    try:
        db.connect(url, check=look_from_a_second_session).close()
    except DatabaseUnavailable as exc:
        if exc.message.startswith("cannot connect"):
            raise DatabaseUnavailable("could not open a second connection to make sure that this one keeps its "
                                      f"server session: {exc.message}") from exc
        raise
    # the marker is cleared in the same query: nothing of the check stays in the session
    seen, later_pid, _ = _fetch(conn, command, "select current_setting(%s, true), pg_backend_pid(), "
                                "set_config(%s, '', false)", (MARKER, MARKER))
    if later_pid != pid:
        raise _pooler(f"this connection moved from server process {pid} to {later_pid} between two transactions",
                      command)
    if seen != token:
        raise _pooler("this connection lost what it set in its session between two transactions", command)


def _pooler(evidence: str, command: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"a connection pooler in transaction mode (or statement mode) is in the way: {evidence}; "
        f"`sqlmigrate {command}` needs one server session for the whole run (for its lock and the session reset "
        "between migrations): use session pooling or a direct connection to the server; nothing was changed")

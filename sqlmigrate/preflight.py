"""Checks of the target before up, down, repair or baseline change it (SPEC 7):
a primary, not a standby. Run as db.connect's `check`: before any SET.
"""
from __future__ import annotations

from typing import Callable

import psycopg

from sqlmigrate import db
from sqlmigrate.errors import DatabaseUnavailable


def for_command(url: str, command: str, *, dry_run: bool = False) -> Callable[[psycopg.Connection], None]:
    """The check that `command` runs on its connection to `url` before the lock:
    every such command is refused on a standby, a dry run included."""
    def check(conn: psycopg.Connection) -> None:
        _refuse_standby(conn, command, _fetch(conn, "select pg_is_in_recovery()")[0])

    return check


def _fetch(conn: psycopg.Connection, query: str, params: tuple = ()) -> tuple:
    try:
        row = conn.execute(query, params).fetchone()
    except psycopg.Error as exc:
        raise db.database_error(exc, "checking the target before changing it") from exc
    assert row is not None
    return tuple(row)


def _refuse_standby(conn: psycopg.Connection, command: str, is_in_recovery: bool) -> None:
    if is_in_recovery:
        raise DatabaseUnavailable(
            f"{db.describe_database(conn)} is a read-only standby (the server is in recovery): run "
            f"`sqlmigrate {command}` against the primary; nothing was changed")

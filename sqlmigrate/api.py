"""Library entry points: the commands as functions that print nothing.

For applications and test fixtures: `migrate(url)` brings a database to the
latest migration in one call. Failures raise the exceptions of errors.py;
Ctrl-C stays a KeyboardInterrupt.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from sqlmigrate import commands, events
from sqlmigrate.config import DEFAULT_LOCK_WAIT, DEFAULT_TABLE, Settings
from sqlmigrate.errors import (DatabaseUnavailable, Interrupted, LockTimeout, MigrationFailed, Refused,
                               SqlMigrateError, UsageError)
from sqlmigrate.model import MigrationStatus
from sqlmigrate.reports import MigrateReport

_T = TypeVar("_T")

def _settings(database_url: str, directory: str | Path, table: str, lock_wait: float) -> Settings:
    return Settings(database_url=database_url, directory=Path(directory), table=table, lock_wait=lock_wait)


def _called(run: Callable[[], _T]) -> _T:
    """A library caller's Ctrl-C stays a KeyboardInterrupt, which its own
    handlers (and `except Exception` not catching it) rely on; the message
    says what the interrupted migration left."""
    try:
        return run()
    except Interrupted as exc:
        raise KeyboardInterrupt(exc.message) from None


def _ids_done(report: MigrateReport) -> list[str]:
    failed = report.failed
    if failed is not None and failed.error is not None:
        error = failed.error
        raise MigrationFailed(
            f"{error.path}:{error.line}:{error.col}: ERROR {error.sqlstate}: {error.message}",
            details=tuple(x for x in (error.detail, error.hint) if x),
        )
    return [r.step.id for r in report.results]


def migrate(
    database_url: str = "",
    directory: str | Path = "migrations",
    *,
    table: str = DEFAULT_TABLE,
    to: str | None = None,
    allow_out_of_order: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> list[str]:
    """Apply every pending migration (up to `to`); returns the ids applied, in order.

    Raises Refused (validation, modified migration, a pending id below the
    highest applied one unless `allow_out_of_order`), MigrationFailed (a
    migration's SQL failed; earlier ones stay applied), DatabaseUnavailable,
    LockTimeout, UsageError.
    """
    settings = _settings(database_url, directory, table, lock_wait)
    return _called(lambda: _ids_done(commands.up(settings, events.silent, to=to, allow_out_of_order=allow_out_of_order)))


def rollback(
    database_url: str = "",
    directory: str | Path = "migrations",
    *,
    table: str = DEFAULT_TABLE,
    steps: int | None = None,
    to: str | None = None,
    all: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> list[str]:
    """Roll back (one by default, or `steps`, or all above `to`, or `all`: at
    most one of the three); returns the ids rolled back, highest first. No
    confirmation is asked. Raises as migrate does."""
    if sum((steps is not None, to is not None, all)) > 1:
        raise UsageError("rollback: give at most one of steps, to and all")
    settings = _settings(database_url, directory, table, lock_wait)
    return _called(lambda: _ids_done(commands.down(settings, events.silent, steps=steps, to=to, all_=all)))


def status(
    database_url: str = "",
    directory: str | Path = "migrations",
    *,
    table: str = DEFAULT_TABLE,
) -> list[MigrationStatus]:
    """One MigrationStatus per migration (state, applied_at, notes)."""
    settings = _settings(database_url, directory, table, DEFAULT_LOCK_WAIT)
    return _called(lambda: list(commands.status(settings).statuses))


__all__ = ["migrate", "rollback", "status", "SqlMigrateError", "Refused", "MigrationFailed", "DatabaseUnavailable",
           "LockTimeout", "UsageError"]

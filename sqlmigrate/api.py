"""Library entry points: the commands as functions that print nothing.

For applications and test fixtures: `migrate(url)` brings a database to the
latest migration in one call; `migrate_many(urls)` brings many, and returns
what became of each. Failures raise the exceptions of errors.py (on many
databases, each target's failure is in its result); Ctrl-C stays a
KeyboardInterrupt.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from sqlmigrate import commands, events
from sqlmigrate.config import DEFAULT_LOCK_WAIT, DEFAULT_TABLE, Settings
from sqlmigrate.errors import (DatabaseUnavailable, Interrupted, LockTimeout, MigrationFailed, Refused,
                               SqlMigrateError, UsageError)
from sqlmigrate.model import MigrationStatus
from sqlmigrate.reports import MigrateReport
from sqlmigrate.target import Target

if TYPE_CHECKING:
    from sqlmigrate.fleet import Outcome

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


@dataclass(frozen=True)
class TargetResult:
    """What migrate_many did on one target."""

    target: str  # the connection string, password masked, and the schema with `schemas`
    schema: str | None  # the tenant's schema with `schemas`
    state: str  # "ok", "failed", "unreachable", "skipped" (not started after a failure)
    exit_code: int | None  # the command line's for that database alone; None when not started
    applied: tuple[str, ...]  # the ids applied on it, in order
    error: SqlMigrateError | None  # why it failed: MigrationFailed, Refused, DatabaseUnavailable, LockTimeout, ...


def migrate_many(
    database_urls: Sequence[str],
    directory: str | Path = "migrations",
    *,
    table: str = DEFAULT_TABLE,
    schemas: str | None = None,
    to: str | None = None,
    allow_out_of_order: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    jobs: int = 4,
    canary: int = 0,
    on_error: str = "stop",
) -> list[TargetResult]:
    """Apply every pending migration (up to `to`) on each database, or with
    `schemas` (a LIKE pattern) on each matching schema of each, as
    `sqlmigrate up` does on many targets: the folder validated once, at most
    `jobs` targets at once, the first `canary` first, and after a failure no
    new target started unless `on_error` is "continue".

    Returns one TargetResult per target, in the order given; a failure on a
    target is in its result, not raised. Raises UsageError before anything
    runs (no database, the same one twice, a connection string libpq cannot
    parse, a missing folder, `schemas` matching nothing, a bad option).
    Ctrl-C rolls back the migration running on each target, then raises
    KeyboardInterrupt.
    """
    from sqlmigrate import fleet, targets

    if isinstance(database_urls, str):
        raise UsageError("migrate_many: database_urls is a list of connection strings, not one string")
    if jobs < 1 or canary < 0 or on_error not in ("stop", "continue"):
        raise UsageError("migrate_many: jobs must be at least 1, canary at least 0, and on_error stop or continue")
    given = targets.collect(list(database_urls), None, {}, given_as="database_urls")
    if not given:
        raise UsageError("migrate_many: no database given")
    settings = _settings("", directory, table, lock_wait)
    job = fleet.job("up", settings, commands.scan_folder(settings), to=to, allow_out_of_order=allow_out_of_order)
    report = fleet.run(job, [Target.from_settings(settings, g.url) for g in given],
                       fleet.Options(jobs=jobs, canary=canary, on_error=on_error), schemas=schemas)
    if report.is_interrupted:
        stopped = [o for o in report.outcomes if o.state is fleet.State.INTERRUPTED]
        raise KeyboardInterrupt(f"interrupted: the migration running on {len(stopped)} target(s) was rolled back")
    return [_result(outcome) for outcome in report.outcomes]


def _result(outcome: Outcome) -> TargetResult:
    error = outcome.error
    applied: tuple[str, ...] = ()
    if isinstance(outcome.report, MigrateReport):
        applied = tuple(r.step.id for r in outcome.report.results if r.error is None)
        try:
            _ids_done(outcome.report)
        except MigrationFailed as failed:
            error = failed
    return TargetResult(outcome.target.display, outcome.target.schema, outcome.state.value, outcome.exit_code,
                        applied, error)


__all__ = ["migrate", "rollback", "status", "migrate_many", "TargetResult", "SqlMigrateError", "Refused", "MigrationFailed", "DatabaseUnavailable",
           "LockTimeout", "UsageError"]

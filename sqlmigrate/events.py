"""Progress as a stream of typed events: what a run says while it works.

A command hands every event to one listener: the text renderer prints it,
JSON output waits for the report (one object at the end), a library call
ignores it. Each event names the target it is about (its display name, the
password masked), so that runs on many databases can share one listener.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Union

from sqlmigrate.model import Plan, Step, StepResult


@dataclass(frozen=True)
class LockWaiting:
    """Another run holds the migration lock; this one polls for it."""

    holder: str  # who holds it, as far as pg_stat_activity tells
    target: str = ""


@dataclass(frozen=True)
class Planned:
    """`up` or `down` knows what it will run, and has not started: its warnings
    and notes are said now, before any migration's output."""

    plan: Plan
    target: str = ""


@dataclass(frozen=True)
class BackedUp:
    """`up --backup` dumped the target before its first migration (a backup.Backup)."""

    backup: Any
    target: str = ""


@dataclass(frozen=True)
class MigrationStarted:
    step: Step
    pid: int | None = None  # the server process running it, to find it in pg_stat_activity
    target: str = ""


@dataclass(frozen=True)
class StatementRunning:
    """A statement of a migration is still running (periodic)."""

    step: Step
    elapsed_s: float
    phase: str | None = None  # as pg_stat_progress_* names it
    percent: float | None = None
    target: str = ""


@dataclass(frozen=True)
class LockRetry:
    """A migration's statement gave up waiting for a lock (lock_timeout); its
    transaction was rolled back and it runs again from its start after `pause_s`."""

    step: Step
    attempt: int  # the attempt about to start: 2 for the first retry
    attempts: int  # at most this many in all
    blockers: tuple[str, ...]  # the sessions seen holding the lock, described
    pause_s: float
    target: str = ""


@dataclass(frozen=True)
class MigrationFinished:
    result: StepResult
    target: str = ""


@dataclass(frozen=True)
class RoundTripTested:
    """`test` has its verdict on one migration (a schema.RoundTrip), the `done`th of `total`."""

    result: Any
    target: str = ""
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class ScratchBuilt:
    """A scratch database has `done` of the `total` migrations it is being built with."""

    done: int
    total: int
    target: str = ""


Event = Union[LockWaiting, Planned, BackedUp, MigrationStarted, StatementRunning, LockRetry, MigrationFinished, RoundTripTested,
              ScratchBuilt]


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...


def silent(event: Event) -> None:
    """The listener of runs nobody watches: library calls, scratch databases."""

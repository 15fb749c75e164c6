"""Exceptions that stop a run; each carries the exit code of SPEC 5.

Problems found in the user's files are Findings (data), not exceptions.
"""
from __future__ import annotations


class SqlMigrateError(Exception):
    """A run stopped on purpose: refusal, bad state (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, *, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Refused(SqlMigrateError):
    """The command will not start: validation errors, modified migrations, ..."""

    exit_code = 1

    def __init__(self, message: str, *, details: tuple[str, ...] = (), findings: tuple = ()) -> None:
        super().__init__(message, details=details)
        self.findings = findings


class UsageError(SqlMigrateError):
    exit_code = 2


class DatabaseUnavailable(SqlMigrateError):
    """Cannot connect, or a database error outside migration SQL."""

    exit_code = 3


class ConnectionLost(DatabaseUnavailable):
    """The connection broke during a transactional migration, whose COMMIT went
    in the same query string: it may have gone through just before the break.
    The caller reads the tracking row again on a new connection to say which."""

    def __init__(self, message: str, *, step_id: str, is_up: bool) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.is_up = is_up


class MigrationFailed(SqlMigrateError):
    exit_code = 4


class LockTimeout(SqlMigrateError):
    exit_code = 5


class Interrupted(SqlMigrateError):
    """Ctrl-C: the migration in progress was rolled back."""

    exit_code = 130

    def __init__(self, message: str, *, details: tuple[str, ...] = (), step: str | None = None) -> None:
        super().__init__(message, details=details)
        self.step = step  # the migration it cut short (<id>_<name>), if any

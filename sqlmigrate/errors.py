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


class MigrationFailed(SqlMigrateError):
    exit_code = 4


class LockTimeout(SqlMigrateError):
    exit_code = 5


class Interrupted(SqlMigrateError):
    """Ctrl-C: the migration in progress was rolled back."""

    exit_code = 130

"""Validation of the files `up` and `down` are about to run, in this process or
read from a forked child (prevalidate) that started before psycopg's import,
or, for many targets, once for all of them (`Validator.shared`).

Which is chosen in one place, `Validator.start` or `Validator.shared`; either
way the same rules run on the same bytes, so the findings are the same.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlmigrate import plan as planning, rules
from sqlmigrate.discovery import Scan
from sqlmigrate.model import Finding, Migration, SqlFile, TrackingTable
from sqlmigrate.plan import CheckedDown, DownSource

if TYPE_CHECKING:
    from sqlmigrate.prevalidate import Prevalidation


class _Checks(Protocol):
    """rules.check_migration and rules.check_downs, answered by another way of checking."""

    def check_migration(self, migration: Migration, table: TrackingTable,
                        parsed: dict[Path, SqlFile] | None = None) -> list[Finding]: ...

    def check_downs(self, migrations: list[Migration],
                    table: TrackingTable) -> list[tuple[SqlFile | None, list[Finding]]]: ...

    def close(self) -> None: ...


class Validator:
    """Checks migration files for `up` and `down`; a context manager that stops
    the child, if any, on exit."""

    def __init__(self, table: TrackingTable, early: Prevalidation | _Checks | None = None) -> None:
        self.table = table
        self._early = early

    @classmethod
    def start(cls, scan: Scan, table: TrackingTable, direction: str, *, in_parallel: bool) -> Validator:
        """`in_parallel`: fork a child that lexes the folders while this process
        imports psycopg and connects (the command line's choice; a library
        caller's process is never forked)."""
        early = None
        if in_parallel:
            from sqlmigrate.prevalidate import Prevalidation

            early = Prevalidation.start(scan, table, direction)
        return cls(table, early)

    @classmethod
    def shared(cls, table: TrackingTable) -> Validator:
        """One validator for every target of a run (SPEC 10): each folder's files
        are lexed and checked once, when the first target needs them, whatever
        the others need; usable from several threads. Never forks: the run's
        threads are already going."""
        return cls(table, _Once())

    def ups(self, scan: Scan, migrations: tuple[Migration, ...]) -> tuple[list[Finding], dict[Path, SqlFile]]:
        """The layout findings and those of these migrations' files, sorted, and
        their up.sql lexed (by path)."""
        numbers = {m.number for m in migrations}
        files: dict[Path, SqlFile] = {}
        check_one = self._early.check_migration if self._early else None
        findings = rules.check(scan, self.table, only=lambda m: m.number in numbers, parsed=files,
                               check_one=check_one)
        return findings, files

    def downs(self, selection: planning.DownSelection) -> dict[str, CheckedDown]:
        """The down.sql of each chosen migration that has one to run, lexed and
        checked, by tracking row id."""
        on_disk = [s for s in selection.chosen if planning.down_source(s) is DownSource.DISK]
        migrations = [s.migration for s in on_disk if s.migration is not None]
        check_downs = self._early.check_downs if self._early else rules.check_downs
        out: dict[str, CheckedDown] = {}
        for status, (sql, findings) in zip(on_disk, check_downs(migrations, self.table)):
            assert status.row is not None and sql is not None  # readable: lexed
            out[status.row.id] = CheckedDown(sql, tuple(findings))
        for status in selection.chosen:
            row = status.row
            if row is not None and row.down_sql is not None and planning.down_source(status) is DownSource.STORED:
                out[row.id] = self._stored(row.id, row.name, row.down_sql)
        return out

    def _stored(self, id: str, name: str, text: str) -> CheckedDown:
        from sqlmigrate import sqlfile  # sqlparse, loaded only where a file is lexed

        sql = sqlfile.parse_text(Path(f"{id}_{name}/down.sql (stored at apply time)"), text)
        return CheckedDown(sql, tuple(rules.check_file(sql, "down", self.table)), is_stored=True)

    def close(self) -> None:
        """Stop the child: the plan is made, nothing more is asked of it."""
        if self._early is not None:
            self._early.close()

    def __enter__(self) -> Validator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Once:
    """rules.check_migration and rules.check_down, each folder's answer kept for
    the next target that asks. One lock for all: lexing holds the GIL anyway,
    and a folder two targets want at once is then lexed once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._migrations: dict[Path, tuple[list[Finding], dict[Path, SqlFile]]] = {}
        self._downs: dict[Path, tuple[SqlFile | None, list[Finding]]] = {}

    def check_migration(self, migration: Migration, table: TrackingTable,
                        parsed: dict[Path, SqlFile] | None = None) -> list[Finding]:
        with self._lock:
            known = self._migrations.get(migration.folder)
            if known is None:
                files: dict[Path, SqlFile] = {}
                known = (rules.check_migration(migration, table, files), files)
                self._migrations[migration.folder] = known
        findings, files = known
        if parsed is not None:
            parsed.update(files)
        return list(findings)

    def check_downs(self, migrations: list[Migration],
                    table: TrackingTable) -> list[tuple[SqlFile | None, list[Finding]]]:
        out: list[tuple[SqlFile | None, list[Finding]]] = []
        for migration in migrations:
            with self._lock:
                known = self._downs.get(migration.folder)
                if known is None:
                    known = self._downs[migration.folder] = rules.check_down(migration, table)
            out.append((known[0], list(known[1])))
        return out

    def close(self) -> None:
        """Nothing to stop; the answers stay for the targets still to plan."""

"""Migrations folder -> Migration list + layout findings (SPEC 1).

Reads bytes and hashes them; never lexes SQL (that is sqlfile's job, done on
demand) and never touches a database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlmigrate import sqlfile
from sqlmigrate.model import Finding, Migration, MigrationFile, Severity

FOLDER_NAME = re.compile(r"^(?P<id>[0-9]+)_(?P<name>[a-z0-9][a-z0-9_]*)$")


@dataclass(frozen=True)
class Scan:
    migrations: tuple[Migration, ...]
    findings: tuple[Finding, ...]  # layout problems: bad names, duplicates, missing files

    def by_number(self) -> dict[int, Migration]:
        return {m.number: m for m in self.migrations}


def _error(path: Path, rule: str, message: str, hint: str | None = None) -> Finding:
    return Finding(path, 1, 1, Severity.ERROR, rule, message, hint)


def read_file(path: Path) -> MigrationFile:
    """Read one migration file; a missing file gives raw=None."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return MigrationFile(path, False, None, None)
    except IsADirectoryError:
        return MigrationFile(path, False, None, None)
    try:
        text = sqlfile.decode(raw)
    except UnicodeDecodeError:
        return MigrationFile(path, True, None, None, raw)
    return MigrationFile(path, True, sqlfile.checksum(raw), text)


def _file_findings(mfile: MigrationFile, kind: str) -> list[Finding]:
    if not mfile.exists:
        return [
            _error(
                mfile.path.parent,
                f"missing-{kind}",
                f"migration folder has no {kind}.sql",
                f"create {mfile.path} (see `sqlmigrate generate`)",
            )
        ]
    if mfile.text is None:
        return [not_utf8(mfile)]
    return []


def not_utf8(mfile: MigrationFile) -> Finding:
    assert mfile.raw is not None
    try:
        mfile.raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f" (invalid byte at offset {exc.start})"
    else:
        where = ""
    return _error(mfile.path, "not-utf8", f"file is not valid UTF-8{where}", "save the file as UTF-8")


def scan(directory: Path) -> Scan:
    """List the migrations of `directory`, in ascending id order.

    Raises FileNotFoundError when the folder does not exist (a usage error for
    the caller); everything else wrong in it becomes a Finding.
    """
    if not directory.is_dir():
        raise FileNotFoundError(directory)
    findings: list[Finding] = []
    by_number: dict[int, Migration] = {}
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            continue  # a README or licence next to the migrations
        if entry.name.startswith("."):
            continue  # .git, editor folders
        match = FOLDER_NAME.match(entry.name)
        if match is None:
            findings.append(
                _error(
                    entry,
                    "bad-name",
                    f"folder name {entry.name!r} is not <id>_<name>",
                    "use digits, an underscore, then lower-case letters, digits and underscores",
                )
            )
            continue
        number = int(match["id"])
        migration = Migration(
            id=match["id"],
            number=number,
            name=match["name"],
            folder=entry,
            up=read_file(entry / "up.sql"),
            down=read_file(entry / "down.sql"),
        )
        other = by_number.get(number)
        if other is not None:
            findings.append(
                _error(
                    entry,
                    "duplicate-id",
                    f"id {migration.id} is the same as {other.folder.name} (ids compare as integers)",
                    "give one of them the next free id",
                )
            )
            continue
        by_number[number] = migration
        findings.extend(_file_findings(migration.up, "up"))
        findings.extend(_file_findings(migration.down, "down"))
    migrations = tuple(by_number[n] for n in sorted(by_number))
    return Scan(migrations, tuple(findings))

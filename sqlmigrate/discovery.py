"""Migrations folder -> Migration list + layout findings (SPEC 1).

Reads bytes and hashes them; never lexes SQL (that is sqlfile's job, done on
demand) and never touches a database.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlmigrate import sqltext
from sqlmigrate.model import AppliedRow, Finding, Migration, MigrationFile, RowState, Severity

FOLDER_NAME = re.compile(r"(?P<id>[0-9]+)_(?P<name>[a-z0-9][a-z0-9_]*)")  # use with fullmatch


@dataclass(frozen=True)
class Scan:
    migrations: tuple[Migration, ...]
    findings: tuple[Finding, ...]  # layout problems: bad names, duplicates, missing files
    # every well-named folder, in name order, duplicates included, and the
    # bad-name findings: what plan.assign_rows needs to hand a duplicated id over
    folders: tuple[Migration, ...] = ()
    bad_names: tuple[Finding, ...] = ()

    def by_number(self) -> dict[int, Migration]:
        return {m.number: m for m in self.migrations}

    @property
    def has_shared_ids(self) -> bool:
        return len(self.folders) != len(self.migrations)


def _error(path: Path, rule: str, message: str, hint: str | None = None) -> Finding:
    return Finding(path, 1, 1, Severity.ERROR, rule, message, hint)


def read_file(path: str | os.PathLike[str]) -> MigrationFile:
    """Read one migration file; a missing file gives raw=None."""
    try:
        raw = _read_bytes(path)
    except (FileNotFoundError, IsADirectoryError):
        return MigrationFile(path, False, None, None)
    data = sqltext.without_bom(raw)
    try:
        sqltext.check_utf8(data)
    except UnicodeDecodeError:
        return MigrationFile(path, True, None, None, raw)
    return MigrationFile(path, True, sqltext.checksum(raw), data)


_CHUNK = 1 << 16  # under malloc's mmap threshold: a small file costs no mapping of its own
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole file, read as `cat` reads it: open, read to the end, close,
    without a file object's own seek and stat for each of thousands of files."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
    if not mfile.is_readable:
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

    Raises FileNotFoundError when the folder does not exist and
    NotADirectoryError when it is a file (usage errors for the caller);
    everything else wrong in it becomes a Finding.
    """
    if not directory.is_dir():
        raise NotADirectoryError(directory) if directory.exists() else FileNotFoundError(directory)
    bad_names: list[Finding] = []
    folders: list[Migration] = []
    with os.scandir(directory) as listing:  # its entries know if they are folders: no stat each
        # .git and editor folders skipped; plain files (a README, a licence) ignored
        names = sorted(e.name for e in listing if not e.name.startswith(".") and e.is_dir())
    # paths as strings under --dir as given (so they are printed); pathlib
    # would parse each of thousands of them, and few are ever shown
    prefix = os.path.join(str(directory), "")
    for name in names:
        match = FOLDER_NAME.fullmatch(name)
        if match is None:
            bad_names.append(
                _error(
                    directory / name,
                    "bad-name",
                    f"folder name {name!r} is not <id>_<name>",
                    "use digits, an underscore, then lower-case letters, digits and underscores",
                )
            )
            continue
        folder = prefix + name
        folders.append(
            Migration(
                id=match["id"],
                number=int(match["id"]),
                name=match["name"],
                where=folder,
                up=read_file(f"{folder}{os.sep}up.sql"),
                down=read_file(f"{folder}{os.sep}down.sql"),
            )
        )
    return assemble(tuple(folders), tuple(bad_names), {}, _first)


def _first(group: list[Migration], row: AppliedRow | None) -> Migration:
    return group[0]


def assemble(folders: tuple[Migration, ...], bad_names: tuple[Finding, ...], claims: dict[int, AppliedRow],
             owner: Callable[[list[Migration], AppliedRow | None], Migration]) -> Scan:
    """One migration per id, and the layout findings in folder-name order.

    Where folders share an id, `owner` chooses the one that is the migration
    (the planner's choice, from the tracking row that claims the id); the
    others get the duplicate-id finding."""
    groups: dict[int, list[Migration]] = {}
    for migration in folders:
        groups.setdefault(migration.number, []).append(migration)
    by_folder: list[tuple[str, list[Finding]]] = [(Path(f.path).name, [f]) for f in bad_names]
    owners: dict[int, Migration] = {}
    for number, group in groups.items():
        row = claims.get(number)
        chosen = owners[number] = owner(group, row)
        for migration in group:
            if migration is chosen:
                if migration.up.is_readable and migration.down.is_readable:
                    continue  # the usual case, and nothing to report
                found = _file_findings(migration.up, "up") + _file_findings(migration.down, "down")
            elif row is not None:
                found = [_error(migration.folder, "duplicate-id",
                                f"id {migration.id} is the same as {chosen.folder.name}, which is "
                                f"{'applied' if row.state is RowState.APPLIED else 'recorded as failed'} "
                                "(ids compare as integers)",
                                f"give {migration.folder.name} the next free id")]
            else:
                found = [_error(migration.folder, "duplicate-id",
                                f"id {migration.id} is the same as {chosen.folder.name} (ids compare as integers)",
                                "give one of them the next free id")]
            by_folder.append((migration.folder_name, found))
    by_folder.sort(key=lambda item: item[0])
    findings = tuple(f for _, found in by_folder for f in found)
    migrations = tuple(owners[n] for n in sorted(owners))
    return Scan(migrations, findings, folders, bad_names)

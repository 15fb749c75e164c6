"""Shared records, frozen dataclasses passed between modules.

Imports nothing from the package, so every module may import it.
"""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime
from pathlib import Path


def is_id(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' or '٣', which int() then refuses or reads."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class TrackingTable:
    """The configured tracking table, as exact (already folded) names; no schema
    means the connection's current schema."""

    name: str
    schema: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "TrackingTable":
        schema, _, name = spec.rpartition(".")
        return cls(name=name, schema=schema or None)

    @property
    def spec(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem in the migrations folder, compiler-style."""

    path: Path
    line: int  # 1-based
    col: int  # 1-based, in characters
    severity: Severity
    rule: str
    message: str
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


@dataclass(frozen=True)
class Statement:
    """One top-level SQL statement of a file.

    `words` are its significant tokens (no whitespace or comments), keywords and
    unquoted names lower-cased, literals and quoted identifiers as written;
    capped for huge statements, which `is_truncated` then says.
    """

    offset: int  # in characters, into SqlFile.text
    end: int
    line: int
    col: int
    words: tuple[str, ...]
    is_truncated: bool = False
    copy_data: str | None = None  # the data block of COPY ... FROM stdin

    def text_in(self, file_text: str) -> str:
        """This statement's SQL, cut from its file's text (SqlFile.text, decoded once by the caller)."""
        return file_text[self.offset:self.end]

    @property
    def keyword(self) -> str:
        return self.words[0] if self.words else ""


@dataclass(frozen=True)
class Directive:
    word: str  # normalised: "no-transaction", "ignore", ...
    args: tuple[str, ...]
    line: int
    col: int


@dataclass(frozen=True)
class LexProblem:
    """A place where the file cannot be read as SQL (unterminated quote, ...)."""

    rule: str
    message: str
    line: int
    col: int


@dataclass(frozen=True)
class SqlFile:
    """A migration file, read and lexed once.

    It keeps the file's bytes, not its decoded text: they are what the server
    is sent, so a 5 MB migration is not held twice more (text, then its
    encoding) while it runs. `text` decodes them again where text is needed.
    """

    path: Path
    checksum: str
    data: bytes  # UTF-8, without a byte order mark
    statements: tuple[Statement, ...]
    directives: tuple[Directive, ...]
    misplaced_directives: tuple[Directive, ...] = ()
    problems: tuple[LexProblem, ...] = ()
    content_checksum: str = ""

    @property
    def text(self) -> str:
        """Decoded on each use: keep it only while it is needed."""
        return self.data.decode("utf-8")

    def has_directive(self, word: str) -> bool:
        return any(d.word == word for d in self.directives)

    @property
    def is_transactional(self) -> bool:
        return not self.has_directive("no-transaction")

    @property
    def is_irreversible(self) -> bool:
        return self.has_directive("irreversible")

    @property
    def is_marked_empty(self) -> bool:
        return self.has_directive("empty")

    @property
    def ignored_rules(self) -> frozenset[str]:
        return frozenset(a for d in self.directives if d.word == "ignore" for a in d.args)


@dataclass(frozen=True)
class MigrationFile:
    """A file on disk: its checksum is known at once, its SQL is parsed on demand.

    `where` is its path as discovery read it, a string (a Path works too): the
    Path is made only when one is needed, as `status` of thousands of
    migrations needs none."""

    where: str | os.PathLike[str]
    exists: bool
    checksum: str | None  # None when missing or not UTF-8
    data: bytes | None  # valid UTF-8 without a byte order mark; None when missing or not UTF-8
    raw: bytes | None = None  # kept only when not UTF-8, to say where it breaks

    @cached_property
    def path(self) -> Path:
        return Path(self.where)

    @property
    def is_readable(self) -> bool:
        return self.data is not None

    @property
    def text(self) -> str | None:
        """Decoded on each use (see SqlFile)."""
        return None if self.data is None else self.data.decode("utf-8")


@dataclass(frozen=True)
class Migration:
    id: str  # as written in the folder name
    number: int
    name: str
    where: str | os.PathLike[str]  # its folder, made a Path only when needed (as MigrationFile.where)
    up: MigrationFile
    down: MigrationFile

    @cached_property
    def folder(self) -> Path:
        return Path(self.where)

    @property
    def folder_name(self) -> str:
        return os.path.basename(self.where)


class RowState(str, enum.Enum):
    APPLIED = "applied"
    FAILED = "failed"


@dataclass(frozen=True)
class AppliedRow:
    """A row of the tracking table."""

    id: str
    name: str
    checksum: str
    executed_at: datetime
    content_checksum: str | None = None
    duration_ms: int | None = None
    down_sql: str | None = None
    state: RowState = RowState.APPLIED
    statements_run: int | None = None
    failed_during: str | None = None  # "up" or "down": which run a failed state is from

    @property
    def is_numbered(self) -> bool:
        """Whether the id is one sqlmigrate could have written (a row written by hand may hold anything)."""
        return is_id(self.id)

    @property
    def number(self) -> int:
        return int(self.id)


class State(str, enum.Enum):
    APPLIED = "applied"
    PENDING = "pending"
    MODIFIED = "modified"
    REFORMATTED = "reformatted"
    MISSING = "missing"
    FAILED = "failed"


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    name: str
    state: State
    applied_at: datetime | None = None
    migration: Migration | None = None
    row: AppliedRow | None = None
    notes: tuple[str, ...] = ()


class Direction(str, enum.Enum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Step:
    """One migration to run in one direction, with the SQL file to run."""

    direction: Direction
    id: str
    name: str
    sql: SqlFile
    migration: Migration | None  # None when rolling back from the stored down.sql
    down_sql: str | None = None  # down.sql text to store with an up step


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    warnings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    held_back: int = 0  # pending migrations above `up --to`


@dataclass(frozen=True)
class SqlError:
    """A PostgreSQL error, placed in the file that caused it."""

    path: Path
    line: int
    col: int
    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class Notice:
    """A NOTICE, WARNING, INFO, ... the server sent while a migration's SQL ran."""

    severity: str  # as PostgreSQL names it, not translated: NOTICE, WARNING, ...
    message: str
    detail: str | None = None
    hint: str | None = None


# Notices kept per step; beyond, only counted (a loop of RAISE NOTICE must not eat memory)
NOTICES_KEPT = 100


@dataclass(frozen=True)
class StepResult:
    step: Step
    duration_s: float
    error: SqlError | None = None
    statements_run: int | None = None
    notices: tuple[Notice, ...] = ()  # in the order they arrived, at most NOTICES_KEPT
    notices_omitted: int = 0  # how many more arrived beyond NOTICES_KEPT
    attempts: int = 1  # more than 1 when lock timeouts made it run again (--lock-retries)


class RepairAction(str, enum.Enum):
    RECORD_CHECKSUMS = "record-checksums"  # modified or reformatted: the file is now the truth
    CLEAR_FAILED_UP = "clear-failed-up"  # forget the partial run: the migration is pending again
    CLEAR_FAILED_DOWN = "clear-failed-down"  # the rollback stopped: the migration is applied again


@dataclass(frozen=True)
class Repair:
    id: str  # as `status` shows it: the folder's id and name (the row's for a migration without a folder)
    name: str
    action: RepairAction
    was: State
    row_id: str  # the tracking row's id, which the repair updates ("001" for a folder renamed 1_x)
    checksum: str | None = None
    content_checksum: str | None = None
    down_sql: str | None = None

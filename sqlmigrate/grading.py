"""`plan`'s findings (SPEC 8): what each rehearsed statement locked, rewrote and
read, graded by the size of the tables on the target.

Pure: the records of rehearsal.py and the target's sizes in, findings out; no
connection, so the grading is tested with plain records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from sqlmigrate.config import DEFAULT_MAX_ROWS
from sqlmigrate.model import Finding, Severity, SqlError, Statement

# pg_locks' names of the table lock modes -> their SQL names, weakest first
MODES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
STRENGTH = {mode: rank for rank, mode in enumerate(MODES.values())}
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
ACCESS_SHARE = "ACCESS SHARE"
# SHARE and every stronger mode conflict with ROW EXCLUSIVE, which INSERT,
# UPDATE and DELETE take: from SHARE up, a lock blocks writes
BLOCKS_WRITES = STRENGTH["SHARE"]
TABLE_KINDS = frozenset("rpm")  # pg_class.relkind: table, partitioned table, materialized view
INDEX_KINDS = frozenset("iI")

_DML = ("select", "insert", "update", "delete", "merge")


@dataclass(frozen=True)
class Relation:
    """A relation of the scratch database, named as it was when the plan
    started (so as the target knows it), or as the plan created it."""

    schema: str
    name: str
    kind: str  # pg_class.relkind
    shown: str  # as messages name it: schema-qualified outside the session's current schema
    table: Relation | None = None  # an index's table
    is_created: bool = False  # made by the plan itself: nothing on the target can wait for it

    @property
    def key(self) -> tuple[str, str]:
        return self.schema, self.name

    @property
    def is_table(self) -> bool:
        return self.kind in TABLE_KINDS


@dataclass(frozen=True)
class Lock:
    relation: Relation
    mode: str  # SQL name: "ACCESS EXCLUSIVE"

    @property
    def strength(self) -> int:
        return STRENGTH[self.mode]


@dataclass(frozen=True)
class StatementRecord:
    """What one statement did in the scratch database.

    `locks`: in a transaction, the relation locks it newly held (those held
    from earlier statements of the transaction left out); outside one, those a
    second session saw it hold or wait for. `holding`: every table lock the
    transaction holds after it. `scanned`: tables it read (their scan counters
    moved). `rewrites`: relations whose relfilenode it changed.
    """

    statement: Statement
    locks: tuple[Lock, ...]
    rewrites: tuple[Relation, ...]
    duration_s: float
    scanned: tuple[Relation, ...] = ()
    holding: tuple[Lock, ...] = ()


@dataclass(frozen=True)
class Rehearsed:
    """One pending migration's rehearsal.

    verdict: "rehearsed", "failed" (its SQL failed in the scratch database:
    `error`), or "not tested" (an earlier one failed: `reason`).
    """

    id: str
    name: str
    path: Path  # its up.sql
    is_transactional: bool
    verdict: str
    statements: tuple[StatementRecord, ...] = ()
    error: SqlError | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TableSize:
    """A table's size on the target: pg_class.reltuples (None when never
    analyzed) and pg_total_relation_size."""

    rows: int | None
    bytes: int


Sizes = Mapping[tuple[str, str], TableSize]


def grade(rehearsed: Iterable[Rehearsed], sizes: Sizes, max_rows: int = DEFAULT_MAX_ROWS) -> list[Finding]:
    """SPEC 8's findings of every rehearsed statement, in order.

    Only tables that existed before the plan and exist on the target (by
    schema and name) are graded. An ACCESS EXCLUSIVE lock with a rewrite of a
    table above `max_rows` is an error [rewrite]; a rewrite of a smaller or
    never analyzed table, and any other lock that blocks writes (or, ACCESS
    EXCLUSIVE, reads) a warning [rewrite] or [lock]; in a transactional
    migration, a data change on a table above `max_rows` a warning [data].
    """
    out: list[Finding] = []
    for migration in rehearsed:
        last = len(migration.statements) - 1
        for index, record in enumerate(migration.statements):
            out.extend(_grade_statement(migration, record, sizes, max_rows, is_last=index == last))
    return out


def size_text(size: TableSize) -> str:
    """`~1,204,000 rows, 310 MB`, or `size unknown` for a table never analyzed."""
    if size.rows is None:
        return "size unknown"
    return f"~{size.rows:,} rows, {pretty_bytes(size.bytes)}"


def pretty_bytes(count: int) -> str:
    """As PostgreSQL's pg_size_pretty: the largest unit that keeps the number
    at 10240 or more in the next one down."""
    value = float(count)
    units = ("bytes", "kB", "MB", "GB", "TB", "PB")
    for unit in units:
        if abs(value) < 10 * 1024 or unit == units[-1]:
            return f"{int(value + (0.5 if value >= 0 else -0.5))} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def statement_verb(words: Sequence[str]) -> str:
    """The statement's command: its first word, or for WITH ... the command
    after the common table expressions."""
    if not words:
        return ""
    if words[0] != "with":
        return words[0]
    depth = 0
    for word in words[1:]:
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word in _DML:
            return word
    return "with"


def _grade_statement(migration: Rehearsed, record: StatementRecord, sizes: Sizes, max_rows: int,
                     *, is_last: bool) -> Iterator[Finding]:
    stmt = record.statement
    rewritten = {r.key for r in record.rewrites if r.is_table and not r.is_created}
    tables: dict[tuple[str, str], _TableLocks] = {}
    for lock in record.locks:
        relation = lock.relation
        if relation.is_table and not relation.is_created:
            entry = tables.setdefault(relation.key, _TableLocks(relation))
            if entry.mode is None or lock.strength > STRENGTH[entry.mode]:
                entry.mode = lock.mode
        elif (relation.kind in INDEX_KINDS and lock.mode == ACCESS_EXCLUSIVE and not relation.is_created
              and relation.table is not None and not relation.table.is_created):
            # the planner takes ACCESS SHARE on every index of a table it plans a query on:
            # an index held ACCESS EXCLUSIVE stops reads and writes of its table
            tables.setdefault(relation.table.key, _TableLocks(relation.table)).index = relation
    for relation in record.rewrites:
        if relation.key in rewritten:
            tables.setdefault(relation.key, _TableLocks(relation))
    # a lock no stronger than one the transaction held before this statement blocks nobody new
    new = {(lock.relation.key, lock.mode) for lock in record.locks}
    before: dict[tuple[str, str], int] = {}
    for lock in record.holding:
        if (lock.relation.key, lock.mode) not in new:
            before[lock.relation.key] = max(before.get(lock.relation.key, -1), lock.strength)
    for key, entry in tables.items():
        if entry.mode is not None and before.get(key, -1) >= STRENGTH[entry.mode]:
            entry.mode = None
        if before.get(key, -1) >= STRENGTH[ACCESS_EXCLUSIVE]:
            entry.index = None
    for key, entry in tables.items():
        size = sizes.get(key)
        if size is None:
            continue  # not on the target: a table the target lacks waits for nobody
        if key in rewritten:
            # PostgreSQL rewrites a table only under ACCESS EXCLUSIVE, taken by this
            # statement or held from an earlier one of the transaction
            big = size.rows is not None and size.rows > max_rows
            yield _finding(migration, stmt, Severity.ERROR if big else Severity.WARNING, "rewrite",
                           f"{ACCESS_EXCLUSIVE} lock on {entry.table.shown} ({size_text(size)}) and rewrites it: "
                           "reads and writes wait for the whole rewrite",
                           "add a new column and backfill it in batches rather than rewrite the table, "
                           "or run this in a maintenance window")
            continue
        blocks_writes = entry.mode is not None and STRENGTH[entry.mode] >= BLOCKS_WRITES
        if not blocks_writes and entry.index is None:
            continue
        blocks_reads = entry.mode == ACCESS_EXCLUSIVE or entry.index is not None
        blocked = "reads and writes" if blocks_reads else "writes"
        until = _until(migration, stmt, is_last)
        if entry.mode is None:
            assert entry.index is not None
            subject, verb = (f"{ACCESS_EXCLUSIVE} lock on index {entry.index.shown} of {entry.table.shown} "
                             f"({size_text(size)})"), "blocks"
        elif entry.index is not None and entry.mode != ACCESS_EXCLUSIVE:
            subject, verb = (f"{entry.mode} lock on {entry.table.shown} ({size_text(size)}) and "
                             f"{ACCESS_EXCLUSIVE} lock on its index {entry.index.shown}"), "block"
        else:
            subject, verb = f"{entry.mode} lock on {entry.table.shown} ({size_text(size)})", "blocks"
        yield _finding(migration, stmt, Severity.WARNING, "lock", f"{subject} {verb} {blocked} {until}",
                       _lock_hint(stmt.words))
    if migration.is_transactional:
        yield from _data_findings(migration, record, sizes, max_rows)


class _TableLocks:
    """The strongest lock a statement took on one table, and an index of it held ACCESS EXCLUSIVE."""

    def __init__(self, table: Relation) -> None:
        self.table = table
        self.mode: str | None = None
        self.index: Relation | None = None


def _until(migration: Rehearsed, stmt: Statement, is_last: bool) -> str:
    """How long the lock is held: a transaction keeps its locks until COMMIT."""
    if (not migration.is_transactional or is_last) and _creates_index(stmt.words):
        return "until the index is built"
    return "until the migration commits" if migration.is_transactional else "until the statement ends"


def _creates_index(words: Sequence[str]) -> bool:
    return words[:1] == ("create",) and "index" in words[1:3]


def _lock_hint(words: Sequence[str]) -> str:
    if _creates_index(words):
        return "build it with CREATE INDEX CONCURRENTLY in a migration marked no-transaction"
    if words[:2] == ("alter", "table") and any(w in ("foreign", "check", "constraint") for w in words):
        return "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration"
    return ("keep the migration short, and have it give up rather than queue behind a long query: "
            "up --lock-timeout with --lock-retries")


def _data_findings(migration: Rehearsed, record: StatementRecord, sizes: Sizes, max_rows: int) -> Iterator[Finding]:
    """SPEC 8 [data]: UPDATE, DELETE (or MERGE, or a DO block or function that
    changes rows), or INSERT ... SELECT reading a table above `max_rows`,
    inside the migration's transaction."""
    stmt = record.statement
    verb = statement_verb(stmt.words)
    scanned = {r.key for r in record.scanned}
    new_locks = {(lock.relation.key, lock.mode) for lock in record.locks}
    holds_row_exclusive = {lock.relation.key for lock in record.holding if lock.mode == ROW_EXCLUSIVE}
    seen: set[tuple[str, str]] = set()
    for relation in _existing_tables(record):
        key = relation.key
        size = sizes.get(key)
        if key in seen or size is None or size.rows is None or size.rows <= max_rows:
            continue
        if verb == "insert":
            if key in scanned or (key, ACCESS_SHARE) in new_locks:
                seen.add(key)
                yield _finding(migration, stmt, Severity.WARNING, "data",
                               f"INSERT ... SELECT reads {relation.shown} ({size_text(size)}) inside the "
                               "migration's transaction, which holds its locks until the copy is done and "
                               "it commits", _DATA_HINT)
            continue
        # new ROW EXCLUSIVE: this statement changed rows; held from an earlier one:
        # it changed them if it read the table too (an UPDATE ... FROM only reads the other)
        changes = (key, ROW_EXCLUSIVE) in new_locks or (
            verb in ("update", "delete", "merge") and key in scanned and key in holds_row_exclusive)
        if changes:
            seen.add(key)
            what = verb.upper() if verb in _DML else f"{verb.upper()} (changing rows)"
            yield _finding(migration, stmt, Severity.WARNING, "data",
                           f"{what} on {relation.shown} ({size_text(size)}) inside the migration's transaction "
                           "holds a lock on every row it touches until the migration commits", _DATA_HINT)


_DATA_HINT = "run large data changes as a separate, batched script, not in the schema migration"


def _existing_tables(record: StatementRecord) -> Iterator[Relation]:
    for relation in (*(lock.relation for lock in record.locks), *record.scanned):
        if relation.is_table and not relation.is_created:
            yield relation


def _finding(migration: Rehearsed, stmt: Statement, severity: Severity, rule: str, message: str,
             hint: str) -> Finding:
    return Finding(migration.path, stmt.line, stmt.col, severity, rule, message, hint)


def statement_severity(findings: Iterable[Finding]) -> dict[tuple[str, int, int], Severity]:
    """The highest severity of the findings at each (path, line, col): a statement's grade."""
    out: dict[tuple[str, int, int], Severity] = {}
    for f in findings:
        key = (str(f.path), f.line, f.col)
        if out.get(key) is not Severity.ERROR:
            out[key] = f.severity
    return out

"""Pure planning: migrations + tracking rows + options -> statuses, a Plan, or a refusal.

`up` and `down` plan in two steps around validation: `select_up`/`select_down`
choose the migrations from the folders and the tracking rows, the caller
validates their files (validation.Validator), and `plan_up`/`plan_down` turn
the validated files into the steps to run. Never touches a connection; lexes
SQL only where a state needs it (a reformatted up.sql).
"""
from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from sqlmigrate import discovery, rules, sqltext
from sqlmigrate.discovery import Scan
from sqlmigrate.errors import Refused, UsageError
from sqlmigrate.model import (
    AppliedRow,
    Direction,
    Finding,
    Migration,
    MigrationStatus,
    Plan,
    Repair,
    RepairAction,
    RowState,
    Severity,
    SqlFile,
    State,
    Step,
    is_id,
)


DOWN_EDITED = "down.sql edited since it was applied"  # information (SPEC 2), never a problem


def assign_rows(scan: Scan, rows: list[AppliedRow]) -> Scan:
    """This scan with each id that two folders share given to the folder its
    tracking row names: the one whose id and name match the row exactly, else
    the one whose up.sql is the one applied (same checksum), else the one whose
    id is written as in the row, else the one with the row's name (its id
    re-padded), else the first by name (as without a row). The other folders
    get the duplicate-id finding."""
    if not scan.has_shared_ids:
        return scan
    claims = {row.number: row for row in rows if row.is_numbered}
    return discovery.assemble(scan.folders, scan.bad_names, claims, _owner)


def _owner(group: list[Migration], row: AppliedRow | None) -> Migration:
    if row is not None:
        for wanted in (lambda m: (m.id, m.name) == (row.id, row.name), lambda m: m.up.checksum == row.checksum,
                       lambda m: m.id == row.id, lambda m: m.name == row.name):
            for migration in group:
                if wanted(migration):
                    return migration
    return group[0]


def statuses(scan: Scan, rows: list[AppliedRow]) -> list[MigrationStatus]:
    """One status per migration folder and per tracking row without a folder, by id
    (rows whose id is not a number last, as `missing`).

    Where two folders share an id, the row goes to the folder it names
    (assign_rows); the other one is a duplicate-id finding, never a second
    status, and never makes the applied migration `modified`.
    """
    by_number = assign_rows(scan, rows).by_number()
    rows_by_number = {row.number: row for row in rows if row.is_numbered}
    out: list[MigrationStatus] = []
    for number in sorted(set(by_number) | set(rows_by_number)):
        migration = by_number.get(number)
        row = rows_by_number.get(number)
        if migration is None:
            assert row is not None
            out.append(MigrationStatus(row.id, row.name, State.MISSING, row.executed_at, None, row,
                                       ("folder is gone; down can still use the down.sql stored at apply time",)))
        elif row is None:
            out.append(MigrationStatus(migration.id, migration.name, State.PENDING, None, migration))
        else:
            state, notes = _applied_state(migration, row)
            out.append(MigrationStatus(migration.id, migration.name, state, row.executed_at, migration, row, notes))
    for row in rows:
        if not row.is_numbered:  # written by hand: no folder can be its migration
            out.append(MigrationStatus(row.id, row.name, State.MISSING, row.executed_at, None, row, (
                f"tracking row id {row.id!r} is not a number, so no migration folder can match it; "
                "delete the row if it is not one of yours",)))
    return out


@functools.lru_cache(maxsize=256)  # many targets with the same reformatted file lex it once (SPEC 10)
def _content_checksum(path: Path, data: bytes) -> str:
    from sqlmigrate import sqlfile  # sqlparse, loaded only where a file is lexed

    return sqlfile.parse(path, data).content_checksum


def _applied_state(migration: Migration, row: AppliedRow) -> tuple[State, tuple[str, ...]]:
    notes: list[str] = []
    if (row.id, row.name) != (migration.id, migration.name):
        notes.append(f"applied as {row.id}_{row.name}")
    if row.down_sql is not None and migration.down.data is not None:
        if not sqltext.same_checksum(row.down_sql.encode(), migration.down.data):
            notes.append(DOWN_EDITED)
    if row.state is RowState.FAILED:
        ran = row.statements_run if row.statements_run is not None else "?"
        if row.failed_during == "down":
            notes.append(f"no-transaction rollback (down.sql) stopped after {ran} statement(s); "
                         "fix it, then run repair (the migration counts as applied again)")
        else:
            notes.append(f"no-transaction migration stopped after {ran} statement(s); fix it, then run repair")
        return State.FAILED, tuple(notes)
    up = migration.up
    if up.checksum == row.checksum:
        return State.APPLIED, tuple(notes)
    if up.data is not None and row.content_checksum:
        if _content_checksum(up.path, up.data) == row.content_checksum:
            notes.append("up.sql reformatted since it was applied (comments, spacing or case only)")
            return State.REFORMATTED, tuple(notes)
    notes.append("up.sql changed since it was applied")
    return State.MODIFIED, tuple(notes)


def _find_number(scan: Scan, rows: list[AppliedRow], wanted: str, given_as: str = "--to") -> int:
    """The number of an id the user gave (`given_as` names where, for the message)."""
    if not is_id(wanted):
        raise UsageError(f"{given_as} {wanted!r} is not an id (digits)")
    number = int(wanted)
    known = {m.number for m in scan.migrations} | {r.number for r in rows if r.is_numbered}
    if number not in known:
        raise UsageError(f"{given_as} {wanted}: no migration has that id")
    return number


def split_from(scan: Scan, wanted: str) -> tuple[tuple[Migration, ...], tuple[Migration, ...]]:
    """`test --from ID`: the migrations below ID, which are only built, and those from ID on,
    which are tested. Raises UsageError for an id no migration has, as `up --to` does."""
    number = _find_number(scan, [], wanted, "--from")
    return (tuple(m for m in scan.migrations if m.number < number),
            tuple(m for m in scan.migrations if m.number >= number))


def _refuse_failed(states: list[MigrationStatus]) -> None:
    failed = [s for s in states if s.state is State.FAILED]
    if failed:
        names = ", ".join(f"{s.id}_{s.name}" for s in failed)
        raise Refused(
            f"migration {names} failed part-way (no-transaction); nothing was run",
            details=tuple(n for s in failed for n in s.notes)
            + ("check the database by hand, then `sqlmigrate repair` to clear the failed state",),
        )


@dataclass(frozen=True)
class UpSelection:
    """The pending migrations `up` will apply, before their files are validated."""

    scan: Scan  # with shared ids given to the folders the tracking rows name
    pending: tuple[Migration, ...]  # to apply, in id order
    # to validate: every pending migration, also those above --to (the folder is
    # checked as a whole, as `check` does); applied ones are not, as their up.sql
    # already ran and an edit to it is caught as modified
    checked: tuple[Migration, ...] = ()
    notes: tuple[str, ...] = ()
    held_back: int = 0  # pending migrations above --to


def select_up(scan: Scan, rows: list[AppliedRow], *, to: str | None = None,
              allow_out_of_order: bool = False) -> UpSelection:
    """The pending migrations to apply, in id order. Raises Refused (a failed
    or modified migration, one out of order) or UsageError (--to)."""
    scan = assign_rows(scan, rows)
    states = statuses(scan, rows)
    _refuse_failed(states)
    modified = [s for s in states if s.state is State.MODIFIED]
    if modified:
        raise Refused(
            "applied migration(s) changed on disk: " + ", ".join(f"{s.id}_{s.name}" for s in modified),
            details=(
                "an applied migration's up.sql must not change: the database already ran the old text",
                "undo the edit (git checkout), or write a new migration for the change;",
                "if the edit is deliberate and the database already matches it, run `sqlmigrate repair ID`",
            ),
        )
    pending = [s for s in states if s.state is State.PENDING]
    checked = tuple(s.migration for s in pending if s.migration is not None)
    notes: list[str] = []
    later: list[MigrationStatus] = []
    if to is not None:
        limit = _find_number(scan, rows, to)
        later = [s for s in pending if int(s.id) > limit]
        pending = [s for s in pending if int(s.id) <= limit]
        if later:
            notes.append(f"{len(later)} pending migration(s) above --to {to} not applied: "
                         + ", ".join(f"{s.id}_{s.name}" for s in later[:5]) + (", ..." if len(later) > 5 else ""))
    applied_numbers = [r.number for r in rows if r.is_numbered]
    highest = max(applied_numbers, default=None)
    if highest is not None and not allow_out_of_order:
        early = [s for s in pending if int(s.id) < highest]
        if early:
            top = next(r for r in rows if r.is_numbered and r.number == highest)
            raise Refused(
                "pending migration(s) older than the newest applied one "
                f"({top.id}_{top.name}): " + ", ".join(f"{s.id}_{s.name}" for s in early),
                details=("give them ids above the newest applied one, or run `up --allow-out-of-order`",),
            )
    migrations = tuple(s.migration for s in pending if s.migration is not None)
    return UpSelection(scan, migrations, checked, tuple(notes), len(later))


def plan_up(selection: UpSelection, findings: list[Finding], files: Mapping[Path, SqlFile]) -> Plan:
    """The steps of `up`, from the selection and its validation (the findings of
    the checked folders, and their up.sql lexed). Raises Refused on an error."""
    blocking, warnings = split_for_up(findings)
    if blocking:
        raise Refused("validation failed; nothing was applied", findings=tuple(blocking + warnings))
    steps = tuple(Step(Direction.UP, m.id, m.name, files[m.up.path], m, m.down.text) for m in selection.pending)
    return Plan(steps, warnings=tuple(warnings), notes=selection.notes, held_back=selection.held_back)


def split_for_up(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """SPEC 3: errors inside a down.sql block `down`, not a deploy: shown as warnings."""
    blocking: list[Finding] = []
    warnings: list[Finding] = []
    for f in findings:
        if f.is_error and not (rules.is_down_file(f) and f.rule != "missing-down"):
            blocking.append(f)
        elif f.is_error:
            warnings.append(Finding(f.path, f.line, f.col, Severity.WARNING, f.rule,
                                    f.message + " (blocks down, not up)", f.hint))
        else:
            warnings.append(f)
    return blocking, warnings


@dataclass(frozen=True)
class DownSelection:
    """The applied migrations `down` will roll back, highest id first, before
    their down.sql files are validated."""

    chosen: tuple[MigrationStatus, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckedDown:
    """A down.sql lexed and checked: the one on disk, or the copy stored at apply time."""

    sql: SqlFile
    findings: tuple[Finding, ...]
    is_stored: bool = False


class DownSource(str, enum.Enum):
    DISK = "disk"  # the folder's down.sql
    STORED = "stored"  # the copy in the tracking row: folder or file gone
    UNREADABLE = "unreadable"  # on disk but not UTF-8: refused, never replaced by the stored copy
    NONE = "none"  # neither: cannot be rolled back


def down_source(status: MigrationStatus) -> DownSource:
    """Which down.sql rolls back an applied migration. A down.sql that is there
    but cannot be read is what the user means to run: refuse on it rather than
    fall back to the stored copy."""
    migration, row = status.migration, status.row
    if migration is not None and migration.down.is_readable:
        return DownSource.DISK
    if migration is not None and migration.down.exists:
        return DownSource.UNREADABLE
    if row is not None and row.down_sql is not None:
        return DownSource.STORED
    return DownSource.NONE


def select_down(scan: Scan, rows: list[AppliedRow], *, steps: int | None = None, to: str | None = None,
                all_: bool = False) -> DownSelection:
    """The applied migrations to roll back, highest id first. Raises Refused or UsageError."""
    states = statuses(scan, rows)
    _refuse_failed(states)
    # a row whose id is no number (written by hand) is no migration down could run
    applied = [s for s in states if s.row is not None and s.row.is_numbered]
    applied.sort(key=lambda s: int(s.id), reverse=True)
    if all_:
        chosen = applied
    elif to is not None:
        limit = _find_number(scan, rows, to)
        chosen = [s for s in applied if int(s.id) > limit]
    else:
        count = 1 if steps is None else steps
        if count < 1:
            raise UsageError("--steps must be at least 1")
        chosen = applied[:count]
    return DownSelection(tuple(chosen), tuple(_shared_ids(scan, rows, chosen)))


def plan_down(selection: DownSelection, checked: Mapping[str, CheckedDown]) -> Plan:
    """The steps of `down`, from the selection and its down.sql files checked
    (by tracking row id). Raises Refused."""
    notes = list(selection.notes)
    plan_steps: list[Step] = []
    findings: list[Finding] = []
    for status in selection.chosen:
        row, migration = status.row, status.migration
        assert row is not None
        source = down_source(status)
        if source is DownSource.UNREADABLE:
            assert migration is not None
            findings.append(discovery.not_utf8(migration.down))
            continue
        if source is DownSource.NONE:
            raise Refused(f"{row.id}_{row.name}: no down.sql on disk and none stored; nothing was rolled back")
        down = checked[row.id]
        if source is DownSource.STORED:
            notes.append(f"{row.id}_{row.name}: folder or down.sql gone; using the down.sql stored at apply time")
        elif status.state is State.MODIFIED:
            notes.append(f"{status.id}_{status.name}: up.sql changed since it was applied; its down.sql "
                         "on disk runs, which may not undo what the database ran (`sqlmigrate status`)")
        if down.sql.is_irreversible:
            # the down.sql errors found above it are shown too: one run reports all
            raise Refused(
                f"{row.id}_{row.name} is irreversible (its down.sql says so); nothing was rolled back",
                details=(f"roll back to it at most: `sqlmigrate down --to {row.id}`",),
                findings=tuple(rules.sort_findings(findings)),
            )
        findings.extend(f for f in down.findings if f.is_error)
        plan_steps.append(Step(Direction.DOWN, row.id, row.name, down.sql, migration))
    if findings:
        raise Refused("down.sql validation failed; nothing was rolled back",
                      findings=tuple(rules.sort_findings(findings)))
    return Plan(tuple(plan_steps), notes=tuple(notes))


def _shared_ids(scan: Scan, rows: list[AppliedRow], chosen: list[MigrationStatus]) -> list[str]:
    """A second folder with the id of a migration to roll back: notes when the
    row's folder is certain (named as recorded, or holding the up.sql that was
    applied); otherwise which down.sql undoes what was applied is a guess, so
    refuse."""
    by_number = {s.row.number: s for s in chosen if s.row is not None}
    shared = [(f, by_number[n]) for f in duplicates_of_applied(scan, rows)
              if (n := _finding_number(f)) is not None and n in by_number]
    unsure = [f for f, status in shared if not _is_certainly_applied(status)]
    if unsure:
        raise Refused(
            "another folder has the id of a migration to roll back, and none is known to be the one "
            "applied; nothing was rolled back",
            details=("neither the folder name nor the up.sql checksum matches the tracking row: rename "
                     "the folder that was never applied, or give the applied one back its name "
                     "(`sqlmigrate status` shows the name it was applied under), then run down again",),
            findings=tuple(unsure),
        )
    return [f"{Path(f.path).name} has the id of the applied {status.id}_{status.name}, whose own down.sql "
            "runs [duplicate-id]" for f, status in shared]


def _is_certainly_applied(status: MigrationStatus) -> bool:
    row, migration = status.row, status.migration
    return (row is not None and migration is not None
            and ((migration.id, migration.name) == (row.id, row.name) or migration.up.checksum == row.checksum))


# -- verify, repair, baseline -------------------------------------------------------

VERIFY_PROBLEMS = (State.MODIFIED, State.MISSING, State.FAILED)


def duplicates_of_applied(scan: Scan, rows: list[AppliedRow]) -> list[Finding]:
    """The duplicate-id findings about an id the tracking table holds (a folder
    added next to an applied one): `verify` fails on them, pending ones are `check`'s."""
    recorded = {r.number for r in rows if r.is_numbered}
    return [f for f in assign_rows(scan, rows).findings
            if f.rule == "duplicate-id" and _finding_number(f) in recorded]


def plan_repair(scan: Scan, rows: list[AppliedRow], ids: list[str]) -> list[Repair]:
    """What `repair` changes: new checksums for modified/reformatted, cleared failed runs.

    With no ids, every repairable migration. Raises UsageError for an id that
    is unknown or has nothing to repair.
    """
    states = {int(s.id): s for s in statuses(scan, rows) if is_id(s.id)}
    repairable = (State.MODIFIED, State.REFORMATTED, State.FAILED)
    if ids:
        chosen = []
        for wanted in ids:
            if not is_id(wanted) or int(wanted) not in states:
                raise UsageError(f"repair {wanted}: no migration has that id")
            status = states[int(wanted)]
            if status.state not in repairable:
                raise UsageError(f"repair {wanted}: {status.id}_{status.name} is {status.state.value}; "
                                 "only modified, reformatted or failed migrations can be repaired")
            if status not in chosen:  # `repair 2 002` names one migration
                chosen.append(status)
    else:
        chosen = [s for s in states.values() if s.state in repairable]
    out: list[Repair] = []
    for status in sorted(chosen, key=lambda s: int(s.id)):
        row = status.row
        assert row is not None
        if status.state is State.FAILED:
            action = RepairAction.CLEAR_FAILED_DOWN if row.failed_during == "down" else RepairAction.CLEAR_FAILED_UP
            out.append(Repair(status.id, status.name, action, status.state, row_id=row.id))
            continue
        migration = status.migration
        assert migration is not None
        if migration.up.data is None:
            raise Refused(f"repair {row.id}: {migration.up.path} cannot be read as UTF-8; nothing was changed")
        out.append(
            Repair(
                status.id, status.name, RepairAction.RECORD_CHECKSUMS, status.state, row_id=row.id,
                checksum=migration.up.checksum,
                content_checksum=_content_checksum(migration.up.path, migration.up.data),
                down_sql=migration.down.text,
            )
        )
    return out


def plan_baseline(scan: Scan, rows: list[AppliedRow], to: str) -> list[Migration]:
    """The migrations `baseline ID` records as applied. Raises Refused or UsageError."""
    if rows:
        raise Refused(
            f"the tracking table already has {len(rows)} row(s); baseline only adopts a database "
            "whose tracking table is empty; nothing was changed"
        )
    limit = _find_number(scan, [], to, given_as="baseline")
    chosen = [m for m in scan.migrations if m.number <= limit]
    numbers = {m.number for m in chosen}
    blocking = [f for f in scan.findings if f.is_error and _finding_number(f) in numbers
                and f.rule in ("missing-up", "not-utf8") and not rules.is_down_file(f)]
    if blocking:
        raise Refused("cannot record migrations whose up.sql is missing or unreadable; nothing was changed",
                      findings=tuple(blocking))
    return chosen


def _finding_number(f: Finding) -> int | None:
    for part in Path(f.path).parts[::-1]:
        match = discovery.FOLDER_NAME.fullmatch(part)
        if match:
            return int(match["id"])
    return None

"""One function per command: Settings (+ options) -> its typed report. Orchestration only.

Database modules are imported inside the functions that need them, so that
`check`, `generate` and `--help` never load psycopg.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from sqlmigrate import discovery, events, plan as planning, rules
from sqlmigrate.config import DEFAULT_MAX_ROWS, Settings, mask_url
from sqlmigrate.errors import ConnectionLost, DatabaseUnavailable, Refused, SqlMigrateError, UsageError
from sqlmigrate.events import Listener
from sqlmigrate.model import Plan, Repair, RepairAction, RowState
from sqlmigrate.reports import (BaselineReport, CheckReport, ConfigReport, CorrectiveReport, DownReport, DriftReport,
                                GenerateReport, MigrateReport, PlanReport, RepairReport, SchemaReport, StatusReport,
                                TestReport, UpReport, VerifyReport)
from sqlmigrate.target import Target
from sqlmigrate.validation import Validator

if TYPE_CHECKING:  # psycopg: loaded only by commands that connect
    from sqlmigrate.db import Session
    from sqlmigrate.model import AppliedRow, SqlFile
    from sqlmigrate.schema import Snapshot
    from sqlmigrate.schema.roundtrip import ScratchSession

TEMPLATE = """\
-- {kind}.sql of {folder}
-- Write the SQL {what}. sqlmigrate runs it in one transaction
-- together with its row in the tracking table.
-- Directives go above the first statement, for example:
--   -- sqlmigrate: no-transaction   (CREATE INDEX CONCURRENTLY, VACUUM, ...)
{extra}-- Until it holds a statement, `check` and `up` refuse this migration.
"""
_DOWN_EXTRA = "--   -- sqlmigrate: irreversible     (when the change cannot be undone)\n"


def scan_folder(settings: Settings) -> discovery.Scan:
    """The migrations folder, read once per run. Raises UsageError when it cannot be read."""
    try:
        return discovery.scan(settings.directory)
    except FileNotFoundError:
        raise UsageError(
            f"migrations folder {settings.directory} does not exist "
            "(use --dir, or `sqlmigrate generate NAME` to start one)"
        ) from None
    except NotADirectoryError:
        raise UsageError(f"{settings.directory} is a file, not a migrations folder (use --dir)") from None
    except OSError as exc:
        raise UsageError(f"cannot read migrations folder {settings.directory}: {exc.strerror}") from None


def _session(target: Target, check: Callable | None = None) -> contextlib.AbstractContextManager[Session]:
    from sqlmigrate import db

    return db.session(target, check=check)


# -- check -------------------------------------------------------------------------


def check(settings: Settings, *, strict: bool = False) -> CheckReport:
    scan = scan_folder(settings)
    findings = rules.check(scan, Target.from_settings(settings).table)
    failing = any(f.is_error or strict for f in findings)
    return CheckReport(exit_code=1 if failing else 0, findings=tuple(findings), migrations=len(scan.migrations))


# -- config ------------------------------------------------------------------------


def config(settings: Settings) -> ConfigReport:
    """The settings in effect and where each came from; the password masked, nothing connected."""
    shown = {
        "database_url": mask_url(settings.database_url),
        "dir": str(settings.directory),
        "table": settings.table,
        "lock_wait": f"{settings.lock_wait:g}",
        "lock_timeout": settings.lock_timeout or "",
        "lock_retries": str(settings.lock_retries),
        "statement_timeout": settings.statement_timeout or "",
        "backup_dir": str(settings.backup_dir) if settings.backup_dir else "",
        "pg_dump": settings.pg_dump or "",
        "targets": settings.targets,
    }
    sources = dict(settings.sources)
    return ConfigReport(settings=tuple((key, value, sources.get(key, "default")) for key, value in shown.items()))


# -- status ------------------------------------------------------------------------


def status(settings: Settings) -> StatusReport:
    scan = scan_folder(settings)
    with _session(Target.from_settings(settings)) as session:
        rows = session.tracking.rows()
        where = session.describe()
    return status_report(scan, rows, where, settings.table)


def status_report(scan: discovery.Scan, rows: list, where: str, table: str) -> StatusReport:
    """`status` of one database from its tracking rows (pure)."""
    scan = planning.assign_rows(scan, rows)  # a duplicate id: the finding names the folder that is not applied
    states = planning.statuses(scan, rows)
    return StatusReport(statuses=tuple(states), database=where, table=table, findings=scan.findings)


# -- up / down ---------------------------------------------------------------------


def up(
    settings: Settings,
    listener: Listener,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
) -> UpReport:
    scan = scan_folder(settings)
    return _migrate(UpReport, settings, listener, dry_run, scan,
                    up_planner(scan, to=to, allow_out_of_order=allow_out_of_order))


Planner = Callable[[list, Validator], Plan]  # tracking rows and a validator -> the plan


def up_planner(scan: discovery.Scan, *, to: str | None = None, allow_out_of_order: bool = False) -> Planner:
    def make_plan(rows: list, validator: Validator) -> Plan:
        selection = planning.select_up(scan, rows, to=to, allow_out_of_order=allow_out_of_order)
        findings, files = validator.ups(selection.scan, selection.checked)
        return planning.plan_up(selection, findings, files)

    return make_plan


def down(
    settings: Settings,
    listener: Listener,
    *,
    steps: int | None = None,
    to: str | None = None,
    all_: bool = False,
    dry_run: bool = False,
) -> DownReport:
    scan = scan_folder(settings)
    return _migrate(DownReport, settings, listener, dry_run, scan, down_planner(scan, steps=steps, to=to, all_=all_))


def down_planner(scan: discovery.Scan, *, steps: int | None = None, to: str | None = None,
                 all_: bool = False) -> Planner:
    def make_plan(rows: list, validator: Validator) -> Plan:
        selection = planning.select_down(scan, rows, steps=steps, to=to, all_=all_)
        return planning.plan_down(selection, validator.downs(selection))

    return make_plan


_Migrated = TypeVar("_Migrated", bound=MigrateReport)


def _migrate(kind: type[_Migrated], settings: Settings, listener: Listener, dry_run: bool,
             scan: discovery.Scan, make_plan: Planner) -> _Migrated:
    """Read the tracking rows, plan, validate, and run the plan under the lock.

    The validation may start in a forked child before psycopg is imported
    (validation.Validator.start), so the database modules are imported after it.
    """
    target = Target.from_settings(settings)
    with Validator.start(scan, target.table, kind.command, in_parallel=settings.validate_in_parallel) as validator:
        from sqlmigrate import preflight

        check = preflight.for_command(target.url, kind.command, dry_run=dry_run)  # standby, pooler
        with _session(target, check) as session:
            return migrate_on(kind, session, settings, listener, dry_run, make_plan, validator)


def migrate_on(kind: type[_Migrated], session: Session, settings: Settings, listener: Listener, dry_run: bool,
               make_plan: Planner, validator: Validator) -> _Migrated:
    """`up` or `down` on one open session (checked by preflight): plan from the
    rows read under the lock, back up (`up --backup`), then run the plan. The
    validator is closed once the plan is made."""
    from sqlmigrate import backup as dumps, executor
    from sqlmigrate.watch import Watcher

    target = session.target

    def plan_then_stop_the_child(rows: list) -> Plan:
        try:
            return make_plan(rows, validator)
        finally:
            validator.close()

    if dry_run:
        plan = plan_then_stop_the_child(session.tracking.rows())
        listener(events.Planned(plan, target.display))
        return kind(plan=plan, dry_run=True, table=settings.table)
    with session.lock(settings.lock_wait, listener):
        # the state is read under the lock: a concurrent run may just have finished
        plan = plan_then_stop_the_child(session.tracking.rows())
        listener(events.Planned(plan, target.display))
        backup = dumps.before_up(session.conn, settings, plan, target.schema) if kind is UpReport else None
        if backup is not None:
            listener(events.BackedUp(backup, target.display))
        if kind is UpReport and plan.steps:
            # only now: a refused up changes nothing, the table included (SPEC 3)
            session.tracking.create()
        watcher = Watcher(target, listener, progress=settings.show_progress,
                          blockers=bool(settings.lock_timeout))
        try:
            results = executor.run(session, plan, listener, lock_retries=settings.lock_retries,
                                   watcher=watcher)
        except ConnectionLost as lost:
            raise _settled(target, lost) from lost
        finally:
            watcher.close()
    failed = next((r for r in results if r.error is not None), None)
    return kind(exit_code=4 if failed else 0, plan=plan, table=settings.table, results=tuple(results),
                failed=failed, not_run=plan.steps[len(results):], backup=backup)


def _settled(target: Target, lost: ConnectionLost) -> DatabaseUnavailable:
    """Say what a lost connection left of its migration: its COMMIT, sent in the
    same query string, may have gone through just before the loss. The tracking
    row is read on a new connection (waiting at most SETTLE_CONNECT_SECONDS:
    the server may be gone)."""
    from sqlmigrate import db, executor

    try:
        with db.session(target, timeout=SETTLE_CONNECT_SECONDS) as session:
            committed = executor.is_committed(session.tracking, lost.step_id, is_up=lost.is_up)
    except (DatabaseUnavailable, UsageError):
        return DatabaseUnavailable(f"{lost.message}; its transaction was rolled back by the server unless its "
                                   "COMMIT had gone through: `sqlmigrate status` tells which, once the server "
                                   "answers again")
    if committed:
        return DatabaseUnavailable(f"{lost.message} just after its COMMIT: {executor.outcome(is_up=lost.is_up)}")
    return DatabaseUnavailable(f"{lost.message}; its transaction was rolled back by the server")


SETTLE_CONNECT_SECONDS = 5


# -- generate ----------------------------------------------------------------------

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def generate(settings: Settings, name: str | None) -> GenerateReport:
    """Create the next migration folder with comment-only templates; never overwrite."""
    if name is None:
        raise UsageError("generate needs the migration's name: sqlmigrate generate NAME (e.g. add_orders)")
    clean = _migration_name(name)
    next_id, folder = _next_folder(settings.directory, clean)
    _make_folder(folder)
    created: list[Path] = []
    for kind, what, extra in (
        ("up", "that makes the change", ""),
        ("down", "that undoes up.sql exactly", _DOWN_EXTRA),
    ):
        path = folder / f"{kind}.sql"
        with path.open("x", encoding="utf-8") as handle:
            handle.write(TEMPLATE.format(kind=kind, folder=folder.name, what=what, extra=extra))
        created.append(path)
    return GenerateReport(created=tuple(created), id=next_id, name=clean)



def _migration_name(name: str) -> str:
    """NAME lower-cased, spaces and '-' as '_' (SPEC 3); UsageError when still not a valid name."""
    clean = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if not _NAME.match(clean):
        raise UsageError(
            f"migration name {name!r} is not valid: use letters, digits, spaces, '-' or '_', "
            "starting with a letter or digit"
        )
    return clean


def _next_folder(directory: Path, clean: str) -> tuple[str, Path]:
    """The next id (max + 1, zero-padded to the widest id's width; 3 digits when there is none) and its folder."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a folder")
    numbers: list[tuple[int, int]] = []
    if directory.is_dir():
        for entry in directory.iterdir():
            match = discovery.FOLDER_NAME.fullmatch(entry.name)
            if entry.is_dir() and match:
                numbers.append((int(match["id"]), len(match["id"])))
    if numbers:
        highest, width = max(numbers)
    else:
        highest, width = 0, 3
    next_id = str(highest + 1).zfill(width)
    return next_id, directory / f"{next_id}_{clean}"


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        # a plain file of that name (plain files are ignored when ids are counted)
        raise UsageError(f"{folder} already exists; nothing was created") from None


# -- verify, repair, baseline -------------------------------------------------------


def verify(settings: Settings) -> VerifyReport:
    """Exit 1 naming each modified, missing or failed migration; pending ones are fine."""
    scan = scan_folder(settings)
    with _session(Target.from_settings(settings)) as session:
        rows = session.tracking.rows()
    return verify_report(scan, rows)


def verify_report(scan: discovery.Scan, rows: list) -> VerifyReport:
    """`verify` of one database from its tracking rows (pure). Raises Refused
    when a folder has the id of an applied migration."""
    states = planning.statuses(scan, rows)
    problems = [s for s in states if s.state in planning.VERIFY_PROBLEMS]
    duplicates = planning.duplicates_of_applied(scan, rows)
    if duplicates:
        # another folder claims an applied migration's id: the files no longer say
        # which migration that is (the applied one is compared all the same)
        raise Refused(
            "verify failed: a folder has the same id as an applied migration",
            details=tuple(f"{s.id}_{s.name}: {s.state.value}" for s in problems)
            + ("`up` refuses until that folder has an id of its own",),
            findings=tuple(duplicates),
        )
    return VerifyReport(exit_code=1 if problems else 0, statuses=tuple(states), problems=tuple(problems))


def repair(settings: Settings, listener: Listener, ids: list[str]) -> RepairReport:
    """Record current checksums / clear failed runs, in one transaction under the lock."""
    from sqlmigrate import db, preflight

    scan = scan_folder(settings)
    with _session(Target.from_settings(settings), preflight.for_command(settings.database_url, "repair")) as session:
        with session.lock(settings.lock_wait, listener):
            repairs = planning.plan_repair(scan, session.tracking.rows(), ids)
            queries = [_repair_query(session.tracking, r) for r in repairs]
            db.run_in_transaction(session.conn, queries, doing="repairing the tracking table")
    return RepairReport(repairs=tuple(repairs))


def _repair_query(tracking, repair: Repair):
    if repair.action is RepairAction.CLEAR_FAILED_UP:
        return tracking.delete_query(repair.row_id)
    if repair.action is RepairAction.CLEAR_FAILED_DOWN:
        return tracking.update_query(repair.row_id, state=RowState.APPLIED.value, failed_during=None,
                                     statements_run=None)
    return tracking.update_query(repair.row_id, checksum=repair.checksum, content_checksum=repair.content_checksum,
                                 down_sql=repair.down_sql)


def baseline(settings: Settings, listener: Listener, to: str) -> BaselineReport:
    """Record every migration up to `to` as applied without running it."""
    from sqlmigrate import db, preflight

    scan = scan_folder(settings)
    check = preflight.for_command(settings.database_url, "baseline")
    with _session(Target.from_settings(settings), check) as session:
        tracking = session.tracking
        with session.lock(settings.lock_wait, listener):
            chosen = planning.plan_baseline(scan, tracking.rows(), to)
            tracking.create()
            queries = []
            for m in chosen:
                up = rules.parse(m.up)
                assert up is not None
                queries.append(tracking.insert_query(
                    id=m.id, name=m.name, checksum=up.checksum, content_checksum=up.content_checksum,
                    down_sql=m.down.text, state=RowState.APPLIED.value, duration_ms=None,
                ))
            db.run_in_transaction(session.conn, queries, doing="recording the baseline")
    notes = [f"{m.id}_{m.name}: down.sql {'is not UTF-8' if m.down.exists else 'is missing'}, so no copy of it "
             "is stored; `down` of it will need the file on disk" for m in chosen if m.down.text is None]
    return BaselineReport(recorded=tuple(chosen), notes=tuple(notes))


# -- test, drift, schema ---------------------------------------------------------------
# These work in a scratch database of their own (schema.ScratchDatabase) and
# only read the target: SPEC 3.


def test(settings: Settings, listener: Listener, *, start: str | None = None) -> TestReport:
    """SPEC 3: for each migration, up, down, compare with the schema before up, up again.

    With `start` (--from ID), the migrations below ID are only applied, as
    `up` applies them, and those from ID on are tested: a branch's new ones.
    Runs in a scratch database, dropped at the end whatever happens; the
    target is only used to reach its server. Exit 1 when any migration fails,
    or one below ID does not build. Raises Refused on validation errors,
    UsageError for an unknown ID, DatabaseUnavailable, Interrupted.
    """
    from sqlmigrate.schema import roundtrip

    scan = scan_folder(settings)
    built, tested = planning.split_from(scan, start) if start is not None else ((), scan.migrations)
    target = Target.from_settings(settings)
    findings = rules.check(scan, target.table)
    blocking, _ = planning.split_for_up(findings)
    if blocking:
        raise Refused("validation failed; nothing was tested", findings=tuple(blocking))
    # errors in a down.sql do not block up: that down is reported, not run
    down_errors: dict[Path, list] = {}
    for f in findings:
        if f.is_error and rules.is_down_file(f):
            down_errors.setdefault(Path(f.path), []).append(f)
    with roundtrip.scratch_database(target, settings.scratch_url) as scratch:
        session, failed_build = roundtrip.build(scratch, target, roundtrip.up_plan(built), listener)
        results = [] if failed_build else roundtrip.round_trips(scratch, target, tested, down_errors, listener,
                                                                session=session, built=built)
    failed = failed_build is not None or any(r.verdict in ("failed", "not tested") for r in results)
    return TestReport(exit_code=1 if failed else 0, results=tuple(results), table=settings.table,
                      scratch_databases=tuple(scratch.created), start=start, built=len(built),
                      failed_build=failed_build)


def drift(settings: Settings, listener: Listener = events.silent) -> DriftReport:
    """SPEC 3: build what the applied migrations make in a scratch database; compare with the live one.

    Exit 1 on drift (or when those migrations do not build). Raises Refused
    when an applied migration's up.sql is gone, failed or invalid.
    """
    from sqlmigrate.model import State
    from sqlmigrate.schema import catalog, diff, roundtrip

    scan = scan_folder(settings)
    target = Target.from_settings(settings)
    with _session(target) as session:
        rows = session.tracking.rows()
        where = session.describe()
        live = catalog.snapshot(session.conn, exclude=session.excluded)
    applied = [s for s in planning.statuses(scan, rows) if s.row is not None]
    unusable = [s for s in applied if s.state in (State.MISSING, State.FAILED)]
    if unusable:
        raise Refused(
            "drift rebuilds the schema from the up.sql of every applied migration, and cannot for: "
            + ", ".join(f"{s.id}_{s.name} ({s.state.value})" for s in unusable),
            details=tuple(n for s in unusable for n in s.notes),
        )
    notes = [f"{s.id}_{s.name}: up.sql changed since it was applied; built from the file as it is now"
             for s in applied if s.state is State.MODIFIED]
    numbers = {int(s.id) for s in applied}
    blocking, _ = planning.split_for_up(rules.check(scan, target.table, only=lambda m: m.number in numbers))
    if blocking:
        raise Refused("validation failed; nothing was compared", findings=tuple(blocking))
    # every one has its files: a missing migration was refused above
    plan = roundtrip.up_plan(s.migration for s in applied if s.migration is not None)
    with roundtrip.scratch_database(target, settings.scratch_url) as scratch:
        built, failed = roundtrip.build(scratch, target, plan, listener)
        expected = None if failed else built.snapshot()
    report = DriftReport(exit_code=1, database=where, applied=len(applied), notes=tuple(notes), failed=failed,
                         scratch_databases=tuple(scratch.created))
    if failed is not None or expected is None:
        return report
    differences = tuple(diff(expected, live))
    return dataclasses.replace(report, differences=differences,
                               exit_code=1 if any(not d.is_note for d in differences) else 0)


def plan(settings: Settings, listener: Listener = events.silent, *, to: str | None = None,
         max_rows: int = DEFAULT_MAX_ROWS, strict: bool = False) -> PlanReport:
    """SPEC 8: rehearse the pending migrations in a scratch database built from
    the applied ones, and grade what each statement locked and rewrote by the
    size of the target's tables.

    Only reads the target: its tracking rows and table sizes, in read-only
    queries (the tracking table is not created). Exit 1 on an error finding
    (a warning too when `strict`), or when a migration fails in the scratch
    database. Raises Refused as `up` refuses (failed, modified, out of order,
    invalid), or when an applied migration's folder is gone;
    DatabaseUnavailable; Interrupted.
    """
    from sqlmigrate import grading, rehearsal
    from sqlmigrate.model import State
    from sqlmigrate.schema import roundtrip

    scan = scan_folder(settings)
    target = Target.from_settings(settings)
    with _session(target) as session:
        rows = session.tracking.rows()
        where = session.describe()
        selection = planning.select_up(scan, rows, to=to)
        findings, files = Validator(target.table).ups(selection.scan, selection.checked)
        blocking, _ = planning.split_for_up(findings)
        if blocking:
            raise Refused("validation failed; nothing was rehearsed", findings=tuple(blocking))
        pending = planning.plan_up(selection, findings, files)
        applied = [s for s in planning.statuses(selection.scan, rows) if s.row is not None]
        gone = [s for s in applied if s.migration is None]
        if gone:
            raise Refused(
                "plan builds the schema from the up.sql of every applied migration, and cannot for: "
                + ", ".join(f"{s.id}_{s.name} ({s.state.value})" for s in gone),
                details=tuple(n for s in gone for n in s.notes),
            )
        sizes, estimated = rehearsal.table_sizes(session.conn) if pending.steps else ({}, False)
    notes = [f"{pending.held_back} pending migration(s) above --to {to} not rehearsed"] if pending.held_back else []
    notes += [f"{s.id}_{s.name}: up.sql reformatted since it was applied; built from the file as it is now"
              for s in applied if s.state is State.REFORMATTED]
    if estimated:
        notes.append("a table of the target was locked by another session: table sizes are estimated from "
                     "pg_class.relpages")
    report = PlanReport(database=where, max_rows=max_rows, applied=len(applied), notes=tuple(notes),
                        held_back=pending.held_back, sizes=sizes)
    if not pending.steps:
        return report  # nothing to rehearse: no scratch database
    build = roundtrip.up_plan(s.migration for s in applied if s.migration is not None)
    with roundtrip.scratch_database(target, settings.scratch_url) as scratch:
        built, failed = roundtrip.build(scratch, target, build, listener)
        rehearsed = () if failed else tuple(rehearsal.rehearse(scratch, built.session, pending.steps))
    report = dataclasses.replace(report, scratch_databases=tuple(scratch.created))
    if failed is not None:
        return dataclasses.replace(report, exit_code=1, failed_build=failed)
    graded = tuple(grading.grade(rehearsed, sizes, max_rows))
    failing = any(f.is_error or strict for f in graded) or any(r.verdict != "rehearsed" for r in rehearsed)
    return dataclasses.replace(report, exit_code=1 if failing else 0, migrations=rehearsed, findings=graded)


def drift_generate(settings: Settings, listener: Listener, name: str, *, record: bool = False) -> CorrectiveReport:
    """SPEC 9: the migration that turns what the applied migrations build into the live schema.

    Proven in a scratch database before anything is written: the applied
    migrations plus its up.sql give the live schema, and its down.sql then
    gives the migrations' schema. With `record`, it is then recorded as
    applied on the live database (which has the change already). Exit 1,
    nothing written, when a difference cannot be expressed or the proof leaves
    one. Raises UsageError (NAME), Refused (validation, unusable or, with
    `record`, pending migrations), DatabaseUnavailable, LockTimeout.
    """
    from datetime import datetime, timezone

    from sqlmigrate.model import State
    from sqlmigrate.schema import catalog, ddl, diff, roundtrip

    clean = _migration_name(name)
    directory = settings.directory
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a migrations folder (use --dir)")
    scan = scan_folder(settings) if directory.exists() else discovery.Scan((), ())
    target = Target.from_settings(settings)
    # as `up` refuses: the new migration joins this folder, where `up` will run it
    blocking, _ = planning.split_for_up(rules.check(scan, target.table))
    if blocking:
        raise Refused("validation failed; nothing was generated", findings=tuple(blocking))
    with _session(target) as session:
        rows = session.tracking.rows()
        where = session.describe()
        live = catalog.snapshot(session.conn, exclude=session.excluded, detailed=True)
    states = planning.statuses(scan, rows)
    applied = [s for s in states if s.row is not None]
    unusable = [s for s in applied if s.state in (State.MISSING, State.FAILED)]
    if unusable:
        raise Refused(
            "drift rebuilds the schema from the up.sql of every applied migration, and cannot for: "
            + ", ".join(f"{s.id}_{s.name} ({s.state.value})" for s in unusable),
            details=tuple(n for s in unusable for n in s.notes),
        )
    pending = tuple(f"{s.id}_{s.name}" for s in states if s.state is State.PENDING)
    if record and pending:
        raise Refused(
            f"--record would record the new migration as applied above {len(pending)} pending migration(s) "
            f"({', '.join(pending[:5])}{', ...' if len(pending) > 5 else ''}), which `up` would then refuse as "
            "out of order; nothing was generated",
            details=("apply them first (sqlmigrate up), or generate without --record",),
        )
    notes = [f"{s.id}_{s.name}: up.sql changed since it was applied; built from the file as it is now"
             for s in applied if s.state is State.MODIFIED]
    if pending:
        notes.append(f"drift compares the applied migrations only; {len(pending)} pending migration(s) are not "
                     "part of it, and the new migration's id comes after theirs")
    next_id, folder = _next_folder(directory, clean)
    report = CorrectiveReport(exit_code=1, database=where, applied=len(applied), pending=pending,
                              notes=tuple(notes), id=next_id, name=clean, folder=folder)
    plan = roundtrip.up_plan(s.migration for s in applied if s.migration is not None)
    header = _Header(where, len(applied), f"{applied[-1].id}_{applied[-1].name}" if applied else "", next_id,
                     clean, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    with roundtrip.scratch_database(target, settings.scratch_url) as scratch:
        built, failed = roundtrip.build(scratch, target, plan)
        report = dataclasses.replace(report, scratch_databases=tuple(scratch.created))
        if failed is not None:
            return dataclasses.replace(report, failed=failed)
        expected = built.snapshot(detailed=True)
        differences = tuple(diff(expected, live))
        failures = [d for d in differences if not d.is_note]
        report = dataclasses.replace(report, differences=differences)
        if not failures:
            return dataclasses.replace(report, exit_code=0, folder=None)
        up_script, down_script = ddl.corrective(failures, expected, live)
        unexpressed = tuple(("up.sql", u) for u in up_script.unexpressed) + tuple(
            ("down.sql", u) for u in down_script.unexpressed)
        if unexpressed:
            return dataclasses.replace(report, unexpressed=unexpressed)
        up_text = up_script.text(header.lines("up", up_script.notes))
        down_text = down_script.text(header.lines("down", ()))
        up_sql, down_sql = _generated(folder / "up.sql", up_text), _generated(folder / "down.sql", down_text)
        findings = rules.check_file(up_sql, "up", target.table) + rules.check_file(down_sql, "down", target.table)
        report = dataclasses.replace(report, renames=up_script.notes, warnings=tuple(rules.sort_findings(findings)))
        if any(f.is_error for f in findings):
            return report  # its own statements refused by `check`: shown with the warnings, never written
        proof = _prove(built, up_sql, down_sql, down_text, next_id, clean, live, expected)
        if proof is not None:
            return dataclasses.replace(report, **proof)
    had_directory = directory.exists()
    created = _write_migration(folder, up_text, down_text)
    report = dataclasses.replace(report, exit_code=0, created=created, proven=True)
    if record:
        try:
            _record(settings, target, listener, rows, live, next_id, clean, up_sql, down_text)
        except BaseException as exc:
            # nothing written unless recorded, when recording was asked for
            _unwrite(folder, created, None if had_directory else directory)
            if isinstance(exc, SqlMigrateError):
                exc.details = (*exc.details, f"{folder} was proven, then removed: nothing was written or recorded")
            raise
        report = dataclasses.replace(report, recorded=True)
    return report


@dataclasses.dataclass(frozen=True)
class _Header:
    """What the comment at the top of a generated file says: what it was made from, and when."""

    database: str  # as Session.describe() puts it: no password
    applied: int
    last: str  # <id>_<name> of the newest applied migration ("" when none is)
    id: str
    name: str
    when: str

    def lines(self, kind: str, notes: tuple[str, ...]) -> list[str]:
        upto = f" (up to {self.last})" if self.last else ""
        made = (f"{self.id}_{self.name}/{kind}.sql: made by `sqlmigrate drift --generate` on {self.when} from the "
                f"drift of {self.database} against its {self.applied} applied migration(s){upto}.")
        if kind == "up":
            what = ["It turns the schema those migrations build into the live one.",
                    "Proven before it was written: in a scratch database the applied migrations plus this file",
                    "give the live schema, and down.sql then gives the migrations' schema again.",
                    "It moves no data: review every DROP."]
        else:
            what = ["It undoes up.sql: the live schema back to the one the applied migrations build",
                    "(proven together with up.sql)."]
        return [*_wrapped(made), *what, *(line for note in notes for line in _wrapped(f"note: {note}"))]


def _wrapped(text: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def _generated(path: Path, text: str) -> SqlFile:
    """A generated file as `up` reads one from disk."""
    from sqlmigrate import sqltext
    from sqlmigrate.model import MigrationFile

    data = text.encode("utf-8")
    parsed = rules.parse(MigrationFile(path, True, sqltext.checksum(data), data))
    assert parsed is not None
    return parsed


def _prove(built: ScratchSession, up_sql: SqlFile, down_sql: SqlFile, down_text: str, id_: str, name: str,
           live: Snapshot, expected: Snapshot) -> dict | None:
    """SPEC 9's proof in the scratch database where the applied migrations ran:
    None when it holds, else what the report says instead."""
    from sqlmigrate.model import Direction, Step
    from sqlmigrate.schema import diff

    for kind, sql_file, want in (("up.sql", up_sql, live), ("down.sql", down_sql, expected)):
        direction = Direction.UP if kind == "up.sql" else Direction.DOWN
        result = built.run(Step(direction, id_, name, sql_file, None, down_text if kind == "up.sql" else None))
        if result.error is not None:
            return {"proof_error": (kind, result.error, _statement_at(sql_file, result.error.line))}
        left = tuple((kind, d) for d in diff(want, built.snapshot()) if not d.is_note)
        if left:
            return {"leftovers": left}
    return None


def _statement_at(sql_file: SqlFile, line: int) -> str:
    text = sql_file.text
    found = [s for s in sql_file.statements if s.line <= line]
    return found[-1].text_in(text).strip() if found else ""


def _write_migration(folder: Path, up_text: str, down_text: str) -> tuple[Path, ...]:
    _make_folder(folder)
    created: list[Path] = []
    try:
        for kind, text in (("up", up_text), ("down", down_text)):
            path = folder / f"{kind}.sql"
            with path.open("x", encoding="utf-8") as handle:
                handle.write(text)
            created.append(path)
    except OSError as exc:
        _unwrite(folder, tuple(created))
        raise UsageError(f"cannot write {folder}: {exc.strerror}; nothing was written") from None
    return tuple(created)


def _unwrite(folder: Path, created: tuple[Path, ...], directory: Path | None = None) -> None:
    """Remove what this run wrote, and nothing else (`directory`: the migrations folder, if this run made it)."""
    for path in created:
        with contextlib.suppress(OSError):
            path.unlink()
    for made in (folder, directory):
        if made is not None:
            with contextlib.suppress(OSError):
                made.rmdir()  # only when empty


def _record(settings: Settings, target: Target, listener: Listener, rows_seen: list[AppliedRow], live: Snapshot,
            id_: str, name: str, up_sql: SqlFile, down_text: str) -> None:
    """Record the new migration as applied, under the migration lock, in one transaction (as `up` records
    one), after making sure the live database is as it was when the migration was proven."""
    from sqlmigrate import db
    from sqlmigrate.model import RowState
    from sqlmigrate.schema import catalog

    def state(rows: list[AppliedRow]) -> list[tuple]:
        return [(r.id, r.checksum, r.state) for r in rows]

    with _session(target) as session:
        with session.lock(settings.lock_wait, listener):
            tracking = session.tracking
            rows = tracking.rows()
            now = catalog.snapshot(session.conn, exclude=session.excluded)
            if state(rows) != state(rows_seen) or now != live:
                raise Refused("the live database changed while the migration was generated; run drift "
                              "--generate again")
            tracking.create()
            query = tracking.insert_query(id=id_, name=name, checksum=up_sql.checksum,
                                          content_checksum=up_sql.content_checksum, down_sql=down_text,
                                          state=RowState.APPLIED.value, duration_ms=None)
            db.run_in_transaction(session.conn, [query], doing=f"recording {id_}_{name} as applied")


def schema(settings: Settings, output: Path | None = None, *, form: str = "text") -> SchemaReport:
    """The snapshot of the database's schema (tracking table left out); written to `output` if given,
    as text or (`form` "mermaid") as an ER diagram."""
    from sqlmigrate.schema import catalog

    with _session(Target.from_settings(settings)) as session:
        where = session.describe()
        snap = catalog.snapshot(session.conn, exclude=session.excluded)
    if output is not None:
        try:
            output.write_text(_schema_text(snap, form), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    return SchemaReport(snapshot=snap, database=where, output=output, form=form)


def _schema_text(snap, form: str) -> str:
    if form == "mermaid":
        from sqlmigrate.schema.mermaid import er_diagram

        return er_diagram(snap)
    return snap.to_text()

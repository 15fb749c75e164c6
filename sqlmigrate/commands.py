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

from sqlmigrate import discovery, events, grading, plan as planning, rules
from sqlmigrate.config import Settings, mask_url
from sqlmigrate.errors import ConnectionLost, DatabaseUnavailable, Refused, UsageError
from sqlmigrate.events import Listener
from sqlmigrate.model import Plan, Repair, RepairAction, RowState
from sqlmigrate.reports import (BaselineReport, CheckReport, ConfigReport, DownReport, DriftReport, GenerateReport,
                                MigrateReport, PlanReport, RepairReport, SchemaReport, StatusReport, TestReport,
                                UpReport, VerifyReport)
from sqlmigrate.target import Target
from sqlmigrate.validation import Validator

if TYPE_CHECKING:  # psycopg: loaded only by commands that connect
    from sqlmigrate.db import Session

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
    clean = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if not _NAME.match(clean):
        raise UsageError(
            f"migration name {name!r} is not valid: use letters, digits, spaces, '-' or '_', "
            "starting with a letter or digit"
        )
    directory = settings.directory
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
    folder = directory / f"{next_id}_{clean}"
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        # a plain file of that name (plain files are ignored when ids are counted)
        raise UsageError(f"{folder} already exists; nothing was created") from None
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


def test(settings: Settings, listener: Listener) -> TestReport:
    """SPEC 3: for each migration, up, down, compare with the schema before up, up again.

    Runs in a scratch database, dropped at the end whatever happens; the
    target is only used to reach its server. Exit 1 when any migration fails.
    Raises Refused on validation errors, DatabaseUnavailable, Interrupted.
    """
    from sqlmigrate.schema import roundtrip

    scan = scan_folder(settings)
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
        results = roundtrip.round_trips(scratch, target, scan.migrations, down_errors, listener)
    failed = any(r.verdict in ("failed", "not tested") for r in results)
    return TestReport(exit_code=1 if failed else 0, results=tuple(results), table=settings.table,
                      scratch_databases=tuple(scratch.created))


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
         max_rows: int = grading.DEFAULT_MAX_ROWS, strict: bool = False) -> PlanReport:
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
    from sqlmigrate import rehearsal
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

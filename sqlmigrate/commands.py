"""One function per command: Settings (+ options) -> Report. Orchestration only.

Database modules are imported inside the functions that need them, so that
`check`, `generate` and `--help` never load psycopg.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Callable, Iterator

from sqlmigrate import discovery, plan as planning, rules
from sqlmigrate.config import Settings
from sqlmigrate.errors import UsageError
from sqlmigrate.model import Plan, Repair, RepairAction, Report, RowState, Step, StepResult

TEMPLATE = """\
-- {kind}.sql of {folder}
-- Write the SQL {what}. sqlmigrate runs it in one transaction
-- together with its row in the tracking table.
-- Directives go above the first statement, for example:
--   -- sqlmigrate: no-transaction   (CREATE INDEX CONCURRENTLY, VACUUM, ...)
{extra}-- Until it holds a statement, `check` and `up` refuse this migration.
"""
_DOWN_EXTRA = "--   -- sqlmigrate: irreversible     (when the change cannot be undone)\n"


class Hooks:
    """What a command tells the user while it runs (render implements it)."""

    def waiting_for_lock(self, holder: str) -> None: ...

    def started(self, step: Step) -> None: ...

    def finished(self, result: StepResult) -> None: ...


def _scan(settings: Settings) -> discovery.Scan:
    try:
        return discovery.scan(settings.directory)
    except FileNotFoundError:
        raise UsageError(
            f"migrations folder {settings.directory} does not exist "
            "(use --dir, or `sqlmigrate generate NAME` to start one)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read migrations folder {settings.directory}: {exc.strerror}") from None


def _table(settings: Settings) -> rules.TrackingTable:
    return rules.TrackingTable.parse(settings.table)


@contextlib.contextmanager
def _session(settings: Settings) -> Iterator[tuple]:
    from sqlmigrate import db

    conn = db.connect(settings.database_url, options=settings.server_options())
    try:
        yield conn, db.Tracking(conn, settings.table)
    finally:
        conn.close()


# -- check -------------------------------------------------------------------------


def check(settings: Settings, *, strict: bool = False) -> Report:
    scan = _scan(settings)
    findings = rules.check(scan, _table(settings))
    failing = any(f.is_error or strict for f in findings)
    return Report("check", 1 if failing else 0, {"findings": findings, "migrations": len(scan.migrations)})


# -- status ------------------------------------------------------------------------


def status(settings: Settings) -> Report:
    scan = _scan(settings)
    with _session(settings) as (conn, tracking):
        rows = tracking.rows()
        from sqlmigrate import db

        where = db.describe_database(conn)
    states = planning.statuses(scan, rows)
    return Report("status", 0, {"statuses": states, "database": where, "table": settings.table,
                                "findings": list(scan.findings)})


# -- up / down ---------------------------------------------------------------------


def up(
    settings: Settings,
    hooks: Hooks,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
) -> Report:
    scan = _scan(settings)
    table = _table(settings)
    make_plan: Callable[[list], Plan] = lambda rows: planning.plan_up(
        scan, rows, table, to=to, allow_out_of_order=allow_out_of_order
    )
    return _migrate("up", settings, hooks, make_plan, dry_run)


def down(
    settings: Settings,
    hooks: Hooks,
    *,
    steps: int | None = None,
    to: str | None = None,
    all_: bool = False,
    dry_run: bool = False,
) -> Report:
    scan = _scan(settings)
    table = _table(settings)
    make_plan: Callable[[list], Plan] = lambda rows: planning.plan_down(
        scan, rows, table, steps=steps, to=to, all_=all_
    )
    return _migrate("down", settings, hooks, make_plan, dry_run)


def _migrate(command: str, settings: Settings, hooks: Hooks, make_plan, dry_run: bool) -> Report:
    from sqlmigrate import db, executor

    with _session(settings) as (conn, tracking):
        if dry_run:
            plan = make_plan(tracking.rows())
            return Report(command, 0, {"plan": plan, "dry_run": True, "table": settings.table})
        with db.advisory_lock(conn, tracking, settings.lock_wait, hooks.waiting_for_lock):
            # the state is read under the lock: a concurrent run may just have finished
            plan = make_plan(tracking.rows())
            if command == "up" and plan.steps:
                # only now: a refused up changes nothing, the table included (SPEC 3)
                tracking.create()
            results = executor.run(conn, tracking, plan, hooks)
    failed = next((r for r in results if r.error is not None), None)
    left = plan.steps[len(results):]
    return Report(
        command,
        4 if failed else 0,
        {"plan": plan, "results": results, "failed": failed, "not_run": left, "dry_run": False},
    )


# -- generate ----------------------------------------------------------------------

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def generate(settings: Settings, name: str) -> Report:
    """Create the next migration folder with comment-only templates; never overwrite."""
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
            match = discovery.FOLDER_NAME.match(entry.name)
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
    return Report("generate", 0, {"created": created, "id": next_id, "name": clean})



# -- verify, repair, baseline -------------------------------------------------------


def verify(settings: Settings) -> Report:
    """Exit 1 naming each modified, missing or failed migration; pending ones are fine."""
    scan = _scan(settings)
    with _session(settings) as (conn, tracking):
        rows = tracking.rows()
    states = planning.statuses(scan, rows)
    problems = [s for s in states if s.state in planning.VERIFY_PROBLEMS]
    return Report("verify", 1 if problems else 0, {"statuses": states, "problems": problems})


def repair(settings: Settings, hooks: Hooks, ids: list[str]) -> Report:
    """Record current checksums / clear failed runs, in one transaction under the lock."""
    from sqlmigrate import db

    scan = _scan(settings)
    with _session(settings) as (conn, tracking):
        with db.advisory_lock(conn, tracking, settings.lock_wait, hooks.waiting_for_lock):
            repairs = planning.plan_repair(scan, tracking.rows(), ids)
            queries = [_repair_query(tracking, r) for r in repairs]
            db.run_in_transaction(conn, queries, doing="repairing the tracking table")
    return Report("repair", 0, {"repairs": repairs})


def _repair_query(tracking, repair: Repair):
    if repair.action is RepairAction.CLEAR_FAILED_UP:
        return tracking.delete_query(repair.id)
    if repair.action is RepairAction.CLEAR_FAILED_DOWN:
        return tracking.update_query(repair.id, state=RowState.APPLIED.value, failed_during=None,
                                     statements_run=None)
    return tracking.update_query(repair.id, checksum=repair.checksum, content_checksum=repair.content_checksum,
                                 down_sql=repair.down_sql)


def baseline(settings: Settings, hooks: Hooks, to: str) -> Report:
    """Record every migration up to `to` as applied without running it."""
    from sqlmigrate import db

    scan = _scan(settings)
    with _session(settings) as (conn, tracking):
        with db.advisory_lock(conn, tracking, settings.lock_wait, hooks.waiting_for_lock):
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
            db.run_in_transaction(conn, queries, doing="recording the baseline")
    return Report("baseline", 0, {"recorded": chosen})

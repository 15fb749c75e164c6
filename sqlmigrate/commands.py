"""One function per command: Settings (+ options) -> Report. Orchestration only.

Database modules are imported inside the functions that need them, so that
`check`, `generate` and `--help` never load psycopg.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from sqlmigrate import discovery, plan as planning, rules
from sqlmigrate.config import Settings
from sqlmigrate.errors import ConnectionLost, DatabaseUnavailable, Interrupted, Refused, UsageError
from sqlmigrate.model import Plan, Repair, RepairAction, Report, RowState, Step, StepResult

if TYPE_CHECKING:  # loaded only where a command forks (_migrate_validated)
    from sqlmigrate.prevalidate import Prevalidation

TEMPLATE = """\
-- {kind}.sql of {folder}
-- Write the SQL {what}. sqlmigrate runs it in one transaction
-- together with its row in the tracking table.
-- Directives go above the first statement, for example:
--   -- sqlmigrate: no-transaction   (CREATE INDEX CONCURRENTLY, VACUUM, ...)
{extra}-- Until it holds a statement, `check` and `up` refuse this migration.
"""
_DOWN_EXTRA = "--   -- sqlmigrate: irreversible     (when the change cannot be undone)\n"


class Hooks(Protocol):
    """What a command tells the user while it runs (render's Renderer has these
    methods; the library API subclasses this for the silent defaults)."""

    def waiting_for_lock(self, holder: str) -> None: ...

    def started(self, step: Step) -> None: ...

    def finished(self, result: StepResult) -> None: ...

    def tested(self, result) -> None:
        """`test` finished one migration (a schema.RoundTrip)."""

    # SPEC 7: under the lock, before anything runs; by default nothing is said
    def planned(self, plan: Plan) -> None:
        """`up` or `down` knows what it will run (its warnings are shown now)."""
        return None

    def backed_up(self, backup) -> None:
        """`up --backup` dumped the target (a backup.Backup)."""
        return None


def _scan(settings: Settings) -> discovery.Scan:
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


def _table(settings: Settings) -> rules.TrackingTable:
    return rules.TrackingTable.parse(settings.table)


@contextlib.contextmanager
def _session(settings: Settings, check: Callable | None = None) -> Iterator[tuple]:
    from sqlmigrate import db

    conn = db.connect(settings.database_url, options=settings.server_options(), check=check)
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
    scan = scan.for_rows(rows)  # a duplicate id: the finding names the folder that is not applied
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
    return _migrate_validated("up", settings, hooks, dry_run, scan, table, lambda rows, early: planning.plan_up(
        scan, rows, table, to=to, allow_out_of_order=allow_out_of_order,
        check_one=early.check_migration if early else None))


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
    return _migrate_validated("down", settings, hooks, dry_run, scan, table, lambda rows, early: planning.plan_down(
        scan, rows, table, steps=steps, to=to, all_=all_,
        check_downs=early.check_downs if early else None))


def _migrate_validated(command: str, settings: Settings, hooks: Hooks, dry_run: bool, scan: discovery.Scan,
                       table: rules.TrackingTable, make_plan: Callable[[list, Prevalidation | None], Plan]) -> Report:
    """_migrate, with the plan's files validated in a forked child (prevalidate)
    started before psycopg's import, which it overlaps. The command line's
    choice: a library caller's process is never forked."""
    early = None
    if settings.validate_in_parallel:
        from sqlmigrate.prevalidate import Prevalidation

        early = Prevalidation.start(scan, table, command)

    def plan_then_stop_the_child(rows: list) -> Plan:
        try:
            return make_plan(rows, early)
        finally:
            if early:
                early.close()

    try:
        return _migrate(command, settings, hooks, plan_then_stop_the_child, dry_run)
    finally:
        if early:
            early.close()


def _migrate(command: str, settings: Settings, hooks: Hooks, make_plan, dry_run: bool) -> Report:
    from sqlmigrate import backup as dumps, db, executor, preflight

    check = preflight.for_command(settings.database_url, command, dry_run=dry_run)  # SPEC 7: standby, pooler
    with _session(settings, check) as (conn, tracking):
        if dry_run:
            plan = make_plan(tracking.rows())
            return Report(command, 0, {"plan": plan, "dry_run": True, "table": settings.table})
        with db.advisory_lock(conn, tracking, settings.lock_wait, hooks.waiting_for_lock):
            # the state is read under the lock: a concurrent run may just have finished
            plan = make_plan(tracking.rows())
            hooks.planned(plan)
            backup = dumps.before_up(conn, settings, plan) if command == "up" else None
            if backup is not None:
                hooks.backed_up(backup)
            if command == "up" and plan.steps:
                # only now: a refused up changes nothing, the table included (SPEC 3)
                tracking.create()
            try:
                results = executor.run(conn, tracking, plan, hooks)
            except ConnectionLost as lost:
                raise _settled(settings, lost) from lost
    failed = next((r for r in results if r.error is not None), None)
    left = plan.steps[len(results):]
    return Report(
        command,
        4 if failed else 0,
        {"plan": plan, "results": results, "failed": failed, "not_run": left, "dry_run": False, "backup": backup},
    )


def _settled(settings: Settings, lost: ConnectionLost) -> DatabaseUnavailable:
    """Say what a lost connection left of its migration: its COMMIT, sent in the
    same query string, may have gone through just before the loss. The tracking
    row is read on a new connection (waiting at most SETTLE_CONNECT_SECONDS:
    the server may be gone)."""
    from sqlmigrate import db, executor

    try:
        conn = db.connect(settings.database_url, options=settings.server_options(),
                          timeout=SETTLE_CONNECT_SECONDS)
        try:
            committed = executor.is_committed(db.Tracking(conn, settings.table), lost.step_id, is_up=lost.is_up)
        finally:
            conn.close()
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


def generate(settings: Settings, name: str | None) -> Report:
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
    return Report("generate", 0, {"created": created, "id": next_id, "name": clean})



# -- verify, repair, baseline -------------------------------------------------------


def verify(settings: Settings) -> Report:
    """Exit 1 naming each modified, missing or failed migration; pending ones are fine."""
    scan = _scan(settings)
    with _session(settings) as (conn, tracking):
        rows = tracking.rows()
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
    return Report("verify", 1 if problems else 0, {"statuses": states, "problems": problems})


def repair(settings: Settings, hooks: Hooks, ids: list[str]) -> Report:
    """Record current checksums / clear failed runs, in one transaction under the lock."""
    from sqlmigrate import db, preflight

    scan = _scan(settings)
    with _session(settings, preflight.for_command(settings.database_url, "repair")) as (conn, tracking):
        with db.advisory_lock(conn, tracking, settings.lock_wait, hooks.waiting_for_lock):
            repairs = planning.plan_repair(scan, tracking.rows(), ids)
            queries = [_repair_query(tracking, r) for r in repairs]
            db.run_in_transaction(conn, queries, doing="repairing the tracking table")
    return Report("repair", 0, {"repairs": repairs})


def _repair_query(tracking, repair: Repair):
    if repair.action is RepairAction.CLEAR_FAILED_UP:
        return tracking.delete_query(repair.row_id)
    if repair.action is RepairAction.CLEAR_FAILED_DOWN:
        return tracking.update_query(repair.row_id, state=RowState.APPLIED.value, failed_during=None,
                                     statements_run=None)
    return tracking.update_query(repair.row_id, checksum=repair.checksum, content_checksum=repair.content_checksum,
                                 down_sql=repair.down_sql)


def baseline(settings: Settings, hooks: Hooks, to: str) -> Report:
    """Record every migration up to `to` as applied without running it."""
    from sqlmigrate import db, preflight

    scan = _scan(settings)
    with _session(settings, preflight.for_command(settings.database_url, "baseline")) as (conn, tracking):
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
    notes = [f"{m.id}_{m.name}: down.sql {'is not UTF-8' if m.down.exists else 'is missing'}, so no copy of it "
             "is stored; `down` of it will need the file on disk" for m in chosen if m.down.text is None]
    return Report("baseline", 0, {"recorded": chosen, "notes": notes})


# -- test, drift, schema ---------------------------------------------------------------
# These work in a scratch database of their own (schema.ScratchDatabase) and
# only read the target: SPEC 3.


def _interrupted_in_scratch(exc: BaseException) -> Interrupted:
    """Ctrl-C in `test` or `drift`: what the migration cut short left is in the
    scratch database, which is gone, so only where it stopped is worth saying."""
    step = exc.step if isinstance(exc, Interrupted) else None
    during = f" during {step} (in the scratch database)" if step else ""
    return Interrupted(f"interrupted{during}; the scratch database was dropped and the target database "
                       "was not changed")


class _Quiet:
    """Executor progress in a scratch database: `test` reports per migration instead."""

    def started(self, step: Step) -> None: ...

    def finished(self, result: StepResult) -> None: ...


def _up_step(migration) -> Step:
    from sqlmigrate.model import Direction

    up = rules.parse(migration.up)
    assert up is not None  # validation refused unreadable files
    return Step(Direction.UP, migration.id, migration.name, up, migration, migration.down.text)


def _excluded(tracking) -> tuple[str, str] | None:
    return (tracking.schema, tracking.name) if tracking.schema else None


class _ScratchState:
    """The scratch database of `test`, kept at "every migration so far applied"."""

    def __init__(self, scratch, table: str) -> None:
        self.scratch = scratch
        self.table = table
        self.conn, self.tracking = scratch.session(table)

    def run(self, step: Step) -> StepResult:
        from sqlmigrate import executor

        return executor.run(self.conn, self.tracking, Plan((step,)), _Quiet())[0]

    def snapshot(self):
        from sqlmigrate import schema as catalog

        return catalog.snapshot(self.conn, exclude=_excluded(self.tracking))

    def rebuild(self, migrations) -> StepResult | None:
        """A new scratch database with these ups applied; the failed step, if any."""
        from sqlmigrate import executor

        self.scratch.recreate()
        self.conn, self.tracking = self.scratch.session(self.table)
        results = executor.run(self.conn, self.tracking, Plan(tuple(_up_step(m) for m in migrations)), _Quiet())
        return next((r for r in results if r.error is not None), None)


def test(settings: Settings, hooks: Hooks) -> Report:
    """SPEC 3: for each migration, up, down, compare with the schema before up, up again.

    Runs in a scratch database, dropped at the end whatever happens; the
    target is only used to reach its server. Exit 1 when any migration fails.
    Raises Refused on validation errors, DatabaseUnavailable, Interrupted.
    """
    from sqlmigrate import schema as catalog

    scan = _scan(settings)
    findings = rules.check(scan, _table(settings))
    blocking, _ = planning.split_for_up(findings)
    if blocking:
        raise Refused("validation failed; nothing was tested", findings=tuple(blocking))
    # errors in a down.sql do not block up: that down is reported, not run
    down_errors: dict[Path, list] = {}
    for f in findings:
        if f.is_error and rules.is_down_file(f):
            down_errors.setdefault(Path(f.path), []).append(f)
    migrations = scan.migrations
    results: list = []
    try:
        with catalog.ScratchDatabase(settings.database_url, settings.server_options()) as scratch:
            state = _ScratchState(scratch, settings.table)
            for index, migration in enumerate(migrations):
                result, rebuild = _round_trip(state, migration, tuple(down_errors.get(migration.down.path, ())))
                results.append(result)
                hooks.tested(result)
                reason = None
                if result.errors and result.errors[0][0] == "up":
                    reason = f"not tested: {migration.id}_{migration.name}/up.sql failed before them"
                elif rebuild:
                    broken = state.rebuild(migrations[: index + 1])
                    if broken is not None:
                        reason = (f"not tested: rebuilding the scratch database failed at "
                                  f"{broken.step.id}_{broken.step.name}")
                if reason is not None:
                    for rest in migrations[index + 1:]:
                        results.append(catalog.RoundTrip(rest.id, rest.name, "not tested", reason=reason))
                        hooks.tested(results[-1])
                    break
    except (Interrupted, KeyboardInterrupt) as exc:
        raise _interrupted_in_scratch(exc) from None
    failed = any(r.verdict in ("failed", "not tested") for r in results)
    return Report("test", 1 if failed else 0, {"results": results, "table": settings.table,
                                               "scratch_databases": scratch.created})


def _round_trip(state: _ScratchState, migration, down_errors: tuple) -> tuple:
    """One migration's verdict, and whether the scratch database must be rebuilt.

    On return the scratch database is at "this migration applied", unless the
    up failed or the second value says it is not faithfully so.
    """
    from sqlmigrate import schema as catalog
    from sqlmigrate.model import Direction

    up, down = rules.parse(migration.up), rules.parse(migration.down)
    assert up is not None and down is not None  # validation refused missing or unreadable files
    verdict = lambda *a, **k: catalog.RoundTrip(migration.id, migration.name, *a, **k)  # noqa: E731
    before = state.snapshot()
    done = state.run(_up_step(migration))
    if done.error is not None:
        return verdict("failed", errors=(("up", done.error),)), False
    if down.is_irreversible:
        return verdict("irreversible"), False
    if down_errors:
        # as `down` would: a down.sql with errors is refused, not run
        return verdict("failed", findings=down_errors, reason="down.sql was not run: it has errors"), False
    after_up = state.snapshot()
    undone = state.run(Step(Direction.DOWN, migration.id, migration.name, down, migration))
    if undone.error is not None:
        # a transactional down was rolled back: the database is still "after up"
        return verdict("failed", errors=(("down", undone.error),)), not down.is_transactional
    differences = tuple(catalog.diff(before, state.snapshot()))
    redone = state.run(_up_step(migration))
    errors = (("up again", redone.error),) if redone.error is not None else ()
    failed = bool(errors) or any(not d.is_note for d in differences)
    # after a lossy down the second up may build something else: then start again from a faithful state
    rebuild = bool(errors) or (failed and any(not d.is_note for d in catalog.diff(after_up, state.snapshot())))
    name = "failed" if failed else ("notes" if differences else "ok")
    return verdict(name, differences=differences, errors=errors), rebuild


def drift(settings: Settings) -> Report:
    """SPEC 3: build what the applied migrations make in a scratch database; compare with the live one.

    Exit 1 on drift (or when those migrations do not build). Raises Refused
    when an applied migration's up.sql is gone, failed or invalid.
    """
    from sqlmigrate import db, executor, schema as catalog
    from sqlmigrate.model import State

    scan = _scan(settings)
    table = _table(settings)
    with _session(settings) as (conn, tracking):
        rows = tracking.rows()
        where = db.describe_database(conn)
        live = catalog.snapshot(conn, exclude=_excluded(tracking))
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
    blocking, _ = planning.split_for_up(rules.check(scan, table, only=lambda m: m.number in numbers))
    if blocking:
        raise Refused("validation failed; nothing was compared", findings=tuple(blocking))
    plan = Plan(tuple(_up_step(s.migration) for s in applied))
    try:
        with catalog.ScratchDatabase(settings.database_url, settings.server_options()) as scratch:
            scratch_conn, scratch_tracking = scratch.session(settings.table)
            results = executor.run(scratch_conn, scratch_tracking, plan, _Quiet())
            failed = next((r for r in results if r.error is not None), None)
            expected = None if failed else catalog.snapshot(scratch_conn, exclude=_excluded(scratch_tracking))
    except (Interrupted, KeyboardInterrupt) as exc:
        raise _interrupted_in_scratch(exc) from None
    data = {"database": where, "applied": len(applied), "notes": notes, "failed": failed, "differences": [],
            "scratch_databases": scratch.created}
    if failed is not None or expected is None:
        return Report("drift", 1, data)
    data["differences"] = differences = catalog.diff(expected, live)
    return Report("drift", 1 if any(not d.is_note for d in differences) else 0, data)


def schema(settings: Settings, output: Path | None = None) -> Report:
    """The snapshot of the database's schema (tracking table left out); written to `output` as text if given."""
    from sqlmigrate import db, schema as catalog

    with _session(settings) as (conn, tracking):
        where = db.describe_database(conn)
        snap = catalog.snapshot(conn, exclude=_excluded(tracking))
    if output is not None:
        try:
            output.write_text(snap.to_text(), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    return Report("schema", 0, {"snapshot": snap, "database": where, "output": output})

"""The round trip of `test` (up, down, compare, up again) and the build of
`drift`, in a scratch database that is dropped whatever happens.

Needs a connection (executor, db.py, psycopg); commands.py orchestrates it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from sqlmigrate import db, executor, rules
from sqlmigrate.errors import Interrupted
from sqlmigrate.events import Event, Listener, MigrationFinished, RoundTripTested, ScratchBuilt, silent
from sqlmigrate.model import Direction, Finding, Migration, Plan, SqlError, Step, StepResult
from sqlmigrate.schema import catalog
from sqlmigrate.schema.diff import Difference, diff
from sqlmigrate.schema.records import Snapshot
from sqlmigrate.schema.scratch import ScratchDatabase
from sqlmigrate.target import Target


@dataclass(frozen=True)
class RoundTrip:
    """The verdict of `test` on one migration.

    verdict: ok, notes (differences that are not failures), failed,
    irreversible (skipped), not tested (an earlier up failed).
    `errors` are (phase, error) with phase "up", "down" or "up again".
    """

    id: str
    name: str
    verdict: str
    differences: tuple[Difference, ...] = ()
    errors: tuple[tuple[str, SqlError], ...] = ()
    findings: tuple[Finding, ...] = ()  # down.sql validation errors: it was not run
    reason: str | None = None

    @property
    def is_failed(self) -> bool:
        return self.verdict == "failed"

    @property
    def failures(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if not d.is_note)

    @property
    def notes(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.is_note)


@contextlib.contextmanager
def scratch_database(target: Target, scratch_url: str | None = None) -> Iterator[ScratchDatabase]:
    """A ScratchDatabase on the target's server (or the one `scratch_url` names), dropped on exit.

    Raises Interrupted on Ctrl-C: what the migration cut short left is in the
    scratch database, which is gone, so only where it stopped is worth saying.
    """
    try:
        with ScratchDatabase(scratch_url or target.url, dict(target.server_options)) as scratch:
            yield scratch
    except (Interrupted, KeyboardInterrupt) as exc:
        step = exc.step if isinstance(exc, Interrupted) else None
        during = f" during {step} (in the scratch database)" if step else ""
        raise Interrupted(f"interrupted{during}; the scratch database was dropped and the target database "
                          "was not changed") from None


def up_plan(migrations: Iterable[Migration]) -> Plan:
    """The ups of these migrations, in order (validation has refused unreadable files)."""
    return Plan(tuple(_up_step(m) for m in migrations))


def build(scratch: ScratchDatabase, target: Target, plan: Plan,
          listener: Listener = silent) -> tuple[ScratchSession, StepResult | None]:
    """A session in `scratch` where `plan` ran; and the step that failed, if one did (those after it did not run).
    Each migration done is told to `listener` (ScratchBuilt)."""
    session = ScratchSession(scratch, target)
    total = len(plan.steps)
    done = 0

    def count(event: Event) -> None:
        nonlocal done
        if isinstance(event, MigrationFinished):
            done += 1
            listener(ScratchBuilt(done, total, target.display))

    return session, session.apply(plan, count)


def round_trips(scratch: ScratchDatabase, target: Target, migrations: Sequence[Migration],
                down_errors: Mapping[Path, Sequence[Finding]], listener: Listener, *,
                session: ScratchSession | None = None, built: Sequence[Migration] = ()) -> list[RoundTrip]:
    """SPEC 3: the verdict of each migration's round trip, in order, each told to `listener` as it comes.

    After an up fails, or the scratch database cannot be rebuilt, the
    migrations left are "not tested". `down_errors` are the validation errors
    of each down.sql (by path): such a down is reported, not run. `session`
    is one where `built` (the migrations before these, test --from) ran;
    a rebuild applies them again first.
    """
    session = session or ScratchSession(scratch, target)
    results: list[RoundTrip] = []
    for index, migration in enumerate(migrations):
        result, rebuild = _round_trip(session, migration, tuple(down_errors.get(migration.down.path, ())))
        results.append(result)
        listener(RoundTripTested(result, target.display, len(results), len(migrations)))
        reason = None
        if result.errors and result.errors[0][0] == "up":
            reason = f"not tested: {migration.id}_{migration.name}/up.sql failed before them"
        elif rebuild:
            broken = session.rebuild([*built, *migrations[: index + 1]])
            if broken is not None:
                reason = (f"not tested: rebuilding the scratch database failed at "
                          f"{broken.step.id}_{broken.step.name}")
        if reason is not None:
            for rest in migrations[index + 1:]:
                results.append(RoundTrip(rest.id, rest.name, "not tested", reason=reason))
                listener(RoundTripTested(results[-1], target.display, len(results), len(migrations)))
            break
    return results


def _round_trip(session: ScratchSession, migration: Migration, down_errors: tuple[Finding, ...]) -> tuple[RoundTrip, bool]:
    """One migration's verdict, and whether the scratch database must be rebuilt.

    On return the scratch database is at "this migration applied", unless the
    up failed or the second value says it is not faithfully so.
    """
    up, down = rules.parse(migration.up), rules.parse(migration.down)
    assert up is not None and down is not None  # validation refused missing or unreadable files
    verdict = lambda *a, **k: RoundTrip(migration.id, migration.name, *a, **k)  # noqa: E731
    before = session.current()
    done = session.run(_up_step(migration))
    if done.error is not None:
        return verdict("failed", errors=(("up", done.error),)), False
    if down.is_irreversible:
        return verdict("irreversible"), False
    if down_errors:
        # as `down` would: a down.sql with errors is refused, not run
        return verdict("failed", findings=down_errors, reason="down.sql was not run: it has errors"), False
    after_up = session.current()
    undone = session.run(Step(Direction.DOWN, migration.id, migration.name, down, migration))
    if undone.error is not None:
        # a transactional down was rolled back: the database is still "after up"
        return verdict("failed", errors=(("down", undone.error),)), not down.is_transactional
    differences = _differences(before, session.current())
    redone = session.run(_up_step(migration))
    errors = (("up again", redone.error),) if redone.error is not None else ()
    failed = bool(errors) or any(not d.is_note for d in differences)
    # after a lossy down the second up may build something else: then start again from a faithful state
    rebuild = bool(errors) or (failed and any(not d.is_note for d in _differences(after_up, session.current())))
    name = "failed" if failed else ("notes" if differences else "ok")
    return verdict(name, differences=differences, errors=errors), rebuild


class ScratchSession:
    """A session on the scratch database with the target's tracking table, where
    migrations run unreported (`test` reports per migration instead)."""

    def __init__(self, scratch: ScratchDatabase, target: Target) -> None:
        self.scratch = scratch
        self.target = target
        self.session: db.Session = scratch.session(target)
        self._last: catalog.Rows | None = None  # read since the last change, if one was

    def run(self, step: Step) -> StepResult:
        self._last = None
        return executor.run(self.session, Plan((step,)), silent)[0]

    def apply(self, plan: Plan, listener: Listener = silent) -> StepResult | None:
        """Run the plan's steps in order; the step that failed, if one did."""
        self._last = None
        results = executor.run(self.session, plan, listener)
        return next((r for r in results if r.error is not None), None)

    def snapshot(self, *, detailed: bool = False) -> Snapshot:
        return catalog.snapshot(self.session.conn, exclude=self.session.excluded, detailed=detailed)

    def current(self) -> catalog.Rows:
        """The schema as it is, as catalog rows: those read since the last migration ran here, else new ones.

        Nothing else writes to a scratch database, so what was read stays true
        until this session runs SQL again.
        """
        if self._last is None:
            self._last = catalog.rows(self.session.conn, exclude=self.session.excluded)
        return self._last

    def rebuild(self, migrations: Sequence[Migration]) -> StepResult | None:
        """A new scratch database with these ups applied; the failed step, if any."""
        self.scratch.recreate()
        self._last = None
        self.session = self.scratch.session(self.target)
        return self.apply(up_plan(migrations))


def _differences(expected: catalog.Rows, found: catalog.Rows) -> tuple[Difference, ...]:
    """How `found` differs from `expected`; none when the catalog gave the same rows for both,
    which is what most downs leave: then neither Snapshot is built."""
    return () if expected == found else tuple(diff(expected.snapshot(), found.snapshot()))


def _up_step(migration: Migration) -> Step:
    up = rules.parse(migration.up)
    assert up is not None  # validation refused unreadable files
    return Step(Direction.UP, migration.id, migration.name, up, migration, migration.down.text)

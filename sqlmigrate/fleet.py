"""`status`, `verify`, `up` and `down` on many targets (SPEC 10): the folder read
and validated once, then each target on a connection, lock and tracking table
of its own, at most `jobs` at a time. Prints nothing.

Threads, not processes: a target's time is spent waiting for its server, and
psycopg lets go of the GIL while it waits. Ctrl-C reaches the main thread
only: there it stops new targets and migrations from starting, and cancels
the query each running target has on its server, which rolls that migration
back as Ctrl-C on one target does.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence

from sqlmigrate import commands, discovery, events
from sqlmigrate.config import Settings
from sqlmigrate.errors import DatabaseUnavailable, Interrupted, SqlMigrateError, UsageError
from sqlmigrate.events import Event, Listener, MigrationFinished, MigrationStarted
from sqlmigrate.model import Direction, Step
from sqlmigrate.reports import DownReport, MigrateReport, Report, UpReport
from sqlmigrate.target import Target
from sqlmigrate.validation import Validator

if TYPE_CHECKING:
    import psycopg

    from sqlmigrate.db import Session

QUERY_CANCELED = "57014"
RECANCEL_EVERY_S = 0.5  # a cancel that reached the server between two statements is sent again
_POLL_S = 0.1


class State(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # no connection could be made
    SKIPPED = "skipped"  # not started: after a failure, a failed canary, or Ctrl-C
    INTERRUPTED = "interrupted"  # Ctrl-C while it ran


@dataclass(frozen=True)
class Outcome:
    """What became of one target."""

    target: Target
    state: State
    exit_code: int | None = None  # None: never started
    report: Report | None = None  # the one-database report, when the command ran to its end
    error: SqlMigrateError | None = None  # what stopped it otherwise
    reason: str = ""  # why it was skipped
    duration_s: float = 0.0


@dataclass(frozen=True)
class Options:
    jobs: int = 4  # targets running at once
    canary: int = 0  # the first K targets run first; none other starts if one of them fails
    on_error: str = "stop"  # "stop": no new target starts after a failure; "continue"


@dataclass(frozen=True)
class FleetReport:
    """One command on many targets: an outcome per target, in the order given."""

    command: str
    outcomes: tuple[Outcome, ...]
    notes: tuple[str, ...] = ()
    is_interrupted: bool = False
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """The highest of the targets' codes; 130 after Ctrl-C (SPEC 10)."""
        if self.is_interrupted:
            return Interrupted.exit_code
        return max((o.exit_code for o in self.outcomes if o.exit_code is not None), default=0)

    def count(self, state: State) -> int:
        return sum(1 for o in self.outcomes if o.state is state)


class Job(Protocol):
    """The command as it runs on one target's open session."""

    @property
    def command(self) -> str: ...

    def run(self, session: Session, listener: Listener) -> Report: ...


@dataclass(frozen=True)
class _Status:
    scan: discovery.Scan
    table: str
    command: str = "status"

    def run(self, session: Session, listener: Listener) -> Report:
        table = self.table if session.target.schema is None else session.tracking.qualified()
        return commands.status_report(self.scan, session.tracking.rows(), session.describe(), table)


@dataclass(frozen=True)
class _Verify:
    scan: discovery.Scan
    command: str = "verify"

    def run(self, session: Session, listener: Listener) -> Report:
        return commands.verify_report(self.scan, session.tracking.rows())


@dataclass(frozen=True)
class _Migrate:
    kind: type[MigrateReport]
    settings: Settings
    dry_run: bool
    planner: commands.Planner
    validator: Validator

    @property
    def command(self) -> str:
        return self.kind.command

    def run(self, session: Session, listener: Listener) -> Report:
        return commands.migrate_on(self.kind, session, self.settings, listener, self.dry_run, self.planner,
                                   self.validator)


def job(command: str, settings: Settings, scan: discovery.Scan, **options: Any) -> Job:
    """`command` (status, verify, up or down) with its options (those of commands.up / commands.down)
    for every target; the files are validated once for all of them."""
    if command == "status":
        return _Status(scan, settings.table)
    if command == "verify":
        return _Verify(scan)
    # one line per target: no progress of single statements
    settings = dataclasses.replace(settings, show_progress=False, validate_in_parallel=False)
    validator = Validator.shared(Target.from_settings(settings).table)
    dry_run = options.pop("dry_run", False)
    if command == "up":
        return _Migrate(UpReport, settings, dry_run, commands.up_planner(scan, **options), validator)
    if command == "down":
        return _Migrate(DownReport, settings, dry_run, commands.down_planner(scan, **options), validator)
    raise UsageError(f"{command} takes one target at a time")


def run(job: Job, targets: Sequence[Target], options: Options, *, schemas: str | None = None,
        listener: Listener = events.silent, on_done: Callable[[Outcome], None] | None = None,
        own_sigint: bool = False) -> FleetReport:
    """Run `job` on each target (or, with `schemas`, on each schema of each
    target whose name matches that LIKE pattern); `on_done` hears of each
    target as it finishes, one at a time, from the thread that ran it.
    `own_sigint`: SIGINT is this run's to handle while it lasts (the command
    line's choice; a library caller's handlers are left alone).

    Raises UsageError when `schemas` is given with a tracking table named with
    its schema, or matches no schema in any database, and Interrupted on Ctrl-C
    while the schemas are listed; a failure on a target is its outcome.
    """
    if schemas is not None and any(t.table.schema is not None for t in targets):
        raise UsageError("--schemas puts each tenant's tracking table in its own schema: give --table a name "
                         "without a schema")
    started = time.perf_counter()
    with _CtrlC(own_sigint) as ctrl_c:
        items: list[Target | Outcome] = [*targets]
        notes: list[str] = []
        if schemas is not None:
            items, notes = _expand(list(targets), schemas, options.jobs, ctrl_c)
        runner = _Runner(job, options, listener, on_done or (lambda outcome: None), ctrl_c)
        outcomes = runner.run(items)
    return FleetReport(job.command, tuple(outcomes), tuple(notes), ctrl_c.is_set(),
                       time.perf_counter() - started)


# -- --schemas ---------------------------------------------------------------------


def _expand(targets: list[Target], pattern: str, jobs: int,
            ctrl_c: _CtrlC) -> tuple[list[Target | Outcome], list[str]]:
    """Each database target replaced by its schemas matching `pattern`; one that
    cannot be listed stays as its outcome (unreachable, failed)."""
    from sqlmigrate import db

    def schemas_of(target: Target) -> list[Target | Outcome]:
        began = time.perf_counter()
        try:
            conn = db.connect(target.url)
        except DatabaseUnavailable as exc:
            return [Outcome(target, State.UNREACHABLE, exc.exit_code, error=exc,
                            duration_s=time.perf_counter() - began)]
        except SqlMigrateError as exc:
            return [Outcome(target, State.FAILED, exc.exit_code, error=exc, duration_s=time.perf_counter() - began)]
        try:
            return [target.in_schema(name) for name in db.schemas_like(conn, pattern)]
        except SqlMigrateError as exc:
            return [Outcome(target, State.FAILED, exc.exit_code, error=exc, duration_s=time.perf_counter() - began)]
        finally:
            conn.close()

    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(schemas_of, target) for target in targets]
    while not all(f.done() for f in futures):
        if ctrl_c.wait(_POLL_S):
            # not waited for: a listing changes nothing, and a host that does not answer may hold one for long
            pool.shutdown(wait=False, cancel_futures=True)
            raise Interrupted("interrupted while listing the schemas; nothing was started")
    pool.shutdown()
    found = [f.result() for f in futures]
    notes = [f"no schema of {t.display} matches '{pattern}'" for t, each in zip(targets, found) if not each]
    expanded = [item for each in found for item in each]
    if not expanded:
        raise UsageError(f"--schemas '{pattern}' matches no schema in the {len(targets)} database(s) given "
                         "(a LIKE pattern: % is any text, _ any one character, \\_ a '_')")
    return expanded, notes


# -- running -----------------------------------------------------------------------


class _CtrlC:
    """Ctrl-C as a flag for the length of a run, which the worker threads
    read, and how many times it was pressed. KeyboardInterrupt in the main
    thread sets it wherever the main thread waits (`wait`, _Runner._wait).
    With `own_sigint` (the command line) SIGINT sets it without raising at
    all, while the handler is ours: installed in the main thread over
    Python's default one, restored after."""

    def __init__(self, own_sigint: bool) -> None:
        self._event = threading.Event()
        self._own = own_sigint
        self._previous: Any = None
        self.presses = 0

    def __enter__(self) -> _CtrlC:
        if (self._own and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, lambda signum, frame: self.set())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def set(self) -> None:
        self.presses += 1
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        try:
            return self._event.wait(seconds)
        except KeyboardInterrupt:
            self.set()
            return True


@dataclass(eq=False)  # kept in a set, by identity
class _Running:
    """A target now running: its connection (None until connected and once it
    is being closed) and the migration it runs, for the main thread to cancel
    on Ctrl-C."""

    index: int
    target: Target
    conn: psycopg.Connection | None = None
    step: Step | None = None
    done: list[Step] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class _Runner:
    """Runs the targets in worker threads. The main thread only waits, cancels
    on Ctrl-C, and re-raises what `on_done` raised: all else is the workers',
    so that a KeyboardInterrupt landing anywhere in the main thread loses
    nothing.

    Ctrl-C pressed again stops the wait for targets that run no migration
    (connecting to a host that does not answer, say): each is reported
    interrupted at once, and what its thread does later is not reported. It
    starts no migration (Ctrl-C was pressed), so ending the process then
    leaves nothing half done. A target in a migration is waited for until its
    cancel takes effect."""

    def __init__(self, job: Job, options: Options, listener: Listener, on_done: Callable[[Outcome], None],
                 ctrl_c: _CtrlC) -> None:
        self.job = job
        self.options = options
        self.listener = listener
        self.on_done = on_done
        self.ctrl_c = ctrl_c
        self._lock = threading.Lock()  # the fields below
        self._halted = ""  # why no new target starts, once one failed with --on-error stop
        self._running: set[_Running] = set()
        self._outcomes: dict[int, Outcome] = {}
        self._reporting = threading.Lock()  # one on_done at a time
        self._report_failed: BaseException | None = None

    def run(self, items: list[Target | Outcome]) -> list[Outcome]:
        indexed = list(enumerate(items))
        canaries, rest = indexed[:self.options.canary], indexed[self.options.canary:]
        if canaries and rest:
            self._phase(canaries)
            if any(self._outcomes[i].state is not State.OK for i, _ in canaries):
                self._phase([(i, _skipped(item, "not started: a canary target failed")) for i, item in rest])
            else:
                self._phase(rest)
        else:
            self._phase(indexed)
        if self._report_failed is not None:
            raise self._report_failed
        return [self._outcomes[i] for i in range(len(items))]

    def _phase(self, items: list[tuple[int, Target | Outcome]]) -> None:
        """Run these targets (an Outcome is one known already) and wait for all."""
        todo: queue.SimpleQueue[tuple[int, Target | Outcome]] = queue.SimpleQueue()
        for item in items:
            todo.put(item)
        finished = threading.Event()
        left = [len(items)]
        workers = [threading.Thread(target=self._work, args=(todo, left, finished), daemon=True,
                                    name=f"sqlmigrate-target-{n}")
                   for n in range(min(self.options.jobs, len(items)))]
        for worker in workers:
            worker.start()
        self._wait(todo, left, finished)

    def _wait(self, todo: queue.SimpleQueue[tuple[int, Target | Outcome]], left: list[int],
              finished: threading.Event) -> None:
        last_cancel = 0.0
        while True:
            try:
                if finished.wait(_POLL_S):
                    return
                if self.ctrl_c.is_set() and time.monotonic() - last_cancel >= RECANCEL_EVERY_S:
                    last_cancel = time.monotonic()
                    self._cancel_running()
                if self.ctrl_c.presses > 1:
                    self._abandon_idle(todo, left, finished)
            except KeyboardInterrupt:
                self.ctrl_c.set()

    def _abandon_idle(self, todo: queue.SimpleQueue[tuple[int, Target | Outcome]], left: list[int],
                      finished: threading.Event) -> None:
        """After a second Ctrl-C: the targets not started are skipped, and those
        running no migration interrupted, without waiting for their threads."""
        while True:
            try:
                index, item = todo.get_nowait()
            except queue.Empty:
                break
            self._record(index, _skipped(item, "not started: interrupted"), left, finished)
        with self._lock:
            running = list(self._running)
        for each in running:
            with each.lock:
                is_idle = each.step is None
            if is_idle:
                stopped = Interrupted("interrupted while it ran no migration (Ctrl-C twice: not waited for)")
                self._record(each.index, self._stopped(each.target, stopped, each, 0.0), left, finished)

    def _cancel_running(self) -> None:
        from sqlmigrate import db

        with self._lock:
            running = list(self._running)
        for each in running:
            with each.lock:  # the worker closes the connection only after letting go of it here
                if each.conn is not None and each.step is not None:
                    db.cancel(each.conn)

    def _work(self, todo: queue.SimpleQueue[tuple[int, Target | Outcome]], left: list[int],
              finished: threading.Event) -> None:
        while True:
            try:
                index, item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = self._outcome_of(index, item)
            except BaseException as exc:  # noqa: BLE001 - the main thread waits for an outcome of every target
                error = SqlMigrateError(f"internal error: {type(exc).__name__}: {exc}")
                outcome = Outcome(item.target if isinstance(item, Outcome) else item, State.FAILED,
                                  error.exit_code, error=error)
            if outcome.state not in (State.OK, State.SKIPPED) and self.options.on_error == "stop":
                with self._lock:
                    self._halted = self._halted or "not started after a failure"
            self._record(index, outcome, left, finished)

    def _record(self, index: int, outcome: Outcome, left: list[int], finished: threading.Event) -> None:
        """Keep a target's outcome and report it; the first one kept for a target
        wins (a thread ending after its target was given up is not reported)."""
        with self._reporting:
            with self._lock:
                if index in self._outcomes:
                    return
                self._outcomes[index] = outcome
                left[0] -= 1
                is_last = left[0] == 0
            if self._report_failed is None:
                try:
                    self.on_done(outcome)
                except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
                    self._report_failed = exc
            if is_last:
                finished.set()

    def _outcome_of(self, index: int, item: Target | Outcome) -> Outcome:
        if isinstance(item, Outcome):  # a database whose schemas could not be listed, or skipped already
            return item
        with self._lock:
            halted = self._halted
        if self.ctrl_c.is_set():
            return Outcome(item, State.SKIPPED, reason="not started: interrupted")
        if halted:
            return Outcome(item, State.SKIPPED, reason=halted)
        return self._run_target(index, item)

    def _preflight(self, target: Target) -> Callable[[Any], None] | None:
        """up and down refuse a standby or a pooler in transaction mode, target by target (SPEC 7)."""
        if not isinstance(self.job, _Migrate):
            return None
        from sqlmigrate import preflight

        return preflight.for_command(target.url, self.job.command, dry_run=self.job.dry_run)

    def _run_target(self, index: int, target: Target) -> Outcome:
        from sqlmigrate import db

        began = time.perf_counter()
        running = _Running(index, target)
        try:
            with self._registered(running), contextlib.ExitStack() as stack:
                try:
                    session = stack.enter_context(db.session(target, check=self._preflight(target)))
                except DatabaseUnavailable as exc:
                    return Outcome(target, State.UNREACHABLE, exc.exit_code, error=exc,
                                   duration_s=time.perf_counter() - began)
                with running.lock:
                    running.conn = session.conn
                stack.callback(self._let_go, running)  # before the session closes the connection
                _check_schema(session)
                session.pause = self._pause
                report = self.job.run(session, self._listener(running))
        except SqlMigrateError as exc:
            return self._stopped(target, exc, running, time.perf_counter() - began)
        except Exception as exc:  # noqa: BLE001 - one target's surprise, not the whole run's
            error = SqlMigrateError(f"internal error: {type(exc).__name__}: {exc}")
            return Outcome(target, State.FAILED, error.exit_code, error=error,
                           duration_s=time.perf_counter() - began)
        return self._ended(target, report, running, time.perf_counter() - began)

    @contextlib.contextmanager
    def _registered(self, running: _Running) -> Iterator[None]:
        with self._lock:
            self._running.add(running)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(running)

    @staticmethod
    def _let_go(running: _Running) -> None:
        with running.lock:  # a cancel being sent on the connection is done with it first
            running.conn = None

    def _pause(self, seconds: float) -> None:
        """The lock wait's and lock retries' sleep: Ctrl-C ends it as KeyboardInterrupt,
        which they report as an interruption."""
        if self.ctrl_c.wait(seconds):
            raise KeyboardInterrupt

    def _listener(self, running: _Running) -> Listener:
        """The caller's listener, and no new migration once Ctrl-C was pressed."""
        def hear(event: Event) -> None:
            if isinstance(event, MigrationStarted):
                with running.lock:
                    running.step = event.step
                if self.ctrl_c.is_set():
                    raise Interrupted(f"interrupted before {_label(event.step)} started")
            elif isinstance(event, MigrationFinished):
                with running.lock:
                    running.step = None
                if event.result.error is None:
                    running.done.append(event.result.step)
            self.listener(event)

        return hear

    def _ended(self, target: Target, report: Report, running: _Running, duration: float) -> Outcome:
        failed = report.failed if isinstance(report, MigrateReport) else None
        error = failed.error if failed is not None else None
        if self.ctrl_c.is_set() and failed is not None and error is not None and error.sqlstate == QUERY_CANCELED:
            step = failed.step
            if step.sql.is_transactional:
                left = "its transaction was rolled back"
            else:
                left = (f"it ran outside a transaction and is recorded as failed after {failed.statements_run or 0} "
                        "statement(s): check the database by hand, then run `sqlmigrate repair`")
            stopped = Interrupted(f"interrupted during {_label(step)}; {left}", step=_label(step))
            return self._stopped(target, stopped, running, duration)
        state = State.OK if report.exit_code == 0 else State.FAILED
        return Outcome(target, state, report.exit_code, report=report, duration_s=duration)

    def _stopped(self, target: Target, exc: SqlMigrateError, running: _Running, duration: float) -> Outcome:
        """A target's run that ended in an exception: failed, or interrupted by Ctrl-C
        (also when Ctrl-C's cancel cut short our own bookkeeping query)."""
        if isinstance(exc, Interrupted) or (self.ctrl_c.is_set() and isinstance(exc, DatabaseUnavailable)):
            message = exc.message if isinstance(exc, Interrupted) else f"interrupted: {exc.message}"
            if running.done:
                verb = "applied" if running.done[0].direction is Direction.UP else "rolled back"
                message += f"; {len(running.done)} migration(s) {verb} before it stay {verb}"
            stopped = Interrupted(message, details=exc.details, step=getattr(exc, "step", None))
            return Outcome(target, State.INTERRUPTED, stopped.exit_code, error=stopped, duration_s=duration)
        return Outcome(target, State.FAILED, exc.exit_code, error=exc, duration_s=duration)


def _skipped(item: Target | Outcome, reason: str) -> Outcome:
    return item if isinstance(item, Outcome) else Outcome(item, State.SKIPPED, reason=reason)


def _check_schema(session: Session) -> None:
    """A tenant's search_path must resolve to its schema, or its migrations would
    run elsewhere: a schema dropped since it was listed, say."""
    schema = session.target.schema
    if schema is not None and session.tracking.schema != schema:
        now = session.tracking.schema
        raise DatabaseUnavailable(f"search_path did not select schema {schema} (the current schema is "
                                  f"{now if now is not None else 'none'}): was it dropped or renamed?")


def _label(step: Step) -> str:
    return f"{step.id}_{step.name}"


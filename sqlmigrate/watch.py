"""A second connection that watches the server process running a migration.

While a migration runs, its own connection is busy until the server answers,
so what it is waiting for and how far it got can only be seen from another
session: `pg_blocking_pids()` names the sessions holding the lock it waits on
(a lock timeout's error does not), and the `pg_stat_progress_*` views report
the phase of CREATE INDEX, CLUSTER, VACUUM, ANALYZE and COPY. The watcher polls
both from a thread of its own, and connects only once a migration has run long
enough to be worth watching: short migrations cost nothing.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import psycopg

from sqlmigrate import db
from sqlmigrate.events import Listener, StatementRunning
from sqlmigrate.model import Step
from sqlmigrate.target import Target

PROGRESS_AFTER_S = 2.0  # a statement running this long gets progress events
PROGRESS_EVERY_S = 1.0
BLOCKERS_EVERY_S = 0.05  # lock timeouts are often short: a blocker must be seen before it fires

_BLOCKERS = """
select a.pid, coalesce(a.usename, '?'), coalesce(nullif(a.application_name, ''), '?'),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 60), coalesce(a.state, '?')
from pg_stat_activity a where a.pid = any(pg_blocking_pids(%(pid)s)) order by a.pid"""

# phase and percentage done of each kind of command PostgreSQL reports progress for
_PROGRESS = """
select phase, case when blocks_total > 0 then 100.0 * blocks_done / blocks_total
                   when tuples_total > 0 then 100.0 * tuples_done / tuples_total end
from pg_stat_progress_create_index where pid = %(pid)s
union all
select phase, case when heap_blks_total > 0 then 100.0 * heap_blks_scanned / heap_blks_total end
from pg_stat_progress_vacuum where pid = %(pid)s
union all
select phase, case when heap_blks_total > 0 then 100.0 * heap_blks_scanned / heap_blks_total end
from pg_stat_progress_cluster where pid = %(pid)s
union all
select phase, case when sample_blks_total > 0 then 100.0 * sample_blks_scanned / sample_blks_total end
from pg_stat_progress_analyze where pid = %(pid)s
union all
select lower(command) || ' ' || lower(type), case when bytes_total > 0 then 100.0 * bytes_processed / bytes_total end
from pg_stat_progress_copy where pid = %(pid)s
limit 1"""


@dataclass(frozen=True)
class Blocker:
    """A session that held a lock a migration waited on."""

    pid: int
    user: str
    application: str
    query: str  # its start, whitespace folded
    state: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.user}, {self.application}, {self.state}): {self.query}"


class Watcher:
    """Watches one migration at a time (`watching`), from a thread of its own.

    The thread wakes on its own clock and reads which migration runs: a
    migration's start and end only set two fields, so a run of a thousand
    short migrations pays no wake-up per migration.
    """

    def __init__(self, target: Target, listener: Listener, *, progress: bool, blockers: bool) -> None:
        self._target = target
        self._listener = listener
        self._progress = progress
        self._blockers = blockers
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._step: Step | None = None
        self._pid = 0
        self._started = 0.0
        self._seen: tuple[Blocker, ...] = ()
        self._conn: psycopg.Connection | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_needed(self) -> bool:
        return self._progress or self._blockers

    @contextlib.contextmanager
    def watching(self, step: Step, pid: int) -> Iterator[None]:
        """Watch the server process `pid` while `step` runs in the `with` block."""
        if not self.is_needed:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlmigrate-watch", daemon=True)
            self._thread.start()
        with self._lock:
            self._step, self._pid, self._started, self._seen = step, pid, time.monotonic(), ()
        try:
            yield
        finally:
            with self._lock:
                self._step = None

    def blockers(self) -> tuple[Blocker, ...]:
        """The sessions last seen blocking the migration watched (or just finished)."""
        with self._lock:
            return self._seen

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()

    def _run(self) -> None:
        interval = BLOCKERS_EVERY_S if self._blockers else PROGRESS_EVERY_S
        watched: Step | None = None
        last_progress = 0.0
        while not self._stop.wait(interval):
            with self._lock:
                step, pid, started = self._step, self._pid, self._started
            if step is None:
                continue
            if step is not watched:
                watched, last_progress = step, 0.0
            elapsed = time.monotonic() - started
            try:
                if self._blockers:
                    found = self._query_blockers(pid)
                    if found:
                        with self._lock:
                            if self._step is step:
                                self._seen = found
                if self._progress and elapsed >= PROGRESS_AFTER_S and elapsed - last_progress >= PROGRESS_EVERY_S:
                    last_progress = elapsed
                    phase, percent = self._query_progress(pid)
                    with self._lock:
                        current = self._step is step
                    if current:
                        self._listener(StatementRunning(step, elapsed, phase, percent, self._target.display))
            except Exception:  # watching is best effort: the migration itself must never suffer
                self._drop_connection()
                self._stop.wait(PROGRESS_EVERY_S)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = db.connect(self._target.url, timeout=5)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _query_blockers(self, pid: int) -> tuple[Blocker, ...]:
        rows = self._connection().execute(_BLOCKERS, {"pid": pid}).fetchall()
        return tuple(Blocker(*row) for row in rows)

    def _query_progress(self, pid: int) -> tuple[str | None, float | None]:
        row = self._connection().execute(_PROGRESS, {"pid": pid}).fetchone()
        if row is None:
            return None, None
        return row[0], None if row[1] is None else float(row[1])

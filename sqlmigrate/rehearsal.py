"""`plan`'s rehearsal (SPEC 8): the pending migrations run in the scratch
database as `up` runs them, with what each statement locked, rewrote and read
recorded after it; and the sizes of the target's tables.

A transactional migration runs its statements one by one in one transaction
on one session, as `up` does in one query string; between two statements the
same session reads pg_locks, pg_class and its own scan counters, which takes
no lock on a user table and changes nothing the migration sees. Outside a
transaction, a second session watches each statement (_Observer). Needs
psycopg; grading.py grades the records.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import psycopg
from psycopg import sql

from sqlmigrate import db
from sqlmigrate.errors import DatabaseUnavailable, Interrupted
# the same split check and error placement as `up`: a rehearsal must fail where up fails, and say so alike
from sqlmigrate.executor import _confirm_split, _locate, _StatementFailed, clean_session
from sqlmigrate.grading import (BLOCKS_WRITES, MODES, STRENGTH, Lock, Rehearsed, Relation, StatementRecord,
                                TableSize)
from sqlmigrate.model import SqlError, SqlFile, Statement, Step
from sqlmigrate.schema.scratch import ScratchDatabase

# Every query reads pg_catalog by qualified name: a migration may have changed search_path.
# Relations of pg_catalog, pg_toast, temporary schemas and information_schema are not the target's tables.
_USER_SCHEMA = "n.nspname <> 'information_schema' and n.nspname !~ '^pg_'"

# One round trip after each statement: the relation locks this session holds,
# and every user relation with its file and the scans counted for it so far
# (pg_stat_get_xact_numscans: this backend's counts, live within a transaction).
_READ = sql.SQL(f"""
select 'lock', l.relation::bigint, l.mode, null, null, null, null, null
  from pg_catalog.pg_locks l
 where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'relation' and l.granted
   and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
union all
select 'relation', c.oid::bigint, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::bigint,
       i.indrelid::bigint, pg_catalog.pg_stat_get_xact_numscans(c.oid)
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  left join pg_catalog.pg_index i on i.indexrelid = c.oid
 where {_USER_SCHEMA}
""")


@dataclass
class _Catalog:
    """One reading of _READ."""

    locks: set[tuple[int, str]] = field(default_factory=set)  # (relation oid, pg_locks mode)
    relations: dict[int, tuple[str, str, str, int, int | None]] = field(default_factory=dict)
    scans: dict[int, int] = field(default_factory=dict)  # table oid -> scans of it and its indexes


def rehearse(scratch: ScratchDatabase, session: db.Session, steps: Sequence[Step]) -> list[Rehearsed]:
    """Run each step in `session` (on `scratch`, where the applied migrations
    were built) as `up` would, and record each statement. After a step that
    fails, the others are "not tested". Raises Interrupted on Ctrl-C,
    DatabaseUnavailable when the scratch database fails outside the migrations' SQL.
    """
    rehearsal = _Rehearsal(scratch, session)
    out: list[Rehearsed] = []
    try:
        for index, step in enumerate(steps):
            label = f"{step.id}_{step.name}"
            try:
                result = rehearsal.run(step)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted during {label}", step=label) from None
            out.append(result)
            if result.verdict == "failed":
                reason = f"not tested: {label}/up.sql failed before them"
                out.extend(Rehearsed(s.id, s.name, s.sql.path, s.sql.is_transactional, "not tested", reason=reason)
                           for s in steps[index + 1:])
                break
    finally:
        rehearsal.close()
    return out


class _Rehearsal:
    def __init__(self, scratch: ScratchDatabase, session: db.Session) -> None:
        self.scratch = scratch
        self.conn = session.conn
        self.tracking = session.tracking
        row = self._query(sql.SQL("select pg_catalog.current_schema()")).fetchone()
        self.current_schema = row[0] if row else None
        self.last = self._read()
        self.before_plan = frozenset(self.last.relations)
        self.known: dict[int, Relation] = {}
        for oid in self.before_plan:  # named once and for all as the target knows them
            self._relation(oid, self.last)
        self._observer: _Observer | None = None

    def close(self) -> None:
        if self._observer is not None:
            self._observer.close()

    def run(self, step: Step) -> Rehearsed:
        try:
            _confirm_split(self.conn, step)
        except _StatementFailed as refused:
            return self._failed(step, (), refused.error)
        if step.sql.is_transactional:
            return self._in_transaction(step)
        return self._outside_transaction(step)

    # -- a transactional migration -------------------------------------------------

    def _in_transaction(self, step: Step) -> Rehearsed:
        """BEGIN, each statement then its record, the tracking row, COMMIT: what
        `up` sends as one string, on the same session, with reads in between."""
        sql_file = step.sql
        text = sql_file.text
        records: list[StatementRecord] = []
        previous = self.last
        held: set[tuple[int, str]] = set()
        self._query(sql.SQL("begin"))
        try:
            for stmt in sql_file.statements:
                started = time.perf_counter()
                error = self._execute(sql_file, text, stmt)
                took = time.perf_counter() - started
                if error is not None:
                    self._rollback()
                    return self._failed(step, records, error)
                now = self._read()
                new = now.locks - held
                held |= now.locks
                records.append(self._record(stmt, previous, now, new, took, holding=held))
                previous = now
            error = self._commit(step)
        except BaseException:
            self._rollback()
            raise
        if error is not None:
            return self._failed(step, records, error)
        self._query(sql.SQL(clean_session(self.conn)))
        self.last = self._read()
        return Rehearsed(step.id, step.name, sql_file.path, True, "rehearsed", tuple(records))

    def _commit(self, step: Step) -> SqlError | None:
        """The tracking row (as the role that connected, whatever SET ROLE the
        migration did) and COMMIT; a deferred constraint failing at COMMIT is
        placed at the last statement, as `up` places it."""
        self._query(sql.SQL("; ").join([
            sql.SQL("set local statement_timeout to 0"), sql.SQL("set local session authorization default"),
            sql.SQL("set local role {}").format(sql.Identifier(self.tracking.owner)), self._row(step)]))
        try:
            self.conn.execute("commit")
        except psycopg.Error as exc:
            if self.conn.broken or self.conn.closed or not step.sql.statements:
                raise db.database_error(exc, f"committing {step.id}_{step.name} in the scratch database") from exc
            last = step.sql.statements[-1]
            error = _locate(step.sql, last, exc, self.conn.info.server_version)
            hint = "\n".join(h for h in ("raised at COMMIT: a deferred constraint or trigger failed", error.hint) if h)
            return SqlError(error.path, error.line, error.col, error.sqlstate, error.message, error.detail, hint,
                            error.context)
        return None

    def _row(self, step: Step) -> sql.Composed:
        return self.tracking.insert_query(id=step.id, name=step.name, checksum=step.sql.checksum,
                                          content_checksum=step.sql.content_checksum, down_sql=step.down_sql,
                                          state="applied", duration_ms=None)

    # -- a no-transaction migration --------------------------------------------------

    def _outside_transaction(self, step: Step) -> Rehearsed:
        """Statement by statement, each its own transaction, as `up` runs them;
        a second session sees what each holds while it runs."""
        sql_file = step.sql
        text = sql_file.text
        records: list[StatementRecord] = []
        pid = self.conn.info.backend_pid
        for stmt in sql_file.statements:
            previous = self.last
            with self._watcher().watching(pid, self._lockable(previous)) as seen:
                started = time.perf_counter()
                error = self._execute(sql_file, text, stmt)
                took = time.perf_counter() - started
            if error is not None:
                self.last = self._read()
                return self._failed(step, records, error)
            now = self._read()
            records.append(self._record(stmt, previous, now, seen, took, holding=set()))
            self.last = now
        self._query(self._row(step))
        self._query(sql.SQL(clean_session(self.conn)))
        self.last = self._read()
        return Rehearsed(step.id, step.name, sql_file.path, False, "rehearsed", tuple(records))

    def _watcher(self) -> _Observer:
        if self._observer is None:
            self._observer = _Observer(self.scratch)
        return self._observer

    def _lockable(self, catalog: _Catalog) -> list[tuple[int, sql.Identifier]]:
        """The tables the observer holds: those that were there before the plan
        (tables it created wait for nobody on the target), not the tracking table."""
        tracking = (self.tracking.schema, self.tracking.name)
        return [(oid, sql.Identifier(schema, name)) for oid, (schema, name, kind, _, _) in catalog.relations.items()
                if kind in ("r", "p") and oid in self.before_plan and (schema, name) != tracking]

    # -- recording --------------------------------------------------------------------

    def _record(self, stmt: Statement, previous: _Catalog, now: _Catalog, new: set[tuple[int, str]], took: float,
                *, holding: set[tuple[int, str]]) -> StatementRecord:
        catalogs = (now, previous)
        # one entry per name and mode: a rebuilt index is a new relation of the same name
        unique = {(lock.relation.shown, lock.mode, lock.relation.is_created): lock
                  for lock in self._locks(new, catalogs)}
        locks = tuple(sorted(unique.values(), key=lambda lock: (lock.relation.shown, lock.strength)))
        rewrites: list[Relation] = []
        # TRUNCATE gives a table new, empty files: nothing is copied, so it is no rewrite
        if stmt.keyword != "truncate":
            for oid, (_, _, _, filenode, _) in now.relations.items():
                before = previous.relations.get(oid)
                if before is not None and filenode and before[3] != filenode:
                    relation = self._relation(oid, now, previous)
                    if relation is not None:
                        rewrites.append(relation)
        scanned: list[Relation] = []
        for oid, count in now.scans.items():
            earlier = previous.scans.get(oid, 0)
            # the counts are sent to the statistics system (and start again from 0) only
            # between transactions: a smaller count means that happened before this statement
            if count > earlier or (count < earlier and count > 0):
                relation = self._relation(oid, now, previous)
                if relation is not None:
                    scanned.append(relation)
        held = tuple(lock for lock in self._locks(holding, catalogs) if lock.relation.is_table)
        return StatementRecord(stmt, locks, tuple(sorted(rewrites, key=lambda r: r.shown)), took,
                               tuple(sorted(scanned, key=lambda r: r.shown)), held)

    def _locks(self, locks: set[tuple[int, str]], catalogs: tuple[_Catalog, ...]) -> Iterator[Lock]:
        """Table lock modes on user relations (catalogs and other lock kinds left out)."""
        for oid, mode in locks:
            relation = self._relation(oid, *catalogs)
            if relation is not None and mode in MODES:
                yield Lock(relation, MODES[mode])

    def _relation(self, oid: int, *catalogs: _Catalog) -> Relation | None:
        """The relation `oid` as first seen: an existing one keeps the name it had
        when the plan started (the target's), even after a rename or a drop."""
        relation = self.known.get(oid)
        if relation is not None:
            return relation
        for catalog in catalogs:
            found = catalog.relations.get(oid)
            if found is not None:
                break
        else:
            return None  # a catalog, or a relation made and dropped between two readings
        schema, name, kind, _, table_oid = found
        table = self._relation(table_oid, *catalogs) if table_oid else None
        shown = name if schema == self.current_schema else f"{schema}.{name}"
        relation = Relation(schema, name, kind, shown, table, is_created=oid not in self.before_plan)
        self.known[oid] = relation
        return relation

    def _read(self) -> _Catalog:
        catalog = _Catalog()
        indexes: dict[int, int] = {}
        for what, oid, a, b, kind, filenode, table, scans in self._query(_READ).fetchall():
            if what == "lock":
                catalog.locks.add((oid, a))
                continue
            catalog.relations[oid] = (a, b, kind, filenode, table)
            if kind in ("r", "p", "m"):
                catalog.scans[oid] = catalog.scans.get(oid, 0) + (scans or 0)
            elif table:
                indexes[table] = indexes.get(table, 0) + (scans or 0)
        for table, scans in indexes.items():
            if table in catalog.scans:
                catalog.scans[table] += scans
        return catalog

    # -- running -------------------------------------------------------------------------

    def _execute(self, sql_file: SqlFile, text: str, stmt: Statement) -> SqlError | None:
        """Run one statement as `up` sends it; its error placed in the file, or None."""
        cur = self.conn.cursor()
        try:
            if stmt.copy_data is not None:
                with cur.copy(stmt.text_in(text)) as copy:
                    copy.write(stmt.copy_data)
            else:
                cur.execute(stmt.text_in(text))
        except psycopg.Error as exc:
            if self.conn.broken or self.conn.closed:
                raise db.database_error(exc, "rehearsing in the scratch database") from exc
            return _locate(sql_file, stmt, exc, self.conn.info.server_version)
        return None

    def _failed(self, step: Step, records: Sequence[StatementRecord], error: SqlError) -> Rehearsed:
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._rollback()
        self._query(sql.SQL(clean_session(self.conn)))
        return Rehearsed(step.id, step.name, step.sql.path, step.sql.is_transactional, "failed", tuple(records),
                         error=error)

    def _query(self, query: sql.SQL | sql.Composed) -> psycopg.Cursor:
        try:
            return self.conn.execute(query)
        except psycopg.Error as exc:
            raise db.database_error(exc, "recording the rehearsal in the scratch database") from exc

    def _rollback(self) -> None:
        if self.conn.closed or self.conn.broken:
            return
        with contextlib.suppress(psycopg.Error):
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("rollback")


# -- a second session watching a statement outside a transaction --------------------------

_LOCKS_OF = sql.SQL("select l.locktype, l.relation::bigint, l.mode, l.granted from pg_catalog.pg_locks l "
                    "where l.pid = %s")
POLL_S = 0.002


class _Observer:
    """What a second session sees a statement hold while it runs outside a transaction.

    Its locks end with the statement, before any reading after it, and on an
    empty scratch table it is over in a millisecond: too fast to catch by
    polling alone. So two holder sessions take turns holding ROW EXCLUSIVE on
    every table that was there before the plan: that mode conflicts with
    exactly the modes that block writes (SHARE and stronger), so a statement
    asking for one of them waits, and its waiting request (and what it already
    holds) shows in pg_locks. The other holder then takes every table but those
    the statement holds or waits for, and the first lets go: the statement goes
    on, and its next such lock waits in turn. CREATE INDEX CONCURRENTLY waits
    for older transactions instead, the holder's among them; meanwhile it
    shows its SHARE UPDATE EXCLUSIVE. The holders never wait (NOWAIT), so no
    deadlock can involve them; the statement runs as it would, only later.
    """

    def __init__(self, scratch: ScratchDatabase) -> None:
        self.holders = [scratch.connect(), scratch.connect()]
        self.poller = scratch.connect()

    def close(self) -> None:
        for conn in (*self.holders, self.poller):
            with contextlib.suppress(psycopg.Error):
                conn.close()

    @contextlib.contextmanager
    def watching(self, pid: int, tables: list[tuple[int, sql.Identifier]]) -> Iterator[set[tuple[int, str]]]:
        """The (relation oid, pg_locks mode) the statement run inside the block
        was seen holding or waiting for, filled in as it runs."""
        seen: set[tuple[int, str]] = set()
        stop = threading.Event()
        failures: list[BaseException] = []
        self._hold(self.holders[0], tables, set())
        thread = threading.Thread(target=self._watch, args=(pid, tables, seen, stop, failures), daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            stop.set()
            thread.join()
            for holder in self.holders:
                self._release(holder)
        if failures:
            raise DatabaseUnavailable(f"watching a statement in the scratch database failed: {failures[0]}")

    def _watch(self, pid: int, tables: list[tuple[int, sql.Identifier]], seen: set[tuple[int, str]], stop: threading.Event,
               failures: list[BaseException]) -> None:
        current = 0
        try:
            while not stop.wait(POLL_S):
                rows = self.poller.execute(_LOCKS_OF, (pid,)).fetchall()
                waiting = False
                busy: set[int] = set()
                for locktype, oid, mode, granted in rows:
                    if locktype != "relation" or mode not in MODES:
                        waiting = waiting or not granted
                        continue
                    seen.add((oid, mode))
                    waiting = waiting or not granted
                    if STRENGTH[MODES[mode]] >= BLOCKS_WRITES:
                        busy.add(oid)
                if waiting:
                    other = 1 - current
                    self._hold(self.holders[other], tables, busy)
                    self._release(self.holders[current])
                    current = other
        except BaseException as exc:  # noqa: BLE001 - reported by watching(), after the statement
            failures.append(exc)
        finally:
            # never leave the statement waiting on a holder
            for holder in self.holders:
                self._release(holder)

    def _hold(self, conn: psycopg.Connection, tables: list[tuple[int, sql.Identifier]], busy: set[int]) -> None:
        """ROW EXCLUSIVE on `tables` but those whose oid is in `busy`, in a transaction left open."""
        conn.execute("begin")
        kept = [name for oid, name in tables if oid not in busy]
        if not kept:
            return
        try:
            conn.execute(sql.SQL("lock table {} in row exclusive mode nowait").format(sql.SQL(", ").join(kept)))
        except psycopg.Error:
            # a table this role may not lock, or one taken since: hold none rather than wait
            conn.execute("rollback")
            conn.execute("begin")

    def _release(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.broken:
            return
        with contextlib.suppress(psycopg.Error):
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("rollback")


# -- the target's tables ---------------------------------------------------------------------

# reltuples is -1 for a table never analyzed (PostgreSQL 14 and later); a
# partitioned table counts its leaf partitions, which hold its rows
_SIZES = sql.SQL(f"""
select n.nspname::text, c.relname::text,
       case when c.relkind = 'p' then
           (select case when count(*) filter (where p.reltuples >= 0) = 0 then -1
                        else sum(greatest(p.reltuples, 0)) end
              from pg_catalog.pg_partition_tree(c.oid) t join pg_catalog.pg_class p on p.oid = t.relid
             where t.isleaf)
       else c.reltuples end,
       case when c.relkind = 'p' then
           (select coalesce(sum({{size}}), 0) from pg_catalog.pg_partition_tree(c.oid) t where t.isleaf)
       else {{own}} end
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p', 'm') and {_USER_SCHEMA}
""")
# pg_total_relation_size takes ACCESS SHARE on each table, and so waits
# behind any ACCESS EXCLUSIVE lock; past SIZE_LOCK_TIMEOUT the sizes are read
# from pg_class.relpages (as of the last VACUUM or ANALYZE), which takes none
SIZE_LOCK_TIMEOUT = "1s"
_EXACT = (sql.SQL("pg_catalog.pg_total_relation_size(t.relid)"), sql.SQL("pg_catalog.pg_total_relation_size(c.oid)"))
_PAGES = ("(select (p.relpages + coalesce((select sum(x.relpages) from pg_catalog.pg_class x where x.oid = p.reltoastrelid"
          " or x.oid in (select i.indexrelid from pg_catalog.pg_index i where i.indrelid = p.oid)), 0))"
          " * pg_catalog.current_setting('block_size')::bigint from pg_catalog.pg_class p where p.oid = {})")
_ESTIMATED = (sql.SQL(_PAGES.format("t.relid")), sql.SQL(_PAGES.format("c.oid")))
LOCK_NOT_AVAILABLE = "55P03"


def table_sizes(conn: psycopg.Connection) -> tuple[dict[tuple[str, str], TableSize], bool]:
    """Rows and bytes of every table of the target, by (schema, name), read in a
    read-only transaction; and whether the bytes are estimates (a table was
    locked). Raises DatabaseUnavailable."""
    for query, is_estimate in ((_EXACT, False), (_ESTIMATED, True)):
        try:
            with conn.transaction():
                conn.execute("set transaction read only")
                conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(SIZE_LOCK_TIMEOUT)))
                rows = conn.execute(_SIZES.format(size=query[0], own=query[1])).fetchall()
        except psycopg.Error as exc:
            if exc.sqlstate == LOCK_NOT_AVAILABLE and not is_estimate:
                continue
            raise db.database_error(exc, "reading the sizes of the target's tables") from exc
        sizes = {(schema, name): TableSize(None if tuples is None or tuples < 0 else round(tuples), int(size or 0))
                 for schema, name, tuples, size in rows}
        return sizes, is_estimate
    raise AssertionError("unreachable")

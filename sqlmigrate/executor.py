"""Runs a Plan on a connection already holding the advisory lock.

A transactional step sends BEGIN, its statements, its tracking row change,
COMMIT and a session reset as one query string (one round trip): the row
commits with the migration (SPEC 5), and nothing one migration set leaks into
the next. The server answers each statement in turn, so the number of answers
before an error names the statement that failed.

The server's notices (NOTICE, WARNING, ...) raised by a migration's own SQL are
kept with its result; those of our bookkeeping are not (see _Notices).
"""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import random
import re
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import psycopg
from psycopg import sql

from sqlmigrate.db import (DURATION_MS, Session, Tracking, reads_as_several_statements, run_script,
                            settings_statements)
from sqlmigrate.errors import ConnectionLost, DatabaseUnavailable, Interrupted
from sqlmigrate.events import Listener, LockRetry, MigrationFinished, MigrationStarted
from sqlmigrate.model import (
    NOTICES_KEPT,
    Direction,
    Notice,
    Plan,
    RowState,
    SqlError,
    SqlFile,
    Statement,
    Step,
    StepResult,
)
from sqlmigrate.sqltext import line_col
from sqlmigrate.versions import newer_server_hint
from sqlmigrate.watch import Watcher

# SPEC 5: each migration starts from a clean session, as if on its own
# connection. This is DISCARD ALL without pg_advisory_unlock_all() (which would
# drop the migration lock) and runs inside a transaction, as DISCARD ALL cannot.
# RESET ALL alone keeps SET ROLE; SET SESSION AUTHORIZATION DEFAULT clears it.
# Settings given at connection start (URL, PGOPTIONS) survive RESET ALL; those
# that db.connect SET (--lock-timeout, ...) are set again after it.
# It runs after the migration's COMMIT, in the same string when it can.
_CLEAN_STATEMENTS = (
    "close all", "set session authorization default", "reset all", "deallocate all",
    "unlisten *", "discard plans", "discard temp", "discard sequences",
)


def clean_session(conn: psycopg.Connection) -> str:
    """The session reset between migrations (SPEC 5), with the settings connect() gave `conn` set again."""
    return "; ".join((*_CLEAN_STATEMENTS, *settings_statements(conn)))


# Our own statements around a migration's SQL: the tracking row is written as
# the role that connected (whatever SET ROLE or SET SESSION AUTHORIZATION the
# migration did), never cut short by --statement-timeout (which is for the
# migration's SQL), and sends no notices (_Notices).
_BOOKKEEPING = ("set local client_min_messages to error", "set local statement_timeout to 0",
                "set local session authorization default")
_AS_OWNER = sql.SQL("begin; " + "; ".join(_BOOKKEEPING) + "; set local role {}; {}; commit")
# The `failed` mark before a no-transaction migration's first statement commits
# without waiting for its WAL flush: whatever that statement makes durable is
# flushed after it, and WAL is flushed in order, so after a server crash the
# mark is there whenever a logged effect of the migration is (ALTER SYSTEM's
# file is not logged: a rerun of it is harmless). One fsync less.
_WITHOUT_FLUSH = sql.SQL("begin; set local synchronous_commit to off; {}; commit")


class _StatementFailed(Exception):
    def __init__(self, error: SqlError, statements_run: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.statements_run = statements_run


def run(session: Session, plan: Plan, listener: Listener, *, lock_retries: int = 0,
        watcher: Watcher | None = None) -> list[StepResult]:
    """Run each step in order; stop at the first one that fails.

    A transactional step whose statement times out waiting for a lock
    (lock_timeout) runs again from its start, up to `lock_retries` more times
    after a growing, jittered pause; the `watcher` names who held the lock.
    Returns the results (the last one carries the error, if any). Raises
    DatabaseUnavailable when the connection is lost, Interrupted on Ctrl-C.
    """
    conn, tracking, target = session.conn, session.tracking, session.target.display
    results: list[StepResult] = []
    notices = _Notices()
    conn.add_notice_handler(notices)
    try:
        for step in plan.steps:
            pid = conn.info.backend_pid
            listener(MigrationStarted(step, pid, target))
            attempt = 1
            began = time.perf_counter()
            while True:
                notices.clear()
                with watcher.watching(step, pid) if watcher else contextlib.nullcontext():
                    result = _run_step(conn, tracking, step, notices)
                blockers = tuple(map(str, watcher.blockers())) if watcher else ()
                if not _is_lock_timeout(result):
                    break
                if attempt > lock_retries or not step.sql.is_transactional:
                    result = _naming_blockers(result, blockers)
                    break
                attempt += 1
                pause = retry_pause(attempt - 1)
                listener(LockRetry(step, attempt, lock_retries + 1, blockers, pause, target))
                _sleep(session.pause, pause, step)
            if attempt > 1:  # the time of every attempt and pause: what the deploy waited for this migration
                result = dataclasses.replace(result, attempts=attempt, duration_s=time.perf_counter() - began)
            results.append(result)
            listener(MigrationFinished(result, target))
            if result.error is not None:
                break
    finally:
        conn.remove_notice_handler(notices)
    return results


LOCK_NOT_AVAILABLE = "55P03"
RETRY_PAUSE_S = 0.5  # before the first retry; doubled each time, at most RETRY_PAUSE_MAX_S
RETRY_PAUSE_MAX_S = 30.0


def retry_pause(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1-based): growing, so that a
    long transaction elsewhere can finish, and jittered by +-50%, so that runs
    retrying together do not collide again."""
    return min(RETRY_PAUSE_S * 2 ** (retry - 1), RETRY_PAUSE_MAX_S) * random.uniform(0.5, 1.5)


def _is_lock_timeout(result: StepResult) -> bool:
    return result.error is not None and result.error.sqlstate == LOCK_NOT_AVAILABLE


def _naming_blockers(result: StepResult, blockers: tuple[str, ...]) -> StepResult:
    """A lock timeout's error says nothing of who held the lock: say it in the hint."""
    assert result.error is not None
    said = ("the lock was held by " + "; ".join(blockers)) if blockers else (
        "the session holding the lock was not seen (it may have been released as the timeout fired)")
    hint = "\n".join(h for h in (said, result.error.hint) if h)
    return dataclasses.replace(result, error=dataclasses.replace(result.error, hint=hint))


def _sleep(sleep: Callable[[float], None], seconds: float, step: Step) -> None:
    try:
        sleep(seconds)
    except KeyboardInterrupt:
        label = f"{step.id}_{step.name}"
        raise Interrupted(f"interrupted during {label}, waiting to retry it; its transaction was rolled back",
                          step=label) from None


class _Notices:
    """The server's notices raised by a migration's own SQL, in order, at most NOTICES_KEPT.

    Registered on the connection for the whole run; it keeps only what arrives
    while `collecting()`, which is around the migration's statements alone.
    In a transactional step's single query string our bookkeeping cannot be
    told apart by timing, so the string sets client_min_messages to `error`
    (LOCAL) right after the migration's SQL: the server sends nothing for the
    tracking row (a trigger on the table, say) or the COMMIT. The session reset
    after it sends nothing at NOTICE and above. DEBUG and LOG messages, sent
    only when the user lowers client_min_messages, are not kept: most are the
    server's chatter about our BEGIN and COMMIT, which nothing tells apart.
    Beyond NOTICES_KEPT, notices are counted only.
    """

    def __init__(self) -> None:
        self.kept: list[Notice] = []
        self.omitted = 0
        self.is_collecting = False

    def clear(self) -> None:
        self.kept = []
        self.omitted = 0
        self.is_collecting = False

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        self.is_collecting = True
        try:
            yield
        finally:
            self.is_collecting = False

    def __call__(self, diag: psycopg.errors.Diagnostic) -> None:
        if not self.is_collecting:
            return
        severity = diag.severity_nonlocalized or diag.severity  # untranslated since PostgreSQL 9.6
        if severity not in _KEPT_SEVERITIES:
            return
        if len(self.kept) >= NOTICES_KEPT:
            self.omitted += 1
            return
        self.kept.append(Notice(
            severity=severity,
            message=diag.message_primary or "",
            detail=diag.message_detail,
            hint=diag.message_hint,
        ))


# what the server sends at the default client_min_messages, and INFO, which it always sends
_KEPT_SEVERITIES = frozenset({"WARNING", "NOTICE", "INFO"})


def _run_step(conn: psycopg.Connection, tracking: Tracking, step: Step, notices: _Notices) -> StepResult:
    started = time.perf_counter()
    reached = _Reached()
    try:
        _confirm_split(conn, step)
        if step.sql.is_transactional:
            _run_transactional(conn, tracking, step, started, notices)
        else:
            _run_outside_transaction(conn, tracking, step, started, reached, notices)
    except _StatementFailed as failure:
        # notices raised before the failing statement are kept: they may say why
        return StepResult(step, time.perf_counter() - started, failure.error, failure.statements_run,
                          tuple(notices.kept), notices.omitted)
    except KeyboardInterrupt:
        _rollback_quietly(conn)
        label = f"{step.id}_{step.name}"
        if _was_committed(conn, tracking, step):
            raise Interrupted(f"interrupted after {label} was committed: {_outcome(step)}", step=label) from None
        raise Interrupted(f"interrupted during {label}; {_aftermath(step, reached)}", step=label) from None
    except psycopg.Error as exc:
        if (conn.broken or conn.closed) and step.sql.is_transactional:
            raise ConnectionLost(f"connection lost during {step.id}_{step.name} ({_short(exc)})",
                                 step_id=step.id, is_up=step.direction is Direction.UP) from exc
        if conn.broken or conn.closed:
            raise DatabaseUnavailable(
                f"connection lost during {step.id}_{step.name} ({_short(exc)}); "
                f"{_aftermath(step, reached, by_server=True)}"
            ) from exc
        _rollback_quietly(conn)
        if _was_committed(conn, tracking, step):
            raise DatabaseUnavailable(f"{step.id}_{step.name} was committed ({_outcome(step)}), then resetting "
                                      f"the session failed: {_short(exc)}") from exc
        raise DatabaseUnavailable(f"database error while recording {step.id}_{step.name}: {_short(exc)}") from exc
    return StepResult(step, time.perf_counter() - started, notices=tuple(notices.kept),
                      notices_omitted=notices.omitted)


# What the statement split reads by rules of its own, where PostgreSQL's
# grammar decides: characters beyond ASCII, dollar quotes, E'' strings, block
# comments, SQL-standard bodies, backticks. Statements without any of them are
# split by plain ';', quotes and parentheses.
_SPLIT_BY_RULES = re.compile(rb"[\x80-\xff$`]|(?<![A-Za-z0-9_$'\x80-\xff])[eE]'|/\*|atomic", re.IGNORECASE)
CONFIRMED_UP_TO = 64 * 1024  # characters; a bigger statement (data, mostly) is not put to the server


def _confirm_split(conn: psycopg.Connection, step: Step) -> None:
    """Nothing may run that `check` did not see as a statement of its own (SPEC 4).

    Before a step runs, each of its statements that the split read by rules of
    its own is put to the server's parser alone, never run; should the server
    read more than one statement there (a boundary the split missed, and a
    COMMIT behind it, perhaps), the step is refused before any of it runs. One
    round trip per such statement; files without any cost one regex scan.
    """
    sql_file = step.sql
    if not _SPLIT_BY_RULES.search(sql_file.data):
        return
    text, encoding = sql_file.text, conn.info.encoding
    for stmt in sql_file.statements:
        if stmt.copy_data is not None or stmt.end - stmt.offset > CONFIRMED_UP_TO:
            continue
        source = stmt.text_in(text).encode(encoding)
        if _SPLIT_BY_RULES.search(source) and reads_as_several_statements(conn, source):
            line, col = line_col(text, stmt.offset)
            raise _StatementFailed(SqlError(
                path=sql_file.path, line=line, col=col, sqlstate="42601",
                message="PostgreSQL reads more than one statement here, where sqlmigrate read one; "
                        "none of this migration was run",
                hint="the statement split of check missed a boundary PostgreSQL sees: please report "
                     "this file; ending the statement with ';' where PostgreSQL ends it may help",
            ), 0)


def _was_committed(conn: psycopg.Connection, tracking: Tracking, step: Step) -> bool:
    """Whether a transactional step cut short had in fact committed (the cut came
    during the session reset after its COMMIT): its tracking row tells."""
    if not step.sql.is_transactional or conn.broken or conn.closed:
        return False
    try:
        return is_committed(tracking, step.id, is_up=step.direction is Direction.UP)
    except DatabaseUnavailable:
        _rollback_quietly(conn)
        return False


def is_committed(tracking: Tracking, step_id: str, *, is_up: bool) -> bool:
    """Whether a transactional step's COMMIT went through, as its tracking row
    says: an up's row is there, a down's is gone."""
    state = tracking.state_of(step_id)
    return state is RowState.APPLIED if is_up else state is None


def _outcome(step: Step) -> str:
    return outcome(is_up=step.direction is Direction.UP)


def outcome(*, is_up: bool) -> str:
    return "it is applied" if is_up else "it is rolled back"


@dataclass
class _Reached:
    """How far a no-transaction step got, for the message when it is cut short."""

    is_marked_failed: bool = False  # its tracking row says `failed` (set before the first statement)
    statements_run: int = 0


def _aftermath(step: Step, reached: _Reached, *, by_server: bool = False) -> str:
    """What a step cut short (Ctrl-C, lost connection) left behind, in words."""
    if step.sql.is_transactional:
        return "its transaction was rolled back" + (" by the server" if by_server else "")
    if not reached.is_marked_failed:
        return "none of its statements had run"
    # SPEC 5: statements outside a transaction stay done; the row says failed until repair
    return (f"it ran outside a transaction and is recorded as failed after {reached.statements_run} "
            "statement(s): check the database by hand, then run `sqlmigrate repair`")


def _run_transactional(
    conn: psycopg.Connection, tracking: Tracking, step: Step, started: float, notices: _Notices
) -> None:
    """BEGIN, the file as written, the tracking row, COMMIT and the session reset
    in one round trip; the number of results says which statement failed.

    The file goes as it is, not cut into statements: the server splits it the
    same way and an error position needs no translation. The file's bytes are
    sent as read: its text is decoded again only to place an error. A big file
    (a 5 MB INSERT) goes on its own between BEGIN and the rest, never joined to
    anything: two more round trips, one copy less. While it is sent, the
    process holds it three times: these bytes, libpq's output buffer and the
    copy libpq keeps of each query.
    The row is written by the role that connected whatever SET ROLE the
    migration did, and with client_min_messages at `error` (_Notices): only the
    migration's own statements have their notices sent.
    """
    statements = step.sql.statements
    if any(stmt.words[0] == "copy" for stmt in statements):
        _run_transactional_one_by_one(conn, tracking, step, started, notices)
        return
    row = _row_change(tracking, step, started, RowState.APPLIED, None).as_string(conn)
    owner = sql.Identifier(tracking.owner).as_string(conn)
    encoding = conn.info.encoding
    # the file's own bytes are sent: sessions use UTF8 (db.SESSION_SETTINGS)
    data = step.sql.data if encoding == "utf-8" else step.sql.text.encode(encoding)
    after = (*_BOOKKEEPING, f"set local role {owner}", row, "commit", *_CLEAN_STATEMENTS,
             *settings_statements(conn))
    at_commit = after.index("commit")
    # ";" ends a last statement written without one (or adds an empty one, which
    # yields no result); the newline ends a "--" comment on the file's last line
    finish = ("\n;\n" + ";\n".join(after) + ";").encode(encoding)
    if len(data) < BIG_FILE_BYTES:
        sent_at = len(_BEGIN)
        with notices.collecting():
            answered, error = run_script(conn, b"".join((_BEGIN.encode(encoding), data, finish)))
        failed = answered - 1  # BEGIN answered first; none answered: a syntax error
        if failed == len(statements) + at_commit:
            failed = _AT_COMMIT
    else:
        sent_at = 0
        conn.execute("begin")
        with notices.collecting():
            failed, error = run_script(conn, data)
        if error is None and failed < len(statements):
            _cut_short(conn, step)
        if error is None:
            answered, error = run_script(conn, finish)
            failed = _AT_COMMIT if answered == at_commit else len(statements)
        elif failed == 0 and error.diag.statement_position:
            failed = -1  # the first statement, or a syntax error anywhere: the position says
    del data  # a big file's copy in the wrong encoding, if any, is not kept while an error is placed
    if error is None:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            _cut_short(conn, step)  # the string's COMMIT never ran
        return
    starts = [sent_at + stmt.offset for stmt in statements]
    if failed == -1:
        # the server parses the whole string before running any of it
        failed = _statement_at(starts, error.diag.statement_position)
    if 0 <= failed < len(statements):
        _rollback_quietly(conn)
        located = _locate(step.sql, statements[failed], error, conn.info.server_version, starts[failed])
        raise _StatementFailed(located, failed) from error
    if failed == _AT_COMMIT and statements and not (conn.broken or conn.closed):
        # a deferred constraint or trigger of the migration's: its failure, shown at its last statement
        located = _locate(step.sql, statements[-1], error, conn.info.server_version, starts[-1])
        raise _StatementFailed(dataclasses.replace(located, hint="\n".join(
            h for h in ("raised at COMMIT: a deferred constraint or trigger failed", located.hint) if h)),
            len(statements)) from error
    _rollback_quietly(conn)
    raise error  # BEGIN, the tracking row or the reset: not the migration's SQL


def _cut_short(conn: psycopg.Connection, step: Step) -> None:
    """The server ran less than was sent and said nothing: never record such a
    run. (libpq stops a query at a NUL character; check refuses those first.)"""
    _rollback_quietly(conn)
    raise DatabaseUnavailable(f"the server did not receive all of {step.sql.path}; "
                              f"{step.id}_{step.name} was rolled back and not recorded")


_BEGIN = "begin;\n"
_AT_COMMIT = -2  # the COMMIT failed: a deferred check of the migration's
BIG_FILE_BYTES = 1 << 20


def _statement_at(starts: list[int], position: str | None) -> int:
    """Index of the statement holding the server's 1-based `position`, or -1."""
    if not position or not position.isdigit() or not starts or int(position) - 1 < starts[0]:
        return -1
    return bisect.bisect_right(starts, int(position) - 1) - 1


def _run_transactional_one_by_one(
    conn: psycopg.Connection, tracking: Tracking, step: Step, started: float, notices: _Notices
) -> None:
    """For files with COPY: its data must follow its statement, which a single query string cannot carry."""
    cur = conn.cursor()
    cur.execute("begin")
    text = step.sql.text
    try:
        for index, stmt in enumerate(step.sql.statements):
            _execute(cur, step.sql, text, stmt, index, notices)
    except _StatementFailed:
        _rollback_quietly(conn)
        raise
    cur.execute(sql.SQL("; ").join([
        *map(sql.SQL, _BOOKKEEPING), sql.SQL("set local role {}").format(sql.Identifier(tracking.owner)),
        _row_change(tracking, step, started, RowState.APPLIED, None), sql.SQL("commit")]))
    cur.execute(clean_session(conn))


def _run_outside_transaction(
    conn: psycopg.Connection, tracking: Tracking, step: Step, started: float, reached: _Reached,
    notices: _Notices,
) -> None:
    """SPEC 5: statement by statement; a failure leaves the row in state `failed`.

    The row says `failed` before the first statement runs and counts the
    statements as they finish, so that a run cut short at any moment (killed,
    connection lost) is seen as failed, in either direction, not as applied or
    rolled back. The last statement is counted by the row's final change: a
    separate count would close no window the final change leaves open, and
    would cost a commit.
    """
    cur = conn.cursor()
    if step.direction is Direction.UP:
        mark = _row_change(tracking, step, started, RowState.FAILED, 0)
    else:
        mark = tracking.update_query(step.id, state=RowState.FAILED.value, statements_run=0,
                                     failed_during=step.direction.value)
    cur.execute(_WITHOUT_FLUSH.format(mark))
    reached.is_marked_failed = True
    ran = 0
    text = step.sql.text
    try:
        last = len(step.sql.statements) - 1
        for index, stmt in enumerate(step.sql.statements):
            _execute(cur, step.sql, text, stmt, index, notices)
            ran = reached.statements_run = index + 1
            if index < last:
                cur.execute(_AS_OWNER.format(sql.Identifier(tracking.owner),
                                             tracking.update_query(step.id, statements_run=ran)))
    except _StatementFailed as failure:
        failure.statements_run = ran
        cur.execute(_AS_OWNER.format(sql.Identifier(tracking.owner), tracking.update_query(
            step.id, state=RowState.FAILED.value, statements_run=ran, failed_during=step.direction.value)))
        cur.execute(clean_session(conn))
        raise
    if step.direction is Direction.UP:
        done = tracking.update_query(step.id, state=RowState.APPLIED.value, statements_run=ran,
                                     duration_ms=_ms_since(started), failed_during=None)
    else:
        done = tracking.delete_query(step.id)
    # its own transaction first: a failure in the session reset cannot take the count with it
    cur.execute(_AS_OWNER.format(sql.Identifier(tracking.owner), done))
    cur.execute(clean_session(conn))


def _row_change(tracking: Tracking, step: Step, started: float, state: RowState, ran: int | None) -> sql.Composed:
    if step.direction is Direction.DOWN:
        return tracking.delete_query(step.id)
    columns: dict[str, object] = dict(
        id=step.id,
        name=step.name,
        checksum=step.sql.checksum,
        content_checksum=step.sql.content_checksum,
        duration_ms=DURATION_MS if state is RowState.APPLIED else _ms_since(started),
        down_sql=step.down_sql,
        state=state.value,
        statements_run=ran,
    )
    if state is RowState.FAILED:
        columns["failed_during"] = "up"
    return tracking.insert_query(**columns)


def _execute(cur: psycopg.Cursor, sql_file: SqlFile, file_text: str, stmt: Statement, index: int,
             notices: _Notices) -> None:
    invalid_before = _invalid_indexes(cur) if _builds_index_concurrently(stmt) else None
    try:
        with notices.collecting():
            if stmt.copy_data is not None:
                with cur.copy(stmt.text_in(file_text)) as copy:
                    copy.write(stmt.copy_data)
            else:
                cur.execute(stmt.text_in(file_text))  # no parameters: sent as written, simple protocol
    except psycopg.Error as exc:
        if cur.connection.broken or cur.connection.closed:
            raise
        error = _locate(sql_file, stmt, exc, cur.connection.info.server_version)
        if invalid_before is not None:
            error = _naming_invalid_indexes(error, _invalid_indexes(cur) - invalid_before)
        raise _StatementFailed(error, index) from exc


def _builds_index_concurrently(stmt: Statement) -> bool:
    """CREATE [UNIQUE] INDEX CONCURRENTLY or REINDEX ... CONCURRENTLY: when they
    fail, PostgreSQL leaves an INVALID index behind."""
    words = stmt.words[:6]
    return words[:1] in (("create",), ("reindex",)) and "concurrently" in words and (
        words[0] == "reindex" or "index" in words)


_INVALID_INDEXES = sql.SQL("select i.indexrelid::regclass::text from pg_index i where not i.indisvalid")


def _invalid_indexes(cur: psycopg.Cursor) -> set[str]:
    try:
        return {row[0] for row in cur.execute(_INVALID_INDEXES).fetchall()}
    except psycopg.Error:  # naming them is a courtesy: the statement's own error matters
        return set()


def _naming_invalid_indexes(error: SqlError, left: set[str]) -> SqlError:
    """Say which INVALID index the failed build left, and how to clear it before the next run."""
    if not left:
        return error
    names = sorted(left)
    said = (f"PostgreSQL left the INVALID index {', '.join(names)} behind: run "
            + " ".join(f"`DROP INDEX CONCURRENTLY {name};`" for name in names)
            + " before running the migration again")
    return dataclasses.replace(error, hint="\n".join(h for h in (said, error.hint) if h))


def _locate(
    sql_file: SqlFile, stmt: Statement, exc: psycopg.Error, server_version: int = 0, sent_at: int = 0
) -> SqlError:
    """Place a PostgreSQL error in the file. The server counts its position from
    the start of the query sent, in which the statement began at `sent_at`.

    A statement using SQL newer than the server gets a hint saying so, as the
    server's own "syntax error at or near" does not.
    """
    diag = exc.diag
    offset = stmt.offset
    position = diag.statement_position
    if position and str(position).isdigit():
        within = int(position) - 1 - sent_at
        if 0 <= within <= stmt.end - stmt.offset:
            offset = stmt.offset + within
    file_text = sql_file.text
    line, col = line_col(file_text, offset)
    return SqlError(
        path=sql_file.path,
        line=line,
        col=col,
        sqlstate=diag.sqlstate or "?????",
        message=diag.message_primary or _short(exc),
        detail=diag.message_detail,
        # ours first: for SQL newer than the server, its own hint ("No function matches
        # the given name ... explicit type casts") points the wrong way
        hint="\n".join(h for h in (newer_server_hint(stmt.text_in(file_text), diag.sqlstate, server_version),
                                   diag.message_hint) if h) or None,
        context=diag.context,
    )


def _rollback_quietly(conn: psycopg.Connection) -> None:
    if conn.closed or conn.broken:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("rollback")
    except psycopg.Error:
        pass


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _short(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__

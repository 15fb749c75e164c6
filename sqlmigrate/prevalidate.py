"""Validation by `up` and `down` in a forked child, while the parent imports psycopg and connects.

Lexing the migration files and importing psycopg would otherwise take turns
on one core. Forked right after the scan, the child checks
the folders on the other core meanwhile: it inherits the scan (copy-on-write,
nothing is sent to it), checks every folder newest first (pending migrations
are usually the newest, and `down` goes newest first) and sends one pickled
record per folder through a pipe. For `up` a record holds the findings of both
files and up.sql's statements; for `down`, the findings and statements of
down.sql. The parent reads records only as far as the migrations it needs,
then stops the child and reaps it.

Both sides run the same rules (rules.check_migration, rules.check_down) on the
same bytes, so the findings are the same either way. Anything unusual (no fork
on the platform, other threads running, a child that dies or sends what does
not unpickle) makes the parent check the rest itself.
"""
from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows, which has no fork either
    fcntl = None  # type: ignore[assignment]

from sqlmigrate import rules, sqltext
from sqlmigrate.discovery import Scan
from sqlmigrate.model import Finding, Migration, SqlFile

_SIZE = struct.Struct("<Q")
# Above this many bytes of SQL, pickling the lexed statements back costs the
# parent more than the import the child's work overlaps.
MAX_BYTES = 1 << 20
_Record = tuple[list[Finding], dict[Path, SqlFile]]


class Prevalidation:
    """Validation results arriving from a child process, read on demand."""

    def __init__(self, pid: int, reader: BinaryIO, table: rules.TrackingTable, direction: str,
                 order: list[Path]) -> None:
        self._pid: int | None = pid
        self._reader: BinaryIO | None = reader
        self._table = table
        self._direction = direction
        self._order = order  # the folders in the order the child sends them
        self._results: dict[Path, _Record] = {}

    @classmethod
    def start(cls, scan: Scan, table: rules.TrackingTable, direction: str = "up") -> Prevalidation | None:
        """Fork the child that checks what `direction` (up, down) runs; None where
        forking is not possible, not safe or not worth it."""
        if not hasattr(os, "fork") or threading.active_count() != 1:
            return None  # forking a process with other threads may copy a held lock
        if signal.getsignal(signal.SIGCHLD) != signal.SIG_DFL:
            return None  # the child may be reaped by someone else (or the kernel): its pid is not ours to kill
        kinds = ("up", "down") if direction == "up" else ("down",)
        if sum(len(getattr(m, kind).data or b"") for m in scan.folders for kind in kinds) > MAX_BYTES:
            return None
        folders = sorted(scan.folders, key=lambda m: (m.number, m.folder.name), reverse=True)
        parent = os.getpid()
        read_fd, write_fd = os.pipe()
        _widen(write_fd)
        # a Ctrl-C between fork() and the child's SIG_IGN would run the parent's
        # handlers in the child: SIGINT waits, blocked, until both are set up
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            _child(read_fd, write_fd, folders, table, direction, parent, blocked)
        os.close(write_fd)
        early = cls(pid, os.fdopen(read_fd, "rb"), table, direction, [m.folder for m in folders])
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a Ctrl-C that waited is raised here
        except BaseException:
            early.close()
            raise
        return early

    def check_migration(self, migration: Migration, table: rules.TrackingTable,
                        parsed: dict[Path, SqlFile] | None = None) -> list[Finding]:
        """rules.check_migration, answered from the child's record when it has one
        (which puts only up.sql in `parsed`: the file `up` runs)."""
        record = self._record(migration.folder) if (table, "up") == (self._table, self._direction) else None
        if record is None:
            return rules.check_migration(migration, table, parsed)
        findings, files = record
        if parsed is not None:
            for path, sql in files.items():  # up.sql, lexed: read, so its bytes are here
                assert migration.up.data is not None
                # they stayed here (see _child); sqlfile.parse drops a BOM once more
                parsed[path] = replace(sql, data=sqltext.without_bom(migration.up.data))
        return list(findings)

    def check_downs(self, migrations: list[Migration],
                    table: rules.TrackingTable) -> list[tuple[SqlFile | None, list[Finding]]]:
        """rules.check_downs, answered from the child's records.

        The child goes newest first through every folder, pending ones too.
        When more folders nobody asked for lie ahead of the wanted ones than
        there are wanted ones (one step down under many pending folders, say),
        the parent lexes its own rather than wait."""
        if (table, "down") != (self._table, self._direction):
            return rules.check_downs(migrations, table)
        if not self._worth_waiting({m.folder for m in migrations}):
            self.close()
        return [self._check_down(m, table) for m in migrations]

    def _check_down(self, migration: Migration, table: rules.TrackingTable) -> tuple[SqlFile | None, list[Finding]]:
        record = self._record(migration.folder)
        sql = record[1].get(migration.down.path) if record is not None else None
        if record is None or sql is None or migration.down.data is None:
            return rules.check_down(migration, table)
        return replace(sql, data=sqltext.without_bom(migration.down.data)), list(record[0])

    def _worth_waiting(self, wanted: set[Path]) -> bool:
        last = max((i for i, folder in enumerate(self._order) if folder in wanted), default=-1)
        ahead = self._order[len(self._results):last + 1]  # what the child has yet to send, at most
        return sum(folder not in wanted for folder in ahead) <= len(wanted)

    def close(self) -> None:
        """Stop and reap the child (idempotent)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._pid is not None:
            # not reaped yet (SIGCHLD is at its default), so the pid is still the child's
            try:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self._pid = None

    def _record(self, folder: Path) -> _Record | None:
        while folder not in self._results and self._reader is not None:
            received = self._receive()
            if received is None:  # the child ended or failed: the parent checks the rest
                self.close()
                break
            done, findings, files = received
            self._results[done] = (findings, files)
        return self._results.get(folder)

    def _receive(self) -> tuple[Path, list[Finding], dict[Path, SqlFile]] | None:
        assert self._reader is not None
        try:
            head = self._reader.read(_SIZE.size)
            if len(head) < _SIZE.size:
                return None
            (size,) = _SIZE.unpack(head)
            body = self._reader.read(size)
            if len(body) < size:
                return None
            return pickle.loads(body)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError):
            return None


def _widen(fd: int) -> None:
    """A pipe as large as Linux allows a user (1 MiB by default), so that the
    child is not held up by a full pipe while the parent is still importing."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl else None
    if set_size is None:
        return
    try:
        with open("/proc/sys/fs/pipe-max-size") as limit:
            fcntl.fcntl(fd, set_size, int(limit.read()))
    except (OSError, ValueError):
        pass  # a smaller pipe only costs some of the overlap


def _child(read_fd: int, write_fd: int, folders: list[Migration], table: rules.TrackingTable,
           direction: str, parent: int, blocked: set) -> None:
    """Check each folder and send its record; never returns, never prints."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to report
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(read_fd)
        # the caller may wait for the end of our output streams: nothing of ours holds them open
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        with os.fdopen(write_fd, "wb") as out:
            for migration in folders:
                if os.getppid() != parent:
                    break  # the parent is gone: nobody reads
                if direction == "up":
                    parsed: dict[Path, SqlFile] = {}
                    findings = rules.check_migration(migration, table, parsed)
                    runs = parsed.get(migration.up.path)
                else:
                    runs, findings = rules.check_down(migration, table)
                # the parent needs the statements of the file it runs; it has the
                # file's bytes already, which are most of the record
                files = {runs.path: replace(runs, data=b"")} if runs is not None else {}
                body = pickle.dumps((migration.folder, findings, files), pickle.HIGHEST_PROTOCOL)
                out.write(_SIZE.pack(len(body)))
                out.write(body)
                out.flush()
        status = 0
    except BaseException:  # a closed pipe (the parent has all it needs), or anything else: just end
        pass
    finally:
        os._exit(status)

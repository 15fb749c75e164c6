"""Validation in a forked child (prevalidate) gives what validation in the process gives."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from unittest import mock

import pytest

from sqlmigrate import discovery, rules, sqlfile
from sqlmigrate.prevalidate import Prevalidation
from tests.conftest import CORPORA, ROOT, wait_for, write_files

FOLDERS = [ROOT / "migrations", *sorted(CORPORA.iterdir())]
FOLDERS = [f for f in FOLDERS if f.is_dir()]


def _ups(parsed: dict) -> dict:
    """The up.sql files (what `up` runs; the child does not send down.sql files back)."""
    return {path: sql for path, sql in parsed.items() if path.name == "up.sql"}


def _serial(scan, table):
    parsed: dict = {}
    return rules.check(scan, table, parsed=parsed), _ups(parsed)


def _forked(scan, table, only=None, before=None):
    early = Prevalidation.start(scan, table)
    assert early is not None, "fork is available here: the test must exercise it"
    pid = early._pid
    try:
        if before:
            before(early)
        parsed: dict = {}
        findings = rules.check(scan, table, only=only, parsed=parsed, check_one=early.check_migration)
    finally:
        early.close()
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)
    return findings, _ups(parsed)


def _messy(tmp_path: Path) -> Path:
    """A folder with something for most rules: errors and warnings in up and down files."""
    files = {
        "001_ok/up.sql": b"create table a (id int);\n",
        "001_ok/down.sql": b"drop table a;\n",
        "002_twin/up.sql": b"begin;\ncreate index i on a (id);\ncommit;\n",
        "002_twin/down.sql": b"-- sqlmigrate: irreversible\n",
        "02_twin/up.sql": b"select 1;\n",
        "02_twin/down.sql": b"select 1;\n",
        "003_bad/up.sql": b"\xff\xfe not utf-8",
        "003_bad/down.sql": b"select 'unterminated;\n",
        "004_lint/up.sql": b"-- sqlmigrate: ignore lock-unsafe\ndrop table a;\ncreate index j on b (c);\n",
        "006_lint/up.sql": b"truncate a;\nalter table b add column c int not null;\n",
        "006_lint/down.sql": b"-- sqlmigrate: empty\n",
        "004_lint/down.sql": b"",
        "005_nodown/up.sql": b"vacuum;\n",
        "Bad Name": None,
    }
    return write_files(tmp_path / "m", files)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_same_findings_and_parsed_files_as_in_process(folder):
    scan = discovery.scan(folder)
    table = rules.TrackingTable.parse("sqlmigrate_migrations")
    findings, parsed = _forked(scan, table)
    assert (findings, parsed) == _serial(scan, table)
    assert parsed and all(sql.data for sql in parsed.values())  # the up.sql files to run, bytes included


def test_same_on_a_folder_full_of_problems(tmp_path):
    scan = discovery.scan(_messy(tmp_path))
    table = rules.TrackingTable.parse("schema_migrations")
    findings, parsed = _forked(scan, table)
    expected = _serial(scan, table)
    assert (findings, parsed) == expected
    assert {f.rule for f in findings} >= {"bad-name", "duplicate-id", "not-utf8", "unterminated",
                                          "transaction-control", "destructive", "lock-unsafe", "empty-down",
                                          "missing-down", "needs-no-transaction"}


def test_only_the_pending_ones_and_the_child_is_stopped_early():
    scan = discovery.scan(CORPORA / "crates_io")
    table = rules.TrackingTable.parse("sqlmigrate_migrations")
    newest = max(m.number for m in scan.migrations)
    findings, parsed = _forked(scan, table, only=lambda m: m.number == newest)
    parsed_serial: dict = {}
    assert findings == rules.check(scan, table, only=lambda m: m.number == newest, parsed=parsed_serial)
    assert parsed == _ups(parsed_serial) and len(parsed) == 1


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_child_that_dies_leaves_the_work_to_the_parent(direction):
    scan = discovery.scan(CORPORA / "crates_io")
    table = rules.TrackingTable.parse("sqlmigrate_migrations")
    forked, serial = (_forked, _serial) if direction == "up" else (_down_forked, _down_serial)

    def kill(early):
        os.kill(early._pid, signal.SIGKILL)

    assert forked(scan, table, before=kill) == serial(scan, table)


def test_another_table_is_checked_in_the_parent(tmp_path):
    scan = discovery.scan(_messy(tmp_path))
    early = Prevalidation.start(scan, rules.TrackingTable.parse("a"))
    assert early is not None
    try:
        other = rules.TrackingTable.parse("b")
        findings = rules.check(scan, other, check_one=early.check_migration)
    finally:
        early.close()
    assert findings == rules.check(scan, other)


def test_down_for_another_table_is_checked_in_the_parent(tmp_path):
    """001_ok/down.sql drops table a: the tracking table the child checked for, not b."""
    scan = discovery.scan(_messy(tmp_path))
    early = Prevalidation.start(scan, rules.TrackingTable.parse("a"), "down")
    assert early is not None
    other = rules.TrackingTable.parse("b")
    try:
        answers = early.check_downs(list(scan.migrations), other)
    finally:
        early.close()
    assert answers == [rules.check_down(m, other) for m in scan.migrations]
    assert "touches-tracking-table" not in {f.rule for _, findings in answers for f in findings}


def test_no_fork_while_other_threads_run(tmp_path):
    scan = discovery.scan(_messy(tmp_path))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert Prevalidation.start(scan, rules.TrackingTable.parse("a")) is None
    finally:
        stop.set()
        thread.join()


def test_a_file_with_two_byte_order_marks_runs_the_same_bytes(write_migrations):
    """read_file drops one BOM and sqlfile.parse another: the parent must not put the second back."""
    bom = b"\xef\xbb\xbf"
    mdir = write_migrations({"001_bom": (bom + bom + b"-- sqlmigrate: no-transaction\ncreate table t (id int);\n",
                                         b"drop table t;\n")})
    folder = mdir / "001_bom"
    scan = discovery.scan(mdir)
    table = rules.TrackingTable.parse("schema_migrations")
    forked = _forked(scan, table)
    assert forked == _serial(scan, table)
    (sql,) = forked[1].values()
    assert sql.statements[0].text_in(sql.text) == "create table t (id int);"
    (folder / "down.sql").write_bytes(bom + bom + b"drop table t;\n")
    scan = discovery.scan(mdir)
    down_forked = _down_forked(scan, table)
    assert down_forked == _down_serial(scan, table)
    down, _ = down_forked[folder]
    assert down.data == b"drop table t;\n" and down.statements[0].text_in(down.text) == "drop table t;"


def test_no_fork_when_sigchld_is_not_at_its_default(tmp_path):
    """Someone else would reap the child: its pid would not be ours to kill or wait for."""
    scan = discovery.scan(_messy(tmp_path))
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert Prevalidation.start(scan, rules.TrackingTable.parse("a")) is None
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_no_fork_for_a_big_folder(tmp_path, monkeypatch):
    """Pickling the statements of megabytes of SQL back costs more than the overlap gains."""
    scan = discovery.scan(_messy(tmp_path))
    monkeypatch.setattr("sqlmigrate.prevalidate.MAX_BYTES", 100)
    assert Prevalidation.start(scan, rules.TrackingTable.parse("a")) is None


def test_the_child_holds_none_of_the_callers_streams():
    """A caller reading our stdout to its end must not wait for the child (a killed parent's, say)."""
    scan = discovery.scan(CORPORA / "crates_io")
    early = Prevalidation.start(scan, rules.TrackingTable.parse("sqlmigrate_migrations"))
    assert early is not None and early._pid is not None
    try:
        def redirected():
            targets = [os.readlink(f"/proc/{early._pid}/fd/{fd}") for fd in (0, 1, 2)]
            return targets if targets == [os.devnull] * 3 else None

        assert wait_for(redirected, "the child to point its standard streams at /dev/null") == [os.devnull] * 3
    finally:
        early.close()



# -- down: the child lexes and checks down.sql, newest first ---------------------------


def _down_serial(scan, table):
    return {m.folder: rules.check_down(m, table) for m in scan.migrations}


def _down_forked(scan, table, before=None, wanted=None):
    """check_downs of `wanted` (default: every migration, newest first, as `down
    --all` asks), with the parent's lexer disabled unless `before` is given
    (which kills the child): every answer must then be the child's."""
    early = Prevalidation.start(scan, table, "down")
    assert early is not None, "fork is available here: the test must exercise it"
    pid = early._pid
    wanted = wanted or sorted(scan.migrations, key=lambda m: m.number, reverse=True)
    try:
        if before:
            before(early)
            results = early.check_downs(wanted, table)
        else:
            with mock.patch.object(sqlfile, "parse", side_effect=AssertionError("the parent lexed a file")):
                results = early.check_downs(wanted, table)
    finally:
        early.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return dict(zip((m.folder for m in wanted), results))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_down_gets_the_same_files_and_findings_as_in_process(folder):
    scan = discovery.scan(folder)
    table = rules.TrackingTable.parse("sqlmigrate_migrations")
    forked = _down_forked(scan, table)
    assert forked == _down_serial(scan, table)
    # the statements came from the child; the bytes to run are the parent's own
    assert all(sql is not None and sql.data for sql, _ in forked.values() if sql is not None)
    assert any(sql is not None for sql, _ in forked.values())


def test_down_on_a_folder_full_of_problems(tmp_path):
    scan = discovery.scan(_messy(tmp_path))
    table = rules.TrackingTable.parse("schema_migrations")
    forked = _down_forked(scan, table)
    assert forked == _down_serial(scan, table)
    rules_found = {f.rule for _, findings in forked.values() for f in findings}
    assert {"unterminated", "empty-down"} <= rules_found
    assert forked[tmp_path / "m" / "005_nodown"] == (None, [])


def test_a_down_child_answers_no_up_question(tmp_path):
    """check_migration asked of a child forked for down is answered in the parent, whole."""
    scan = discovery.scan(_messy(tmp_path))
    table = rules.TrackingTable.parse("a")
    early = Prevalidation.start(scan, table, "down")
    assert early is not None
    try:
        parsed: dict = {}
        findings = rules.check(scan, table, parsed=parsed, check_one=early.check_migration)
    finally:
        early.close()
    expected: dict = {}
    assert findings == rules.check(scan, table, parsed=expected)
    assert parsed == expected


def test_down_lexes_in_the_parent_rather_than_wait_behind_many_pending_folders(write_migrations):
    """One step down of the oldest migration under 30 pending ones: the child would
    lex 30 folders nobody needs first, so the parent stops it and lexes its one."""
    scan = discovery.scan(write_migrations(
        {f"{n:03d}_t{n}": (f"create table t{n} (id int);\n", f"drop table t{n};\n") for n in range(1, 32)}))
    table = rules.TrackingTable.parse("schema_migrations")
    oldest = [m for m in scan.migrations if m.number == 1]
    early = Prevalidation.start(scan, table, "down")
    assert early is not None
    try:
        assert early.check_downs(oldest, table) == [rules.check_down(oldest[0], table)]
        assert early._pid is None  # stopped and reaped
    finally:
        early.close()
    newest = [m for m in scan.migrations if m.number == 31]
    assert _down_forked(scan, table, wanted=newest) == {newest[0].folder: rules.check_down(newest[0], table)}

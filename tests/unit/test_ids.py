"""Migration ids: ASCII digits only, compared as integers; which folder owns an id that
two folders share, when one of them is applied."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from sqlmigrate import discovery, model, plan, sqltext
from sqlmigrate.model import AppliedRow, State
from tests.conftest import write_files


@pytest.mark.parametrize("text,ok", [("1", True), ("001", True), ("20261124153000", True), ("²", False),
                                     ("٣", False), ("1²", False), ("", False), ("-1", False), (" 1", False),
                                     ("1\n", False)])
def test_is_id_takes_ascii_digits_only(text, ok):
    assert model.is_id(text) is ok


def row(id_: str, name: str, checksum: str) -> AppliedRow:
    return AppliedRow(id_, name, checksum, datetime(2026, 11, 24, tzinfo=timezone.utc))


def scan_folders(tmp_path: Path, *names: str) -> discovery.Scan:
    """A scan of migrations `names`, each making a table of its own."""
    for name in names:
        write_files(tmp_path, {f"{name}/up.sql": f"create table t_{name} (id int);\n",
                               f"{name}/down.sql": f"drop table t_{name};\n"})
    return discovery.scan(tmp_path)


def up_checksum(tmp_path: Path, name: str) -> str:
    return sqltext.checksum((tmp_path / name / "up.sql").read_bytes())


@pytest.mark.parametrize("names,applied,owner", [
    # the folder whose id and name match the row, wherever it sorts
    (("001_a", "1_b"), ("1", "b"), "1_b"),
    (("001_a", "1_b"), ("001", "a"), "001_a"),
    # else the one whose id is written as in the row (renamed, then a duplicate added)
    (("001_a", "1_c"), ("1", "b"), "1_c"),
    # else the one with the row's name (its id re-padded)
    (("001_a", "01_b"), ("1", "b"), "01_b"),
    # else the first by name, as without a row
    (("001_a", "01_c"), ("1", "b"), "001_a"),
])
def test_a_shared_id_goes_to_the_folder_its_row_names(tmp_path, names, applied, owner):
    scan = scan_folders(tmp_path, *names)
    assert [m.folder.name for m in scan.migrations] == [names[0]]  # offline: the first by name
    rows = [row(*applied, up_checksum(tmp_path, owner))]
    claimed = plan.assign_rows(scan, rows)
    assert [m.folder.name for m in claimed.migrations] == [owner]
    [other] = [n for n in names if n != owner]
    [finding] = claimed.findings
    assert (Path(finding.path).name, finding.rule) == (other, "duplicate-id")
    assert finding.message == (
        f"id {other.split('_')[0]} is the same as {owner}, which is applied (ids compare as integers)")
    [status] = plan.statuses(scan, rows)
    assert (status.migration.folder.name, status.state) == (owner, State.APPLIED)
    assert plan.duplicates_of_applied(scan, rows) == [finding]


def test_without_a_row_the_duplicate_finding_is_unchanged(tmp_path):
    scan = scan_folders(tmp_path, "001_a", "1_b", "002_c")
    [finding] = scan.findings
    assert (Path(finding.path).name, finding.message) == (
        "1_b", "id 1 is the same as 001_a (ids compare as integers)")
    assert plan.assign_rows(scan, [row("2", "c", "x")]).findings == scan.findings
    assert plan.duplicates_of_applied(scan, [row("2", "c", "x")]) == []


def test_file_findings_follow_the_folder_that_owns_the_id(tmp_path):
    scan_folders(tmp_path, "001_a", "1_b")
    (tmp_path / "1_b" / "down.sql").unlink()
    scan = discovery.scan(tmp_path)
    assert [f.rule for f in scan.findings] == ["duplicate-id"]  # 1_b is the duplicate: its files are not read
    claimed = plan.assign_rows(scan, [row("1", "b", up_checksum(tmp_path, "1_b"))])
    assert [(Path(f.path).name, f.rule) for f in claimed.findings] == [
        ("001_a", "duplicate-id"), ("1_b", "missing-down")]

"""The planner on plain records: folders and tracking rows built in memory, no database."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from sqlmigrate import discovery, plan as planning, sqltext
from sqlmigrate.errors import Refused, UsageError
from sqlmigrate.model import (AppliedRow, Direction, Migration, MigrationFile, RepairAction, RowState, State,
                              TrackingTable)
from sqlmigrate.validation import Validator

TABLE = TrackingTable("schema_migrations")


def sql_file(path: Path, text: str | None) -> MigrationFile:
    if text is None:
        return MigrationFile(path, False, None, None)
    data = text.encode()
    return MigrationFile(path, True, sqltext.checksum(data), data)


def migration(folder_name: str, up: str | None = None, down: str | None = None) -> Migration:
    id, _, name = folder_name.partition("_")
    folder = Path("m") / folder_name
    return Migration(id, int(id), name, folder,
                     sql_file(folder / "up.sql", up if up is not None else f"create table {name} (id int);\n"),
                     sql_file(folder / "down.sql", down if down is not None else f"drop table {name};\n"))


def scan_of(*migrations: Migration) -> discovery.Scan:
    ordered = tuple(sorted(migrations, key=lambda m: m.folder.name))
    return discovery.assemble(ordered, (), {}, lambda group, row: group[0])


def applied(m: Migration, *, id: str | None = None, name: str | None = None, checksum: str | None = None,
            down_sql: str | None = "", state: RowState = RowState.APPLIED) -> AppliedRow:
    """The tracking row `up` would have written for `m` (overridable: renamed, edited, failed)."""
    stored = m.down.text if down_sql == "" else down_sql
    return AppliedRow(id or m.id, name or m.name, checksum or m.up.checksum or "", datetime.now(timezone.utc),
                      down_sql=stored, state=state, failed_during="up" if state is RowState.FAILED else None)


def plan_up(scan: discovery.Scan, rows: list[AppliedRow], **options):
    selection = planning.select_up(scan, rows, **options)
    findings, files = Validator(TABLE).ups(selection.scan, selection.checked)
    return planning.plan_up(selection, findings, files)


def plan_down(scan: discovery.Scan, rows: list[AppliedRow], **options):
    selection = planning.select_down(scan, rows, **options)
    return planning.plan_down(selection, Validator(TABLE).downs(selection))


def step_ids(plan) -> list[str]:
    return [s.id for s in plan.steps]


# -- up ------------------------------------------------------------------------------


def test_pending_migrations_run_in_numeric_id_order():
    scan = scan_of(migration("10_j"), migration("2_b"), migration("1_a"))
    plan = plan_up(scan, [])
    assert step_ids(plan) == ["1", "2", "10"]
    assert all(s.direction is Direction.UP for s in plan.steps)
    assert plan.steps[0].down_sql == "drop table a;\n"  # stored with the row


def test_only_pending_migrations_are_planned():
    a, b = migration("001_a"), migration("002_b")
    assert step_ids(plan_up(scan_of(a, b), [applied(a)])) == ["002"]
    assert step_ids(plan_up(scan_of(a, b), [applied(a), applied(b)])) == []


def test_a_pending_id_below_the_newest_applied_is_refused_unless_allowed():
    a, b = migration("001_a"), migration("002_b")
    with pytest.raises(Refused, match=r"older than the newest applied one \(002_b\): 001_a"):
        plan_up(scan_of(a, b), [applied(b)])
    assert step_ids(plan_up(scan_of(a, b), [applied(b)], allow_out_of_order=True)) == ["001"]


def test_up_to_stops_at_the_id_and_counts_what_it_holds_back():
    scan = scan_of(migration("001_a"), migration("002_b"), migration("003_c"))
    plan = plan_up(scan, [], to="2")
    assert step_ids(plan) == ["001", "002"]
    assert plan.held_back == 1
    assert plan.notes == ("1 pending migration(s) above --to 2 not applied: 003_c",)
    with pytest.raises(UsageError, match="--to 9: no migration has that id"):
        plan_up(scan, [], to="9")
    with pytest.raises(UsageError, match="is not an id"):
        plan_up(scan, [], to="x")


def test_a_pending_migration_above_to_is_validated_all_the_same():
    scan = scan_of(migration("001_a"), migration("002_b", up="begin;\ncreate table b (id int);\n"))
    with pytest.raises(Refused, match="validation failed") as refused:
        plan_up(scan, [], to="1")
    assert [(f.path, f.rule) for f in refused.value.findings] == [
        (Path("m/002_b/up.sql"), "transaction-control")]


def test_errors_in_a_down_sql_are_warnings_for_up():
    scan = scan_of(migration("001_a", down="commit;\n"))
    plan = plan_up(scan, [])
    assert step_ids(plan) == ["001"]
    assert [(w.rule, w.severity.value) for w in plan.warnings] == [("transaction-control", "warning")]


def test_a_modified_applied_migration_refuses_up():
    a = migration("001_a")
    with pytest.raises(Refused, match="changed on disk: 001_a"):
        plan_up(scan_of(a, migration("002_b")), [applied(a, checksum="0" * 64)])


def test_a_failed_migration_refuses_up_until_repaired():
    a = migration("001_a")
    with pytest.raises(Refused, match="001_a failed part-way"):
        plan_up(scan_of(a), [applied(a, state=RowState.FAILED)])


def test_two_folders_with_one_pending_id_are_refused():
    scan = scan_of(migration("001_a"), migration("1_b"))
    with pytest.raises(Refused) as refused:
        plan_up(scan, [])
    assert [(f.path.name, f.rule) for f in refused.value.findings] == [("1_b", "duplicate-id")]


def test_a_renamed_folder_is_the_migration_it_was_applied_as():
    renamed = migration("001_a")
    rows = [applied(renamed, id="1", name="old_name")]
    [status] = planning.statuses(scan_of(renamed), rows)
    assert (status.state, status.notes) == (State.APPLIED, ("applied as 1_old_name",))
    assert step_ids(plan_up(scan_of(renamed), rows)) == []


def test_a_shared_id_belongs_to_the_folder_holding_the_applied_up_sql():
    first, second = migration("001_a"), migration("1_b")
    rows = [applied(second, id="001", name="x")]  # neither name matches: the checksum decides
    scan = planning.assign_rows(scan_of(first, second), rows)
    assert [m.folder.name for m in scan.migrations] == ["1_b"]
    [finding] = scan.findings
    assert (finding.path.name, finding.rule) == ("001_a", "duplicate-id")
    assert "which is applied" in finding.message


# -- down ----------------------------------------------------------------------------


def test_down_rolls_back_the_newest_by_default_and_n_with_steps():
    ms = [migration(f"00{n}_{c}") for n, c in ((1, "a"), (2, "b"), (3, "c"))]
    rows = [applied(m) for m in ms]
    plan = plan_down(scan_of(*ms), rows)
    assert step_ids(plan) == ["003"]
    assert plan.steps[0].direction is Direction.DOWN
    assert step_ids(plan_down(scan_of(*ms), rows, steps=2)) == ["003", "002"]
    assert step_ids(plan_down(scan_of(*ms), rows, to="1")) == ["003", "002"]
    assert step_ids(plan_down(scan_of(*ms), rows, all_=True)) == ["003", "002", "001"]
    with pytest.raises(UsageError, match="at least 1"):
        plan_down(scan_of(*ms), rows, steps=0)


def test_down_of_a_missing_folder_uses_the_stored_down_sql():
    gone = migration("002_b")
    plan = plan_down(scan_of(migration("001_a")), [applied(migration("001_a")), applied(gone)])
    [step] = plan.steps
    assert (step.id, step.migration, str(step.sql.path)) == ("002", None, "002_b/down.sql (stored at apply time)")
    assert plan.notes == ("002_b: folder or down.sql gone; using the down.sql stored at apply time",)


def test_down_of_a_missing_folder_without_a_stored_copy_is_refused():
    gone = migration("002_b")
    with pytest.raises(Refused, match="002_b: no down.sql on disk and none stored"):
        plan_down(scan_of(), [applied(gone, down_sql=None)])


def test_an_irreversible_migration_stops_down_before_anything_runs():
    a = migration("001_a")
    b = migration("002_b", down="-- sqlmigrate: irreversible\n")
    with pytest.raises(Refused, match="002_b is irreversible"):
        plan_down(scan_of(a, b), [applied(a), applied(b)], all_=True)


def test_a_down_sql_with_an_error_is_refused_with_its_finding():
    a = migration("001_a", down="drop table a;\ncommit;\n")
    with pytest.raises(Refused, match="down.sql validation failed") as refused:
        plan_down(scan_of(a), [applied(a)])
    assert [(f.path, f.line, f.rule) for f in refused.value.findings] == [
        (Path("m/001_a/down.sql"), 2, "transaction-control")]


def test_a_down_sql_that_is_not_utf8_is_refused_not_replaced_by_the_stored_copy():
    a = migration("001_a")
    broken = Migration(a.id, a.number, a.name, a.folder, a.up,
                       MigrationFile(a.folder / "down.sql", True, None, None, b"drop table a\xff;\n"))
    with pytest.raises(Refused) as refused:
        plan_down(scan_of(broken), [applied(a)])
    assert [f.rule for f in refused.value.findings] == ["not-utf8"]


def test_down_of_a_modified_migration_notes_that_its_down_may_not_undo_it():
    a = migration("001_a")
    plan = plan_down(scan_of(a), [applied(a, checksum="0" * 64)])
    assert step_ids(plan) == ["001"]
    assert "up.sql changed since it was applied" in plan.notes[0]


# -- repair, baseline ----------------------------------------------------------------


def test_repair_records_the_checksums_of_a_modified_migration():
    a = migration("001_a")
    [repair] = planning.plan_repair(scan_of(a), [applied(a, checksum="0" * 64)], [])
    assert (repair.action, repair.was, repair.checksum) == (RepairAction.RECORD_CHECKSUMS, State.MODIFIED,
                                                            a.up.checksum)
    with pytest.raises(UsageError, match="is applied; only modified"):
        planning.plan_repair(scan_of(a), [applied(a)], ["1"])


def test_repair_clears_a_failed_run():
    a = migration("001_a")
    [repair] = planning.plan_repair(scan_of(a), [applied(a, state=RowState.FAILED)], ["001"])
    assert repair.action is RepairAction.CLEAR_FAILED_UP


def test_baseline_records_up_to_the_id_and_only_on_an_empty_table():
    a, b, c = migration("001_a"), migration("002_b"), migration("003_c")
    assert [m.id for m in planning.plan_baseline(scan_of(a, b, c), [], "2")] == ["001", "002"]
    with pytest.raises(Refused, match="already has 1 row"):
        planning.plan_baseline(scan_of(a, b, c), [applied(a)], "2")

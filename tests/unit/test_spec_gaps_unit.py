"""Unit side of the audit gaps: rules (G3, G4, G14), ids (G11), paths and annotations (G8, G15), json mode (G5),
unterminated positions (G7), ignore in the content checksum (G10), a duplicate of an applied id."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from sqlmigrate import cli, discovery, model, plan, rules, sqlfile, sqltext
from sqlmigrate.model import AppliedRow, State
from sqlmigrate.render import _github_escape, _github_property, display_path
from sqlmigrate.sqlfile import parse_text
from tests.conftest import write_files

DEFAULT = rules.TrackingTable.parse("schema_migrations")


def fired(text: str, rule: str, kind: str = "up", table: rules.TrackingTable = DEFAULT) -> list[tuple[int, int]]:
    sql = parse_text(Path(f"m/001_x/{kind}.sql"), text)
    return [(f.line, f.col) for f in rules.check_file(sql, kind, table) if f.rule == rule]


# -- G3 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "reindex (verbose, tablespace x) table concurrently t;",
    "REINDEX (VERBOSE) INDEX CONCURRENTLY i;",
    "reindex ( verbose , tablespace pg_default , verbose false ) schema concurrently s;",
    "reindex (concurrently) table t;",
    "reindex (verbose, concurrently true) index i;",
    "reindex table concurrently t;",
    "create unique index concurrently if not exists i on t (a);",
    "drop index concurrently if exists i;",
])
def test_concurrently_needs_no_transaction(text):
    assert fired("select 1;\n" + text, "needs-no-transaction") == [(2, 1)]
    assert fired("-- sqlmigrate: no-transaction\n" + text, "needs-no-transaction") == []


@pytest.mark.parametrize("text", [
    "reindex (verbose) table t;",
    "reindex (concurrently false) index i;",
    "reindex (tablespace concurrently) table t;",  # a tablespace named concurrently
    "create index i on t (concurrently);",
    "refresh materialized view concurrently v;",  # allowed in a transaction
])
def test_not_concurrently(text):
    assert fired(text, "needs-no-transaction") == []


# -- G4 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "select 1 as x into schema_migrations;",
    "select * into table public.schema_migrations from t;",
    "select distinct a into temporary table schema_migrations from t;",
    "select a into unlogged schema_migrations from t;",
    "SELECT a INTO TEMP \"schema_migrations\" FROM t;",
    "with q as (select 1) select * into schema_migrations from q;",
    "select * into schema_migrations from t union select * from u;",
    "create table schema_migrations as select 1;",
    "create unlogged table schema_migrations (id text);",
    "create temp table if not exists schema_migrations (id text);",
    "create foreign table schema_migrations (id text) server s;",
    "drop foreign table if exists schema_migrations;",
])
def test_creating_the_tracking_table_is_flagged(text):
    assert fired("select 1;\n" + text, "touches-tracking-table") == [(2, 1)]


@pytest.mark.parametrize("text", [
    "select * into other from t;",
    "select * into \"Schema_Migrations\" from t;",
    "with q as (select 1) insert into schema_migrations select * from q;",  # rows, not a table
    "insert into schema_migrations select * from t;",
    "select * from schema_migrations;",
    "create function f() returns int language plpgsql as $$ declare n int; begin "
    "select 1 into schema_migrations; return n; end $$;",
])
def test_not_creating_the_tracking_table(text):
    assert fired(text, "touches-tracking-table") == []


def test_select_into_a_qualified_tracking_table():
    other = rules.TrackingTable.parse("audit.schema_migrations")
    assert fired("select 1 into public.schema_migrations;", "touches-tracking-table", table=other) == []
    assert fired("select 1 into audit.schema_migrations;", "touches-tracking-table", table=other) == [(1, 1)]
    assert fired("select 1 into schema_migrations;", "touches-tracking-table", table=other) == [(1, 1)]


def test_a_table_made_by_select_into_is_created_in_the_migration():
    assert fired("select * into t2 from t;\ncreate index on t2 (a);", "lock-unsafe") == []


# -- G14 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["up", "down"])
def test_empty_with_statements_is_an_error_at_the_directive(kind):
    sql = parse_text(Path(f"m/001_x/{kind}.sql"), "-- header\n  -- sqlmigrate: EMPTY\nselect 1;\n")
    found = [(f.line, f.col, f.rule, f.message) for f in rules.check_file(sql, kind, DEFAULT)]
    assert found == [(2, 3, "unknown-directive", f"{kind}.sql is marked empty but holds statements")]


@pytest.mark.parametrize("text", ["-- sqlmigrate: empty\n", "-- sqlmigrate: empty\n-- nothing\n;\n"])
def test_empty_without_statements_is_fine(text):
    assert fired(text, "unknown-directive") == [] and fired(text, "empty-up") == []


# -- G11 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,ok", [("1", True), ("001", True), ("20261124153000", True), ("²", False),
                                     ("٣", False), ("1²", False), ("", False), ("-1", False), (" 1", False),
                                     ("1\n", False)])
def test_is_id_takes_ascii_digits_only(text, ok):
    assert model.is_id(text) is ok


# -- G8 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory,path,shown", [
    ("./chk/", Path("chk/001_a/up.sql"), "./chk/001_a/up.sql"),
    ("./chk", Path("chk/001_a/up.sql"), "./chk/001_a/up.sql"),
    ("chk//", Path("chk/001_a/up.sql"), "chk/001_a/up.sql"),
    (".", Path("001_a/up.sql"), "./001_a/up.sql"),
    ("/", Path("/001_a/up.sql"), "/001_a/up.sql"),
    ("../m", Path("../m/bad"), "../m/bad"),
    ("./chk/", Path("001_a/down.sql (stored at apply time)"), "001_a/down.sql (stored at apply time)"),
    (None, Path("chk/001_a/up.sql"), "chk/001_a/up.sql"),
])
def test_display_path(directory, path, shown):
    assert display_path(path, directory) == shown


# -- G15 ---------------------------------------------------------------------------------------


def test_github_escaping():
    assert _github_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    assert _github_escape("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"


# -- G5 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,wanted", [
    (["up", "--format", "json"], True),
    (["up", "--format=json"], True),
    (["up", "--form", "json"], True),
    (["up", "--format", "text"], False),
    (["up", "--format", "json", "--format", "text"], False),
    (["up", "--", "--format", "json"], False),
    (["up", "--format"], False),
    (["up"], False),
])
def test_wants_json(argv, wanted):
    assert cli._wants_json(argv) is wanted


def test_command_of():
    assert cli._command_of(["up", "--to", "1"]) == "up"
    assert cli._command_of(["--version"]) is None
    assert cli._command_of(["nope"]) is None


# -- G7 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,where,message", [
    ("select 1;\nselect 'abc;\n", (2, 1), "string starting at line 2, column 8 never ends"),
    ("-- header\n  select 1,\n  $$ never;\n", (2, 3), "dollar-quoted body starting at line 3, column 3 never ends"),
    ("select 1;\n/* never\nselect 2;\n", (2, 1), "block comment starting at line 2, column 1 never ends"),
])
def test_unterminated_finding_is_at_the_statement_and_names_the_opening(text, where, message):
    sql = parse_text(Path("m/001_x/up.sql"), text)
    [found] = [f for f in rules.check_file(sql, "up", DEFAULT) if f.rule == "unterminated"]
    assert ((found.line, found.col), found.message) == (where, message)


# -- G10 ---------------------------------------------------------------------------------------

IGNORED = "-- sqlmigrate: ignore destructive, lock-unsafe\ndrop table t;\ncreate index on u (x);\n"


@pytest.mark.parametrize("directive", [
    "-- sqlmigrate: ignore lock-unsafe, destructive",
    "-- sqlmigrate: ignore destructive, lock-unsafe, destructive",
    "--SQLMIGRATE: Ignore Lock-Unsafe,Destructive,lock-unsafe",
])
def test_ignore_rules_are_a_set_in_the_content_checksum(directive):
    text = IGNORED.replace("-- sqlmigrate: ignore destructive, lock-unsafe", directive)
    assert sqltext.checksum(text.encode()) != sqltext.checksum(IGNORED.encode())
    assert sqlfile.content_checksum(Path("m/001_x/up.sql"), text) == \
        sqlfile.content_checksum(Path("m/001_x/up.sql"), IGNORED)


def test_ignoring_other_rules_changes_the_content_checksum():
    one_rule = IGNORED.replace("destructive, lock-unsafe", "destructive")
    assert sqlfile.content_checksum(Path("m/001_x/up.sql"), one_rule) != \
        sqlfile.content_checksum(Path("m/001_x/up.sql"), IGNORED)


# -- a folder with the id of an applied migration ----------------------------------------------


def row(id_: str, name: str, checksum: str) -> AppliedRow:
    return AppliedRow(id_, name, checksum, datetime(2026, 11, 24, tzinfo=timezone.utc))


def folders(tmp_path: Path, *names: str) -> discovery.Scan:
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
    scan = folders(tmp_path, *names)
    assert [m.folder.name for m in scan.migrations] == [names[0]]  # offline: the first by name
    rows = [row(*applied, up_checksum(tmp_path, owner))]
    claimed = scan.for_rows(rows)
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
    scan = folders(tmp_path, "001_a", "1_b", "002_c")
    [finding] = scan.findings
    assert (Path(finding.path).name, finding.message) == (
        "1_b", "id 1 is the same as 001_a (ids compare as integers)")
    assert scan.for_rows([row("2", "c", "x")]).findings == scan.findings
    assert plan.duplicates_of_applied(scan, [row("2", "c", "x")]) == []


def test_file_findings_follow_the_folder_that_owns_the_id(tmp_path):
    folders(tmp_path, "001_a", "1_b")
    (tmp_path / "1_b" / "down.sql").unlink()
    scan = discovery.scan(tmp_path)
    assert [f.rule for f in scan.findings] == ["duplicate-id"]  # 1_b is the duplicate: its files are not read
    claimed = scan.for_rows([row("1", "b", up_checksum(tmp_path, "1_b"))])
    assert [(Path(f.path).name, f.rule) for f in claimed.findings] == [
        ("001_a", "duplicate-id"), ("1_b", "missing-down")]

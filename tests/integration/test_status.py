"""`status`: text table and JSON, every state, always exit 0."""
from __future__ import annotations

import json
import shutil
from datetime import datetime

from tests.conftest import tables
from tests.integration.helpers import one_json, run, sha256, status_rows


def test_status_before_anything_lists_pending_and_creates_nothing(database, db, write_migrations):
    mdir = write_migrations({
        "1_one": ("select 1;\n", "select 1;\n"),
        "2_two": ("select 1;\n", "select 1;\n"),
        "10_ten": ("select 1;\n", "select 1;\n"),
    })
    result = run("status", mdir, database)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("ID"))
    assert header.split() == ["ID", "NAME", "STATE", "APPLIED", "AT"]
    ids = [cells[0] for cells in status_rows(result.stdout).values()]
    assert ids == ["1", "2", "10"]
    assert all(cells[2] == "pending" and cells[3] == "-" for cells in status_rows(result.stdout).values())
    assert "3 pending" in result.stdout
    assert tables(db) == set()


def test_every_state_and_exit_0(database, db, write_migrations):
    mdir = write_migrations({
        "001_applied": ("create table a (id int);\n", "drop table a;\n"),
        "002_modified": ("create table b (id int);\n", "drop table b;\n"),
        "003_missing": ("create table c (id int);\n", "drop table c;\n"),
        "004_reformatted": ("create table d (id int);\n", "drop table d;\n"),
    })
    assert run("up", mdir, database).exit_code == 0
    (mdir / "002_modified" / "up.sql").write_text("create table b (id bigint);\n")
    shutil.rmtree(mdir / "003_missing")
    (mdir / "004_reformatted" / "up.sql").write_text("-- header\nCREATE TABLE d (\n  id INT\n);\n")
    write_migrations({"005_pending": ("select 1;\n", "select 1;\n")})

    result = run("status", mdir, database)
    assert result.exit_code == 0, result.stderr
    rows = status_rows(result.stdout)
    assert {k: v[2] for k, v in rows.items()} == {
        "001": "applied", "002": "modified", "003": "missing", "004": "reformatted", "005": "pending",
    }
    assert rows["003"][1] == "missing"  # its name, from the tracking row
    assert "note: up.sql changed since it was applied" in result.stdout
    assert "folder is gone" in result.stdout

    payload = json.loads(run("status", mdir, database, "--format", "json").stdout)
    migrations = payload["migrations"]
    assert [m["id"] for m in migrations] == ["001", "002", "003", "004", "005"]
    assert [m["state"] for m in migrations] == ["applied", "modified", "missing", "reformatted", "pending"]
    assert migrations[4]["applied_at"] is None
    for m in migrations[:4]:
        stamp = datetime.fromisoformat(m["applied_at"])
        assert stamp.tzinfo is not None


def test_json_shape(database, db, write_migrations):
    mdir = write_migrations({
        "1_one": ("select 1;\n", "select 1;\n"),
        "0002_two": ("select 1;\n", "select 1;\n"),
    })
    assert run("up", mdir, database, "--to", "1").exit_code == 0
    result = run("status", mdir, database, "--format", "json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert isinstance(payload, dict)
    one, two = payload["migrations"]
    assert one["id"] == "1" and isinstance(one["id"], str)
    assert two["id"] == "0002"
    assert one["name"] == "one" and one["state"] == "applied"
    assert isinstance(datetime.fromisoformat(one["applied_at"]), datetime)
    assert (two["name"], two["state"], two["applied_at"]) == ("two", "pending", None)
    assert result.stderr == ""


def test_renamed_folder_still_matches(database, db, write_migrations):
    mdir = write_migrations({"1_x": ("create table x (id int);\n", "drop table x;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "1_x").rename(mdir / "001_x")
    result = run("status", mdir, database)
    assert result.exit_code == 0
    rows = status_rows(result.stdout)
    assert list(rows) == ["001"]
    assert rows["001"][1:3] == ["x", "applied"]
    assert "note: applied as 1_x" in result.stdout
    payload = json.loads(run("status", mdir, database, "--format", "json").stdout)
    assert payload["migrations"][0]["id"] == "001"
    assert "applied as 1_x" in payload["migrations"][0]["notes"]
    # up has nothing to do: it is the same migration
    again = run("up", mdir, database)
    assert again.exit_code == 0 and "nothing to apply" in again.stdout


def test_renamed_to_a_new_name_still_matches(database, db, write_migrations):
    mdir = write_migrations({"001_x": ("create table x (id int);\n", "drop table x;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_x").rename(mdir / "001_better_name")
    result = run("status", mdir, database)
    rows = status_rows(result.stdout)
    assert rows["001"][1:3] == ["better_name", "applied"]
    assert "note: applied as 001_x" in result.stdout


def test_failed_state(database, db, write_migrations):
    mdir = write_migrations({
        "001_nt": ("-- sqlmigrate: no-transaction\nselect 1;\nselect nope;\n", "select 1;\n"),
    })
    assert run("up", mdir, database).exit_code == 4
    result = run("status", mdir, database)
    assert result.exit_code == 0
    assert status_rows(result.stdout)["001"][2] == "failed"
    assert "stopped after 1 statement(s)" in result.stdout
    payload = json.loads(run("status", mdir, database, "--format", "json").stdout)
    assert payload["migrations"][0]["state"] == "failed"


def test_status_with_bad_folder_still_lists_and_exits_0(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    (mdir / "Not-A-Migration").mkdir()
    (mdir / "README.md").write_text("notes\n")
    result = run("status", mdir, database)
    assert result.exit_code == 0
    assert "Not-A-Migration:1:1: error:" in result.stderr and "[bad-name]" in result.stderr
    assert list(status_rows(result.stdout)) == ["001"]


def test_repair_after_a_rename_names_the_folder_and_updates_the_row(database, db, write_migrations):
    mdir = write_migrations({"001_x": ("create table x (id int);\n", "drop table x;\n")})
    assert run("up", mdir, database).exit_code == 0
    (mdir / "001_x").rename(mdir / "1_renamed")
    (mdir / "1_renamed" / "up.sql").write_text("CREATE TABLE x (id int);  -- reformatted\n")
    result = run("repair", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "1_renamed: " in result.stdout and "001_renamed" not in result.stdout  # as status shows it
    payload = json.loads(run("repair", mdir, database, "--format", "json").stdout)
    assert payload["repaired"] == []  # the first repair took: nothing left
    checksum = sha256((mdir / "1_renamed" / "up.sql").read_bytes())
    assert db.execute("select id, checksum from schema_migrations").fetchall() == [("001", checksum)]


# -- a duplicate id --------------------------------------------------------------------------------


DUPLICATE = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "1_b": ("create table b (id int);\n", "drop table b;\n"),
    "002_c": ("create table c (id int);\n", "drop table c;\n"),
}


def test_status_with_a_duplicate_id_reports_it_and_exits_0(database, db, write_migrations):
    mdir = write_migrations(DUPLICATE)
    result = run("status", mdir, database)
    assert result.exit_code == 0  # status always exits 0; verify, check and up are the gates
    assert result.stderr.splitlines()[0] == (
        f"{mdir}/1_b:1:1: error: id 1 is the same as 001_a (ids compare as integers) [duplicate-id]")
    rows = status_rows(result.stdout).values()
    assert [r[:3] for r in rows] == [["001", "a", "pending"], ["002", "c", "pending"]]
    payload = one_json(run("status", mdir, database, "--format", "json").stdout)
    assert [(m["id"], m["name"], m["state"]) for m in payload["migrations"]] == [
        ("001", "a", "pending"), ("002", "c", "pending")]
    [finding] = payload["findings"]
    assert (finding["path"], finding["line"], finding["col"], finding["severity"], finding["rule"]) == (
        f"{mdir}/1_b", 1, 1, "error", "duplicate-id")
    # status creates nothing, and up refuses the folder
    assert tables(db) == set()
    refused = run("up", mdir, database)
    assert refused.exit_code == 1 and "[duplicate-id]" in refused.stderr
    assert tables(db) == set()


def test_status_with_a_duplicate_of_an_applied_id_keeps_the_applied_folder(database, db, write_migrations):
    mdir = write_migrations({k: v for k, v in DUPLICATE.items() if k != "001_a"})
    assert run("up", mdir, database).exit_code == 0
    write_migrations({"001_a": DUPLICATE["001_a"]})
    payload = one_json(run("status", mdir, database, "--format", "json").stdout)
    assert [f["rule"] for f in payload["findings"]] == ["duplicate-id"]
    states = {(m["id"], m["name"]): m["state"] for m in payload["migrations"]}
    # the applied migration is 1_b, whose up.sql did not change
    assert "modified" not in states.values(), payload["migrations"]
    assert states.get(("1", "b")) == "applied", payload["migrations"]

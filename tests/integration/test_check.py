"""`check` through the command line: text, JSON and GitHub annotations, --strict,
paths as the folder was given, which folders it reads."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_process, tracking_ids, write_files
from tests.integration.helpers import FINDING_KEYS, ONE, check, one_json, run


# -- check --format json | github, --strict --------------------------------------------------------


CHECKED = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    # a warning (line 2, col 3) and an error (line 3, col 1)
    "002_b": ("select 1;\n  drop table a;\ncommit;\n", "select 1;\n"),
}


DESTRUCTIVE = ("DROP TABLE destroys data", "make sure this is intended; silence with -- sqlmigrate: ignore destructive")


COMMIT = ("COMMIT at top level: sqlmigrate runs each migration in its own transaction",
          "remove it; use no-transaction for statements that must run outside one")


def test_check_json_has_the_documented_keys_and_values(write_migrations):
    mdir = write_migrations(CHECKED)
    result = check(mdir, "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == ""
    payload = one_json(result.stdout)
    assert payload["command"] == "check" and payload["exit_code"] == 1
    findings = payload["findings"]
    assert all(set(f) == FINDING_KEYS for f in findings), findings
    assert findings == [
        {"path": f"{mdir}/002_b/up.sql", "line": 2, "col": 3, "severity": "warning", "rule": "destructive",
         "message": DESTRUCTIVE[0], "hint": DESTRUCTIVE[1]},
        {"path": f"{mdir}/002_b/up.sql", "line": 3, "col": 1, "severity": "error", "rule": "transaction-control",
         "message": COMMIT[0], "hint": COMMIT[1]},
    ]
    assert all(isinstance(f["line"], int) and isinstance(f["col"], int) for f in findings)


def test_check_json_of_a_clean_folder_is_an_empty_list_and_exit_0(write_migrations):
    mdir = write_migrations({"001_a": CHECKED["001_a"]})
    result = check(mdir, "--format", "json")
    assert result.exit_code == 0
    assert one_json(result.stdout) == {"command": "check", "exit_code": 0, "findings": []}


def test_check_json_folder_finding_points_at_1_1(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", None)})
    payload = one_json(check(mdir, "--format", "json").stdout)
    [finding] = payload["findings"]
    assert (finding["path"], finding["line"], finding["col"], finding["severity"], finding["rule"]) == (
        f"{mdir}/001_a", 1, 1, "error", "missing-down")


def test_check_github_prints_exact_annotations_and_nothing_else(write_migrations):
    mdir = write_migrations(CHECKED)
    result = run_process("check", "--dir", mdir, "--format", "github")  # a real process, as in CI
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"::warning file={mdir}/002_b/up.sql,line=2,col=3::{DESTRUCTIVE[0]} [destructive]",
        f"::error file={mdir}/002_b/up.sql,line=3,col=1::{COMMIT[0]} [transaction-control]",
    ]
    assert result.stdout.endswith("\n")
    assert result.stderr == ""


def test_check_github_warning_only_exits_0_and_clean_prints_nothing(write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ndrop table a;\n", "select 1;\n")})
    result = check(mdir, "--format", "github")
    assert result.exit_code == 0
    assert result.stdout == f"::warning file={mdir}/001_a/up.sql,line=2,col=1::{DESTRUCTIVE[0]} [destructive]\n"
    (mdir / "001_a" / "up.sql").write_text("create table a (id int);\n")
    clean = check(mdir, "--format", "github")
    assert (clean.exit_code, clean.stdout, clean.stderr) == (0, "", "")


WARNING_ONLY = {
    "001_a": ("create table a (id int);\n", "drop table a;\n"),
    "002_b": ("delete from a;\n", "select 1;\n"),  # destructive: a warning, no error
}


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_check_strict_exits_1_on_a_warning_only_folder(fmt, write_migrations):
    mdir = write_migrations(WARNING_ONLY)
    lenient = check(mdir, "--format", fmt)
    strict = check(mdir, "--format", fmt, "--strict")
    assert lenient.exit_code == 0, lenient.stdout
    assert strict.exit_code == 1, strict.stdout
    # the same findings either way: --strict changes only the exit status
    if fmt == "json":
        assert one_json(lenient.stdout)["exit_code"] == 0
        assert one_json(strict.stdout)["exit_code"] == 1
        assert one_json(lenient.stdout)["findings"] == one_json(strict.stdout)["findings"]
        assert [f["rule"] for f in one_json(strict.stdout)["findings"]] == ["destructive"]
    else:
        assert lenient.stdout == strict.stdout
        assert f"{mdir}/002_b/up.sql" in strict.stdout and "[destructive]" in strict.stdout
    if fmt == "text":
        assert "checked 2 migration(s): 0 error(s), 1 warning(s)" in strict.stdout


def test_check_strict_passes_when_the_warning_is_ignored(write_migrations):
    mdir = write_migrations({**WARNING_ONLY, "002_b": ("-- sqlmigrate: ignore destructive\ndelete from a;\n",
                                                       "select 1;\n")})
    result = check(mdir, "--strict")
    assert result.exit_code == 0, result.stdout
    assert "0 error(s), 0 warning(s)" in result.stdout


# -- GitHub annotations escape their properties ----------------------------------------------------


def test_github_annotations_escape_the_file_property_and_the_message(tmp_path, write_migrations):
    mdir = write_migrations({"001_a": ("begin;\n", "select 1;\n"), "bad%name": (None, None)},
                            directory=tmp_path / "mig,ra:tions 100%")
    result = check(mdir, "--format", "github")
    assert result.exit_code == 1
    base = str(mdir).replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
    lines = result.stdout.splitlines()
    assert f"::error file={base}/001_a/up.sql,line=1,col=1::BEGIN at top level" in result.stdout
    assert (f"::error file={base}/bad%25name,line=1,col=1::folder name 'bad%25name' is not <id>_<name> "
            "[bad-name]") in lines
    assert all(line.startswith("::") for line in lines)


# -- paths as the migrations folder was given ------------------------------------------------------


def test_check_paths_keep_the_folder_as_given(tmp_path, monkeypatch, write_migrations):
    write_migrations({"001_a": ("select 1;\nbegin;\n", "select 1;\n")}, directory=tmp_path / "chk")
    monkeypatch.chdir(tmp_path)
    for given, shown in (("./chk/", "./chk/001_a/up.sql"), ("./chk", "./chk/001_a/up.sql"),
                         ("chk", "chk/001_a/up.sql"), ("chk//", "chk/001_a/up.sql"),
                         (f"{tmp_path}/chk/", f"{tmp_path}/chk/001_a/up.sql")):
        result = check(given)
        assert result.exit_code == 1
        assert result.stdout.startswith(f"{shown}:2:1: error: BEGIN at top level"), (given, result.stdout)
        as_json = check(given, "--format", "json")
        assert json.loads(as_json.stdout)["findings"][0]["path"] == shown
    github = check("./chk/", "--format", "github")
    assert github.stdout.startswith("::error file=./chk/001_a/up.sql,line=2,col=1::BEGIN at top level")


# -- hidden folders are not migrations -------------------------------------------------------------


def test_hidden_folders_are_ignored(database, db, write_migrations):
    mdir = write_migrations(ONE)
    write_files(mdir, {".git/objects": None, ".git/HEAD": "ref: refs/heads/main\n", ".idea": None,
                       ".002_not_a_migration": None})
    checked = check(mdir)
    assert checked.exit_code == 0, checked.stdout
    assert "checked 1 migration(s): 0 error(s), 0 warning(s)" in checked.stdout
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001"]
    # a visible folder with a bad name is still an error
    (mdir / "idea").mkdir()
    bad = check(mdir)
    assert bad.exit_code == 1 and f"{mdir}/idea:1:1: error: folder name 'idea' is not <id>_<name> [bad-name]" \
        in bad.stdout

"""`targets` in the settings file (SPEC 11): a list of connection strings, or a targets file,
used when neither the command line nor DATABASE_URL names a database."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


@pytest.fixture
def two_databases(new_database):
    return new_database(), new_database()


def test_a_list_of_targets_in_the_file_runs_on_each(tmp_path, monkeypatch, two_databases, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    first, second = two_databases
    (tmp_path / "sqlmigrate.toml").write_text(f'dir = "{mdir}"\ntargets = ["{first}", "${{SECOND}}"]\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("up", "--format", "json", env={"SECOND": second})
    assert result.exit_code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert [t["exit_code"] for t in payload["targets"]] == [0, 0]
    assert payload["summary"]["ok"] == 2


def test_a_targets_file_named_in_the_file(tmp_path, monkeypatch, two_databases, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    (tmp_path / "shards.txt").write_text("\n".join(two_databases) + "\n")
    (tmp_path / "sqlmigrate.toml").write_text(f'dir = "{mdir}"\ntargets = "shards.txt"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("status", "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(json.loads(result.stdout)["targets"]) == 2


def test_a_database_url_on_the_command_line_wins_over_the_files_targets(tmp_path, monkeypatch, two_databases,
                                                                          write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    first, second = two_databases
    (tmp_path / "sqlmigrate.toml").write_text(f'dir = "{mdir}"\ntargets = ["{first}", "{second}"]\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("status", "--format", "json", "--database-url", first)
    assert result.exit_code == 0
    assert "targets" not in json.loads(result.stdout)  # one database: the one-database object

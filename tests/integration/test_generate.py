"""`generate NAME`: next id, padding, name cleaning, never overwriting."""
from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.integration.helpers import check, folders


def generate(mdir, name, *args):
    return run_cli("generate", name, "--dir", mdir, *args)


def test_first_migration_creates_the_folder(tmp_path):
    mdir = tmp_path / "deep" / "migrations"
    result = generate(mdir, "initial")
    assert result.exit_code == 0, result.stderr
    assert folders(mdir) == ["001_initial"]
    up, down = mdir / "001_initial" / "up.sql", mdir / "001_initial" / "down.sql"
    assert f"created {up}" in result.stdout and f"created {down}" in result.stdout
    for path in (up, down):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        assert lines and all(line.startswith("--") for line in lines)


def test_next_id_is_padded_to_the_widest(tmp_path, write_migrations):
    mdir = write_migrations({
        "0001_a": ("select 1;\n", "select 1;\n"),
        "0007_b": ("select 1;\n", "select 1;\n"),
    })
    (mdir / "0042_notes.txt").write_text("a file, not a migration\n")
    assert generate(mdir, "c").exit_code == 0
    assert folders(mdir) == ["0001_a", "0007_b", "0008_c"]


def test_unpadded_ids(write_migrations):
    mdir = write_migrations({"1_a": ("select 1;\n", "select 1;\n"), "9_b": ("select 1;\n", "select 1;\n")})
    assert generate(mdir, "c").exit_code == 0
    assert "10_c" in folders(mdir)


def test_999_is_followed_by_1000(write_migrations):
    mdir = write_migrations({"999_a": ("select 1;\n", "select 1;\n")})
    assert generate(mdir, "b").exit_code == 0
    assert folders(mdir) == ["1000_b", "999_a"]


def test_timestamp_ids(write_migrations):
    mdir = write_migrations({"20261124153000_add_roles": ("select 1;\n", "select 1;\n")})
    assert generate(mdir, "next").exit_code == 0
    assert "20261124153001_next" in folders(mdir)


def test_name_is_cleaned(tmp_path):
    mdir = tmp_path / "migrations"
    result = generate(mdir, "Add Users-Table")
    assert result.exit_code == 0, result.stderr
    assert folders(mdir) == ["001_add_users_table"]


def test_invalid_name_is_a_usage_error(tmp_path):
    mdir = tmp_path / "migrations"
    for name in ("", "_leading", "bad/name", "café", "semi;colon"):
        result = generate(mdir, name)
        assert result.exit_code == 2, name
        assert "is not valid" in result.stderr
    assert not mdir.exists() or folders(mdir) == []


def test_generated_migration_is_refused_by_check(tmp_path):
    mdir = tmp_path / "migrations"
    assert generate(mdir, "todo").exit_code == 0
    result = check(mdir)
    assert result.exit_code == 1
    assert "001_todo/up.sql:1:1: error: up.sql holds no statement [empty-up]" in result.stdout


def test_never_overwrites(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    # a plain file where the next folder would go
    (mdir / "002_b").write_text("not a folder\n")
    result = generate(mdir, "b")
    assert result.exit_code == 2
    assert "002_b" in result.stderr and "already exists" in result.stderr
    assert "internal error" not in result.stderr
    assert (mdir / "002_b").read_text() == "not a folder\n"


def test_dir_is_a_file(tmp_path):
    target = tmp_path / "migrations"
    target.write_text("oops\n")
    result = generate(target, "a")
    assert result.exit_code == 2
    assert "is not a folder" in result.stderr


def test_json_output(tmp_path):
    mdir = tmp_path / "migrations"
    result = generate(mdir, "first one", "--format", "json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["id"] == "001" and payload["name"] == "first_one"
    assert payload["created"] == [str(mdir / "001_first_one" / "up.sql"), str(mdir / "001_first_one" / "down.sql")]


def test_generate_needs_no_database(tmp_path):
    mdir = tmp_path / "migrations"
    result = run_cli("generate", "a", "--dir", mdir, env={"DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/db"})
    assert result.exit_code == 0


def test_a_missing_name_and_a_name_read_as_an_option_say_which(tmp_path):
    mdir = tmp_path / "m"
    missing = run_cli("generate", "--dir", mdir)
    assert missing.exit_code == 2
    assert missing.stderr == ("sqlmigrate: generate needs the migration's name: sqlmigrate generate NAME "
                              "(e.g. add_orders)\n")
    dashed = run_cli("generate", "-x", "--dir", mdir)
    assert dashed.exit_code == 2
    assert dashed.stderr.splitlines()[-1] == \
        "sqlmigrate: unrecognized arguments: -x (a migration name cannot start with '-')"
    as_json = json.loads(run_cli("generate", "-x", "--dir", mdir, "--format", "json").stdout)
    assert as_json["exit_code"] == 2 and as_json["error"].endswith("(a migration name cannot start with '-')")
    assert not mdir.exists()


def test_generate_collapses_runs_and_trims_the_ends(tmp_path):
    mdir = tmp_path / "m"
    result = generate(mdir, "  Add  Users--Table - 2 ")
    assert result.exit_code == 0, result.stderr
    assert folders(mdir) == ["001_add_users_table_2"]
    kept = generate(mdir, "keep__double_underscores")
    assert kept.exit_code == 0
    assert (mdir / "002_keep__double_underscores").is_dir()
    for bad in (" -leading-hyphen", "_x", "  "):
        refused = generate(mdir, bad)
        assert refused.exit_code == 2, bad
        assert f"migration name {bad!r} is not valid" in refused.stderr
    assert len(list(mdir.iterdir())) == 2

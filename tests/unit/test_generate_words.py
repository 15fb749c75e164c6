"""`generate add user roles`: several words are one name, as users type it (no database)."""
from __future__ import annotations

from tests.conftest import run_cli


def test_several_words_are_joined_into_one_name(tmp_path):
    mdir = tmp_path / "migrations"
    result = run_cli("generate", "add", "user", "roles", "--dir", mdir)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in mdir.iterdir()) == ["001_add_user_roles"]
    assert result.stdout.splitlines() == [f"created {mdir}/001_add_user_roles/up.sql",
                                          f"created {mdir}/001_add_user_roles/down.sql"]


def test_quoted_and_unquoted_words_mix(tmp_path):
    mdir = tmp_path / "migrations"
    assert run_cli("generate", "Add Orders", "by-user", "--dir", mdir).exit_code == 0
    assert sorted(p.name for p in mdir.iterdir()) == ["001_add_orders_by_user"]


def test_no_words_is_still_a_usage_error(tmp_path):
    result = run_cli("generate", "--dir", tmp_path / "migrations")
    assert result.exit_code == 2
    assert "generate needs the migration's name" in result.stderr

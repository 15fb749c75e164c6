"""`test --from ID`: the migrations below ID built as `up` applies them, only those from ID on round-tripped."""
from __future__ import annotations

from tests.conftest import databases
from tests.integration.helpers import run, run_json

# 002 and 004 each leave their table behind: a defect apiece
HISTORY = {
    "001_a": ("create table a (id int primary key);\n", "drop table a;\n"),
    "002_b_forgotten": ("create table b (id int);\n", "select 1;\n"),
    "003_c": ("create table c (id int references a (id));\n", "drop table c;\n"),
    "004_d_forgotten": ("create table d (id int);\n", "select 1;\n"),
    "005_e": ("alter table a add column e int;\n", "alter table a drop column e;\n"),
}
TEST_KEYS = {"command", "exit_code", "migrations", "summary", "irreversible", "from", "built_without_test",
             "failed_build", "scratch_databases"}


def verdicts(data: dict) -> dict[str, str]:
    return {f"{m['id']}_{m['name']}": m["verdict"] for m in data["migrations"]}


def test_from_the_middle_tests_only_the_migrations_from_that_id(server, database, write_migrations):
    mdir = write_migrations(HISTORY)
    data = run_json("test", mdir, database, "--from", "3")
    assert verdicts(data) == {"003_c": "ok", "004_d_forgotten": "failed", "005_e": "ok"}
    assert data["built_without_test"] == 2
    assert data["exit_code"] == 1
    assert not set(data["scratch_databases"]) & databases(server)


def test_a_defect_below_the_id_is_not_reported_and_one_from_it_on_is(database, write_migrations):
    mdir = write_migrations({k: HISTORY[k] for k in ("001_a", "002_b_forgotten", "003_c")})
    clean = run("test", mdir, database, "--from", "003")
    assert clean.exit_code == 0
    assert "002_b_forgotten" not in clean.stdout
    assert clean.stdout.endswith("test: 1 migration(s): 1 ok, 0 failed\n"
                                 "built without test: 2 migration(s) before --from 003\n")
    caught = run("test", mdir, database, "--from", "2")
    assert caught.exit_code == 1
    assert "002_b_forgotten: FAILED\n" in caught.stdout
    assert "    table b: extra\n" in caught.stdout


def test_from_the_first_id_tests_every_migration(database, write_migrations):
    mdir = write_migrations(HISTORY)
    whole, from_first = run_json("test", mdir, database), run_json("test", mdir, database, "--from", "001")
    assert verdicts(from_first) == verdicts(whole) == {
        "001_a": "ok", "002_b_forgotten": "failed", "003_c": "ok", "004_d_forgotten": "failed", "005_e": "ok"}
    assert (from_first["from"], from_first["built_without_test"]) == ("001", 0)
    assert (whole["from"], whole["built_without_test"]) == (None, 0)


def test_an_unknown_id_is_a_usage_error_as_for_up_to(database, write_migrations):
    mdir = write_migrations(HISTORY)
    result = run("test", mdir, database, "--from", "9")
    assert result.exit_code == 2
    assert "--from 9: no migration has that id" in result.stderr
    assert result.stdout == ""
    assert run("up", mdir, database, "--to", "9").exit_code == 2
    assert run("test", mdir, database, "--from", "x").exit_code == 2


def test_a_migration_below_the_id_that_does_not_build_is_shown_like_drift_shows_it(server, database,
                                                                                    write_migrations):
    mdir = write_migrations({
        **{k: HISTORY[k] for k in ("001_a", "002_b_forgotten")},
        "003_bad": ("select 1;\ninsert into a values ('x');\n", "select 1;\n"),
        "004_later": ("create table z (id int);\n", "drop table z;\n"),
    })
    result = run("test", mdir, database, "--from", "4")
    assert result.exit_code == 1
    assert result.stdout == (
        "test: the migrations before --from 4 do not build in a scratch database; 003_bad failed:\n"
        f"  {mdir}/003_bad/up.sql:2:23: ERROR 22P02: invalid input syntax for type integer: \"x\"\n")
    data = run_json("test", mdir, database, "--from", "4")
    assert data["migrations"] == []
    failed = data["failed_build"]
    assert (failed["id"], failed["name"]) == ("003", "bad")
    assert (failed["error"]["line"], failed["error"]["col"], failed["error"]["sqlstate"]) == (2, 23, "22P02")
    assert not set(data["scratch_databases"]) & databases(server)


def test_json_shape(database, write_migrations):
    mdir = write_migrations(HISTORY)
    data = run_json("test", mdir, database, "--from", "4")
    assert set(data) == TEST_KEYS
    assert data["command"] == "test"
    assert (data["from"], data["built_without_test"], data["failed_build"]) == ("4", 3, None)
    assert data["summary"] == {"failed": 1, "ok": 1}
    assert [m["id"] for m in data["migrations"]] == ["004", "005"]


def test_a_rebuild_after_a_failure_applies_the_migrations_below_the_id_again(server, database, write_migrations):
    # 003's down fails outside a transaction: the scratch database is rebuilt, 001-002 included, before 004
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_u": ("create table u (id int);\n", "drop table u;\n"),
        "003_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id;\nselect nope;\n"),
        "004_needs_both": ("comment on index t_id is 'x';\ncomment on table u is 'y';\n",
                           "comment on index t_id is null;\ncomment on table u is null;\n"),
    })
    data = run_json("test", mdir, database, "--from", "3")
    assert verdicts(data) == {"003_idx": "failed", "004_needs_both": "ok"}
    assert len(data["scratch_databases"]) == 2
    assert not set(data["scratch_databases"]) & databases(server)

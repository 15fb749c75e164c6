"""PostgreSQL 18: NOT NULL is a constraint of its own (named, possibly NOT VALID or NO INHERIT),
and `test`, `drift`, `schema` and `drift --generate` see it. On an older test server these
tests run on a throwaway PostgreSQL 18 (the pip build of sqlmigrate[server])."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from sqlmigrate.schema import catalog
from tests.extra_servers import NewestServer
from tests.integration.helpers import applied, folders, run, run_json, up

USERS = {
    "001_users": (
        "create table users (id bigint generated always as identity primary key,\n"
        "                    email text constraint users_email_required not null, name text not null);\n",
        "drop table users;\n",
    ),
}


@pytest.fixture(scope="module")
def server18(server):
    """Admin conninfo of a PostgreSQL 18 or later: the test server when it is one."""
    with psycopg.connect(server, autocommit=True) as conn:
        if conn.info.server_version >= 180000:
            yield server
            return
    try:
        newest = NewestServer(at_least=18)
    except RuntimeError as exc:
        pytest.fail(f"no PostgreSQL 18 to test on: {exc}", pytrace=False)
    try:
        yield newest.conninfo()
    finally:
        newest.stop()


@pytest.fixture
def database18(server18):
    """A fresh database on the PostgreSQL 18 server, dropped after the test."""
    name = f"sqlmigrate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server18, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(server18)
    params["dbname"] = name
    yield psycopg.conninfo.make_conninfo(**params)
    with psycopg.connect(server18, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def db18(database18):
    with psycopg.connect(database18, autocommit=True) as conn:
        yield conn


def _snapshot_text(database: str) -> str:
    with psycopg.connect(database) as conn:
        return catalog.snapshot(conn).to_text()


# -- test: a down.sql that restores NOT NULL otherwise --------------------------------------


def _round_trip(write_migrations, database: str, up_sql: str, down_sql: str):
    mdir = write_migrations({**USERS, "002_change": (up_sql, down_sql)})
    return run_json("test", mdir, database)


def _verdicts(report: dict) -> dict[str, str]:
    return {m["id"]: m["verdict"] for m in report["migrations"]}


def test_a_not_null_restored_under_another_name_fails_the_round_trip(write_migrations, database18):
    report = _round_trip(write_migrations, database18,
                         "alter table users alter column email drop not null;\n",
                         "alter table users alter column email set not null;\n")
    assert report["exit_code"] == 1
    assert _verdicts(report) == {"001": "ok", "002": "failed"}
    texts = {d["text"] for m in report["migrations"] for d in m["differences"]}
    assert "constraint users.users_email_required: missing (NOT NULL email)" in texts
    assert "constraint users.users_email_not_null: extra (NOT NULL email)" in texts


def test_a_not_null_restored_not_valid_fails_the_round_trip(write_migrations, database18):
    report = _round_trip(write_migrations, database18,
                         "alter table users drop constraint users_email_required;\n",
                         "alter table users add constraint users_email_required not null email not valid;\n")
    assert _verdicts(report) == {"001": "ok", "002": "failed"}
    texts = {d["text"] for m in report["migrations"] for d in m["differences"]}
    assert "constraint users.users_email_required: definition NOT NULL email -> NOT NULL email NOT VALID" in texts
    assert "column users.email: not null -> not null (not valid)" in texts


def test_a_not_null_dropped_and_added_again_by_name_passes(write_migrations, database18):
    report = _round_trip(write_migrations, database18,
                         "alter table users drop constraint users_email_required;\n",
                         "alter table users add constraint users_email_required not null email;\n")
    assert report["exit_code"] == 0
    assert _verdicts(report) == {"001": "ok", "002": "ok"}


def test_a_renamed_not_null_round_trips_when_down_renames_it_back(write_migrations, database18):
    report = _round_trip(write_migrations, database18,
                         "alter table users rename constraint users_email_required to users_email_nn;\n",
                         "alter table users rename constraint users_email_nn to users_email_required;\n")
    assert _verdicts(report) == {"001": "ok", "002": "ok"}
    forgot = _round_trip(write_migrations, database18,
                         "alter table users rename constraint users_email_required to users_email_nn;\n",
                         "select 1;\n")
    assert _verdicts(forgot)["002"] == "failed"


PARTITIONED = {
    "001_events": (
        "create table events (at date not null, kind text) partition by range (at);\n"
        "create table events_2026 partition of events for values from ('2026-01-01') to ('2027-01-01');\n",
        "drop table events;\n",
    ),
}


def test_an_inherited_not_null_on_a_partitioned_table(write_migrations, database18, db18):
    mdir = write_migrations({**PARTITIONED, "002_kind_required": (
        "alter table events alter column kind set not null;\n",
        "alter table events alter column kind drop not null;\n")})
    report = run_json("test", mdir, database18)
    assert _verdicts(report) == {"001": "ok", "002": "ok"}
    up(mdir, database18, expect_exit=0)
    text = _snapshot_text(database18)
    # the partition's copy carries the parent's name
    assert text.count("constraint events_kind_not_null: NOT NULL kind") == 2
    # dropping the partition's own copy is refused: it belongs to the parent
    with pytest.raises(psycopg.errors.InvalidTableDefinition):
        db18.execute("alter table events_2026 drop constraint events_kind_not_null")
    broken = write_migrations({**PARTITIONED, "002_kind_required": (
        "alter table events alter column kind set not null;\n",
        "alter table only events drop constraint events_kind_not_null;\n")}, directory=mdir.parent / "broken")
    assert run("test", broken, database18).exit_code == 1


# -- drift and schema -------------------------------------------------------------------------


def test_drift_sees_a_not_null_renamed_by_hand(write_migrations, database18, db18):
    mdir = applied(write_migrations, database18, USERS)
    db18.execute("alter table users rename constraint users_email_required to email_present")
    result = run("drift", mdir, database18)
    assert result.exit_code == 1, result.stdout
    assert "  constraint users.email_present: extra (NOT NULL email)" in result.stdout.splitlines()
    assert "  constraint users.users_email_required: missing (NOT NULL email)" in result.stdout.splitlines()


def test_drift_sees_a_not_null_added_again_not_valid(write_migrations, database18, db18):
    mdir = applied(write_migrations, database18, USERS)
    db18.execute("alter table users drop constraint users_name_not_null")
    db18.execute("alter table users add constraint users_name_not_null not null name not valid")
    result = run("drift", mdir, database18)
    assert result.exit_code == 1, result.stdout
    lines = result.stdout.splitlines()
    assert "  column users.name: not null -> not null (not valid)" in lines
    assert "  constraint users.users_name_not_null: definition NOT NULL name -> NOT NULL name NOT VALID" in lines


def test_schema_shows_not_valid_and_the_constraint_names(write_migrations, database18, db18):
    applied(write_migrations, database18, USERS)
    db18.execute("alter table users alter column name drop not null")
    db18.execute("alter table users add constraint name_given not null name not valid")
    result = run("schema", ".", database18)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  column name: text not null (not valid)" in lines
    assert "  column email: text not null" in lines
    assert "  constraint name_given: NOT NULL name NOT VALID" in lines
    assert "  constraint users_email_required: NOT NULL email" in lines
    assert "  constraint users_id_not_null: NOT NULL id" in lines


# -- drift --generate: the corrective migration in PostgreSQL 18's syntax ---------------------


def test_generated_migration_renames_adds_and_validates_not_null_constraints(write_migrations, database18, db18,
                                                                             new_database):
    mdir = applied(write_migrations, database18, {**USERS, **{"002_events": PARTITIONED["001_events"]}})
    db18.execute("alter table users rename constraint users_email_required to users_email_present")
    db18.execute("alter table users alter column name drop not null")
    db18.execute("alter table users add constraint users_name_given not null name not valid")
    db18.execute("alter table users add column nickname text constraint nickname_nn not null no inherit default ''")
    db18.execute("alter table events alter column kind set not null")
    result = run("drift", mdir, database18, "--generate", "capture")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "proven in a scratch database" in result.stdout
    up_sql = (mdir / "003_capture" / "up.sql").read_text()
    down_sql = (mdir / "003_capture" / "down.sql").read_text()
    assert "ALTER TABLE users RENAME CONSTRAINT users_email_required TO users_email_present;" in up_sql
    assert "ALTER TABLE users ADD CONSTRAINT users_name_given NOT NULL name NOT VALID;" in up_sql
    assert ("ALTER TABLE users ADD COLUMN nickname text DEFAULT ''::text CONSTRAINT nickname_nn NOT NULL "
            "NO INHERIT;") in up_sql
    # the name SET NOT NULL gives: written as before 18
    assert "ALTER TABLE events ALTER COLUMN kind SET NOT NULL;" in up_sql
    assert "ALTER TABLE users ALTER COLUMN" not in up_sql
    assert "ALTER TABLE users RENAME CONSTRAINT users_email_present TO users_email_required;" in down_sql
    assert "ALTER TABLE users ADD CONSTRAINT users_name_not_null NOT NULL name;" in down_sql
    # checked here too: the migrations with the generated one build the live schema on another database
    params = psycopg.conninfo.conninfo_to_dict(database18)
    with psycopg.connect(database18, autocommit=True) as conn:
        other = f"sqlmigrate_test_{uuid.uuid4().hex[:12]}"
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(other)))
    try:
        fresh = psycopg.conninfo.make_conninfo(**dict(params, dbname=other))
        up(mdir, fresh, expect_exit=0)
        assert _without_tracking(_snapshot_text(fresh)) == _without_tracking(_snapshot_text(database18))
        assert run("down", mdir, fresh, expect_exit=0).exit_code == 0
        assert run("drift", mdir, fresh).exit_code == 0
    finally:
        with psycopg.connect(database18, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(other)))


def test_generated_down_validates_a_not_null_made_valid_by_hand(write_migrations, database18, db18):
    mdir = applied(write_migrations, database18, {**USERS, "002_name_not_valid": (
        "alter table users drop constraint users_name_not_null;\n"
        "alter table users add constraint users_name_not_null not null name not valid;\n",
        "alter table users validate constraint users_name_not_null;\n")})
    db18.execute("alter table users validate constraint users_name_not_null")
    result = run("drift", mdir, database18, "--generate", "validated")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "ALTER TABLE users VALIDATE CONSTRAINT users_name_not_null;" in (
        mdir / "003_validated" / "up.sql").read_text()
    assert folders(mdir) == ["001_users", "002_name_not_valid", "003_validated"]


def _without_tracking(text: str) -> str:
    """The snapshot text without the tracking table's block."""
    blocks = text.split("\n\n")
    return "\n\n".join(b for b in blocks if not b.startswith("table schema_migrations"))


# -- before PostgreSQL 18 nothing changes -----------------------------------------------------


def test_nullability_is_a_column_attribute_before_18(server, database, db):
    """On the test server: before 18 no NOT NULL constraint is listed; on 18 and later it is."""
    db.execute("create table t (id int primary key, c text not null, d text)")
    text = _snapshot_text(database)
    assert "  column c: text not null" in text
    if db.info.server_version < 180000:
        assert "NOT NULL" not in text
    else:
        assert "  constraint t_c_not_null: NOT NULL c" in text


# -- other catalog changes of PostgreSQL 18 that a migration can make ---------------------------


def test_drift_and_generate_see_a_check_constraint_made_not_enforced(write_migrations, database18, db18):
    mdir = applied(write_migrations, database18, {"001_prices": (
        "create table prices (amount numeric constraint amount_positive check (amount > 0),\n"
        "                     doubled numeric generated always as (amount * 2));\n",
        "drop table prices;\n")})
    text = _snapshot_text(database18)
    assert "  column doubled: numeric generated always as ((amount * (2)::numeric)) virtual" in text
    db18.execute("alter table prices drop constraint amount_positive")
    db18.execute("alter table prices add constraint amount_positive check (amount > 0) not enforced")
    result = run("drift", mdir, database18)
    assert result.exit_code == 1
    assert ("  constraint prices.amount_positive: definition CHECK ((amount > (0)::numeric)) -> "
            "CHECK ((amount > (0)::numeric)) NOT ENFORCED") in result.stdout.splitlines()
    generated = run("drift", mdir, database18, "--generate", "not_enforced")
    assert generated.exit_code == 0, generated.stdout + generated.stderr
    assert "ADD CONSTRAINT amount_positive CHECK ((amount > (0)::numeric)) NOT ENFORCED;" in (
        mdir / "002_not_enforced" / "up.sql").read_text()


# -- corrective migrations that PostgreSQL 18 would refuse if written naively -------------------


@pytest.mark.parametrize("migration, by_hand, expected", [
    pytest.param("create table p (id int not null) partition by list (id);\n"
                 "create table p1 partition of p for values in (1);\n",
                 "alter table p rename constraint p_id_not_null to p_id_nn",
                 ["ALTER TABLE p RENAME CONSTRAINT p_id_not_null TO p_id_nn;"], id="rename-on-a-partitioned-parent"),
    pytest.param("create table t (id int primary key, v int not null);\n",
                 "alter table t alter constraint t_id_not_null no inherit",
                 ["ALTER TABLE t ALTER CONSTRAINT t_id_not_null NO INHERIT;"], id="no-inherit-in-place"),
    pytest.param("create table s (id int generated always as identity);\n",
                 "alter table s alter column id drop identity; alter table s drop constraint s_id_not_null; "
                 "alter table s add constraint s_nn not null id not valid",
                 ["ALTER TABLE s ALTER COLUMN id DROP IDENTITY;", "ALTER TABLE s DROP CONSTRAINT s_id_not_null;",
                  "ALTER TABLE s ADD CONSTRAINT s_nn NOT NULL id NOT VALID;"], id="identity-dropped-first"),
    pytest.param("create table t (id int, e text);\nalter table t add constraint e_nn not null e not valid;\n",
                 "alter table t drop column e", ["ALTER TABLE t DROP CONSTRAINT e_nn;", "ALTER TABLE t DROP COLUMN e;"],
                 id="column-with-a-not-valid-one"),
])
def test_generated_migrations_postgres_18_accepts(write_migrations, database18, db18, migration, by_hand, expected):
    mdir = applied(write_migrations, database18, {"001_base": (migration, "select 1;\n")})
    for statement in by_hand.split("; "):
        db18.execute(statement)
    result = run("drift", mdir, database18, "--generate", "fix")
    assert result.exit_code == 0, result.stdout + result.stderr
    statements = [line for line in (mdir / "002_fix" / "up.sql").read_text().splitlines()
                  if line and not line.startswith("--") and not line.startswith("SET LOCAL")]
    assert statements == expected
    if "not valid" in migration:
        assert "ALTER TABLE t ADD CONSTRAINT e_nn NOT NULL e NOT VALID;" in (mdir / "002_fix" / "down.sql").read_text()


def test_an_inherited_not_null_also_made_on_the_child_is_a_difference(write_migrations, database18, db18):
    mdir = applied(write_migrations, database18, {"001_par": (
        "create table par (a text not null);\ncreate table ch (b int) inherits (par);\n", "drop table ch, par;\n")})
    db18.execute("alter table ch alter column a set not null")
    result = run("drift", mdir, database18)
    assert result.exit_code == 1, result.stdout
    assert "  constraint ch.par_a_not_null: also local none -> yes" in result.stdout.splitlines()
    schema = run("schema", mdir, database18).stdout.splitlines()
    assert "  constraint par_a_not_null: NOT NULL a (inherited, and also made on this table)" in schema
    # the way back has no statement: PostgreSQL cannot make it the parent's alone again
    generated = run("drift", mdir, database18, "--generate", "local")
    assert generated.exit_code == 1
    assert ("constraint ch.par_a_not_null (down.sql): no statement makes an inherited NOT NULL no longer made on "
            "the table itself") in generated.stdout
    assert not (mdir / "002_local").exists()

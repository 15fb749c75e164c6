"""The server reads a migration as `check` did: same statements, same strings, same role.

A transactional migration goes to the server as one query string, which the
server splits by its own rules; these tests hold the places where the two could
part, and what the tracking row says when they are exercised.
"""
from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import tables, tracking_ids
from sqlmigrate.events import silent
from tests.integration.helpers import no_crash, one_step_plan, run, tracked_connection, up


# Texts where a COMMIT (on line 3) is a statement of its own for the server;
# each would commit half a migration if the statement split missed it.
HIDDEN_COMMITS = {
    # "begin" and "atomic" as column names: not an SQL-standard body, so the ';'
    # ends the view, and the COMMIT after it is a statement of its own
    "begin_atomic_as_column_names": (
        'create table t ("begin" int, atomic int);\n'
        "create view v as select begin atomic from t;\n"
        "commit;\n"
        "create table late (x int);\n"),
    # PostgreSQL takes any character beyond ASCII in a dollar-quote tag: read as
    # anything else, the quote in the body would open a string that the comment
    # on the last line closes, and hide the COMMIT between them
    "dollar_quote_tagged_beyond_ascii": (
        "create table t (v text);\n"
        "comment on table t is $ф$ ''' $ф$;\n"
        "commit;\n"
        "create table late (x int); -- '\n"),
    # every character beyond ASCII belongs to a name: "€e" is the domain's
    # name, and the quote after it opens a plain string, not an E'' string
    # whose backslash would run on to the comment's quote
    "name_ending_beyond_ascii_before_a_quote": (
        'create domain "€e" as text;\n'
        "select €e'\\';\n"
        "commit;\n"
        "create table late (x int); -- '\n"),
    # PostgreSQL quotes no name in acute accents (´...´), as sqlparse would
    "acute_accents": (
        "create table t (v int);\n"
        "select 1 as ´x;\n"
        "commit;\n"
        "create table late (x int); select 1 as y´;\n"),
    # CASE as a column label: counted as an expression, it would hold the
    # function's body open past its END
    "case_as_a_label_in_a_standard_body": (
        "create table t (v int);\n"
        "create function f() returns int language sql begin atomic select 1 as case; end;\n"
        "commit;\n"
        "create table late (x int);\n"),
    # a bare label CASE after a name that is also a keyword (the parameter "by")
    "case_as_a_bare_label_after_a_keyword_name": (
        "create table t (v int);\n"
        "create function f(by int) returns int language sql begin atomic select by case; end;\n"
        "commit;\n"
        "create table late (x int);\n"),
    # "t.as" is a column: the END after it closes the CASE
    "end_after_a_column_named_as": (
        'create table t ("as" int);\n'
        "create function f() returns int language sql begin atomic select case when true then t.as end from t; end;\n"
        "commit;\n"
        "create table late (x int);\n"),
    # "begin atomic" inside parentheses: a parameter of type "atomic", no body
    "begin_atomic_as_a_parameter": (
        "create type atomic as (a int);\n"
        "create function f(begin atomic) returns int language sql as $$select 1$$;\n"
        "commit;\n"
        "create table late (x int);\n"),
    # a quote on the next line continues an E'' string, escapes and all
    "escape_string_continued": (
        "create table t (v text);\n"
        "select E'a'\n'\\' '; commit; create table late (x int); -- '\n"),
}


@pytest.mark.parametrize("case", sorted(HIDDEN_COMMITS))
def test_a_commit_the_server_would_run_is_refused(case, database, db, write_migrations):
    mdir = write_migrations({f"001_{case}": (HIDDEN_COMMITS[case], "select 1;\n")})
    result = up(mdir, database)
    assert result.exit_code == 1
    line, col = (3, 8) if case == "escape_string_continued" else (3, 1)
    assert f"001_{case}/up.sql:{line}:{col}: error:" in result.stderr and "[transaction-control]" in result.stderr
    assert tables(db) == set()


def test_what_the_split_now_reads_as_postgresql_does_runs(database, db, write_migrations):
    mdir = write_migrations({"001_reads": (
        "create table t (v text);\n"
        "insert into t values (\"text\"$$a;b$$);\n"  # a typed literal: a quoted name, then $$
        "create /* c */ or replace procedure p() language sql\n"
        "begin atomic insert into t values ('c;d'); end;\n"
        "call p();\n",
        "drop procedure p();\ndrop table t;\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in db.execute("select v from t order by v")] == ["a;b", "c;d"]


def test_a_statement_after_copy_from_stdin_on_its_line_is_refused(database, db, write_migrations):
    mdir = write_migrations({"001_copy": (
        "create table t (v int);\n"
        "copy t (v) from stdin; create table late (x int);\n"
        "1\n"
        "\\.\n",
        "drop table t;\n")})
    result = up(mdir, database)
    assert result.exit_code == 1
    assert "001_copy/up.sql:2:24: error: text after COPY ... FROM STDIN on its line" in result.stderr
    assert tables(db) == set()


def test_dollar_quotes_tagged_beyond_ascii_are_one_literal_each(database, db, write_migrations):
    mdir = write_migrations({"001_tags": (
        "create table t (v text);\n"
        "insert into t values ($ф$a; 'b$ф$), ($€$c;$€$), ($a€$d;$a€$);\n",
        "drop table t;\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in db.execute("select v from t")] == ["a; 'b", "c;", "d;"]


def test_a_function_with_a_standard_body_is_one_statement(database, db, write_migrations):
    mdir = write_migrations({"001_fn": (
        "create function two() returns int language sql\nbegin atomic\n  select 1;\n  select 2;\nend;\n"
        "create table after_fn (x int default two());\n",
        "drop table after_fn;\ndrop function two();\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert db.execute("select two()").fetchone() == (2,)


def test_a_rule_with_several_actions_is_one_statement_and_errors_after_it_are_placed(
        database, db, write_migrations):
    mdir = write_migrations({"001_rule": (
        "create table src (id int);\ncreate table log1 (id int);\ncreate table log2 (id int);\n"
        "create rule r as on insert to src do also (\n"
        "  insert into log1 values (new.id);\n"
        "  insert into log2 values (new.id));\n"
        "insert into src values (1);\n"
        "select nope from src;\n",
        "drop table src;\ndrop table log1;\ndrop table log2;\n")})
    result = up(mdir, database)
    assert result.exit_code == 4
    assert '001_rule/up.sql:8:8: ERROR 42703: column "nope" does not exist' in result.stderr
    assert tables(db) == {"schema_migrations"} and tracking_ids(db) == []


def test_strings_are_read_standard_conforming_whatever_the_database_says(database, db, write_migrations):
    db.execute(f'alter database "{db.info.dbname}" set standard_conforming_strings = off')
    mdir = write_migrations({"001_s": (
        "create table s as select current_setting('standard_conforming_strings') as scs, 'a\\b'::text as v;\n",
        "drop table s;\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    # the backslash is a plain character, as `check` read it
    assert db.execute("select scs, v from s").fetchone() == ("on", "a\\b")


def test_a_client_encoding_from_the_environment_does_not_change_what_is_sent(database, db, write_migrations):
    mdir = write_migrations({"001_u": ("create table u as select 'жук ✓' as v;\n", "drop table u;\n")})
    result = up(mdir, database, env={"PGCLIENTENCODING": "LATIN1"}, process=True)
    assert result.exit_code == 0, result.stderr
    assert db.execute("select v from u").fetchone() == ("жук ✓",)


def test_a_migration_changing_client_encoding_changes_neither_its_own_text_nor_the_next(
        database, db, write_migrations):
    """The file's bytes are sent as read, in UTF-8: a SET client_encoding inside the
    file comes after the server has read it, and the session reset undoes it."""
    mdir = write_migrations({
        "001_latin": ("set client_encoding to 'LATIN1';\ncreate table e1 as select 'é жук' as v;\n",
                      "drop table e1;\n"),
        "002_next": ("create table e2 as select 'жук ✓' as v;\n", "drop table e2;\n"),
        "003_ntx": ("-- sqlmigrate: no-transaction\nset client_encoding to 'LATIN1';\n"
                    "create table e3 as select 'é' as v;\n", "drop table e3;\n"),
        "004_after": ("create table e4 as select 'жук' as v;\n", "drop table e4;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert [db.execute(f"select v from e{n}").fetchone()[0] for n in (1, 2, 3, 4)] == [
        "é жук", "жук ✓", "é", "жук"]


def test_the_tracking_row_is_written_by_the_role_that_connected(database, db, write_migrations):
    role = f"sm_owner_{uuid.uuid4().hex[:8]}"
    db.execute(f'create role "{role}"')
    try:
        db.execute(f'grant create on schema public to "{role}"')
        mdir = write_migrations({
            "001_plain": ("create table p (id int);\n", "drop table p;\n"),
            "002_switch": ("set role none;\ncreate table q (id int);\n", "drop table q;\n"),
            "003_copy": ("create table c (id int);\ncopy c from stdin;\n1\n\\.\n", "drop table c;\n"),
            "004_ntx": ("-- sqlmigrate: no-transaction\ncreate index concurrently p_id on p (id);\n",
                        "-- sqlmigrate: no-transaction\ndrop index concurrently p_id;\n"),
        })
        result = up(mdir, database, env={"PGOPTIONS": f"-c role={role}"}, process=True)
        assert result.exit_code == 0, result.stderr
        rows = db.execute("select id, applied_by from schema_migrations order by id").fetchall()
        assert rows == [("001", role), ("002", role), ("003", role), ("004", role)]
        assert db.execute("select tableowner from pg_tables where tablename = 'schema_migrations'"
                          ).fetchone() == (role,)
    finally:
        db.execute(f'drop owned by "{role}"')
        db.execute(f'drop role "{role}"')


def test_a_deferred_constraint_failing_at_commit_is_the_migrations_failure(database, db, write_migrations):
    mdir = write_migrations({"001_defer": (
        "create table parent (id int primary key);\n"
        "create table child (pid int references parent deferrable initially deferred);\n"
        "insert into child values (42);\n",
        "drop table child;\ndrop table parent;\n")})
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "001_defer/up.sql:3:1: ERROR 23503: insert or update on table \"child\" violates foreign key" \
        in result.stderr
    assert "HINT: raised at COMMIT: a deferred constraint or trigger failed" in result.stderr
    assert tables(db) == {"schema_migrations"} and tracking_ids(db) == []


def test_ctrl_c_landing_after_the_commit_says_the_migration_is_applied(database, monkeypatch):
    """Ctrl-C during the session reset that follows COMMIT: the tracking row is
    the truth, and the message says the migration is applied, not rolled back."""
    import pytest

    from sqlmigrate import executor
    from sqlmigrate.errors import Interrupted

    real = executor.run_script

    def then_interrupted(conn, script):
        real(conn, script)  # the whole string ran: COMMIT and the reset
        raise KeyboardInterrupt

    monkeypatch.setattr(executor, "run_script", then_interrupted)
    with tracked_connection(database) as session:
        conn = session.conn
        with pytest.raises(Interrupted, match="^interrupted after 001_a was committed: it is applied$"):
            executor.run(session, one_step_plan("create table a (id int);\n"), silent)
        assert conn.execute("select id, state from schema_migrations").fetchall() == [("001", "applied")]
        assert conn.execute("select to_regclass('a') is not null").fetchone() == (True,)


def test_ctrl_c_before_the_commit_still_says_rolled_back(database, monkeypatch):
    import pytest

    from sqlmigrate import executor
    from sqlmigrate.errors import Interrupted

    def interrupted(conn, script):
        conn.execute("begin")
        conn.execute("create table a (id int)")
        raise KeyboardInterrupt  # mid-migration, before its COMMIT

    monkeypatch.setattr(executor, "run_script", interrupted)
    with tracked_connection(database) as session:
        conn = session.conn
        with pytest.raises(Interrupted, match="^interrupted during 001_a; its transaction was rolled back$"):
            executor.run(session, one_step_plan("create table a (id int);\n"), silent)
        assert conn.execute("select count(*), to_regclass('a') from schema_migrations").fetchone() == (0, None)


def test_a_down_sql_holding_a_nul_does_not_stop_up_and_is_not_stored(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\x00\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "001_a/down.sql:1:14: warning: a NUL character (0x00)" in result.stderr
    assert db.execute("select id, down_sql from schema_migrations").fetchall() == [("001", None)]


def test_a_tracking_row_whose_id_is_not_a_number_is_missing(database, db, write_migrations):
    """A row sqlmigrate never writes (by hand, id '²'): listed as missing, which verify names;
    down, repair and drift do not crash on it, and down still rolls back the real migrations."""
    import json

    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    assert up(mdir, database).exit_code == 0
    db.execute("insert into schema_migrations (id, name, checksum) values ('²', 'odd', 'x')")
    status = run("status", mdir, database, "--format", "json")
    assert status.exit_code == 0, status.stderr
    states = {m["id"]: m["state"] for m in json.loads(status.stdout)["migrations"]}
    assert states == {"001": "applied", "²": "missing"}
    text = run("status", mdir, database)
    assert "tracking row id '²' is not a number" in text.stdout + text.stderr
    verify = run("verify", mdir, database)
    assert verify.exit_code == 1
    assert "²_odd" in verify.stdout + verify.stderr
    repair = run("repair", mdir, database)
    assert repair.exit_code == 0, repair.stderr
    drift = run("drift", mdir, database)
    assert drift.exit_code == 1 and "²_odd (missing)" in drift.stderr, drift.stderr
    down = run("down", mdir, database)
    assert down.exit_code == 0, down.stderr
    assert db.execute("select id from schema_migrations").fetchall() == [("²",)]
    assert db.execute("select to_regclass('a')").fetchone() == (None,)
    for result in (status, text, verify, repair, drift, down):
        no_crash(result.stderr)


@pytest.mark.parametrize("directive", ["", "-- sqlmigrate: no-transaction\n"], ids=["transactional", "no-transaction"])
def test_a_boundary_the_split_missed_is_refused_by_the_server_before_anything_runs(database, directive):
    """Behind the split, the server's parser: should `check` ever read two
    statements as one (simulated here by joining them), the step is refused
    before any of it runs, at that statement."""
    import dataclasses
    from pathlib import Path

    from sqlmigrate import executor, sqlfile

    text = f"{directive}create table a (id int);\nselect 'ф';\ncommit;\ncreate table late (x int);\n"
    parsed = sqlfile.parse_text(Path("m/001_a/up.sql"), text)
    first, select, commit, last = parsed.statements
    joined = dataclasses.replace(select, end=commit.end, words=select.words + commit.words)
    plan = one_step_plan(dataclasses.replace(parsed, statements=(first, joined, last)), "select 1;\n")
    with tracked_connection(database) as session:
        conn = session.conn
        [result] = executor.run(session, plan, silent)
        assert result.error is not None and result.statements_run == 0
        assert (result.error.line, result.error.col) == (joined.line, 1)
        assert result.error.message.startswith("PostgreSQL reads more than one statement here, where sqlmigrate "
                                               "read one; none of this migration was run")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("select to_regclass('a'), to_regclass('late'), count(*) from schema_migrations"
                            ).fetchone() == (None, None, 0)

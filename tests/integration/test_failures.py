"""SPEC 5: what failure looks like. SQL errors placed in the file, rollback, exit codes."""
from __future__ import annotations

import psycopg
import pytest

from tests.conftest import run_cli, tables, tracking_ids, tracking_row, with_params
from sqlmigrate.events import silent
from tests.integration.helpers import no_crash, one_step_plan, run, tracked_connection, up


def three(second_up: str | bytes) -> dict:
    return {
        "001_one": ("create table one (id int);\n", "drop table one;\n"),
        "002_two": (second_up, "drop table two;\n"),
        "003_three": ("create table three (id int);\n", "drop table three;\n"),
    }


def test_failing_statement_in_second_of_three(database, db, write_migrations):
    mdir = write_migrations(three("create table two (id int);\ninsert into two select nope from one;\n"))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert f"{mdir}/002_two/up.sql:2:24: ERROR 42703: column \"nope\" does not exist" in result.stderr
    # 001 stays, 002 rolled back entirely (its table too), 003 never ran
    assert tables(db) == {"one", "schema_migrations"}
    assert tracking_ids(db) == ["001"]
    assert "applying 003_three" not in result.stdout
    assert ("applied 1 migration(s)" in result.stderr
            and "002_two FAILED and was rolled back; 1 not run: 003_three" in result.stderr)
    assert "Traceback" not in result.stderr


def test_error_position_after_comments_and_blank_lines(database, db, write_migrations):
    second = (
        "-- two: a table and its rows\n"
        "/* a block\n   comment */\n"
        "\n"
        "create table two (id int);   -- trailing comment\n"
        "\n"
        "-- the broken one:\n"
        "insert into two (id)\n"
        "\tselect nope\n"
        "\tfrom one;\n"
    )
    mdir = write_migrations(three(second))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "002_two/up.sql:9:9: ERROR 42703: column \"nope\" does not exist" in result.stderr


def test_error_position_on_second_statement_of_a_line(database, write_migrations):
    mdir = write_migrations(three("create table two (id int); select nope from two;\n"))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "002_two/up.sql:1:35: ERROR 42703" in result.stderr


def test_error_column_counts_characters_not_bytes(database, write_migrations):
    mdir = write_migrations(three("-- café ☕\ncreate table two (id int);\nselect 'ééé', nope from two;\n"))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "002_two/up.sql:3:15: ERROR 42703" in result.stderr


def test_error_position_in_crlf_file_with_bom(database, write_migrations):
    mdir = write_migrations(three(b"\xef\xbb\xbfcreate table two (id int);\r\nselect nope from two;\r\n"))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "002_two/up.sql:2:8: ERROR 42703" in result.stderr


def test_error_inside_dollar_quoted_body_points_at_the_statement(database, write_migrations):
    body = (
        "create table two (id int);\n"
        "do $$\nbegin\n  perform nope from two;\nend\n$$;\n"
    )
    mdir = write_migrations(three(body))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "002_two/up.sql:2:1: ERROR 42703: column \"nope\" does not exist" in result.stderr
    assert "CONTEXT:" in result.stderr and "PL/pgSQL function inline_code_block" in result.stderr


def test_detail_and_hint_lines(database, db, write_migrations):
    mdir = write_migrations(three(
        "create table two (id int primary key);\ninsert into two values (1);\ninsert into two values (1);\n"
    ))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert ('002_two/up.sql:3:1: ERROR 23505: duplicate key value violates unique constraint "two_pkey"'
            in result.stderr)
    assert "  DETAIL: Key (id)=(1) already exists." in result.stderr


def test_hint_line(database, write_migrations):
    mdir = write_migrations(three("select no_such_function(1, 'x');\n"))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "002_two/up.sql:1:8: ERROR 42883: function no_such_function(integer, unknown) does not exist" \
        in result.stderr
    assert "  HINT: No function matches the given name and argument types." in result.stderr


def test_error_without_position_points_at_statement_start(database, write_migrations):
    mdir = write_migrations(three("-- first a comment\n\n  alter table missing_table\n    add column x int;\n"))
    result = up(mdir, database)
    assert result.exit_code == 4
    assert '002_two/up.sql:3:3: ERROR 42P01: relation "missing_table" does not exist' in result.stderr


def test_failure_in_first_migration_applies_nothing(database, db, write_migrations):
    mdir = write_migrations({
        "001_one": ("create table one (id int);\nselect 1/0;\n", "drop table one;\n"),
        "002_two": ("create table two (id int);\n", "drop table two;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "001_one/up.sql:2:1: ERROR 22012: division by zero" in result.stderr
    assert "applied 0 migration(s)" in result.stderr
    assert tracking_ids(db) == []
    assert "one" not in tables(db)


def test_failure_json_output(database, db, write_migrations):
    import json

    mdir = write_migrations(three("create table two (id int);\nselect nope from two;\n"))
    result = up(mdir, database, "--format", "json")
    assert result.exit_code == 4
    payload = json.loads(result.stdout)
    assert [d["id"] for d in payload["done"]] == ["001"]
    assert payload["failed"]["id"] == "002"
    assert payload["failed"]["error"]["line"] == 2 and payload["failed"]["error"]["col"] == 8
    assert payload["failed"]["error"]["sqlstate"] == "42703"
    assert [d["id"] for d in payload["not_run"]] == ["003"]


def test_fixed_migration_applies_after_failure(database, db, write_migrations):
    mdir = write_migrations(three("create table two (id int);\nselect nope from two;\n"))
    assert up(mdir, database).exit_code == 4
    (mdir / "002_two" / "up.sql").write_text("create table two (id int);\n")
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002", "003"]


def test_sql_error_paths_keep_the_folder_as_given(database, db, tmp_path, monkeypatch, write_migrations):
    write_migrations({"001_a": ("create table a (id int);\ninsert into nope values (1);\n", "drop table a;\n")},
                     directory=tmp_path / "db")
    monkeypatch.chdir(tmp_path)
    result = run("up", "./db/", database)
    assert result.exit_code == 4
    assert './db/001_a/up.sql:2:13: ERROR 42P01: relation "nope" does not exist' in result.stderr
    dry = run("up", "./db/", database, "--dry-run")
    assert "-- 001_a: ./db/001_a/up.sql" in dry.stdout
    assert tables(db) == {"schema_migrations"} and tracking_ids(db) == []


# -- no-transaction migrations ----------------------------------------------------


def test_no_transaction_migration_with_create_index_concurrently(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n"
                    "create index concurrently t_id2 on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id2;\ndrop index concurrently t_id;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    indexes = {r[0] for r in db.execute("select indexname from pg_indexes where tablename = 't'")}
    assert indexes == {"t_id", "t_id2"}
    assert tracking_row(db, "002", "state, statements_run") == ("applied", 2)
    down = run("down", mdir, database)
    assert down.exit_code == 0, down.stderr
    assert db.execute("select count(*) from pg_indexes where tablename = 't'").fetchone() == (0,)
    assert tracking_ids(db) == ["001"]


def test_no_transaction_failure_is_recorded_as_failed(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n"
                    "create index concurrently t_nope on t (nope);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently if exists t_id;\n"),
        "003_after": ("create table after (id int);\n", "drop table after;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 4
    # PostgreSQL gives no position for an index column: the statement's start
    assert '002_idx/up.sql:3:1: ERROR 42703: column "nope" does not exist' in result.stderr
    assert "002_idx FAILED after 1 statement(s) (no-transaction) and is recorded as failed" in result.stderr
    assert tracking_row(db, "002", "state, statements_run") == ("failed", 1)
    # the first statement's effect stays: it ran outside any transaction
    assert db.execute("select count(*) from pg_indexes where indexname = 't_id'").fetchone() == (1,)
    assert "after" not in tables(db)

    status = run("status", mdir, database)
    assert status.exit_code == 0
    line = next(x for x in status.stdout.splitlines() if x.startswith("002"))
    assert line.split()[2] == "failed"

    again = up(mdir, database)
    assert again.exit_code == 1
    assert "migration 002_idx failed part-way (no-transaction); nothing was run" in again.stderr
    assert "sqlmigrate repair" in again.stderr
    assert "after" not in tables(db)

    down = run("down", mdir, database)
    assert down.exit_code == 1
    assert tracking_ids(db) == ["001", "002"]


def test_no_transaction_failure_of_first_statement(database, db, write_migrations):
    mdir = write_migrations({
        "001_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently x_id on missing (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently if exists x_id;\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 4
    assert '001_idx/up.sql:2:1: ERROR 42P01: relation "missing" does not exist' in result.stderr
    assert db.execute("select state, statements_run from schema_migrations").fetchone() == ("failed", 0)


# -- connection problems ----------------------------------------------------------


def test_unreachable_host_exit_3_without_password(tmp_path, write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    for command in ("up", "status", "down"):
        result = run(command, mdir, "postgresql://u:secretpw@127.0.0.1:1/db")
        assert result.exit_code == 3, (command, result)
        assert "secretpw" not in result.stdout + result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("sqlmigrate: cannot connect to postgresql://u:***@127.0.0.1:1/db: ")
        assert "Traceback" not in result.stderr


def test_password_in_keyword_conninfo_is_masked(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    result = run("up", mdir, "host=127.0.0.1 port=1 user=u password=secretpw dbname=db")
    assert result.exit_code == 3
    assert "secretpw" not in result.stdout + result.stderr
    assert "password=***" in result.stderr


def test_malformed_url_never_shows_the_password(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    for url in ("postgresql://u:secretpw@[bad/db", "postgresql://u:secretpw@localhost/db?nosuch=1"):
        result = run("up", mdir, url)
        assert result.exit_code == 2, result
        assert "secretpw" not in result.stdout + result.stderr
        assert "invalid database URL" in result.stderr
        no_crash(result.stderr)


def test_a_port_that_is_no_number_is_a_malformed_url(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    for url in ("postgresql://u:secretpw@localhost:notaport/db", "host=localhost port=5x password=secretpw"):
        result = run("status", mdir, url)
        assert result.exit_code == 2, result
        assert result.stderr.count("\n") == 1 and "is not a number" in result.stderr, result.stderr
        assert "secretpw" not in result.stdout + result.stderr


def test_an_url_without_host_is_shown_as_given(write_migrations):
    """postgresql:///db (the local socket): the "//" stays in the message."""
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    result = run("status", mdir, "postgresql:///sqlmigrate_no_such_database")
    assert result.exit_code == 3
    assert result.stderr.startswith("sqlmigrate: cannot connect to postgresql:///sqlmigrate_no_such_database: ")
    result = run("status", mdir, "postgresql://u:secretpw@/sqlmigrate_no_such_database?sslmode=disable")
    assert result.stderr.startswith(
        "sqlmigrate: cannot connect to postgresql://u:***@/sqlmigrate_no_such_database?sslmode=disable: "), result


def test_nonexistent_database_exit_3(database, write_migrations):
    url = with_params(database, dbname="sqlmigrate_no_such_database")
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    result = run("up", mdir, url)
    assert result.exit_code == 3
    assert 'database "sqlmigrate_no_such_database" does not exist' in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_migrations_folder_is_a_usage_error(database, tmp_path):
    result = run("up", tmp_path / "nope", database)
    assert result.exit_code == 2
    assert "migrations folder" in result.stderr and "does not exist" in result.stderr


def test_a_file_given_as_migrations_folder_is_a_usage_error(database, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for command in ("status", "up", "check", "verify"):
        result = run(command, afile, database)
        assert result.exit_code == 2, (command, result)
        assert result.stderr == f"sqlmigrate: {afile} is a file, not a migrations folder (use --dir)\n"


def test_an_empty_dir_is_a_usage_error_not_the_current_folder(database):
    for args in (("status",), ("up",), ("check",), ("generate", "x"), ("status", "--format", "json")):
        result = run_cli(*args, "--dir", "", "--database-url", database)
        assert result.exit_code == 2, (args, result)
        assert "--dir is empty" in result.stdout + result.stderr, result


def test_tracking_row_failure_is_a_database_error_and_rolls_back(database, db, write_migrations):
    # the tracking row's insert fails (a trigger raises): the migration rolls back with it
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    db.execute(
        "create table schema_migrations (id text primary key, name text not null, checksum text not null,"
        " content_checksum text, executed_at timestamptz not null default now(), duration_ms int,"
        " applied_by text, down_sql text, state text not null default 'applied', statements_run int,"
        " failed_during text)"
    )
    db.execute("create function no_rows() returns trigger language plpgsql as "
               "$$begin raise exception 'no rows today'; end$$")
    db.execute("create trigger no_rows before insert on schema_migrations for each row execute function no_rows()")
    result = up(mdir, database)
    assert result.exit_code == 3
    assert "sqlmigrate: database error while recording 001_a: no rows today" in result.stderr
    assert result.stdout == "applying 001_a ... stopped\n"
    assert "a" not in tables(db)


def test_json_format_refusal_and_connection_error_are_one_object(database, db, write_migrations):
    import json

    mdir = write_migrations({"001_a": ("create table a (id int);\ncommit;\n", "drop table a;\n")})
    refused = up(mdir, database, "--format", "json")
    assert refused.exit_code == 1
    payload = json.loads(refused.stdout)
    assert payload["exit_code"] == 1
    assert payload["error"] == "validation failed; nothing was applied"
    assert [(f["line"], f["col"], f["rule"]) for f in payload["findings"]] == [(2, 1, "transaction-control")]

    unreachable = up(mdir, "postgresql://u:secretpw@127.0.0.1:1/db", "--format", "json")
    assert unreachable.exit_code == 3
    assert json.loads(unreachable.stdout)["exit_code"] == 3
    assert "secretpw" not in unreachable.stdout + unreachable.stderr


def test_statement_timeout_failure_points_at_the_statement(database, db, write_migrations):
    mdir = write_migrations({"001_slow": ("select 1;\n\n  select pg_sleep(2);\n", "select 1;\n")})
    result = up(mdir, database, "--statement-timeout", "100ms")
    assert result.exit_code == 4
    assert "001_slow/up.sql:3:3: ERROR 57014: canceling statement due to statement timeout" in result.stderr
    assert tracking_ids(db) == []


def test_error_position_after_copy_data_and_function_body(database, db, write_migrations):
    mdir = write_migrations({
        "001_copy": ("create table c (a int, b text);\ncopy c (a, b) from stdin;\n1\tx\n2\ty\n\\.\n"
                     "create function f() returns int language plpgsql as $$\nbegin\n  return 1;\nend\n$$;\n"
                     "select f(), nope from c;\n", "drop table c;\ndrop function f();\n"),
    })
    result = up(mdir, database)
    assert result.exit_code == 4
    assert '001_copy/up.sql:11:13: ERROR 42703: column "nope" does not exist' in result.stderr
    # fixed, the COPY data arrives
    (mdir / "001_copy" / "up.sql").write_text(
        "create table c (a int, b text);\ncopy c (a, b) from stdin;\n1\tx\n2\ty\n\\.\nselect count(*) from c;\n")
    assert up(mdir, database).exit_code == 0
    assert db.execute("select a, b from c order by a").fetchall() == [(1, "x"), (2, "y")]


# -- files over a megabyte go to the server on their own, between BEGIN and the row ------

BIG_ROWS = ",\n".join(f"  ({i}, 'row {i} {'x' * 40}')" for i in range(20_000))  # ~1.2 MB
BIG_INSERT = f"insert into big (id, note) values\n{BIG_ROWS};\n"


def test_a_big_file_applies_with_its_row(database, db, write_migrations):
    assert len(BIG_INSERT) > 1 << 20
    mdir = write_migrations({**three("create table two (id int);\n"),
                             "004_big": ("create table big (id int primary key, note text);\n" + BIG_INSERT,
                                         "drop table big;\n")})
    result = up(mdir, database)
    assert result.exit_code == 0, result.stderr
    assert db.execute("select count(*) from big").fetchone() == (20_000,)
    assert tracking_ids(db) == ["001", "002", "003", "004"]


def test_a_big_file_failing_at_run_time_points_at_its_statement(database, db, write_migrations):
    # a duplicate key: no position from the server, so the count of answers names the statement
    mdir = write_migrations({"001_big": (
        "create table big (id int primary key, note text);\n" + BIG_INSERT + "insert into big values (7, 'again');\n",
        "drop table big;\n")})
    result = up(mdir, database)
    assert result.exit_code == 4
    assert "001_big/up.sql:20003:1: ERROR 23505: duplicate key value violates unique constraint" in result.stderr
    assert tables(db) == {"schema_migrations"} and tracking_ids(db) == []


def test_a_big_file_failing_in_its_first_statement(database, db, write_migrations):
    mdir = write_migrations({"001_big": ("-- the table is missing\n" + BIG_INSERT, "select 1;\n")})
    result = up(mdir, database)
    assert result.exit_code == 4
    assert '001_big/up.sql:2:13: ERROR 42P01: relation "big" does not exist' in result.stderr
    assert tracking_ids(db) == []


def test_a_syntax_error_deep_in_a_big_file_is_placed_exactly(database, db, write_migrations):
    mdir = write_migrations({"001_big": (
        "create table big (id int primary key, note text);\n" + BIG_INSERT + "selec 1;\n",
        "drop table big;\n")})
    result = up(mdir, database)
    assert result.exit_code == 4
    assert '001_big/up.sql:20003:1: ERROR 42601: syntax error at or near "selec"' in result.stderr
    assert tables(db) == {"schema_migrations"} and tracking_ids(db) == []


def test_a_nul_character_refuses_the_run_and_changes_nothing(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ninsert into a values (1);\x00\n"
                                       "insert into a values (2);\n", "drop table a;\n")})
    result = up(mdir, database)
    assert result.exit_code == 1
    assert "001_a/up.sql:2:26: error: a NUL character (0x00): PostgreSQL accepts none in SQL text [syntax]" \
        in result.stderr
    assert tables(db) == set()


@pytest.mark.parametrize("rows", [1, 25_000], ids=["one string", "over a megabyte"])
def test_a_query_cut_short_by_a_nul_is_rolled_back_not_recorded(rows, database):
    """Behind validation (which refuses a NUL): should a query ever reach the server
    cut short, the executor sees it ran less than was sent and records nothing."""
    from sqlmigrate import executor
    from sqlmigrate.errors import DatabaseUnavailable

    values = ", ".join(f"({n})" for n in range(rows))
    text = f"create table a (id int);\ninsert into a values {values};\x00\ninsert into a values (-1);\n"
    with tracked_connection(database) as session:
        conn = session.conn
        with pytest.raises(DatabaseUnavailable, match="did not receive all of m/001_a/up.sql; 001_a was rolled back"):
            executor.run(session, one_step_plan(text, "drop table a;"), silent)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("select to_regclass('a'), count(*) from schema_migrations").fetchone() == (None, 0)

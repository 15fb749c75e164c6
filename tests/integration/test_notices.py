"""PostgreSQL's notices (NOTICE, WARNING, INFO) raised by a migration's SQL: shown under its line, in JSON."""
from __future__ import annotations

import json
import re

from tests.conftest import tables, tracking_ids
from tests.integration.helpers import run


def timeless(text: str) -> str:
    """Output with its durations blanked, for exact comparison."""
    return re.sub(r"\(\d+ ms\)", "(N ms)", re.sub(r"in \d+\.\d+ s", "in N s", text))


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def raise_(level: str, message: str, *, detail: str | None = None, hint: str | None = None) -> str:
    """A DO block raising one message (no `%` in it)."""
    using = ", ".join(f"{k} = {literal(v)}" for k, v in (("detail", detail), ("hint", hint)) if v)
    return f"do $$ begin raise {level} {literal(message)}{' using ' + using if using else ''}; end $$;\n"


THREE = {
    "001_quiet": ("create table one (id int);\n", "drop table one;\n"),
    "002_noisy": (
        "drop table if exists gone;\n"
        "create table two (id int);\n"
        "create index if not exists two_id on two (id);\n"
        "create index if not exists two_id on two (id);\n"
        + raise_("info", "fourth")
        + raise_("notice", "fifth"),
        "drop table two;\ndrop table if exists gone_too;\n",
    ),
    "003_one_notice": (raise_("notice", "from three"), "select 1;\n"),
}


def test_notices_under_their_migration_in_order(database, db, write_migrations):
    mdir = write_migrations(THREE)
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert timeless(result.stdout) == (
        "applying 001_quiet ... ok (N ms)\n"
        "applying 002_noisy ... ok (N ms)\n"
        '  NOTICE: table "gone" does not exist, skipping\n'
        '  NOTICE: relation "two_id" already exists, skipping\n'
        "  INFO: fourth\n"
        "  NOTICE: fifth\n"
        "applying 003_one_notice ... ok (N ms)\n"
        "  NOTICE: from three\n"
        "applied 3 migration(s) in N s\n"
    )
    assert "NOTICE" not in result.stderr and "INFO" not in result.stderr
    assert tracking_ids(db) == ["001", "002", "003"]


def test_notices_in_json(database, write_migrations):
    mdir = write_migrations(THREE)
    result = run("up", mdir, database, "--format", "json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    done = {d["id"]: d for d in payload["done"]}
    assert done["001"]["notices"] == [] and done["001"]["notices_omitted"] == 0
    assert done["002"]["notices"] == [
        {"severity": "NOTICE", "message": 'table "gone" does not exist, skipping', "detail": None, "hint": None},
        {"severity": "NOTICE", "message": 'relation "two_id" already exists, skipping', "detail": None,
         "hint": None},
        {"severity": "INFO", "message": "fourth", "detail": None, "hint": None},
        {"severity": "NOTICE", "message": "fifth", "detail": None, "hint": None},
    ]
    assert [n["message"] for n in done["003"]["notices"]] == ["from three"]
    assert result.stderr == ""


def test_raise_warning_with_detail_and_hint(database, write_migrations):
    mdir = write_migrations({
        "001_warn": (raise_("warning", "careful\nsecond line", detail="the detail", hint="a hint"),
                     "select 1;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert timeless(result.stdout) == (
        "applying 001_warn ... ok (N ms)\n"
        "  WARNING: careful\n"
        "           second line\n"
        "    DETAIL: the detail\n"
        "    HINT: a hint\n"
        "applied 1 migration(s) in N s\n"
    )
    payload = json.loads(run("down", mdir, database, "--format", "json").stdout)
    assert payload["done"][0]["notices"] == []
    payload = json.loads(run("up", mdir, database, "--format", "json").stdout)
    assert payload["done"][0]["notices"] == [
        {"severity": "WARNING", "message": "careful\nsecond line", "detail": "the detail", "hint": "a hint"}]


def test_down_shows_its_notices(database, db, write_migrations):
    mdir = write_migrations(THREE)
    assert run("up", mdir, database).exit_code == 0
    result = run("down", mdir, database, "--steps", "2")
    assert result.exit_code == 0, result.stderr
    assert timeless(result.stdout) == (
        "rolling back 003_one_notice ... ok (N ms)\n"
        "rolling back 002_noisy ... ok (N ms)\n"
        '  NOTICE: table "gone_too" does not exist, skipping\n'
        "rolled back 2 migration(s) in N s\n"
    )
    assert tracking_ids(db) == ["001"]


def test_no_transaction_and_copy_migrations_show_their_notices(database, db, write_migrations):
    mdir = write_migrations({
        "001_copy": ("drop table if exists nothing_here;\ncreate table c (id int);\n"
                     "copy c from stdin;\n1\n2\n\\.\n" + raise_("notice", "after copy"),
                     "drop table c;\n"),
        "002_concurrently": ("-- sqlmigrate: no-transaction\n"
                             "drop index concurrently if exists no_such_index;\n"
                             "create index concurrently if not exists c_id on c (id);\n"
                             "create index concurrently if not exists c_id on c (id);\n",
                             "-- sqlmigrate: no-transaction\ndrop index concurrently if exists c_id;\n"
                             "drop index concurrently if exists c_id;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert timeless(result.stdout) == (
        "applying 001_copy ... ok (N ms)\n"
        '  NOTICE: table "nothing_here" does not exist, skipping\n'
        "  NOTICE: after copy\n"
        "applying 002_concurrently ... ok (N ms)\n"
        '  NOTICE: index "no_such_index" does not exist, skipping\n'
        '  NOTICE: relation "c_id" already exists, skipping\n'
        "applied 2 migration(s) in N s\n"
    )
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert timeless(result.stdout) == (
        "rolling back 002_concurrently ... ok (N ms)\n"
        '  NOTICE: index "c_id" does not exist, skipping\n'
        "rolled back 1 migration(s) in N s\n"
    )


def test_a_file_over_a_megabyte_shows_its_notices(database, write_migrations):
    # such a file goes on its own between BEGIN and the rest (executor.BIG_FILE_BYTES)
    padding = ("-- " + "x" * 97 + "\n") * 11_000
    mdir = write_migrations({"001_big": (padding + "drop table if exists big_gone;\n", "select 1;\n")})
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert timeless(result.stdout) == (
        "applying 001_big ... ok (N ms)\n"
        '  NOTICE: table "big_gone" does not exist, skipping\n'
        "applied 1 migration(s) in N s\n"
    )


def test_bookkeeping_adds_no_notices(database, db, write_migrations):
    """Our BEGIN, tracking row, COMMIT and session reset show nothing: not their
    server-side chatter at the lowest client_min_messages, not a trigger on the
    tracking table, not the reset of what the migration left in the session."""
    role = f"sqlmigrate_notices_{db.info.dbname[-12:]}"
    db.execute(f"create role {role}")
    mdir = write_migrations({"001_setup": ("create table t (id int);\n", "drop table t;\n")})
    assert run("up", mdir, database).exit_code == 0
    db.execute("create function shout() returns trigger language plpgsql as "
               "$$ begin raise warning 'tracking row touched'; return null; end $$")
    db.execute("create trigger shout after insert or update or delete on schema_migrations "
               "for each row execute function shout()")
    session_litter = (
        "create temp table scratch (id serial);\ncreate temp sequence tseq;\nprepare p as select 1;\n"
        "listen somewhere;\ndeclare c cursor with hold for select 1;\nset search_path = pg_temp, public;\n"
        f"set timezone = 'Pacific/Chatham';\nset role {role};\n"
    )
    write_migrations({
        "002_litter": (session_litter, "select 1;\n"),
        "003_plain": ("create table three (id int);\n", "drop table three;\n"),
        "004_outside": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n"
                        "create table four (id int);\n",
                        "-- sqlmigrate: no-transaction\ndrop table four;\ndrop index concurrently t_id;\n"),
    })
    chatty = f"{database} options='-c client_min_messages=debug5'"
    try:
        result = run("up", mdir, chatty)
        assert result.exit_code == 0, result.stderr
        assert timeless(result.stdout) == (
            "applying 002_litter ... ok (N ms)\n"
            "applying 003_plain ... ok (N ms)\n"
            "applying 004_outside ... ok (N ms)\n"
            "applied 3 migration(s) in N s\n"
        )
        assert result.stderr == ""
        result = run("down", mdir, chatty, "--steps", "3")
        assert result.exit_code == 0, result.stderr
        assert timeless(result.stdout) == (
            "rolling back 004_outside ... ok (N ms)\n"
            "rolling back 003_plain ... ok (N ms)\n"
            "rolling back 002_litter ... ok (N ms)\n"
            "rolled back 3 migration(s) in N s\n"
        )
        payload = json.loads(run("up", mdir, chatty, "--format", "json").stdout)
        assert [(d["notices"], d["notices_omitted"]) for d in payload["done"]] == [([], 0)] * 3
    finally:
        db.execute(f"drop role {role}")


def test_failed_migration_shows_the_notices_raised_before_its_error(database, db, write_migrations):
    mdir = write_migrations({
        "001_ok": ("create table one (id int);\n", "drop table one;\n"),
        "002_fails": ("drop table if exists gone;\n" + raise_("warning", "about to fail")
                      + "select 1/0;\n" + raise_("notice", "never raised"), "select 1;\n"),
        "003_never": (raise_("notice", "never run"), "select 1;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 4
    # stdout: the notices under the FAILED line; stderr: the error and the summary
    assert timeless(result.stdout) == (
        "applying 001_ok ... ok (N ms)\n"
        "applying 002_fails ... FAILED (N ms)\n"
        '  NOTICE: table "gone" does not exist, skipping\n'
        "  WARNING: about to fail\n"
    )
    assert "002_fails/up.sql:3:1: ERROR 22012: division by zero" in result.stderr
    assert "never raised" not in result.stdout + result.stderr and "never run" not in result.stdout
    assert tracking_ids(db) == ["001"] and "gone" not in tables(db)
    payload = json.loads(run("up", mdir, database, "--format", "json").stdout)
    assert payload["done"] == []
    assert [(n["severity"], n["message"]) for n in payload["failed"]["notices"]] == [
        ("NOTICE", 'table "gone" does not exist, skipping'), ("WARNING", "about to fail")]
    assert payload["failed"]["notices_omitted"] == 0


def test_failed_no_transaction_migration_shows_its_notices(database, db, write_migrations):
    mdir = write_migrations({
        "001_outside": ("-- sqlmigrate: no-transaction\ndrop index concurrently if exists nope;\n"
                        "select 1/0;\n", "select 1;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 4
    assert timeless(result.stdout) == (
        "applying 001_outside ... FAILED (N ms)\n"
        '  NOTICE: index "nope" does not exist, skipping\n'
    )
    assert "001_outside/up.sql:3:1: ERROR 22012: division by zero" in result.stderr


def test_at_most_100_notices_per_migration(database, write_migrations):
    loop = "do $$ begin for i in 1..{n} loop raise notice 'n%', i; end loop; end $$;\n"
    mdir = write_migrations({
        "001_many": (loop.format(n=100_000), "select 1;\n"),
        "002_one_over": (loop.format(n=101), "select 1;\n"),
        "003_exactly": (loop.format(n=100), "select 1;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    lines = timeless(result.stdout).splitlines()
    first = lines.index("applying 001_many ... ok (N ms)")
    assert lines[first + 1:first + 102] == [f"  NOTICE: n{i}" for i in range(1, 101)] + [
        "  ... and 99900 more notices"]
    second = lines.index("applying 002_one_over ... ok (N ms)")
    assert lines[second + 100:second + 102] == ["  NOTICE: n100", "  ... and 1 more notice"]
    third = lines.index("applying 003_exactly ... ok (N ms)")
    assert lines[third + 100:] == ["  NOTICE: n100", "applied 3 migration(s) in N s"]
    run("down", mdir, database, "--all", "--yes")
    payload = json.loads(run("up", mdir, database, "--format", "json").stdout)
    counts = [(len(d["notices"]), d["notices_omitted"]) for d in payload["done"]]
    assert counts == [(100, 99_900), (100, 1), (100, 0)]
    assert payload["done"][0]["notices"][-1]["message"] == "n100"


def test_dry_run_is_unaffected(database, write_migrations):
    mdir = write_migrations(THREE)
    result = run("up", mdir, database, "--dry-run")
    assert result.exit_code == 0
    assert "NOTICE" not in result.stdout and "INFO" not in result.stdout
    payload = json.loads(run("up", mdir, database, "--dry-run", "--format", "json").stdout)
    assert all("notices" not in p for p in payload["planned"])

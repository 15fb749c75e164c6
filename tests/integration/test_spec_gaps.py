"""SPEC clauses the audit found unhonoured (G1-G15), against a real server and the real command line."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

from tests.conftest import run_cli, start_on_a_terminal, tables, tracking_ids, write_files
from tests.integration.helpers import applied, check, no_crash, run

ONE = {"001_a": ("create table a (id int);\n", "drop table a;\n")}
TWO = {**ONE, "002_b": ("create table b (id int);\n", "drop table b;\n")}


# -- G1: down validates the down.sql on disk, and uses the stored one only when it is gone ---------


def test_down_refuses_a_down_sql_on_disk_that_is_not_utf8(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    (mdir / "002_b" / "down.sql").write_bytes(b"-- caf\xe9\ndrop table b;\n")
    for args in ((), ("--dry-run",)):
        result = run("down", mdir, database, *args)
        assert result.exit_code == 1, result
        no_crash(result.stderr)
        assert f"{mdir}/002_b/down.sql:1:1: error: file is not valid UTF-8 (invalid byte at offset 6) [not-utf8]" \
            in result.stderr
        assert "down.sql validation failed; nothing was rolled back" in result.stderr
        assert "stored at apply time" not in result.stdout + result.stderr
    assert tracking_ids(db) == ["001", "002"]
    assert tables(db) == {"a", "b", "schema_migrations"}
    # fixed: it runs (the file on disk, not the stored copy)
    (mdir / "002_b" / "down.sql").write_text("drop table b;\ncreate table b_gone (id int);\n")
    ok = run("down", mdir, database)
    assert ok.exit_code == 0, ok.stderr
    assert tables(db) == {"a", "b_gone", "schema_migrations"}


def test_down_of_a_not_utf8_down_sql_that_was_never_stored_shows_the_finding(database, db, write_migrations):
    # applied with a bad down.sql (a down.sql error does not block up): nothing stored
    mdir = applied(write_migrations, database, {"001_a": ("create table a (id int);\n", b"drop table \xff;\n")})
    result = run("down", mdir, database)
    assert result.exit_code == 1
    no_crash(result.stderr)
    assert f"{mdir}/001_a/down.sql:1:1: error: file is not valid UTF-8 (invalid byte at offset 11) [not-utf8]" \
        in result.stderr
    assert "none stored" not in result.stderr
    assert tracking_ids(db) == ["001"] and "a" in tables(db)


def test_down_uses_the_stored_down_sql_when_only_the_file_is_gone(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    (mdir / "002_b" / "down.sql").unlink()
    result = run("down", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "002_b: folder or down.sql gone; using the down.sql stored at apply time" in result.stderr
    assert tracking_ids(db) == ["001"] and tables(db) == {"a", "schema_migrations"}


# -- G2: up --to validates every pending migration ----------------------------------------------


def test_up_to_refuses_on_an_error_in_a_pending_migration_above_it(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_b": ("create table b (id int);\nbegin;\n", "drop table b;\n")})
    for args in (("--to", "1"), ("--to", "1", "--dry-run")):
        result = run("up", mdir, database, *args)
        assert result.exit_code == 1, result
        assert f"{mdir}/002_b/up.sql:2:1: error: BEGIN at top level" in result.stderr
        assert "[transaction-control]" in result.stderr
        assert "validation failed; nothing was applied" in result.stderr
        assert "applying" not in result.stdout
    assert tables(db) == set()  # not even the tracking table


def test_up_to_shows_down_sql_errors_above_it_as_warnings(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_b": ("create table b (id int);\n", "commit;\n")})
    result = run("up", mdir, database, "--to", "1")
    assert result.exit_code == 0, result.stderr
    assert f"{mdir}/002_b/down.sql:1:1: warning: COMMIT at top level" in result.stderr
    assert "(blocks down, not up)" in result.stderr
    assert tracking_ids(db) == ["001"]


def test_check_errors_in_an_applied_up_sql_do_not_block_up_unless_it_is_modified(database, db, write_migrations):
    """Decided (README, `up`): applied migrations are not validated again; their up.sql already ran.
    A content edit makes them modified, which does block."""
    mdir = applied(write_migrations, database, ONE)
    up_sql = mdir / "001_a" / "up.sql"
    up_sql.write_text("create table a (id int);\n-- sqlmigrate: no-transaction\n")  # a comment only
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    checked = check(mdir)
    assert checked.exit_code == 1 and f"{mdir}/001_a/up.sql:2:1: error:" in checked.stdout
    status = run("status", mdir, database, "--format", "json")
    assert json.loads(status.stdout)["migrations"][0]["state"] == "reformatted"
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]
    up_sql.write_text("create table a (id bigint);\n")
    write_migrations({"003_c": ("create table c (id int);\n", "drop table c;\n")})
    refused = run("up", mdir, database)
    assert refused.exit_code == 1
    assert "applied migration(s) changed on disk: 001_a" in refused.stderr
    assert "c" not in tables(db)


# -- G3: REINDEX with an option list -------------------------------------------------------------

REINDEX = "reindex (verbose, tablespace pg_default) table concurrently t;\n"


def test_reindex_concurrently_after_an_option_list_needs_no_transaction(database, db, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int primary key);\n", "drop table t;\n"),
        "002_reindex": ("select 1;\n" + REINDEX, "select 1;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 1, result
    assert (f"{mdir}/002_reindex/up.sql:2:1: error: REINDEX ... CONCURRENTLY cannot run inside a transaction "
            "block [needs-no-transaction]") in result.stderr
    assert tables(db) == set()
    # PostgreSQL agrees: with the directive it runs, outside a transaction
    (mdir / "002_reindex" / "up.sql").write_text("-- sqlmigrate: no-transaction\nselect 1;\n" + REINDEX)
    ok = run("up", mdir, database)
    assert ok.exit_code == 0, ok.stderr
    assert tracking_ids(db) == ["001", "002"]


# -- G4: SELECT ... INTO creates a table -------------------------------------------------------


def test_select_into_the_tracking_table_is_refused(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table t (x int);\nselect * into table public.schema_migrations from t;\n",
                  "drop table t;\n"),
    })
    checked = check(mdir)
    assert checked.exit_code == 1
    assert (f"{mdir}/001_a/up.sql:2:1: error: statement changes a table named like the tracking table "
            "schema_migrations [touches-tracking-table]") in checked.stdout
    result = run("up", mdir, database)
    assert result.exit_code == 1
    assert "[touches-tracking-table]" in result.stderr
    assert tables(db) == set()


def test_select_into_with_another_table_is_fine(database, db, write_migrations):
    mdir = write_migrations({
        "001_a": ("create table t (x int);\nselect 1 as x into unlogged copy_of_t;\n"
                  "with q as (select 2 as x) select * into temp t2 from q;\n",
                  "drop table copy_of_t;\ndrop table t;\n"),
    })
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert {"t", "copy_of_t"} <= tables(db)


# -- G5: --format json prints one JSON object, also on usage errors and Ctrl-C -----------------


def test_usage_errors_in_json_mode_print_one_json_object(database, write_migrations):
    mdir = write_migrations(ONE)
    cases = [
        (("up", "--format", "json", "--bogus"), "up", "unrecognized arguments: --bogus"),
        (("down", "--steps", "0", "--format=json"), "down", "argument --steps: '0' is not a positive whole number"),
        (("status", "--form", "json", "--lock-wait", "1"), "status", "unrecognized arguments: --lock-wait 1"),
        (("nope", "--format", "json"), None, "invalid choice: 'nope'"),
    ]
    for args, command, message in cases:
        result = run_cli(*args, "--dir", mdir, "--database-url", database)
        assert result.exit_code == 2, result
        payload = json.loads(result.stdout)
        assert payload["command"] == command and payload["exit_code"] == 2
        assert message in payload["error"]
        assert result.stderr == ""
    # text mode is unchanged: usage on stderr, nothing on stdout
    text = run_cli("up", "--bogus", "--dir", mdir)
    assert text.exit_code == 2 and text.stdout == ""
    assert text.stderr.startswith("usage: sqlmigrate ")
    assert "sqlmigrate: unrecognized arguments: --bogus" in text.stderr


def test_json_error_objects_name_their_command(database, db, write_migrations):
    mdir = write_migrations({**ONE, "002_b": ("begin;\n", "select 1;\n")})
    refused = run("up", mdir, database, "--format", "json")
    assert refused.exit_code == 1
    payload = json.loads(refused.stdout)
    assert payload["command"] == "up" and payload["exit_code"] == 1
    assert payload["findings"][0]["path"] == f"{mdir}/002_b/up.sql"
    usage = run("down", mdir, database, "--format", "json", "--to", "9")
    assert usage.exit_code == 2
    assert json.loads(usage.stdout) == {"command": "down", "error": "--to 9: no migration has that id",
                                        "exit_code": 2}


def wait_for_prompt(proc: subprocess.Popen, timeout: float = 30) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    fd = proc.stderr.fileno()
    while "Type 'yes' to continue: " not in seen:
        assert time.monotonic() < deadline, f"no prompt on stderr; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096).decode()
            assert chunk, f"stderr closed before the prompt: {seen!r}"
            seen += chunk
    return seen


def test_down_all_prompt_goes_to_stderr_and_json_stays_one_object(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--format", "json", "--dir", mdir, "--database-url", database)
    try:
        prompt = wait_for_prompt(proc)
        os.write(master, b"yes\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert prompt.startswith("Roll back EVERY applied migration?")
    payload = json.loads(out)  # the whole of stdout: the prompt is not in it
    assert payload["command"] == "down" and [d["id"] for d in payload["done"]] == ["002", "001"]
    assert tracking_ids(db) == []


def test_ctrl_d_at_the_down_all_prompt_refuses(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--dir", mdir, "--database-url", database)
    try:
        prompt = wait_for_prompt(proc)
        os.write(master, b"\x04")  # Ctrl-D: end of input
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 1, err
    err = prompt + err
    assert "internal error" not in err and "Traceback" not in err and "EOFError" not in err
    assert err.splitlines()[-1] == "sqlmigrate: down --all cancelled (no answer); nothing was rolled back"
    assert "Roll back EVERY" not in out
    assert tracking_ids(db) == ["001", "002"] and tables(db) == {"a", "b", "schema_migrations"}


def test_ctrl_c_at_the_prompt_in_json_mode_prints_one_json_object(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--format", "json", "--dir", mdir,
                                       "--database-url", database)
    try:
        wait_for_prompt(proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads(out) == {"command": "down", "error": "interrupted", "exit_code": 130}
    assert tracking_ids(db) == ["001", "002"]


def test_answer_other_than_yes_refuses(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    proc, master = start_on_a_terminal("down", "--all", "--dir", mdir, "--database-url", database)
    try:
        wait_for_prompt(proc)
        os.write(master, b"no\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 1
    assert "sqlmigrate: down --all cancelled; nothing was rolled back" in err
    assert tracking_ids(db) == ["001", "002"]


# -- G6: hidden folders are ignored -----------------------------------------------------------


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


# -- G8: paths as the migrations folder was given -----------------------------------------------


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


# -- G9: generate's name normalisation ----------------------------------------------------------


def test_generate_collapses_runs_and_trims_the_ends(tmp_path):
    mdir = tmp_path / "m"
    result = run_cli("generate", "  Add  Users--Table - 2 ", "--dir", mdir)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in mdir.iterdir()) == ["001_add_users_table_2"]
    kept = run_cli("generate", "keep__double_underscores", "--dir", mdir)
    assert kept.exit_code == 0
    assert (mdir / "002_keep__double_underscores").is_dir()
    for bad in (" -leading-hyphen", "_x", "  "):
        refused = run_cli("generate", bad, "--dir", mdir)
        assert refused.exit_code == 2, bad
        assert f"migration name {bad!r} is not valid" in refused.stderr
    assert len(list(mdir.iterdir())) == 2


# -- G11: ids are ASCII digits --------------------------------------------------------------------


def test_non_ascii_digits_are_a_usage_error(database, db, write_migrations):
    mdir = applied(write_migrations, database, ONE)
    for command, args, message in (
        ("up", ("--to", "²"), "--to '²' is not an id (digits)"),
        ("down", ("--to", "٣"), "--to '٣' is not an id (digits)"),
        ("repair", ("²",), "repair ²: no migration has that id"),
        ("down", ("--steps", "²"), "argument --steps: '²' is not a positive whole number"),
    ):
        result = run(command, mdir, database, *args)
        assert result.exit_code == 2, (command, args, result)
        no_crash(result.stderr)
        assert message in result.stderr
    assert tracking_ids(db) == ["001"]


def test_baseline_with_a_non_ascii_digit_is_a_usage_error(database, db, write_migrations):
    mdir = write_migrations(ONE)
    result = run("baseline ²", mdir, database)
    assert result.exit_code == 2
    no_crash(result.stderr)
    assert "baseline '²' is not an id (digits)" in result.stderr
    assert tables(db) == set()


# -- G14: `empty` on a file with statements ---------------------------------------------------


def test_empty_marked_up_sql_with_statements_is_an_error(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("-- a note\n-- sqlmigrate: empty\ncreate table z (x int);\n", "drop table z;\n")})
    checked = check(mdir)
    assert checked.exit_code == 1
    assert (f"{mdir}/001_a/up.sql:2:1: error: up.sql is marked empty but holds statements "
            "[unknown-directive]") in checked.stdout
    result = run("up", mdir, database)
    assert result.exit_code == 1
    assert f"{mdir}/001_a/up.sql:2:1: error: up.sql is marked empty" in result.stderr
    assert tables(db) == set()


def test_empty_marked_down_sql_with_statements_blocks_down_not_up(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "-- sqlmigrate: empty\ndrop table a;\n")})
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert (f"{mdir}/001_a/down.sql:1:1: warning: down.sql is marked empty but holds statements "
            "(blocks down, not up) [unknown-directive]") in result.stderr
    down = run("down", mdir, database)
    assert down.exit_code == 1
    assert f"{mdir}/001_a/down.sql:1:1: error: down.sql is marked empty but holds statements" in down.stderr
    assert tracking_ids(db) == ["001"] and "a" in tables(db)


def test_empty_marked_files_without_statements_run_nothing(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("-- sqlmigrate: empty\n-- squashed into 002\n", "-- sqlmigrate: empty\n")})
    assert run("up", mdir, database).exit_code == 0
    assert tracking_ids(db) == ["001"]
    assert run("down", mdir, database).exit_code == 0
    assert tracking_ids(db) == []


# -- G15: GitHub annotations escape their properties --------------------------------------------


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


def test_verify_reports_an_edited_down_sql_as_information(database, db, write_migrations):
    mdir = applied(write_migrations, database, TWO)
    (mdir / "001_a" / "down.sql").write_text("drop table if exists a;\n")
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert "001_a: down.sql edited since it was applied (not a problem; `down` runs the file on disk)" \
        in result.stdout
    assert "002_b" not in result.stdout
    payload = json.loads(run("verify", mdir, database, "--format", "json").stdout)
    assert payload["exit_code"] == 0 and payload["problems"] == [] and payload["down_edited"] == ["001"]


# -- a folder added with the id of an applied migration ----------------------------------------

DUPLICATE_OF_APPLIED = {"1_b": ("create table b (id int);\n", "drop table b;\n"),
                        "002_c": ("create table c (id int);\n", "drop table c;\n")}


def test_verify_names_the_duplicate_folder_not_a_modified_migration(database, db, write_migrations):
    mdir = applied(write_migrations, database, DUPLICATE_OF_APPLIED)
    write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    finding = (f"{mdir}/001_a:1:1: error: id 001 is the same as 1_b, which is applied (ids compare as integers) "
               "[duplicate-id]")
    status = run("status", mdir, database)
    assert status.exit_code == 0
    assert status.stderr.splitlines()[0] == finding
    rows = [cells[:3] for cells in map(str.split, status.stdout.splitlines())
            if len(cells) >= 4 and cells[0].isdigit()]
    assert rows == [["1", "b", "applied"], ["002", "c", "applied"]]
    verify = run("verify", mdir, database)
    assert verify.exit_code == 1
    assert finding in verify.stderr.splitlines()
    assert "verify failed: a folder has the same id as an applied migration" in verify.stderr
    assert "modified" not in verify.stdout + verify.stderr
    payload = json.loads(run("verify", mdir, database, "--format", "json").stdout)
    assert payload["exit_code"] == 1 and payload["command"] == "verify"
    assert [(f["path"], f["rule"]) for f in payload["findings"]] == [(f"{mdir}/001_a", "duplicate-id")]
    # up still refuses on the duplicate, and changes nothing
    write_migrations({"003_d": ("create table d (id int);\n", "drop table d;\n")})
    refused = run("up", mdir, database)
    assert refused.exit_code == 1
    assert finding in refused.stderr.splitlines()
    assert "validation failed; nothing was applied" in refused.stderr
    assert "changed on disk" not in refused.stderr
    assert tracking_ids(db) == ["1", "002"]
    # down of the applied migration runs its own down.sql, not the newcomer's
    assert run("down", mdir, database, "--all", "--yes").exit_code == 0
    assert tables(db) == {"schema_migrations"}
    assert tracking_ids(db) == []


def test_verify_leaves_a_duplicate_among_pending_folders_to_check(database, db, write_migrations):
    mdir = applied(write_migrations, database, ONE)
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n"),
                      "2_c": ("create table c (id int);\n", "drop table c;\n")})
    result = run("verify", mdir, database)
    assert result.exit_code == 0, result.stderr  # pending ones are fine (SPEC 3); check and up refuse them
    assert check(mdir).exit_code == 1


# -- G7: unterminated points at the statement, the message at the opening ----------------------


def test_unterminated_points_at_the_statement_start(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ninsert into a\n  values ('abc);\n",
                                       "drop table a;\n")})
    line = (f"{mdir}/001_a/up.sql:2:1: error: string starting at line 3, column 11 never ends "
            "[unterminated]")
    checked = check(mdir)
    assert checked.exit_code == 1 and line in checked.stdout.splitlines()
    payload = json.loads(check(mdir, "--format", "json").stdout)
    [finding] = payload["findings"]
    assert (finding["line"], finding["col"], finding["rule"]) == (2, 1, "unterminated")
    refused = run("up", mdir, database)
    assert refused.exit_code == 1 and line in refused.stderr.splitlines()
    assert tables(db) == set()


# -- G10: the order of the rules in `ignore` is not content ------------------------------------


def test_reordering_ignore_rules_after_apply_is_reformatted(database, db, write_migrations):
    up_sql = "-- sqlmigrate: ignore destructive, lock-unsafe\ncreate table a (id int);\ncreate index on a (id);\n"
    mdir = applied(write_migrations, database, {"001_a": (up_sql, "drop table a;\n")})
    (mdir / "001_a" / "up.sql").write_text(up_sql.replace("destructive, lock-unsafe", "lock-unsafe, destructive"))
    write_migrations({"002_b": ("create table b (id int);\n", "drop table b;\n")})
    status = json.loads(run("status", mdir, database, "--format", "json").stdout)
    assert [(m["id"], m["state"]) for m in status["migrations"]] == [("001", "reformatted"), ("002", "pending")]
    assert run("verify", mdir, database).exit_code == 0
    result = run("up", mdir, database)
    assert result.exit_code == 0, result.stderr
    assert tracking_ids(db) == ["001", "002"]
    # dropping a rule from the list is a change of content
    (mdir / "001_a" / "up.sql").write_text(up_sql.replace("destructive, lock-unsafe", "lock-unsafe"))
    status = json.loads(run("status", mdir, database, "--format", "json").stdout)
    assert status["migrations"][0]["state"] == "modified"

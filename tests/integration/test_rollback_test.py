"""`test` (SPEC 3): every down.sql proved in a scratch database that is always dropped."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from tests.conftest import CORPORA, ROOT, SCRATCH, databases, interrupt_in_scratch, tables, with_params
from tests.integration.helpers import folders, run, run_json


def verdicts(data: dict) -> dict[str, str]:
    return {f"{m['id']}_{m['name']}": m["verdict"] for m in data["migrations"]}


def extension_version(server: str, name: str) -> str:
    """The version CREATE EXTENSION installs: contrib versions move with PostgreSQL's majors."""
    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute("select default_version from pg_available_extensions where name = %s", (name,)).fetchone()
    assert row is not None, f"extension {name} is not available on this server"
    return row[0]


def server_version(server: str) -> int:
    with psycopg.connect(server, autocommit=True) as conn:
        return conn.info.server_version


def failure_texts(data: dict, folder: str) -> list[str]:
    migration = next(m for m in data["migrations"] if f"{m['id']}_{m['name']}" == folder)
    return [d["text"] for d in migration["differences"] if not d["note"]]


def note_texts(data: dict, folder: str) -> list[str]:
    migration = next(m for m in data["migrations"] if f"{m['id']}_{m['name']}" == folder)
    return [d["text"] for d in migration["differences"] if d["note"]]


def assert_dropped(server: str, data: dict) -> None:
    created = data["scratch_databases"]
    assert created and all(name.startswith(SCRATCH) for name in created)
    assert not set(created) & databases(server)


# -- the seed schema -------------------------------------------------------------------


def test_seed_migrations_round_trip_and_target_is_untouched(server, database, db):
    result = run("test", ROOT / "migrations", database)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:3] == [
        "001_initial_schema ... ok", "002_usage_tracking ... ok", "003_webhooks ... ok"]
    assert result.stdout.rstrip().endswith("test: 3 migration(s): 3 ok, 0 failed")
    # the scratch databases by name (the JSON report lists them): other runs on
    # the same server may hold scratch databases of their own meanwhile
    assert_dropped(server, run_json("test", ROOT / "migrations", database))
    # SPEC 3: never writes to the target database, not even its tracking table
    assert tables(db) == set()


# -- downs that forget something --------------------------------------------------------

FORGETFUL = {
    "001_base": (
        "create table users (id bigint primary key, email text not null, plan text not null default 'free');\n"
        "create index users_email_idx on users (email);\n"
        "alter table users add constraint users_plan_check check (plan in ('free', 'pro'));\n"
        "create function touch() returns trigger language plpgsql as $$ begin return new; end $$;\n"
        "create trigger users_touch before update on users for each row execute function touch();\n"
        "create type old_kind as enum ('a', 'b');\n",
        "drop table users;\ndrop function touch();\ndrop type old_kind;\n",
    ),
    "002_forgets_index": ("drop index if exists users_email_idx;\n", "select 1;\n"),
    "003_forgets_column": ("alter table users add column if not exists company varchar(255);\n", "select 1;\n"),
    "004_forgets_constraint": ("alter table users drop constraint if exists users_plan_check;\n", "select 1;\n"),
    "005_forgets_function": (
        "create or replace function slug(t text) returns text language sql immutable return lower(t);\n",
        "select 1;\n"),
    "006_forgets_type": ("drop type if exists old_kind;\n", "select 1;\n"),
    "007_forgets_trigger": ("drop trigger if exists users_touch on users;\n", "select 1;\n"),
    "008_fine": ("create table notes (id int);\n", "drop table notes;\n"),
}


def test_every_forgotten_object_is_reported_in_one_run(server, database, write_migrations):
    mdir = write_migrations(FORGETFUL)
    data = run_json("test", mdir, database)
    assert data["exit_code"] == 1
    assert verdicts(data) == {
        "001_base": "ok", "002_forgets_index": "failed", "003_forgets_column": "failed",
        "004_forgets_constraint": "failed", "005_forgets_function": "failed", "006_forgets_type": "failed",
        "007_forgets_trigger": "failed", "008_fine": "ok"}
    assert failure_texts(data, "002_forgets_index") == [
        "index users_email_idx: missing (CREATE INDEX users_email_idx ON public.users USING btree (email))"]
    assert failure_texts(data, "003_forgets_column") == ["column users.company: extra (character varying(255))"]
    assert failure_texts(data, "004_forgets_constraint") == [
        "constraint users.users_plan_check: missing (CHECK ((plan = ANY (ARRAY['free'::text, 'pro'::text]))))"]
    assert failure_texts(data, "005_forgets_function") == ["function slug(text): extra (returns text)"]
    assert failure_texts(data, "006_forgets_type") == ["type old_kind: missing (enum ('a', 'b'))"]
    assert failure_texts(data, "007_forgets_trigger") == [
        "trigger users.users_touch: missing (CREATE TRIGGER users_touch BEFORE UPDATE ON public.users "
        "FOR EACH ROW EXECUTE FUNCTION touch())"]
    assert_dropped(server, data)


def test_text_output_names_the_migration_and_each_difference(database, write_migrations):
    mdir = write_migrations({k: FORGETFUL[k] for k in ("001_base", "003_forgets_column", "008_fine")})
    result = run("test", mdir, database)
    assert result.exit_code == 1
    assert result.stdout == (
        "001_base ... ok\n"
        "003_forgets_column ... FAILED\n"
        "008_fine ... ok\n"
        "\n"
        "003_forgets_column: FAILED\n"
        "  down.sql does not restore the schema (before up.sql -> after down.sql):\n"
        "    column users.company: extra (character varying(255))\n"
        "\n"
        "test: 3 migration(s): 2 ok, 1 failed\n"
    )


def test_changed_column_type_default_and_nullability(database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int, name varchar(20) not null default 'x');\n", "drop table t;\n"),
        "002_loosen": ("alter table t alter column name type text, alter column name drop not null, "
                       "alter column name drop default;\n", "alter table t alter column name type varchar(30);\n"),
    })
    data = run_json("test", mdir, database)
    assert failure_texts(data, "002_loosen") == [
        "column t.name: type character varying(20) -> character varying(30)",
        "column t.name: not null -> nullable",
        "column t.name: default 'x'::character varying -> none",
    ]


# -- notes are not failures ---------------------------------------------------------------


def test_column_order_alone_is_a_note(database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (a int, b int, c int);\n", "drop table t;\n"),
        "002_drop_b": ("alter table t drop column b;\n", "alter table t add column b int;\n"),
    })
    result = run("test", mdir, database)
    assert result.exit_code == 0, result.stdout
    assert "002_drop_b ... ok, with notes" in result.stdout
    assert "  note: table t: column order: b now after c\n" in result.stdout
    assert result.stdout.rstrip().endswith("test: 2 migration(s): 1 ok, 0 failed, 1 with notes only")


FUNCTION = "create or replace function f() returns int language plpgsql as $$\nbegin\n  return {};\nend $$;\n"


def test_function_body_whitespace_and_comments_alone_are_a_note(database, write_migrations):
    mdir = write_migrations({
        "001_f": (FUNCTION.format("1"), "drop function f();\n"),
        "002_f2": (FUNCTION.format("2"), "create or replace function f() returns int language plpgsql as $$ "
                                         "begin   return 1;  -- as before\nend $$;\n"),
    })
    data = run_json("test", mdir, database)
    assert data["exit_code"] == 0
    assert verdicts(data)["002_f2"] == "notes"
    assert note_texts(data, "002_f2") == ["function f(): body differs only in whitespace or comments"]


def test_function_body_change_is_a_failure(database, write_migrations):
    mdir = write_migrations({
        "001_f": (FUNCTION.format("1"), "drop function f();\n"),
        "002_f2": (FUNCTION.format("2"), FUNCTION.format("3")),
    })
    result = run("test", mdir, database)
    assert result.exit_code == 1
    # a multi-line value is shown as the lines that changed
    assert (
        "  down.sql does not restore the schema (before up.sql -> after down.sql):\n"
        "    function f(): body changed:\n"
        "       begin\n"
        "      -  return 1;\n"
        "      +  return 3;\n"
    ) in result.stdout


# -- failures of the SQL itself ---------------------------------------------------------------


def test_failing_down_is_placed_in_its_file_and_the_run_goes_on(server, database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_bad_down": ("alter table t add column x int;\n", "-- undo\nalter table t drop column nope;\n"),
        "003_forgets": ("create table u (id int);\n", "select 1;\n"),
    })
    result = run("test", mdir, database)
    assert result.exit_code == 1
    assert "002_bad_down ... FAILED\n003_forgets ... FAILED\n" in result.stdout
    assert (f"  down.sql failed:\n    {mdir}/002_bad_down/down.sql:2:1: ERROR 42703: column \"nope\" of "
            "relation \"t\" does not exist\n") in result.stdout
    assert "    table u: extra\n" in result.stdout


def test_failing_up_stops_the_run_and_lists_what_was_not_tested(server, database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_bad_up": ("select 1;\ninsert into t values ('x');\n", "select 1;\n"),
        "003_later": ("create table u (id int);\n", "drop table u;\n"),
    })
    result = run("test", mdir, database)
    assert result.exit_code == 1
    assert (f"  up.sql failed:\n    {mdir}/002_bad_up/up.sql:2:23: ERROR 22P02: invalid input syntax for "
            "type integer: \"x\"\n") in result.stdout
    assert "003_later ... not tested\n" in result.stdout
    assert "test: 3 migration(s): 1 ok, 1 failed, 1 not tested" in result.stdout
    assert "not tested: 002_bad_up/up.sql failed before them" in result.stdout
    data = run_json("test", mdir, database)
    assert_dropped(server, data)


def test_up_that_fails_after_its_own_down_is_reported_and_the_run_goes_on(server, database, write_migrations):
    # quickwit 2_create_splits: the down drops a function an earlier migration made
    mdir = write_migrations({
        "001_fn": ("create function f() returns trigger language plpgsql as $$ begin return new; end $$;\n",
                   "drop function f();\n"),
        "002_uses_fn": ("create table t (id int);\n"
                        "create trigger t_f before insert on t for each row execute function f();\n",
                        "drop table t;\ndrop function f();\n"),
        "003_later": ("create table u (id int);\n", "drop table u;\n"),
    })
    data = run_json("test", mdir, database)
    assert verdicts(data) == {"001_fn": "ok", "002_uses_fn": "failed", "003_later": "ok"}
    second = data["migrations"][1]
    assert [(e["phase"], e["line"], e["col"], e["sqlstate"]) for e in second["errors"]] == [
        ("up again", 2, 1, "42883")]
    assert second["errors"][0]["path"].endswith("002_uses_fn/up.sql")
    assert failure_texts(data, "002_uses_fn") == ["function f(): missing (returns trigger)"]
    # the scratch database was rebuilt for 003: a second one was made, and both are gone
    assert len(data["scratch_databases"]) == 2
    assert_dropped(server, data)


def test_failed_no_transaction_down_rebuilds_the_scratch_database(server, database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("-- sqlmigrate: no-transaction\ncreate index concurrently t_id on t (id);\n",
                    "-- sqlmigrate: no-transaction\ndrop index concurrently t_id;\nselect nope;\n"),
        "003_needs_idx": ("comment on index t_id is 'needed';\n", "comment on index t_id is null;\n"),
    })
    data = run_json("test", mdir, database)
    assert verdicts(data) == {"001_t": "ok", "002_idx": "failed", "003_needs_idx": "ok"}
    assert data["migrations"][1]["errors"][0]["phase"] == "down"
    assert len(data["scratch_databases"]) == 2
    assert_dropped(server, data)


def test_irreversible_migrations_are_skipped_and_listed(database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_purge": ("delete from t;\n", "-- sqlmigrate: irreversible\n"),
    })
    result = run("test", mdir, database)
    assert result.exit_code == 0
    assert "002_purge ... irreversible, skipped\n" in result.stdout
    assert "test: 2 migration(s): 1 ok, 0 failed, 1 irreversible (skipped)\n" in result.stdout
    assert "irreversible, not rolled back: 002_purge\n" in result.stdout
    assert run_json("test", mdir, database)["irreversible"] == ["002"]


# -- validation first --------------------------------------------------------------------------


def test_validation_error_in_up_refuses_before_anything(database, write_migrations):
    mdir = write_migrations({"001_t": ("create table t (id int);\ncommit;\n", "drop table t;\n")})
    result = run("test", mdir, database)
    assert result.exit_code == 1
    assert f"{mdir}/001_t/up.sql:2:1: error:" in result.stderr
    assert "validation failed; nothing was tested" in result.stderr
    assert result.stdout == ""


def test_down_with_validation_errors_is_reported_not_run(database, write_migrations):
    mdir = write_migrations({
        "001_t": ("create table t (id int);\n", "drop table t;\n"),
        "002_idx": ("create index t_id on t (id);\n", "drop index t_id;\ncreate index concurrently t_id2 on t (id);\n"),
        "003_u": ("create table u (id int);\n", "drop table u;\n"),
    })
    data = run_json("test", mdir, database)
    assert verdicts(data) == {"001_t": "ok", "002_idx": "failed", "003_u": "ok"}
    second = data["migrations"][1]
    assert [(f["line"], f["col"], f["rule"]) for f in second["findings"]] == [(2, 1, "needs-no-transaction")]
    assert second["reason"] == "down.sql was not run: it has errors"


# -- the scratch database ----------------------------------------------------------------------


def test_tracking_table_in_its_own_schema(database, db, write_migrations):
    db.execute("create schema ops")
    mdir = write_migrations({"001_t": ("create table t (id int);\n", "drop table t;\n")})
    result = run("test", mdir, database, "--table", "ops.migrations")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert tables(db, "ops") == set()


def test_interrupt_drops_the_scratch_database(server, database, write_migrations):
    # a marker of this run in the SQL: the scratch database is the one whose
    # backend runs it, whatever other runs on the same server hold meanwhile
    marker = uuid.uuid4().hex
    mdir = write_migrations({"001_slow": (f"create table t (id int);\nselect pg_sleep(60), '{marker}';\n",
                                          "drop table t;\n")})
    code, err, ours = interrupt_in_scratch(server, marker, "test", "--dir", mdir, "--database-url", database)
    assert code == 130, err
    assert err == ("sqlmigrate: interrupted during 001_slow (in the scratch database); the scratch database "
                   "was dropped and the target database was not changed\n")
    assert "Traceback" not in err
    assert ours not in databases(server)


@pytest.mark.parametrize("when", ["first", "rebuild"])
def test_ctrl_c_as_the_create_completes_still_drops_the_database(server, database, monkeypatch, when):
    """The cancel of a Ctrl-C can reach the server after CREATE DATABASE has
    finished: the database exists, and must be dropped all the same."""
    from sqlmigrate.schema import ScratchDatabase

    made: list[str] = []
    real_execute = psycopg.Connection.execute

    def execute(conn, query, *args, **kwargs):
        result = real_execute(conn, query, *args, **kwargs)
        text = query.as_string(conn) if isinstance(query, sql.Composable) else str(query)
        if text.startswith("create database"):
            made.append(text.split('"')[1])
            if when == "first" or len(made) == 2:
                raise KeyboardInterrupt  # as if Ctrl-C came just as the server finished
        return result

    monkeypatch.setattr(psycopg.Connection, "execute", execute)
    with pytest.raises(KeyboardInterrupt):
        with ScratchDatabase(database) as scratch:
            scratch.recreate()
    monkeypatch.undo()
    assert made and all(name.startswith(SCRATCH) for name in made)
    assert len(made) == (1 if when == "first" else 2)
    assert not set(made) & databases(server)


def test_without_createdb_right_exit_3_with_a_clear_message(server, database, write_migrations):
    role = f"sqlmigrate_nocreatedb_{uuid.uuid4().hex[:8]}"
    mdir = write_migrations({"001_t": ("create table t (id int);\n", "drop table t;\n")})
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login nocreatedb").format(sql.Identifier(role)))
    try:
        result = run("test", mdir, with_params(database, user=role))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
    assert result.exit_code == 3
    assert "cannot create a scratch database" in result.stderr
    assert "permission denied to create database" in result.stderr
    assert "CREATEDB" in result.stderr


# -- real-world corpora (tests/corpora/*/SOURCE.md, "Per-migration round trip") -----------------------


def expected_verdicts(corpus: str, **special: list[str]) -> dict[str, str]:
    out = {name: "ok" for name in folders(CORPORA / corpus, by_id=True)}
    for verdict, names in special.items():
        for name in names:
            assert name in out, name
            out[name] = verdict.replace("_", " ")
    return out


def test_docs_rs(server, database):
    data = run_json("test", CORPORA / "docs_rs", database)
    assert data["exit_code"] == 1
    assert verdicts(data) == expected_verdicts(
        "docs_rs",
        irreversible=["20260131071854_failed_queued_crates"],
        notes=["20240221113734_drop_releases_rustc_version", "20260512203454_remove_queue_registry"],
        failed=["20231021111635_initial", "20240221104457_drop_releases_build_status",
                "20240313182623_make_build_fields_optional", "20240519141105_crate_version_name_field_length",
                "20260508232425_build_logs", "20260811210608_remove_release_files_archive"],
    )
    assert failure_texts(data, "20231021111635_initial") == [
        f"extension fuzzystrmatch: extra (version {extension_version(server, 'fuzzystrmatch')} in schema public)"]
    assert failure_texts(data, "20240221104457_drop_releases_build_status") == [
        "column releases.build_status: not null -> nullable", "column releases.build_status: default false -> none"]
    assert failure_texts(data, "20240313182623_make_build_fields_optional") == [
        "column builds.build_time: default CURRENT_TIMESTAMP -> now()"]
    assert failure_texts(data, "20260508232425_build_logs") == [
        "type build_status: labels 'in_progress', 'success', 'failure' -> "
        "'in_progress', 'success', 'failure', 'partial_failure'"]
    assert failure_texts(data, "20260811210608_remove_release_files_archive") == [
        "column releases.archive_storage: default false -> true"]
    assert note_texts(data, "20260512203454_remove_queue_registry") == [
        "table queue: column order: registry now after last_attempt"]
    assert_dropped(server, data)


def test_quickwit(server, database):
    data = run_json("test", CORPORA / "quickwit", database)
    assert data["exit_code"] == 1
    assert verdicts(data) == expected_verdicts(
        "quickwit",
        irreversible=["6_delete_update_index_update_timestamp_on_split_update_trigger",
                      "7_delete_split_table_triggers", "8_delete_update_timestamp_on_indexes_table"],
        failed=["1_create_indexes", "2_create_splits", "9_add_split_incarnation_id", "14_update_shard_id",
                "18_create_index_shard_index_uid", "19_add_split_node_id_field",
                "20_add_shard_doc_mapping_uid_field"],
    )
    errors = {f"{m['id']}_{m['name']}": [(e["phase"], e["line"], e["col"], e["message"]) for e in m["errors"]]
              for m in data["migrations"] if m["errors"]}
    # PostgreSQL 18 reports where in ALTER TABLE the unknown type is; older ones no position
    bigserial_at = (2, 32) if server_version(server) >= 180000 else (1, 1)
    assert errors == {
        "2_create_splits": [("up again", 16, 1, "function set_index_update_timestamp_for_split() does not exist")],
        "14_update_shard_id": [("down", *bigserial_at, 'type "bigserial" does not exist')],
        "19_add_split_node_id_field": [("down", 4, 20, 'syntax error at or near "COLUMN"')],
        "20_add_shard_doc_mapping_uid_field": [("down", 2, 20, 'syntax error at or near "COLUMN"')],
    }
    assert failure_texts(data, "1_create_indexes") == [
        "function set_index_update_timestamp_for_split(): extra (returns trigger)"]
    assert failure_texts(data, "2_create_splits") == [
        "function set_index_update_timestamp_for_split(): missing (returns trigger)"]
    assert failure_texts(data, "9_add_split_incarnation_id") == [
        "column splits.incarnation_id: extra (character varying(26) not null default "
        "'00000000000000000000000000'::character varying)",
        "constraint splits.splits_index_id_fkey: definition FOREIGN KEY (index_id) REFERENCES indexes(index_id) "
        "-> FOREIGN KEY (index_id) REFERENCES indexes(index_id) ON DELETE CASCADE",
    ]
    assert failure_texts(data, "18_create_index_shard_index_uid") == [
        "index shards_index_uid_idx: extra (CREATE INDEX shards_index_uid_idx ON public.shards USING hash "
        "(index_uid))"]
    assert_dropped(server, data)


CRATES_FAILED = [
    # downs that fail
    "20170318181441_downloads_need_no_id", "20240412144536_remove_downloads_column",
    "20241025112826_make_unique_version_unique",
    # downs that leave a different schema
    "20140926130046_dumped_migration_19", "20140930082104_dumped_migration_36",
    "20170308191449_crate_owners_does_not_need_id", "20170315133901_make_dependencies_schema_match_use",
    "20170322130523_version_downloads_needs_no_id", "20170502181306_drop_schema_migrations",
    "20170923182408_move_tokens_to_emails_table", "20170923210614_move_readme_rendering_onto_versions",
    "20171016200404_stop_lying_to_schema", "20180118172821_use_jsonb_for_features",
    "20190322170700_remove_crate_downloads", "20190918233204_fix_int_type_in_to_semver_no_prerelease",
    "20200214183929_remove_version_authors_user_id", "20200714113112_change_api_token_to_bytea",
    "20240614084455_remove_semver_no_prerelease_column", "20250211163554_fix_num_versions_trigger",
    "20250716170846_drop_gh_access_token", "20260617105325_versions_tar_sha256_not_null",
]
CRATES_NOTES = [
    # column order only
    "20160717174656_dumped_migration_108", "20190322174825_remove_version_downloads_pk",
    "20190828224353_remove_licenses_column_from_crates", "20260527130000_drop_semver_ord",
    "20260617112535_drop_versions_checksum", "20260618084149_drop_users_gh_avatar",
    "20260715182934_drop_users_gh_encrypted_token",
    # function body whitespace
    "20160219125609_dumped_migration_105", "20170706165855_dont_touch_timestamps_unless_row_changed",
    "20240417083100_remove_obsolete_fn", "20250211115609_remove_token_generated_at_column",
]
CRATES_IRREVERSIBLE = [
    "20140925132250_dumped_migration_8", "20140925132253_dumped_migration_11", "20140925132254_dumped_migration_12",
    "20140925161625_dumped_migration_17", "20141112082527_dumped_migration_89", "20170728002039_fix_keywords",
    "20170926200549_users_lowercase_index", "20171006234455_fix_local_dbs_unique_gh_login",
    "20191111162609_drop_email_from_user",
]


# On PostgreSQL 18 NOT NULL is a named constraint: this down.sql adds back a column that was
# made when the table was still called packages, so its NOT NULL comes back as crates_user_id_not_null
# instead of packages_user_id_not_null
CRATES_RENAMED_NOT_NULL = "20160717174656_dumped_migration_108"


def test_crates_io(server, database, db):
    data = run_json("test", CORPORA / "crates_io", database, "--table", "sqlmigrate_migrations")
    assert data["exit_code"] == 1
    failed, notes = CRATES_FAILED, CRATES_NOTES
    if db.info.server_version >= 180000:
        failed, notes = failed + [CRATES_RENAMED_NOT_NULL], [n for n in notes if n != CRATES_RENAMED_NOT_NULL]
    assert verdicts(data) == expected_verdicts("crates_io", failed=failed, notes=notes, irreversible=CRATES_IRREVERSIBLE)
    if db.info.server_version >= 180000:
        assert failure_texts(data, CRATES_RENAMED_NOT_NULL) == [
            "constraint crates.crates_user_id_not_null: extra (NOT NULL user_id)",
            "constraint crates.packages_user_id_not_null: missing (NOT NULL user_id)"]
    by_id = {f"{m['id']}_{m['name']}": m for m in data["migrations"]}
    assert [(f["line"], f["col"], f["rule"]) for f in by_id["20240412144536_remove_downloads_column"]["findings"]] \
        == [(4, 1, "needs-no-transaction"), (7, 1, "needs-no-transaction")]
    assert [e["message"] for e in by_id["20241025112826_make_unique_version_unique"]["errors"]] == [
        'constraint "versions_crate_id_num_no_build_uindex" of relation "versions" does not exist']
    assert failure_texts(data, "20200714113112_change_api_token_to_bytea") == [
        f"extension pgcrypto: extra (version {extension_version(server, 'pgcrypto')} in schema public)",
        "column api_tokens.token: type character varying -> text"]
    assert failure_texts(data, "20190918233204_fix_int_type_in_to_semver_no_prerelease") == [
        'function to_semver_no_prerelease(text): config search_path="$user", public -> none']
    assert note_texts(data, "20240417083100_remove_obsolete_fn") == [
        "function set_updated_at_ignore_downloads(): body differs only in whitespace or comments"]
    assert_dropped(server, data)

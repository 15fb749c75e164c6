"""Real-world corpora (tests/corpora/README.md, "What to expect"): up, status, refused and real downs."""
from __future__ import annotations

import json

import psycopg
from psycopg import sql

from tests.conftest import CORPORA, tables, tracking_row
from tests.integration.helpers import folders, run

CRATES_TABLE = "sqlmigrate_migrations"  # crates_io drops a table named schema_migrations


def snapshot(conn: psycopg.Connection, table: str) -> tuple:
    """The user-visible schema plus the tracking rows: what `unchanged` means here."""
    relations = conn.execute(
        "select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' "
        "order by 1, 2"
    ).fetchall()
    columns = conn.execute(
        "select table_name, column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = 'public' order by 1, 2"
    ).fetchall()
    constraints = conn.execute(
        "select conrelid::regclass::text, conname from pg_constraint c join pg_namespace n "
        "on n.oid = c.connamespace where n.nspname = 'public' order by 1, 2"
    ).fetchall()
    rows = conn.execute(
        sql.SQL("select id, name, checksum, state from {} order by id").format(sql.Identifier(table))
    ).fetchall()
    return relations, columns, constraints, rows


def up_and_status(corpus: str, database: str, db, table: str | None) -> None:
    result = run("up", CORPORA / corpus, database, table=table)
    assert result.exit_code == 0, result.stderr[-3000:]
    ids = folders(CORPORA / corpus, by_id=True)
    assert f"applied {len(ids)} migration(s)" in result.stdout
    status = run("status", CORPORA / corpus, database, "--format", "json", table=table)
    assert status.exit_code == 0
    migrations = json.loads(status.stdout)["migrations"]
    assert [m["id"] for m in migrations] == [name.split("_", 1)[0] for name in ids]
    assert {m["state"] for m in migrations} == {"applied"}


def test_crates_io(database, db):
    table = CRATES_TABLE
    up_and_status("crates_io", database, db, table)
    # 20170502181306 dropped the corpus' own schema_migrations; ours is untouched
    assert table in tables(db) and "schema_migrations" not in tables(db)
    before = snapshot(db, table)

    # --all: refused before anything runs, by the highest irreversible migration
    refused = run("down", CORPORA / "crates_io", database, "--all", "--yes", table=table)
    assert refused.exit_code == 1
    assert "20191111162609_drop_email_from_user is irreversible" in refused.stderr
    # and the down.sql error found on the way there is reported with it
    assert "20240412144536_remove_downloads_column/down.sql:4:1: error:" in refused.stderr
    assert snapshot(db, table) == before

    # a rollback that would run 20240412144536's down.sql: refused by validation
    invalid = run("down", CORPORA / "crates_io", database, "--to", "20240305120032", table=table)
    assert invalid.exit_code == 1
    assert ("20240412144536_remove_downloads_column/down.sql:4:1: error: CREATE ... CONCURRENTLY cannot run "
            "inside a transaction block [needs-no-transaction]") in invalid.stderr
    assert "down.sql validation failed; nothing was rolled back" in invalid.stderr
    assert snapshot(db, table) == before

    ok = run("down", CORPORA / "crates_io", database, "--to", "20241025112826", table=table)
    assert ok.exit_code == 0, ok.stderr[-3000:]
    assert "rolled back 50 migration(s)" in ok.stdout
    count = db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()[0]
    assert count == len(folders(CORPORA / "crates_io")) - 50

    # the source bug: its down drops a constraint, the up made an index
    bad = run("down", CORPORA / "crates_io", database, table=table)
    assert bad.exit_code == 4
    assert ("20241025112826_make_unique_version_unique/down.sql:2:1: ERROR 42704: constraint "
            '"versions_crate_id_num_no_build_uindex" of relation "versions" does not exist') in bad.stderr
    # a no-transaction migration: it stays, recorded as failed (SPEC 5)
    assert tracking_row(db, "20241025112826", table=table) == ("failed",)
    assert db.execute("select count(*) from pg_indexes where indexname = 'versions_crate_id_num_no_build_uindex'"
                      ).fetchone() == (1,)


def test_crates_io_with_default_table_is_refused(database, db):
    result = run("up", CORPORA / "crates_io", database)
    assert result.exit_code == 1
    assert ("20170502181306_drop_schema_migrations/up.sql:1:1: error: statement changes a table named like "
            "the tracking table schema_migrations [touches-tracking-table]") in result.stderr
    assert tables(db) == set()


def test_docs_rs(database, db):
    table = "schema_migrations"
    up_and_status("docs_rs", database, db, None)
    before = snapshot(db, table)

    refused = run("down", CORPORA / "docs_rs", database, "--all", "--yes")
    assert refused.exit_code == 1
    assert "20260131071854_failed_queued_crates is irreversible" in refused.stderr
    assert snapshot(db, table) == before

    ok = run("down", CORPORA / "docs_rs", database, "--to", "20260131071854")
    assert ok.exit_code == 0, ok.stderr[-3000:]
    assert "rolled back 9 migration(s)" in ok.stdout
    after = snapshot(db, table)
    assert len(after[3]) == len(folders(CORPORA / "docs_rs")) - 9

    # the next step is the irreversible one
    stop = run("down", CORPORA / "docs_rs", database)
    assert stop.exit_code == 1
    assert snapshot(db, table) == after


def test_quickwit(database, db):
    table = "schema_migrations"
    up_and_status("quickwit", database, db, None)
    before = snapshot(db, table)

    refused = run("down", CORPORA / "quickwit", database, "--all", "--yes")
    assert refused.exit_code == 1
    assert "8_delete_update_timestamp_on_indexes_table is irreversible" in refused.stderr
    assert snapshot(db, table) == before

    ok = run("down", CORPORA / "quickwit", database, "--to", "20")
    assert ok.exit_code == 0, ok.stderr[-3000:]
    assert "rolled back 9 migration(s)" in ok.stdout
    ids = [r[0] for r in db.execute("select id from schema_migrations").fetchall()]
    assert sorted(map(int, ids)) == list(range(1, 21))
    after = snapshot(db, table)

    # the source bug: DROP IF EXISTS COLUMN
    bad = run("down", CORPORA / "quickwit", database)
    assert bad.exit_code == 4
    assert '20_add_shard_doc_mapping_uid_field/down.sql:2:20: ERROR 42601: syntax error at or near "COLUMN"' \
        in bad.stderr
    assert "20_add_shard_doc_mapping_uid_field FAILED and was rolled back" in bad.stderr
    assert snapshot(db, table) == after
    assert tracking_row(db, "20", table=table) == ("applied",)

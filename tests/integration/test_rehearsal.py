"""The rehearsal of `plan` (SPEC 8) against PostgreSQL: which lock each
statement takes and which ones rewrite, as recorded between the statements of
one transaction, or seen by a second session outside one; and that recording
changes nothing the migration does.

Every table here is empty: the scratch database holds no rows, so what is
recorded must not depend on them (a rewrite changes relfilenode even then).
"""
from __future__ import annotations

import itertools
import threading
from pathlib import Path

import psycopg
import pytest

from sqlmigrate import rehearsal, sqlfile
from sqlmigrate.grading import Rehearsed, StatementRecord
from sqlmigrate.model import Direction, Step, TrackingTable
from sqlmigrate.schema.scratch import ScratchDatabase
from sqlmigrate.target import Target

BASE = """
create table customers (id int primary key, email text);
create table orders (id int primary key, customer_id int, total int, note varchar(10), placed_at timestamp);
create index orders_total_idx on orders (total);
create table audit (id int);
create materialized view order_totals as select customer_id, count(*) as n from orders group by 1;
create table events (id int, at date not null) partition by range (at);
create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
"""


@pytest.fixture
def rehearse(database):
    """rehearse(up_sql, ...) -> the Rehearsed of each file, run in a scratch
    database holding BASE (what the applied migrations built)."""
    target = Target(database, TrackingTable("schema_migrations"))
    with ScratchDatabase(database) as scratch:
        session = scratch.session(target)
        session.conn.execute(BASE)

        ids = itertools.count(1)

        def run(*files: str) -> list[Rehearsed]:
            """Each file a migration of its own, ids counting on from the last call's."""
            steps = []
            for text in files:
                id = f"{next(ids):03}"
                steps.append(Step(Direction.UP, id, "m", sqlfile.parse_text(Path(f"{id}_m/up.sql"), text), None))
            return rehearsal.rehearse(scratch, session, steps)

        run.scratch = scratch  # type: ignore[attr-defined]
        yield run


def locks(record: StatementRecord) -> set[tuple[str, str]]:
    """The statement's locks on relations that were there before it."""
    return {(lock.relation.shown, lock.mode) for lock in record.locks if not lock.relation.is_created}


def rewrites(record: StatementRecord) -> set[str]:
    return {r.shown for r in record.rewrites}


def only(rehearse, text: str) -> StatementRecord:
    [result] = rehearse(text)
    assert result.verdict == "rehearsed", result.error
    [record] = result.statements
    return record


# -- ALTER TABLE -------------------------------------------------------------------------


def test_add_column_with_a_constant_default_takes_access_exclusive_without_a_rewrite(rehearse):
    record = only(rehearse, "alter table orders add column status int not null default 0;")
    assert locks(record) == {("orders", "ACCESS EXCLUSIVE")}
    assert rewrites(record) == set()


def test_add_column_with_a_volatile_default_rewrites_the_table_and_its_indexes(rehearse):
    record = only(rehearse, "alter table orders add column token timestamptz default clock_timestamp();")
    assert ("orders", "ACCESS EXCLUSIVE") in locks(record)
    assert rewrites(record) == {"orders", "orders_pkey", "orders_total_idx"}


def test_type_change_int_to_bigint_rewrites(rehearse):
    record = only(rehearse, "alter table orders alter column total type bigint;")
    assert ("orders", "ACCESS EXCLUSIVE") in locks(record)
    assert "orders" in rewrites(record)


def test_widening_a_varchar_needs_no_rewrite(rehearse):
    record = only(rehearse, "alter table orders alter column note type varchar(20);")
    assert locks(record) == {("orders", "ACCESS EXCLUSIVE")}
    assert rewrites(record) == set()


def test_set_not_null_scans_under_access_exclusive_without_a_rewrite(rehearse):
    record = only(rehearse, "alter table orders alter column total set not null;")
    assert locks(record) == {("orders", "ACCESS EXCLUSIVE")}
    assert rewrites(record) == set()
    assert {r.shown for r in record.scanned} == {"orders"}


def test_adding_a_foreign_key_takes_share_row_exclusive_on_both_tables(rehearse):
    record = only(rehearse, "alter table orders add foreign key (customer_id) references customers (id);")
    assert {("orders", "SHARE ROW EXCLUSIVE"), ("customers", "SHARE ROW EXCLUSIVE")} <= locks(record)
    assert not {mode for _, mode in locks(record)} & {"SHARE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}
    assert rewrites(record) == set()


def test_not_valid_then_validate_takes_only_share_update_exclusive_to_validate(rehearse):
    [result] = rehearse("alter table orders add constraint fk foreign key (customer_id) references customers (id) "
                        "not valid;\nalter table audit add column x int;\n")
    [[validate]] = [r.statements for r in rehearse("alter table orders validate constraint fk;")]
    assert ("orders", "SHARE ROW EXCLUSIVE") in locks(result.statements[0])
    assert {r.shown for r in result.statements[0].scanned} == set()  # NOT VALID reads no row
    assert ("orders", "SHARE UPDATE EXCLUSIVE") in locks(validate)
    assert ("customers", "ROW SHARE") in locks(validate)
    assert not {mode for _, mode in locks(validate)} & {"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
                                                        "ACCESS EXCLUSIVE"}


def test_check_constraint_takes_access_exclusive_and_validate_share_update_exclusive(rehearse):
    check = only(rehearse, "alter table orders add constraint positive check (total > 0);")
    assert locks(check) == {("orders", "ACCESS EXCLUSIVE")}
    assert {r.shown for r in check.scanned} == {"orders"} and rewrites(check) == set()
    [[_, validate]] = [r.statements for r in rehearse(
        "alter table orders add constraint positive2 check (total > 0) not valid;\n"
        "alter table orders validate constraint positive2;\n")]
    # in the same transaction the ACCESS EXCLUSIVE is held already: nothing new but the validation's own
    assert locks(validate) <= {("orders", "SHARE UPDATE EXCLUSIVE")}


def test_adding_a_primary_key_builds_its_index_under_access_exclusive(rehearse):
    record = only(rehearse, "alter table audit add primary key (id);")
    assert {("audit", "ACCESS EXCLUSIVE"), ("audit", "SHARE")} <= locks(record)


def test_unique_constraint_builds_its_index_under_access_exclusive(rehearse):
    record = only(rehearse, "alter table orders add constraint one_note unique (note);")
    assert {("orders", "ACCESS EXCLUSIVE"), ("orders", "SHARE")} <= locks(record)
    assert rewrites(record) == set()


@pytest.mark.parametrize("column", ["serial", "bigint generated always as identity",
                                    "int generated always as (total + 1) stored"])
def test_adding_a_serial_identity_or_stored_generated_column_rewrites(rehearse, column):
    record = only(rehearse, f"alter table orders add column seq {column};")
    assert ("orders", "ACCESS EXCLUSIVE") in locks(record)
    assert "orders" in rewrites(record)


def test_set_unlogged_rewrites(rehearse):
    assert "orders" in rewrites(only(rehearse, "alter table orders set unlogged;"))


def test_renames_take_access_exclusive_and_the_table_keeps_its_name_on_the_target(rehearse):
    [result] = rehearse("alter table orders rename column note to remark;\nalter table orders rename to purchases;\n"
                        "alter table customers rename to clients;\n")
    first, second, third = result.statements
    assert locks(first) == {("orders", "ACCESS EXCLUSIVE")}
    assert locks(second) == set()  # held since the first statement
    assert locks(third) == {("customers", "ACCESS EXCLUSIVE")}  # named as the target knows it


def test_drop_table_is_recorded_under_the_name_it_had(rehearse):
    record = only(rehearse, "drop table audit;")
    assert locks(record) == {("audit", "ACCESS EXCLUSIVE")}


def test_a_stable_default_such_as_to_timestamp_is_computed_once_without_a_rewrite(rehearse):
    record = only(rehearse, "alter table orders add column due timestamptz default to_timestamp(0);")
    assert locks(record) == {("orders", "ACCESS EXCLUSIVE")}
    assert rewrites(record) == set()


def test_a_check_on_an_added_column_scans_the_table(rehearse):
    record = only(rehearse, "alter table orders add column code text check (length(code) = 3);")
    assert {r.shown for r in record.scanned} == {"orders"}
    assert rewrites(record) == set()
    plain = only(rehearse, "alter table orders add column code2 text;")
    assert {r.shown for r in plain.scanned} == set()


def test_set_not_null_skips_the_scan_when_a_valid_check_proves_it(rehearse):
    [proof] = rehearse("alter table orders add constraint total_nn check (total is not null) not valid;\n"
                       "alter table orders validate constraint total_nn;\n")
    assert proof.verdict == "rehearsed"
    record = only(rehearse, "alter table orders alter column total set not null;")
    assert locks(record) == {("orders", "ACCESS EXCLUSIVE")}
    assert {r.shown for r in record.scanned} == set()


def test_adding_a_domain_constraint_takes_share_on_each_table_using_it(rehearse):
    [made] = rehearse("create domain positive as int;\nalter table audit add column n positive;\n")
    assert made.verdict == "rehearsed"
    record = only(rehearse, "alter domain positive add constraint p check (value > 0);")
    assert ("audit", "SHARE") in locks(record)
    lazy = only(rehearse, "alter domain positive add constraint q check (value < 10) not valid;")
    assert ("audit", "SHARE") not in locks(lazy)


# -- indexes ---------------------------------------------------------------------------------


def test_create_index_takes_share_on_the_table(rehearse):
    record = only(rehearse, "create index orders_note_idx on orders (note);")
    assert locks(record) == {("orders", "SHARE")}
    assert [lock.mode for lock in record.locks if lock.relation.is_created] == ["ACCESS EXCLUSIVE"]


def test_create_index_concurrently_is_seen_holding_share_update_exclusive(rehearse):
    record = only(rehearse, "-- sqlmigrate: no-transaction\ncreate index concurrently orders_note_idx on orders (note);")
    assert ("orders", "SHARE UPDATE EXCLUSIVE") in locks(record)
    assert not {m for name, m in locks(record) if name == "orders"} - {"SHARE UPDATE EXCLUSIVE"}


def test_drop_index_takes_access_exclusive_on_its_table(rehearse):
    record = only(rehearse, "drop index orders_total_idx;")
    assert ("orders", "ACCESS EXCLUSIVE") in locks(record)


def test_drop_index_concurrently_takes_share_update_exclusive(rehearse):
    record = only(rehearse, "-- sqlmigrate: no-transaction\ndrop index concurrently orders_total_idx;")
    assert {m for name, m in locks(record) if name == "orders"} == {"SHARE UPDATE EXCLUSIVE"}


def test_reindex_takes_share_on_the_table_and_rebuilds_the_index_under_access_exclusive(rehearse):
    record = only(rehearse, "reindex index orders_total_idx;")
    assert {("orders", "SHARE"), ("orders_total_idx", "ACCESS EXCLUSIVE")} <= locks(record)
    assert rewrites(record) == {"orders_total_idx"}


def test_reindex_concurrently_takes_share_update_exclusive_and_rewrites_nothing_in_place(rehearse):
    record = only(rehearse, "-- sqlmigrate: no-transaction\nreindex index concurrently orders_total_idx;")
    assert {m for name, m in locks(record) if name == "orders"} == {"SHARE UPDATE EXCLUSIVE"}
    assert rewrites(record) == set()


# -- rewrites by maintenance commands ---------------------------------------------------------------


def test_vacuum_full_outside_a_transaction_is_seen_taking_access_exclusive_and_rewrites(rehearse):
    record = only(rehearse, "-- sqlmigrate: no-transaction\nvacuum full orders;")
    assert ("orders", "ACCESS EXCLUSIVE") in locks(record)
    assert "orders" in rewrites(record)


def test_plain_vacuum_takes_nothing_that_blocks_writes(rehearse):
    record = only(rehearse, "-- sqlmigrate: no-transaction\nvacuum orders;")
    assert not {m for _, m in locks(record)} & {"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}
    assert rewrites(record) == set()


def test_cluster_rewrites_under_access_exclusive(rehearse):
    record = only(rehearse, "cluster orders using orders_pkey;")
    assert ("orders", "ACCESS EXCLUSIVE") in locks(record)
    assert rewrites(record) == {"orders", "orders_pkey", "orders_total_idx"}


def test_refresh_materialized_view_rewrites_it_under_access_exclusive(rehearse):
    record = only(rehearse, "refresh materialized view order_totals;")
    assert ("order_totals", "ACCESS EXCLUSIVE") in locks(record)
    assert ("orders", "ACCESS SHARE") in locks(record)
    assert rewrites(record) == {"order_totals"}


def test_truncate_gives_new_files_but_is_not_recorded_as_a_rewrite(rehearse, database):
    record = only(rehearse, "truncate audit;")
    assert ("audit", "ACCESS EXCLUSIVE") in locks(record)
    assert rewrites(record) == set()
    with psycopg.connect(database, autocommit=True) as conn:  # the fact the exception rests on
        conn.execute("create table t (id int)")
        before = conn.execute("select relfilenode from pg_class where relname = 't'").fetchone()
        conn.execute("truncate t")
        assert conn.execute("select relfilenode from pg_class where relname = 't'").fetchone() != before


def test_a_rewrite_changes_relfilenode_of_an_empty_table(rehearse, database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("create table t (n int)")
        before = conn.execute("select relfilenode from pg_class where relname = 't'").fetchone()
        conn.execute("alter table t alter column n type bigint")
        assert conn.execute("select count(*) from t").fetchone() == (0,)
        assert conn.execute("select relfilenode from pg_class where relname = 't'").fetchone() != before


def test_detach_partition_locks_the_parent_access_exclusive_and_its_concurrently_form_does_not(rehearse):
    plain = only(rehearse, "alter table events detach partition events_2024;")
    assert {("events", "ACCESS EXCLUSIVE"), ("events_2024", "ACCESS EXCLUSIVE")} <= locks(plain)
    [result] = rehearse("alter table events attach partition events_2024 for values from ('2024-01-01') "
                        "to ('2025-01-01');")
    assert result.verdict == "rehearsed"
    concurrent = only(rehearse, "-- sqlmigrate: no-transaction\n"
                                "alter table events detach partition events_2024 concurrently;")
    assert {m for name, m in locks(concurrent) if name == "events"} == {"SHARE UPDATE EXCLUSIVE"}


# -- outside a transaction: a statement with several locks in turn -------------------------------------


def test_no_transaction_foreign_key_is_seen_locking_both_tables(rehearse):
    record = only(rehearse, "-- sqlmigrate: no-transaction\n"
                            "alter table orders add foreign key (customer_id) references customers (id);")
    assert {("orders", "SHARE ROW EXCLUSIVE"), ("customers", "SHARE ROW EXCLUSIVE")} <= locks(record)


# -- data changes ---------------------------------------------------------------------------------


def test_updates_take_row_exclusive_once_and_each_is_seen_reading_its_table(rehearse):
    [result] = rehearse("update orders set total = 1;\nupdate orders set total = 2;\n"
                        "insert into audit select id from orders;\n")
    first, second, copy = result.statements
    assert ("orders", "ROW EXCLUSIVE") in locks(first)
    assert locks(second) == set()  # held since the first
    assert {r.shown for r in second.scanned} == {"orders"}
    assert ("audit", "ROW EXCLUSIVE") in locks(copy) and ("orders", "ACCESS SHARE") in locks(copy)
    assert ("orders", "ROW EXCLUSIVE") in {(lock.relation.shown, lock.mode) for lock in copy.holding}


# -- recording changes nothing ------------------------------------------------------------------------


def test_nothing_runs_in_the_transaction_before_the_first_statement(rehearse):
    """SET TRANSACTION ISOLATION LEVEL must come before any query of its transaction."""
    [result] = rehearse("set transaction isolation level serializable;\n"
                        "insert into audit select current_setting('transaction_isolation')::int;\n")
    assert result.verdict == "failed"  # the cast, not the SET: the setting was taken
    assert result.error is not None and result.error.line == 2
    assert 'invalid input syntax for type integer: "serializable"' == result.error.message


def test_recording_takes_no_lock_on_user_tables(rehearse):
    """A table held ACCESS EXCLUSIVE by another session, and not touched by
    the migration, does not hold up the recording between its statements."""
    results: list[Rehearsed] = []
    thread = threading.Thread(target=lambda: results.extend(rehearse(
        "alter table customers add column a int;\nalter table customers add column b int;\n")))
    with psycopg.connect(rehearse.scratch.url, autocommit=True) as other:
        other.execute("begin")
        other.execute("lock table audit, orders in access exclusive mode")
        thread.start()
        thread.join(20)
        finished = not thread.is_alive()
        other.execute("rollback")
    thread.join()
    assert finished, "the rehearsal waited on a lock of a table it does not touch"
    assert [len(r.statements) for r in results] == [2]


def test_search_path_changed_by_the_migration_does_not_hide_the_catalogs(rehearse):
    [result] = rehearse("create schema other;\ncreate table other.pg_locks (x int);\n"
                        "set search_path = other, public;\nalter table orders add column z int;\n")
    assert result.verdict == "rehearsed"
    assert locks(result.statements[-1]) == {("orders", "ACCESS EXCLUSIVE")}


def test_a_deferred_constraint_failing_at_commit_is_placed_at_the_last_statement(rehearse):
    [result] = rehearse("alter table audit add constraint audit_orders foreign key (id) references orders (id) "
                        "deferrable initially deferred;\ninsert into audit values (1);\nselect 1;\n")
    assert result.verdict == "failed" and result.error is not None
    assert (result.error.sqlstate, result.error.line) == ("23503", 3)
    assert result.error.hint and result.error.hint.startswith("raised at COMMIT")


def test_after_a_failure_the_later_migrations_are_not_tested(rehearse):
    results = rehearse("select nope;", "create table t (id int);")
    assert [r.verdict for r in results] == ["failed", "not tested"]
    assert results[0].error is not None and (results[0].error.line, results[0].error.col) == (1, 8)
    assert results[1].reason == "not tested: 001_m/up.sql failed before them"

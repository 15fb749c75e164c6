"""`plan`'s grading (SPEC 8) on plain records: no database."""
from __future__ import annotations

from pathlib import Path

import pytest

from sqlmigrate.grading import (Lock, Rehearsed, Relation, StatementRecord, TableSize, grade, pretty_bytes,
                                size_text, statement_severity, statement_verb)
from sqlmigrate.model import Severity, Statement

ORDERS = Relation("public", "orders", "r", "orders")
NEW = Relation("public", "fresh", "r", "fresh", is_created=True)
GONE = Relation("public", "local_only", "r", "local_only")  # in the scratch database, not on the target
PKEY = Relation("public", "orders_pkey", "i", "orders_pkey", table=ORDERS)
SIZES = {("public", "orders"): TableSize(5000, 1 << 20), ("public", "fresh"): TableSize(9_999_999, 0)}


def stmt(text: str, line: int = 1) -> Statement:
    words = tuple(text.lower().replace("(", " ( ").replace(")", " ) ").replace(";", " ;").split())
    return Statement(offset=0, end=len(text), line=line, col=1, words=words)


def record(text: str, *locks: tuple[Relation, str], rewrites: tuple[Relation, ...] = (),
           scanned: tuple[Relation, ...] = (), holding: tuple[tuple[Relation, str], ...] = (),
           line: int = 1) -> StatementRecord:
    return StatementRecord(stmt(text, line), tuple(Lock(r, m) for r, m in locks), rewrites, 0.001, scanned,
                           tuple(Lock(r, m) for r, m in holding))


def migration(*records: StatementRecord, transactional: bool = True) -> Rehearsed:
    return Rehearsed("002", "m", Path("m/002_m/up.sql"), transactional, "rehearsed", records)


def graded(*records: StatementRecord, max_rows: int = 1000, transactional: bool = True) -> list[tuple]:
    findings = grade([migration(*records, transactional=transactional)], SIZES, max_rows)
    return [(f.line, f.severity.value, f.rule, f.message) for f in findings]


# -- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("count, text", [(0, "0 bytes"), (8192, "8192 bytes"), (10239, "10239 bytes"),
                                         (10240, "10 kB"), (10485759, "10240 kB"), (10485760, "10 MB"),
                                         (325058560, "310 MB"), (5 * 1024 ** 4, "5120 GB"), (1 << 60, "1024 PB")])
def test_bytes_read_as_pg_size_pretty_prints_them(count, text):
    assert pretty_bytes(count) == text


def test_size_text():
    assert size_text(TableSize(1_204_000, 325058560)) == "~1,204,000 rows, 310 MB"
    assert size_text(TableSize(None, 8192)) == "size unknown"


# -- locks and rewrites ---------------------------------------------------------------------------


def test_rewrite_above_max_rows_is_an_error_and_at_it_a_warning():
    rewritten = record("alter table orders alter column total type bigint", (ORDERS, "ACCESS EXCLUSIVE"),
                       rewrites=(ORDERS, PKEY))
    message = ("ACCESS EXCLUSIVE lock on orders (~5,000 rows, 1024 kB) and rewrites it: reads and writes wait "
               "for the whole rewrite")
    assert graded(rewritten, max_rows=4999) == [(1, "error", "rewrite", message)]
    assert graded(rewritten, max_rows=5000) == [(1, "warning", "rewrite", message)]


def test_a_rewrite_under_a_lock_held_from_an_earlier_statement_is_graded_the_same():
    assert [g[1:3] for g in graded(record("alter table orders alter column n type bigint", rewrites=(ORDERS,)))] == [
        ("error", "rewrite")]


def test_locks_that_block_neither_reads_nor_writes_are_not_flagged():
    assert graded(record("create index concurrently i on orders (n)", (ORDERS, "SHARE UPDATE EXCLUSIVE")),
                  transactional=False) == []
    assert graded(record("select 1", (ORDERS, "ACCESS SHARE"), (ORDERS, "ROW SHARE"))) == []


@pytest.mark.parametrize("mode, blocked", [("SHARE", "writes"), ("SHARE ROW EXCLUSIVE", "writes"),
                                           ("EXCLUSIVE", "writes"), ("ACCESS EXCLUSIVE", "reads and writes")])
def test_each_mode_from_share_up_is_a_lock_warning(mode, blocked):
    assert graded(record("alter table orders add column x int", (ORDERS, mode))) == [
        (1, "warning", "lock", f"{mode} lock on orders (~5,000 rows, 1024 kB) blocks {blocked} until the "
                               "migration commits")]


def test_until_says_how_long_the_lock_lasts():
    index = record("create index on orders (n)", (ORDERS, "SHARE"))
    later = StatementRecord(stmt("select 1", line=2), (), (), 0.0)
    assert graded(index)[0][3].endswith("until the index is built")
    assert graded(index, later)[0][3].endswith("until the migration commits")  # held to COMMIT
    assert graded(index, later, transactional=False)[0][3].endswith("until the index is built")
    assert graded(record("alter table orders add x int", (ORDERS, "ACCESS EXCLUSIVE")),
                  transactional=False)[0][3].endswith("until the statement ends")


def test_a_lock_no_stronger_than_one_held_before_in_the_transaction_is_not_flagged():
    held = ((ORDERS, "ACCESS EXCLUSIVE"), (ORDERS, "SHARE"))
    assert graded(record("create index on orders (n)", (ORDERS, "SHARE"), holding=held)) == []
    assert graded(record("alter table orders drop constraint orders_pkey", (PKEY, "ACCESS EXCLUSIVE"),
                         holding=((ORDERS, "ACCESS EXCLUSIVE"),))) == []
    stronger = record("alter table orders add x int", (ORDERS, "ACCESS EXCLUSIVE"),
                      holding=((ORDERS, "SHARE"), (ORDERS, "ACCESS EXCLUSIVE")))
    assert [g[1:3] for g in graded(stronger)] == [("warning", "lock")]


def test_tables_the_plan_created_or_the_target_lacks_are_not_graded():
    assert graded(record("alter table fresh alter column n type bigint", (NEW, "ACCESS EXCLUSIVE"),
                         rewrites=(NEW,))) == []
    assert graded(record("alter table local_only add x int", (GONE, "ACCESS EXCLUSIVE"), rewrites=(GONE,))) == []


def test_an_index_held_access_exclusive_blocks_reads_of_its_table():
    assert graded(record("reindex index orders_pkey", (ORDERS, "SHARE"), (PKEY, "ACCESS EXCLUSIVE"))) == [
        (1, "warning", "lock", "SHARE lock on orders (~5,000 rows, 1024 kB) and ACCESS EXCLUSIVE lock on its index "
                               "orders_pkey block reads and writes until the migration commits")]
    assert graded(record("alter index orders_pkey set (fillfactor = 50)", (PKEY, "ACCESS EXCLUSIVE"))) == [
        (1, "warning", "lock", "ACCESS EXCLUSIVE lock on index orders_pkey of orders (~5,000 rows, 1024 kB) blocks "
                               "reads and writes until the migration commits")]


def test_a_never_analyzed_table_is_graded_without_a_size_and_never_as_an_error():
    sizes = {("public", "orders"): TableSize(None, 8192)}
    findings = grade([migration(record("alter table orders alter n type bigint", (ORDERS, "ACCESS EXCLUSIVE"),
                                       rewrites=(ORDERS,)))], sizes, 0)
    assert [(f.severity, f.message.split(" and ")[0]) for f in findings] == [
        (Severity.WARNING, "ACCESS EXCLUSIVE lock on orders (size unknown)")]


# -- data ---------------------------------------------------------------------------------------


def test_update_and_delete_above_max_rows_are_data_warnings():
    first = record("update orders set n = 1", (ORDERS, "ROW EXCLUSIVE"), scanned=(ORDERS,))
    # the second holds ROW EXCLUSIVE from the first: it reads the table, so it changed rows of it
    second = StatementRecord(stmt("delete from orders where n = 2", line=2), (), (), 0.0, (ORDERS,),
                             (Lock(ORDERS, "ROW EXCLUSIVE"),))
    assert [(line, rule) for line, _, rule, _ in graded(first, second)] == [(1, "data"), (2, "data")]
    assert graded(first, second, max_rows=5000) == []
    assert graded(first, transactional=False) == []  # each statement commits on its own


def test_insert_select_reading_a_big_table_is_a_data_warning_and_insert_values_is_not():
    assert [g[2:] for g in graded(record("insert into fresh select * from orders", (NEW, "ROW EXCLUSIVE"),
                                         (ORDERS, "ACCESS SHARE"), scanned=(ORDERS,)))] == [
        ("data", "INSERT ... SELECT reads orders (~5,000 rows, 1024 kB) inside the migration's transaction, which "
                 "holds its locks until the copy is done and it commits")]
    assert graded(record("insert into orders values (1)", (ORDERS, "ROW EXCLUSIVE"))) == []


def test_update_from_a_big_table_only_reading_it_is_no_data_change_of_it():
    small = Relation("public", "small", "r", "small")
    assert graded(record("update small set n = o.n from orders o", (small, "ROW EXCLUSIVE"),
                         (ORDERS, "ACCESS SHARE"), scanned=(small, ORDERS))) == []


def test_a_do_block_changing_rows_is_a_data_warning():
    assert [g[3].split(" on ")[0] for g in graded(record("do $$ begin update orders set n = 1; end $$",
                                                         (ORDERS, "ROW EXCLUSIVE")))] == ["DO (changing rows)"]


def test_statement_verb_looks_past_common_table_expressions():
    assert statement_verb(stmt("with x as (select 1) update orders set n = 1").words) == "update"
    assert statement_verb(stmt("with x as (delete from t returning *) select * from x").words) == "select"
    assert statement_verb(stmt("alter table t add x int").words) == "alter"


def test_a_statement_s_severity_is_its_worst_finding():
    findings = grade([migration(record("alter table orders alter n type bigint", (ORDERS, "ACCESS EXCLUSIVE"),
                                       (PKEY, "ACCESS EXCLUSIVE"), rewrites=(ORDERS,)),
                                record("create index on orders (n)", (ORDERS, "SHARE"), line=2))], SIZES, 10)
    assert statement_severity(findings) == {("m/002_m/up.sql", 1, 1): Severity.ERROR,
                                            ("m/002_m/up.sql", 2, 1): Severity.WARNING}

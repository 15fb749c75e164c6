"""SPEC 4 rules, table-driven: for each rule, SQL that must fire (exact line:col) next to SQL that must not."""
from __future__ import annotations

from pathlib import Path

import pytest

from sqlmigrate import discovery, rules
from sqlmigrate.model import Severity
from sqlmigrate.sqlfile import parse_text
from tests.conftest import write_files

DEFAULT = rules.TrackingTable.parse("schema_migrations")


def findings(text: str, kind: str = "up", table: rules.TrackingTable = DEFAULT) -> list[tuple[int, int, str]]:
    sql = parse_text(Path(f"m/001_x/{kind}.sql"), text)
    return [(f.line, f.col, f.rule) for f in rules.check_file(sql, kind, table)]


def fired(text: str, rule: str, kind: str = "up", table: rules.TrackingTable = DEFAULT) -> list[tuple[int, int]]:
    """Where `rule` fires in `text`."""
    return [(line, col) for line, col, r in findings(text, kind, table) if r == rule]


def test_rule_severities_follow_the_spec():
    errors = {
        "bad-name", "duplicate-id", "missing-up", "missing-down", "empty-up", "empty-down", "not-utf8",
        "unterminated", "transaction-control", "needs-no-transaction", "unknown-directive",
        "misplaced-directive", "touches-tracking-table",
    }
    assert {r for r, s in rules.RULES.items() if s is Severity.ERROR} >= errors
    assert rules.WARNING_RULES == {
        "destructive", "lock-unsafe", "add-column-rewrite", "add-primary-key", "unique-without-index", "set-not-null",
        "drop-index-blocking", "reindex-blocking", "detach-partition-blocking", "domain-constraint", "rename-column",
        "rename-table", "drop-database", "char-type", "timestamp-without-time-zone", "int-primary-key",
        "enum-value-ordering", "identifier-too-long",
    }


# -- transaction-control ---------------------------------------------------------

FUNCTION_WITH_COMMIT = (
    "create procedure p() language plpgsql as $$\nbegin\n  commit;\n  rollback;\nend $$;\n"
)


@pytest.mark.parametrize(
    "text, where",
    [
        ("begin;\nselect 1;", [(1, 1)]),
        ("select 1;\n  BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE;", [(2, 3)]),
        ("start transaction;", [(1, 1)]),
        ("select 1;\ncommit;", [(2, 1)]),
        ("COMMIT AND CHAIN;", [(1, 1)]),
        ("end;", [(1, 1)]),
        ("end transaction;", [(1, 1)]),
        ("rollback;", [(1, 1)]),
        ("abort;", [(1, 1)]),
        ("prepare transaction 'x';", [(1, 1)]),
        ("commit prepared 'x';", [(1, 1)]),
        ("rollback prepared 'x';", [(1, 1)]),
        ("begin;\ncreate table t (a int);\ncommit;", [(1, 1), (3, 1)]),
        # leaves alone:
        ("savepoint a;\nrelease savepoint a;", []),
        ("savepoint a;\nrollback to savepoint a;", []),
        ("savepoint a;\nrollback to a;", []),
        ("savepoint a;\nROLLBACK WORK TO SAVEPOINT a;", []),
        ("savepoint a;\nrollback transaction to a;", []),
        (FUNCTION_WITH_COMMIT, []),
        ("do $$ begin commit; end $$;", []),
        ("create function f() returns int language sql\nbegin atomic\n  select 1;\nend;", []),
        ("select 'begin; commit;';\n-- commit;\n/* rollback; */", []),
        ("prepare q as select 1;", []),
    ],
)
def test_transaction_control(text, where):
    assert fired(text, "transaction-control") == where


def test_transaction_control_in_down_sql():
    assert fired("commit;", "transaction-control", kind="down") == [(1, 1)]


# -- needs-no-transaction ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        ("create index concurrently i on t (a);", [(1, 1)]),
        ("select 1;\n  CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", [(2, 3)]),
        ("drop index concurrently if exists i;", [(1, 1)]),
        ("reindex table concurrently t;", [(1, 1)]),
        ("REINDEX (VERBOSE) INDEX CONCURRENTLY i;", [(1, 1)]),
        ("reindex schema public;", [(1, 1)]),
        ("reindex (verbose) database app;", [(1, 1)]),
        ("reindex system app;", [(1, 1)]),
        ("vacuum;", [(1, 1)]),
        ("VACUUM (ANALYZE) t;", [(1, 1)]),
        ("cluster;", [(1, 1)]),
        ("cluster verbose", [(1, 1)]),
        ("discard all;", [(1, 1)]),
        ("create database app;", [(1, 1)]),
        ("drop database if exists app;", [(1, 1)]),
        ("create tablespace ts location '/x';", [(1, 1)]),
        ("drop tablespace ts;", [(1, 1)]),
        ("alter system set work_mem = '64MB';", [(1, 1)]),
        ("alter database app set tablespace ts;", [(1, 1)]),
        ("alter table p detach partition c concurrently;", [(1, 1)]),
        # leaves alone:
        ("create index i on t (a);", []),
        ("-- sqlmigrate: no-transaction\ncreate index concurrently i on t (a);", []),
        ("-- sqlmigrate: no-transaction\nvacuum;", []),
        ("refresh materialized view concurrently mv;", []),
        ("reindex table t;", []),
        ("reindex index i;", []),
        ("cluster t using t_pkey;", []),
        ("cluster t", []),
        ("discard temp;", []),
        ("alter database app set work_mem = '64MB';", []),
        ("alter table p detach partition c;", []),
        ("create function f() returns void as $$ refresh materialized view concurrently mv $$ language sql;", []),
        ("do $$ begin execute 'vacuum'; end $$;", []),
        ("select 'create index concurrently';", []),
    ],
)
def test_needs_no_transaction(text, where):
    assert fired(text, "needs-no-transaction") == where


def test_needs_no_transaction_in_down_sql():
    assert fired("drop index concurrently i;", "needs-no-transaction", kind="down") == [(1, 1)]
    assert fired("-- sqlmigrate: no-transaction\ndrop index concurrently i;", "needs-no-transaction",
                 kind="down") == []


@pytest.mark.parametrize("text", [
    "reindex (verbose, tablespace x) table concurrently t;",
    "REINDEX (VERBOSE) INDEX CONCURRENTLY i;",
    "reindex ( verbose , tablespace pg_default , verbose false ) schema concurrently s;",
    "reindex (concurrently) table t;",
    "reindex (verbose, concurrently true) index i;",
    "reindex table concurrently t;",
    "create unique index concurrently if not exists i on t (a);",
    "drop index concurrently if exists i;",
])
def test_concurrently_needs_no_transaction(text):
    assert fired("select 1;\n" + text, "needs-no-transaction") == [(2, 1)]
    assert fired("-- sqlmigrate: no-transaction\n" + text, "needs-no-transaction") == []


@pytest.mark.parametrize("text", [
    "reindex (verbose) table t;",
    "reindex (concurrently false) index i;",
    "reindex (tablespace concurrently) table t;",  # a tablespace named concurrently
    "create index i on t (concurrently);",
    "refresh materialized view concurrently v;",  # allowed in a transaction
])
def test_not_concurrently(text):
    assert fired(text, "needs-no-transaction") == []


# -- unterminated ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        # the start of the statement (SPEC 3); the message says where the opening is
        ("select 1;\nselect 'abc;", [(2, 1)]),
        ('select "abc;', [(1, 1)]),
        ("select $$abc;", [(1, 1)]),
        ("select 1;\n  select $f$abc $$;", [(2, 3)]),
        ("select 1 /* abc\n;", [(1, 1)]),
        # a comment outside any statement: the comment
        ("select 1;\n /* abc", [(2, 2)]),
        ("/* a /* b */ c */ select 1; /* d /* e */", [(1, 29)]),
        # leaves alone:
        ("select 'abc', \"d\", $$e$$, $f$g$f$; /* h /* i */ */", []),
        ("select 'it''s';", []),
    ],
)
def test_unterminated(text, where):
    assert fired(text, "unterminated") == where


@pytest.mark.parametrize("text,where,message", [
    ("select 1;\nselect 'abc;\n", (2, 1), "string starting at line 2, column 8 never ends"),
    ("-- header\n  select 1,\n  $$ never;\n", (2, 3), "dollar-quoted body starting at line 3, column 3 never ends"),
    ("select 1;\n/* never\nselect 2;\n", (2, 1), "block comment starting at line 2, column 1 never ends"),
])
def test_unterminated_finding_is_at_the_statement_and_names_the_opening(text, where, message):
    sql = parse_text(Path("m/001_x/up.sql"), text)
    [found] = [f for f in rules.check_file(sql, "up", DEFAULT) if f.rule == "unterminated"]
    assert ((found.line, found.col), found.message) == (where, message)


# -- directives: unknown-directive, misplaced-directive ----------------------------


@pytest.mark.parametrize(
    "text, kind, where",
    [
        ("-- sqlmigrate: transactional\nselect 1;", "up", [(1, 1)]),
        ("-- header\n-- sqlmigrate: irreversible\nselect 1;", "up", [(2, 1)]),
        ("-- sqlmigrate: ignore unterminated\nselect 1;", "up", [(1, 1)]),
        ("-- sqlmigrate: ignore touches-tracking-table\nselect 1;", "down", [(1, 1)]),
        ("-- sqlmigrate: ignore no-such-rule\nselect 1;", "up", [(1, 1)]),
        ("-- sqlmigrate: ignore destructive, bogus\nselect 1;", "up", [(1, 1)]),
        ("-- sqlmigrate: ignore\nselect 1;", "up", [(1, 1)]),
        ("-- sqlmigrate: no-transaction please\nselect 1;", "up", [(1, 1)]),
        ("-- sqlmigrate:\nselect 1;", "up", [(1, 1)]),
        ("  -- sqlmigrate: irreversible\n  -- sqlmigrate: bogus\n", "down", [(2, 3)]),
        # leaves alone:
        ("-- sqlmigrate: irreversible\n", "down", []),
        ("-- sqlmigrate: no-transaction\nselect 1;", "up", []),
        ("-- sqlmigrate: no-transaction\nselect 1;", "down", []),
        ("-- sqlmigrate: empty\n", "up", []),
        ("-- sqlmigrate: empty\n", "down", []),
        ("-- sqlmigrate: ignore destructive, lock-unsafe\nselect 1;", "up", []),
        ("--SQLMigrate : IGNORE Lock-Unsafe\nselect 1;", "up", []),
        ("-- sqlmigrate is great: not a directive\nselect 1;", "up", []),
    ],
)
def test_unknown_directive(text, kind, where):
    assert fired(text, "unknown-directive", kind=kind) == where


@pytest.mark.parametrize(
    "text, where",
    [
        ("select 1;\n-- sqlmigrate: no-transaction\nselect 2;", [(2, 1)]),
        ("select 1 -- sqlmigrate: empty\n;", [(1, 10)]),
        ("select 1;\n  -- SQLMIGRATE: ignore destructive", [(2, 3)]),
        ("select 1;\n-- sqlmigrate: bogus", [(2, 1)]),
        # leaves alone:
        ("-- sqlmigrate: no-transaction\nselect 1;", []),
        ("/* header */\n-- sqlmigrate: no-transaction\nselect 1;", []),
        ("select '\n-- sqlmigrate: no-transaction\n';", []),
        ("do $$\n-- sqlmigrate: no-transaction\nbegin end $$;", []),
        ("select 1;\n/* -- sqlmigrate: no-transaction */", []),
    ],
)
def test_misplaced_directive(text, where):
    assert fired(text, "misplaced-directive") == where


def test_misplaced_directive_has_no_effect():
    sql = parse_text(Path("m/001_x/up.sql"), "select 1;\n-- sqlmigrate: no-transaction\ncreate index concurrently i on t (a);")
    assert sql.is_transactional
    assert fired(sql.text, "needs-no-transaction") == [(3, 1)]


# -- empty-up, empty-down ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        ("", "up", [(1, 1, "empty-up")]),
        ("-- only a comment\n\n", "up", [(1, 1, "empty-up")]),
        (";\n;", "up", [(1, 1, "empty-up")]),
        ("-- sqlmigrate: irreversible\n", "up", [(1, 1, "unknown-directive"), (1, 1, "empty-up")]),
        ("", "down", [(1, 1, "empty-down")]),
        ("/* nothing to undo */", "down", [(1, 1, "empty-down")]),
        ("-- sqlmigrate: no-transaction\n", "down", [(1, 1, "empty-down")]),
        # leaves alone:
        ("-- sqlmigrate: empty\n", "up", []),
        ("-- sqlmigrate: empty\n-- emptied after a squash\n", "up", []),
        ("-- sqlmigrate: irreversible\n", "down", []),
        ("-- sqlmigrate: empty\n", "down", []),
        ("select 1", "up", []),
        ("select 1", "down", []),
    ],
)
def test_empty_files(text, kind, expected):
    assert sorted(findings(text, kind)) == sorted(expected)


@pytest.mark.parametrize("kind", ["up", "down"])
def test_empty_with_statements_is_an_error_at_the_directive(kind):
    sql = parse_text(Path(f"m/001_x/{kind}.sql"), "-- header\n  -- sqlmigrate: EMPTY\nselect 1;\n")
    found = [(f.line, f.col, f.rule, f.message) for f in rules.check_file(sql, kind, DEFAULT)]
    assert found == [(2, 3, "unknown-directive", f"{kind}.sql is marked empty but holds statements")]


@pytest.mark.parametrize("text", ["-- sqlmigrate: empty\n", "-- sqlmigrate: empty\n-- nothing\n;\n"])
def test_empty_without_statements_is_fine(text):
    assert fired(text, "unknown-directive") == [] and fired(text, "empty-up") == []


# -- touches-tracking-table ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, table, where",
    [
        ("create table schema_migrations (id int);", "schema_migrations", [(1, 1)]),
        ("select 1;\n  CREATE TABLE IF NOT EXISTS Schema_Migrations (id int);", "schema_migrations", [(2, 3)]),
        ("drop table schema_migrations;", "schema_migrations", [(1, 1)]),
        ("drop table if exists a, schema_migrations cascade;", "schema_migrations", [(1, 1)]),
        ("alter table schema_migrations add column note text;", "schema_migrations", [(1, 1)]),
        ("alter table if exists only schema_migrations rename to old;", "schema_migrations", [(1, 1)]),
        ("alter table x rename to schema_migrations;", "schema_migrations", [(1, 1)]),
        ("truncate schema_migrations;", "schema_migrations", [(1, 1)]),
        ("truncate table only a *, only schema_migrations;", "schema_migrations", [(1, 1)]),
        ("drop table public.schema_migrations;", "schema_migrations", [(1, 1)]),
        ("drop table app.migs;", "app.migs", [(1, 1)]),
        ("drop table migs;", "app.migs", [(1, 1)]),  # unqualified: could be app's; flag it
        ('drop table "app"."migs";', "app.migs", [(1, 1)]),
        ("alter table app.x rename to migs;", "app.migs", [(1, 1)]),
        ('drop table "Migs";', "Migs", [(1, 1)]),
        ("drop table MIGS;", "migs", [(1, 1)]),
        ("create table schema_migrations (id int);", "schema_migrations", [(1, 1)]),
        # leaves alone:
        ("drop table other.migs;", "app.migs", []),
        ("alter table other.x rename to migs;", "app.migs", []),
        ("drop table Migs;", "Migs", []),  # folds to migs, not "Migs"
        ('drop table "Migs";', "migs", []),
        ("drop table schema_migrations_old;", "schema_migrations", []),
        ("alter table t rename column a to schema_migrations;", "schema_migrations", []),
        ("create table schema_migrations (id int);", "other_table", []),
        ("insert into schema_migrations values (1);", "schema_migrations", []),
        ("select 'drop table schema_migrations';", "schema_migrations", []),
        ("do $$ begin drop table schema_migrations; end $$;", "schema_migrations", []),
    ],
)
def test_touches_tracking_table(text, table, where):
    assert fired(text, "touches-tracking-table", table=rules.TrackingTable.parse(table)) == where


def test_touches_tracking_table_in_down_sql():
    assert fired("drop table schema_migrations;", "touches-tracking-table", kind="down") == [(1, 1)]


@pytest.mark.parametrize("text", [
    "select 1 as x into schema_migrations;",
    "select * into table public.schema_migrations from t;",
    "select distinct a into temporary table schema_migrations from t;",
    "select a into unlogged schema_migrations from t;",
    "SELECT a INTO TEMP \"schema_migrations\" FROM t;",
    "with q as (select 1) select * into schema_migrations from q;",
    "select * into schema_migrations from t union select * from u;",
    "create table schema_migrations as select 1;",
    "create unlogged table schema_migrations (id text);",
    "create temp table if not exists schema_migrations (id text);",
    "create foreign table schema_migrations (id text) server s;",
    "drop foreign table if exists schema_migrations;",
])
def test_creating_the_tracking_table_is_flagged(text):
    assert fired("select 1;\n" + text, "touches-tracking-table") == [(2, 1)]


@pytest.mark.parametrize("text", [
    "select * into other from t;",
    "select * into \"Schema_Migrations\" from t;",
    "with q as (select 1) insert into schema_migrations select * from q;",  # rows, not a table
    "insert into schema_migrations select * from t;",
    "select * from schema_migrations;",
    "create function f() returns int language plpgsql as $$ declare n int; begin "
    "select 1 into schema_migrations; return n; end $$;",
])
def test_not_creating_the_tracking_table(text):
    assert fired(text, "touches-tracking-table") == []


def test_select_into_a_qualified_tracking_table():
    other = rules.TrackingTable.parse("audit.schema_migrations")
    assert fired("select 1 into public.schema_migrations;", "touches-tracking-table", table=other) == []
    assert fired("select 1 into audit.schema_migrations;", "touches-tracking-table", table=other) == [(1, 1)]
    assert fired("select 1 into schema_migrations;", "touches-tracking-table", table=other) == [(1, 1)]


# -- destructive (warning, up.sql only) ----------------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        ("drop table t;", [(1, 1)]),
        ("select 1;\n  DROP TABLE IF EXISTS a, b;", [(2, 3)]),
        ("drop schema s cascade;", [(1, 1)]),
        ("truncate t;", [(1, 1)]),
        ("delete from t;", [(1, 1)]),
        ("update t set a = 1;", [(1, 1)]),
        ("update t set a = (select b from u where u.id = t.id);", [(1, 1)]),
        ("with x as (select 1) delete from t;", [(1, 1)]),
        ("with x as (select id from u where a) update t set b = 1;", [(1, 1)]),
        ("with d as (delete from t returning *) select * from d;", [(1, 1)]),
        ("with d as not materialized (update t set a = 1 returning id) select * from d where id > 0;", [(1, 1)]),
        ("with a as (select 1), d as (delete from t returning *) insert into u select * from d;", [(1, 1)]),
        ("alter table t drop column c;", [(1, 1)]),
        ("alter table t drop c;", [(1, 1)]),
        ("alter table t drop if exists c;", [(1, 1)]),
        ("alter table t add column x int, drop column y;", [(1, 1)]),
        # leaves alone:
        ("delete from t where a = 1;", []),
        ("update t set a = 1 where b;", []),
        ("update t set a = u.b from u where u.id = t.id;", []),
        ("with x as (select 1) delete from t where a in (select * from x);", []),
        ("with d as (delete from t where a < 0 returning *) select * from d;", []),
        ("with d as materialized (update t set a = (select 1 where true) where b returning *) select 1;", []),
        ("alter table t drop constraint c;", []),
        ("alter table t alter column c drop default;", []),
        ("alter table t alter column c drop not null;", []),
        ("drop index i;", []),
        ("drop view v;", []),
        ("do $$ begin drop table t; end $$;", []),
        ("-- sqlmigrate: ignore destructive\ndrop table t;", []),
    ],
)
def test_destructive(text, where):
    assert fired(text, "destructive") == where


def test_destructive_is_not_checked_in_down_sql():
    assert fired("drop table t;\ndelete from u;", "destructive", kind="down") == []


def test_destructive_is_a_warning():
    sql = parse_text(Path("m/001_x/up.sql"), "drop table t;")
    [found] = rules.check_file(sql, "up", DEFAULT)
    assert (found.severity, found.rule) == (Severity.WARNING, "destructive")


# -- lock-unsafe (warning, up.sql only) ----------------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        ("create index i on t (a);", [(1, 1)]),
        ("select 1;\n  CREATE UNIQUE INDEX i ON public.t (a);", [(2, 3)]),
        ("create index if not exists i on only t using btree (a);", [(1, 1)]),
        ("alter table t add column c int not null;", [(1, 1)]),
        ("alter table t add c text not null check (c <> '');", [(1, 1)]),
        ("alter table t alter column c type bigint;", [(1, 1)]),
        ("alter table t alter c type bigint using c::bigint;", [(1, 1)]),
        ("alter table t alter column c set data type text;", [(1, 1)]),
        ("alter table t alter column a set not null, alter column b type text;", [(1, 1)]),
        ("alter table t add constraint fk foreign key (a) references u (id);", [(1, 1)]),
        ("alter table t add foreign key (a) references u;", [(1, 1)]),
        ("alter table t add column u_id int references u (id);", [(1, 1)]),
        ("alter table t add constraint ck check (a > 0);", [(1, 1)]),
        ("alter table t add check (a > 0);", [(1, 1)]),
        ("alter table t add column c int default 0 check (c >= 0);", [(1, 1)]),
        ("alter table t add column c bytea null constraint c_len check (length(c) = 32);", [(1, 1)]),
        ("alter table t add column c int null check (c is not null) default 1;", [(1, 1)]),
        ("create index i on t (a);\ncreate table t (a int);", [(1, 1)]),  # created after, not before
        ("create table u (a int);\ncreate index i on t (a);", [(2, 1)]),
        ("create table other.r (a int);\ncreate index on public.r (a);", [(2, 1)]),  # another schema's r
        ("create table other.r (a int);\nalter table public.r alter a type bigint;", [(2, 1)]),
        # leaves alone:
        ("-- sqlmigrate: no-transaction\ncreate index concurrently i on t (a);", []),
        ("create table t (a int references u (id) check (a > 0), b int not null);\n"
         "create index i on t (a);\n"
         "alter table t add column c int not null;\n"
         "alter table t alter column a type bigint;\n"
         "alter table only t add constraint fk foreign key (b) references u (id);", []),
        ("create table if not exists \"T\" (a int);\ncreate index on \"T\" (a);", []),
        ("create table s.r (a int);\ncreate index on s.r (a);", []),
        ("create table r (a int);\ncreate index on s.r (a);", []),  # unqualified: may well be s.r
        ("create table s.r (a int);\ncreate index on r (a);", []),
        ("create materialized view mv as select 1 as a;\ncreate unique index i on mv (a);", []),
        ("alter table t add column c int;", []),
        ("alter table t add column c int not null default 0;", []),
        ("alter table t add column c int default 0 not null;", []),
        ("alter table t add column id bigserial not null;", []),
        ("alter table t add column id int generated always as identity not null;", []),
        ("alter table t add constraint fk foreign key (a) references u (id) not valid;", []),
        ("alter table t add constraint ck check (a > 0) not valid;", []),
        ("alter table t validate constraint ck;", []),
        ("alter table t alter column type set not null;", []),  # a column named type
        ("alter table t alter column c set default 0;", []),
        ("alter table t add constraint u unique (a);", []),
        ("alter table t add primary key (a);", []),
        ("do $$ begin create index i on t (a); end $$;", []),
        ("-- sqlmigrate: ignore lock-unsafe\ncreate index i on t (a);", []),
    ],
)
def test_lock_unsafe(text, where):
    assert fired(text, "lock-unsafe") == where


def test_lock_unsafe_is_not_checked_in_down_sql():
    assert fired("create index i on t (a);", "lock-unsafe", kind="down") == []


def test_a_table_made_by_select_into_is_created_in_the_migration():
    assert fired("select * into t2 from t;\ncreate index on t2 (a);", "lock-unsafe") == []


def test_one_finding_per_statement_and_rule():
    text = "alter table t alter column a type text, add constraint fk foreign key (b) references u;"
    assert findings(text) == [(1, 1, "lock-unsafe")]


# -- the other warning rules (up.sql only): each with SQL it flags and SQL it leaves alone --------

LONG = "a" * 64
CREATED = "create table t (id bigint primary key, a int, b text);\n"

OTHER_RULES = [
    ("rename-column", "alter table t rename column a to b;", "alter table t rename constraint a to b;"),
    ("rename-column", "alter table if exists only t rename a to b;", CREATED + "alter table t rename a to c;"),
    ("rename-table", "alter table t rename to u;", CREATED + "alter table t rename to u;"),
    ("drop-index-blocking", "drop index if exists i, j;", "-- sqlmigrate: no-transaction\ndrop index concurrently i;"),
    ("drop-index-blocking", "drop index s.i cascade;", "create index i on t (a);\ndrop index i;"),
    ("reindex-blocking", "reindex (verbose) table t;",
     "-- sqlmigrate: no-transaction\nreindex (concurrently) index i;"),
    ("reindex-blocking", "reindex index i;", "create index i on t (a);\nreindex index i;"),
    ("detach-partition-blocking", "alter table p detach partition c;",
     "-- sqlmigrate: no-transaction\nalter table p detach partition c concurrently;"),
    ("detach-partition-blocking", "alter table p detach partition c;",
     "-- sqlmigrate: no-transaction\nalter table p detach partition c finalize;"),
    ("set-not-null", "alter table t alter column a set not null;", "alter table t alter column a drop not null;"),
    ("set-not-null", "alter table t alter a set not null, alter b set default '';", CREATED +
     "alter table t alter column a set not null;"),
    ("add-primary-key", "alter table t add primary key (id);",
     "alter table t add constraint t_pkey primary key using index t_id;"),
    ("add-primary-key", "alter table t add column id bigint generated always as identity primary key;",
     CREATED.replace(" primary key", "") + "alter table t add primary key (id);"),
    ("unique-without-index", "alter table t add constraint u unique (a);",
     "alter table t add constraint u unique using index t_a;"),
    ("unique-without-index", "alter table t add column c text unique;", CREATED + "alter table t add unique (b);"),
    ("add-column-rewrite", "alter table t add column c uuid default gen_random_uuid();",
     "alter table t add column c timestamptz default now();"),
    ("add-column-rewrite", "alter table t add c int generated always as (a + 1) stored;",
     "alter table t add column c int default 0 not null;"),
    ("add-column-rewrite", "alter table t add column c bigserial;",
     "alter table t add column c text default lower('X');"),
    ("add-column-rewrite", "alter table t add column c text default my_function();",
     CREATED + "alter table t add column c uuid default gen_random_uuid();"),
    ("domain-constraint", "alter domain d add constraint c check (value > 0);",
     "alter domain d add constraint c check (value > 0) not valid;"),
    ("drop-database", "-- sqlmigrate: no-transaction\ndrop database if exists d;", "drop schema if exists d;"),
    ("char-type", "create table t (a char(10));", "create table t (a varchar(10), b character varying, c \"char\");"),
    ("char-type", "alter table t add column a character(2);", "alter table t add column a text;"),
    ("char-type", "alter table t alter column a type pg_catalog.bpchar;", "alter table t alter column a type text;"),
    ("timestamp-without-time-zone", "create table t (a timestamp(3));",
     "create table t (a timestamptz, b timestamp with time zone, c timestamp(3) with time zone);"),
    ("timestamp-without-time-zone", "alter table t add column a timestamp without time zone;",
     "alter table t add column a date;"),
    ("timestamp-without-time-zone", "alter table t alter column a type timestamp;",
     "alter table t alter column a type timestamptz;"),
    ("int-primary-key", "create table t (id serial primary key);", "create table t (id bigserial primary key, n int);"),
    ("int-primary-key", "create table t (a int, b int, primary key (a, b));",
     "create table t (a bigint, b int unique, primary key (a));"),
    ("int-primary-key", "create table t (id integer not null constraint t_pk primary key);",
     "create table t (id int generated always as identity);"),
    ("int-primary-key", "alter table t add column id smallint primary key;", "alter table t add column n int;"),
    ("enum-value-ordering", "alter type mood add value 'meh';", "alter type mood add value 'meh' before 'sad';"),
    ("enum-value-ordering", "alter type mood add value if not exists 'meh';",
     "alter type mood add value if not exists 'meh' after 'happy';"),
    ("identifier-too-long", f"create table {LONG} (id bigint);", f"create table {LONG[:63]} (id bigint);"),
    ("identifier-too-long", f'create index "{"é" * 32}" on t (a);', f"select '{LONG}';"),
    ("identifier-too-long", f"alter table t add column {LONG} text;", f'create index "{"é" * 31}" on t (a);'),
    ("identifier-too-long", f"create table t ({'😀' * 16} int);", f"create table t ({'😀' * 15} int);"),
]


@pytest.mark.parametrize("rule, flagged, left_alone", OTHER_RULES)
def test_other_warning_rules(rule, flagged, left_alone):
    last = flagged.count("\n") + 1  # each fires at the start of its file's last statement
    assert fired(flagged, rule) == [(last, 1)]
    assert fired(left_alone, rule) == []


@pytest.mark.parametrize("rule", sorted({rule for rule, _, _ in OTHER_RULES}))
def test_other_warning_rules_are_silenced_by_ignore_and_not_checked_in_down_sql(rule):
    flagged = next(text for r, text, _ in OTHER_RULES if r == rule)
    assert rules.RULES[rule] is Severity.WARNING
    assert fired(flagged, rule, kind="down") == []
    directive = f"-- sqlmigrate: ignore {rule}\n"
    if flagged.startswith("-- sqlmigrate: no-transaction\n"):
        directive = "-- sqlmigrate: no-transaction\n" + directive
        flagged = flagged.split("\n", 1)[1]
    assert fired(directive + flagged, rule) == []


def test_each_rule_reports_once_per_statement():
    text = "create table t (a char(1), b char(2), c timestamp, d timestamp);"
    assert findings(text) == [(1, 1, "char-type"), (1, 1, "timestamp-without-time-zone")]


# -- ignore directive ------------------------------------------------------------------


def test_ignore_silences_only_the_named_warning():
    text = "-- sqlmigrate: ignore destructive\ndrop table t;\ncreate index i on u (a);"
    assert findings(text) == [(3, 1, "lock-unsafe")]


def test_ignore_silences_several_warnings():
    text = "--  SQLMigrate : ignore Lock-Unsafe ,destructive\ndrop table t;\ncreate index i on u (a);"
    assert findings(text) == []


def test_ignore_does_not_silence_errors():
    text = "-- sqlmigrate: ignore destructive, lock-unsafe\nbegin;\ndrop table t;"
    assert findings(text) == [(2, 1, "transaction-control")]


def test_ignore_naming_an_error_rule_is_refused_and_silences_nothing():
    text = "-- sqlmigrate: ignore transaction-control\nbegin;"
    assert findings(text) == [(1, 1, "unknown-directive"), (2, 1, "transaction-control")]


# -- layout rules: discovery.scan + rules.check on folders ---------------------------


def layout_findings(mdir: Path) -> list[tuple[str, int, int, str]]:
    found = rules.check(discovery.scan(mdir), DEFAULT)
    return [(Path(f.path).relative_to(mdir).as_posix(), f.line, f.col, f.rule) for f in found]


def ok(name: str) -> dict[str, str]:
    return {f"{name}/up.sql": "select 1;\n", f"{name}/down.sql": "select 1;\n"}


@pytest.mark.parametrize(
    "folder, is_bad",
    [
        ("1-x", True),
        ("001_Bad", True),
        ("001_", True),
        ("_x", True),
        ("abc_x", True),
        ("001_x-y", True),
        ("001__x", True),
        ("stuff", True),  # a stray folder
        ("001_x", False),
        ("1_0", False),
        ("20261124153000_add_roles", False),
        ("0_x", False),
    ],
)
def test_bad_name(tmp_path, folder, is_bad):
    mdir = write_files(tmp_path / "migrations", ok(folder))
    expected = [(folder, 1, 1, "bad-name")] if is_bad else []
    assert layout_findings(mdir) == expected


def test_duplicate_id_compares_ids_as_integers(tmp_path):
    mdir = write_files(tmp_path / "migrations", {**ok("1_a"), **ok("001_b"), **ok("2_c"), **ok("20_d")})
    assert layout_findings(mdir) == [("1_a", 1, 1, "duplicate-id")]
    assert [m.id for m in discovery.scan(mdir).migrations] == ["001", "2", "20"]


def test_missing_up_and_down(tmp_path):
    mdir = write_files(tmp_path / "migrations", {
        "001_no_up/down.sql": "select 1;",
        "002_no_down/up.sql": "select 1;",
        "003_nothing": None,
        **ok("004_fine"),
    })
    assert layout_findings(mdir) == [
        ("001_no_up", 1, 1, "missing-up"),
        ("002_no_down", 1, 1, "missing-down"),
        ("003_nothing", 1, 1, "missing-down"),
        ("003_nothing", 1, 1, "missing-up"),
    ]


def test_not_utf8(tmp_path):
    mdir = write_files(tmp_path / "migrations", {
        "001_latin1/up.sql": "select 'caf\xe9';".encode("latin-1"),
        "001_latin1/down.sql": "select 1;",
        **ok("002_fine"),
    })
    assert layout_findings(mdir) == [("001_latin1/up.sql", 1, 1, "not-utf8")]


def test_plain_files_at_top_level_are_ignored(tmp_path):
    mdir = write_files(tmp_path / "migrations", {
        "README.md": "# migrations\n",
        "notes.sql": "this is not sql at all '",
        "LICENSE": b"\xff\xfe binary",
        **ok("001_x"),
    })
    assert layout_findings(mdir) == []


def test_findings_of_files_are_checked_too(tmp_path):
    mdir = write_files(tmp_path / "migrations", {
        "001_x/up.sql": "-- sqlmigrate: no-transaction\ncreate index concurrently i on t (a);\n",
        "001_x/down.sql": "drop index concurrently i;\n",
        "002_y/up.sql": "-- nothing yet\n",
        "002_y/down.sql": "-- sqlmigrate: irreversible\n",
    })
    assert layout_findings(mdir) == [
        ("001_x/down.sql", 1, 1, "needs-no-transaction"),
        ("002_y/up.sql", 1, 1, "empty-up"),
    ]


def test_only_ascii_letters_of_an_unquoted_name_are_folded_as_postgresql_does():
    # in a UTF-8 database PostgreSQL folds A-Z only: Äpfel and äpfel are two tables
    upper = rules.TrackingTable.parse("Äpfel")
    assert fired("create table Äpfel (x int);", "touches-tracking-table", table=upper) == [(1, 1)]
    assert fired("create table ÄPFEL (x int);", "touches-tracking-table", table=upper) == [(1, 1)]  # Äpfel
    assert fired("create table äpfel (x int);", "touches-tracking-table", table=upper) == []
    assert fired('create table "Äpfel" (x int);', "touches-tracking-table", table=upper) == [(1, 1)]
    lower = rules.TrackingTable.parse("äpfel")
    assert fired("create table Äpfel (x int);", "touches-tracking-table", table=lower) == []
    assert fired("CREATE TABLE äPFEL (x int);", "touches-tracking-table", table=rules.TrackingTable.parse("äpfel")) \
        == [(1, 1)]


def test_a_folder_name_ending_in_a_newline_is_a_bad_name(tmp_path):
    scan = discovery.scan(write_files(tmp_path, {**ok("001_ok"), **ok("002_x\n")}))
    assert [m.id for m in scan.migrations] == ["001"]
    assert [f.rule for f in scan.findings] == ["bad-name"]


# -- PostgreSQL 18: NOT NULL as a table constraint ----------------------------------------

@pytest.mark.parametrize("text", [
    "alter table t add constraint t_c_nn not null c not valid;\n",
    "alter table t validate constraint t_c_nn;\n",
    "alter table t alter constraint t_c_nn no inherit;\n",
    "alter table t rename constraint t_c_nn to t_c_required;\n",
    "create table t (c int);\nalter table t add constraint t_c_nn not null c;\n",
])
def test_postgres_18_not_null_forms_that_take_no_long_lock(text):
    assert findings(text) == []


@pytest.mark.parametrize("text", [
    "alter table t add constraint t_c_nn not null c;\n",
    "alter table t add not null c;\n",
    "alter table t add constraint t_c_nn not null c no inherit;\n",
])
def test_postgres_18_not_null_constraint_added_valid_is_set_not_null_not_a_new_column(text):
    assert findings(text) == [(1, 1, "set-not-null")]


def test_the_not_null_hint_gives_each_major_its_non_blocking_route():
    sql = parse_text(Path("m/001_x/up.sql"), "alter table t alter column c set not null;\n")
    (finding,) = rules.check_file(sql, "up", DEFAULT)
    assert finding.hint is not None
    assert "on PostgreSQL 18 and later: ADD CONSTRAINT name NOT NULL column NOT VALID, then VALIDATE" in finding.hint
    assert "before 18: add CHECK (column IS NOT NULL) NOT VALID" in finding.hint


def test_alter_constraint_inherit_is_flagged_and_no_inherit_is_not():
    assert findings("alter table t alter constraint t_c_nn inherit;\n") == [(1, 1, "set-not-null")]
    assert findings("alter table t alter constraint t_c_nn no inherit;\n") == []

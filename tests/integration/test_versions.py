"""SQL newer than the server: a failing migration names the PostgreSQL it needs.

Meaningful on every major of the matrix (scripts/pg-matrix.sh): on a server
that has the feature the sample runs, proving it is real SQL of that major;
on an older one it fails with exit 4 and the hint.
"""
from __future__ import annotations

import pytest

from sqlmigrate import versions
from tests.integration.helpers import run

# (first major, sample up.sql whose last statement needs it, the hint's opening words)
SAMPLES = [
    (14, "create table t (id int);\n"
         "create function f() returns trigger language plpgsql as $$ begin return new; end $$;\n"
         "create or replace trigger t_f before insert on t for each row execute function f();\n",
     "CREATE OR REPLACE TRIGGER needs PostgreSQL 14"),
    (14, "create function one() returns int language sql\nbegin atomic\n  select 1;\nend;\n",
     "a BEGIN ATOMIC function body needs PostgreSQL 14"),
    (15, "create table t (id int);\n"
         "merge into t using (select 1 as id) s on t.id = s.id when not matched then insert values (s.id);\n",
     "MERGE needs PostgreSQL 15"),
    (15, "create table u (a int unique nulls not distinct);\n", "UNIQUE NULLS NOT DISTINCT needs PostgreSQL 15"),
    (15, "create view v with (security_invoker = true) as select 1 as x;\n",
     "a security_invoker view needs PostgreSQL 15"),
    (15, "create table r (s text check (regexp_like(s, '^[a-z]+$')));\n", "regexp_like(), regexp_count()"),
    (16, "create table j (doc text check (doc is json object));\n", "IS JSON or an SQL/JSON constructor"),
    (16, "create view a as select any_value(x) as x from (values (1)) v(x);\n", "any_value() needs PostgreSQL 16"),
    (17, "create view jt as select * from json_table('[1]'::jsonb, '$[*]' columns (x int path '$')) t;\n",
     "JSON_TABLE or an SQL/JSON query function"),
    (17, "create table t (id int);\n"
         "merge into t using (select 1 as id) s on t.id = s.id when not matched then insert values (s.id) "
         "returning t.id;\n",
     "MERGE ... RETURNING needs PostgreSQL 17"),
    (18, "create table g (a int, b int generated always as (a * 2) virtual);\n",
     "a virtual generated column needs PostgreSQL 18"),
    (18, "create table c (a int check (a > 0) not enforced);\n", "a NOT ENFORCED constraint needs PostgreSQL 18"),
    (18, "create table k (id uuid primary key default uuidv7());\n", "uuidv7() or uuidv4() needs PostgreSQL 18"),
    (18, "create table n (a int);\nalter table n add constraint a_nn not null a not valid;\n",
     "a NOT NULL table constraint (ADD [CONSTRAINT name] NOT NULL column) needs PostgreSQL 18"),
]


@pytest.mark.parametrize("major, up, hint", SAMPLES, ids=[s[2].split(" needs")[0][:40] for s in SAMPLES])
def test_sql_of_a_later_major_fails_with_a_hint_naming_it(database, db, write_migrations, major, up, hint):
    mdir = write_migrations({"001_new_sql": (up, "select 1;\n")})
    result = run("up", mdir, database)
    if db.info.server_version >= major * 10000:
        assert result.exit_code == 0, result.stderr
        assert "needs PostgreSQL" not in result.stderr
    else:
        assert result.exit_code == 4, result.stderr
        assert "001_new_sql/up.sql:" in result.stderr
        this_server = versions.describe(db.info.server_version)
        assert f"  HINT: {hint}" in result.stderr, result.stderr
        assert f"; this server is PostgreSQL {this_server}" in result.stderr


def test_no_hint_for_an_ordinary_mistake(database, db, write_migrations):
    mdir = write_migrations({"001_typo": ("create table t (id int);\nmerge into t using nope s on true "
                                          "when not matched then insert values (1);\n", "select 1;\n")})
    result = run("up", mdir, database)
    assert result.exit_code == 4
    if db.info.server_version >= 150000:  # MERGE is known: the server's own error, nothing added
        assert "001_typo/up.sql:2:20: ERROR 42P01: relation \"nope\" does not exist" in result.stderr
        assert "needs PostgreSQL" not in result.stderr
    else:
        assert "MERGE needs PostgreSQL 15" in result.stderr


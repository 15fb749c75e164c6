"""schema.ddl and schema.quoting on in-memory snapshots: statements, their order, and what is refused."""
from __future__ import annotations

from sqlmigrate.schema import Key, Snapshot, diff
from sqlmigrate.schema.ddl import corrective, invert, statements
from sqlmigrate.schema.quoting import dollar_quoted, ident, literal, qualified, relation_name, split_list

USERS = Key("table", "public", "users")
MOOD = Key("type", "public", "mood")
V = Key("view", "public", "v")


def column(name: str, table: str = "users") -> Key:
    return Key("column", "public", table, name, "table")


def sql_of(source: Snapshot, target: Snapshot) -> list[str]:
    script = statements(diff(source, target), source, target)
    assert not script.unexpressed, script.unexpressed
    return [c.sql for c in script.changes]


def test_ident_quotes_what_postgresql_would_not_read_back():
    assert [ident(n) for n in ("users", "user", "Users", "order items", 'a"b', "_x1$")] == [
        "users", '"user"', '"Users"', '"order items"', '"a""b"', "_x1$"]
    assert qualified("public", "t") == "t" and qualified("Billing", "t") == '"Billing".t'


def test_literal_doubles_quotes_and_dollar_quoting_avoids_the_body():
    assert literal("it's") == "'it''s'"
    assert dollar_quoted("select 1") == "$$select 1$$"
    assert dollar_quoted("x $$ y") == "$body$x $$ y$body$"
    assert dollar_quoted("ends with $") == "$body$ends with $$body$"


def test_split_list_keeps_quotes_and_parentheses_whole():
    assert split_list("'a, b', 'c'") == ["'a, b'", "'c'"]
    assert split_list('x numeric(10,2), "y, z" text') == ["x numeric(10,2)", '"y, z" text']
    assert split_list("") == []
    assert relation_name('"Odd"."Name"') == ("Odd", "Name") and relation_name("t") == ("public", "t")


def test_an_added_column_is_one_alter_table_and_its_reverse_drops_it():
    source = Snapshot({USERS: {}, column("id"): {"type": "bigint", "nullable": "not null", "position": "1"}})
    target = Snapshot({**source.objects, column("nick"): {"type": "text", "nullable": "nullable", "position": "2"}})
    up, down = corrective(diff(source, target), source, target)
    assert [c.sql for c in up.changes] == ["ALTER TABLE users ADD COLUMN nick text"]
    assert [c.sql for c in down.changes] == ["ALTER TABLE users DROP COLUMN nick"]


def test_invert_swaps_the_two_sides():
    [d] = diff(Snapshot({column("id"): {"type": "int"}}), Snapshot({column("id"): {"type": "bigint"}}))
    back = invert(d)
    assert (back.expected, back.found, back.expected_object, back.found_object) == (
        "bigint", "int", {"type": "bigint"}, {"type": "int"})
    assert invert(back) == d


def test_a_view_over_a_retyped_column_is_dropped_before_and_created_after():
    table = {USERS: {}, column("n"): {"type": "integer", "position": "1"}}
    view = {"definition": " SELECT users.n\n   FROM users;"}
    source = Snapshot({**table, V: view}, dependencies={V: frozenset({column("n")})})
    target = Snapshot({**table, column("n"): {"type": "bigint", "position": "1"}, V: view},
                      dependencies={V: frozenset({column("n")})})
    assert sql_of(source, target) == [
        "DROP VIEW v",
        "ALTER TABLE users ALTER COLUMN n TYPE bigint USING n::bigint",
        "CREATE VIEW v AS\nSELECT users.n\n   FROM users",
    ]


def test_creates_follow_dependencies_not_names():
    # a table named before its type in the alphabet, and a view named before the table
    a_table, z_type = Key("table", "public", "a"), Key("type", "public", "z")
    b_view = Key("view", "public", "b")
    c = Key("column", "public", "a", "c", "table")
    target = Snapshot({a_table: {}, c: {"type": "z", "position": "1"}, z_type: {"form": "enum", "labels": "'x'"},
                       b_view: {"definition": "SELECT a.c FROM a"}},
                      dependencies={c: frozenset({z_type}), b_view: frozenset({c})})
    up, down = corrective(diff(Snapshot({}), target), Snapshot({}), target)
    assert [change.sql.split("\n")[0] for change in up.changes] == [
        "CREATE TYPE z AS ENUM ('x')", "CREATE TABLE a (", "CREATE VIEW b AS"]
    assert [change.sql for change in down.changes] == ["DROP VIEW b", "DROP TABLE a", "DROP TYPE z"]


def test_a_sequence_used_by_a_default_is_created_first_and_owned_after():
    seq = Key("sequence", "public", "users_id_seq")
    target = Snapshot(
        {USERS: {}, column("id"): {"type": "integer", "default": "nextval('users_id_seq'::regclass)",
                                   "nullable": "not null", "position": "1"},
         seq: {"type": "integer", "start": "1", "increment": "1", "min": "1", "max": "2147483647", "cache": "1",
               "cycle": "no", "owned by": "users.id"}},
        dependencies={column("id"): frozenset({seq})},
        facts={seq: {"owner": "id", "owner table": "users", "owner schema": "public"}})
    assert sql_of(Snapshot({}), target) == [
        "CREATE SEQUENCE users_id_seq AS integer",
        "CREATE TABLE users (\n    id integer DEFAULT nextval('users_id_seq'::regclass) NOT NULL\n)",
        "ALTER SEQUENCE users_id_seq OWNED BY users.id",
    ]


def test_enum_labels_added_in_place_and_removed_by_converting_the_columns():
    before = Snapshot({MOOD: {"form": "enum", "labels": "'sad', 'ok'"}, USERS: {},
                       column("m"): {"type": "mood", "position": "1"}},
                      dependencies={column("m"): frozenset({MOOD})})
    after = Snapshot({**before.objects, MOOD: {"form": "enum", "labels": "'sad', 'meh', 'ok'"}},
                     dependencies=before.dependencies)
    up, down = corrective(diff(before, after), before, after)
    assert [c.sql for c in up.changes] == ["ALTER TYPE mood ADD VALUE 'meh' AFTER 'sad'"]
    assert [c.sql for c in down.changes] == [
        "ALTER TYPE mood RENAME TO mood_old",
        "CREATE TYPE mood AS ENUM ('sad', 'ok')",
        "ALTER TABLE users ALTER COLUMN m TYPE mood USING m::text::mood",
        "DROP TYPE mood_old",
    ]


def test_enum_labels_removed_while_a_view_names_one_are_refused():
    objects = {MOOD: {"form": "enum", "labels": "'sad', 'ok'"}, USERS: {},
               column("m"): {"type": "mood", "position": "1"}, V: {"definition": "SELECT ... WHERE m = 'sad'::mood"}}
    dependencies = {column("m"): frozenset({MOOD}), V: frozenset({MOOD, column("m")})}
    source = Snapshot(objects, dependencies)
    target = Snapshot({**objects, MOOD: {"form": "enum", "labels": "'sad'"}}, dependencies)
    script = statements(diff(source, target), source, target)
    assert script.changes == ()
    assert [str(u) for u in script.unexpressed] == [
        "type mood: enum mood: labels removed ('ok'), which no ALTER TYPE does; table columns could be converted "
        "to a new type through text, but view v also uses it: write this change by hand"]


def test_a_rename_is_noted_only_when_each_side_has_one_match():
    table = {USERS: {}, column("id"): {"type": "bigint", "position": "1"}}
    source = Snapshot({**table, column("a"): {"type": "text", "position": "2"}})
    one = Snapshot({**table, column("b"): {"type": "text", "position": "2"}})
    two = Snapshot({**one.objects, column("c"): {"type": "text", "position": "3"}})
    assert statements(diff(source, one), source, one).notes == (
        "column users.a is dropped and column users.b added with the same definition: if the column was renamed, "
        "write ALTER TABLE users RENAME COLUMN a TO b instead, or its data is lost",)
    assert statements(diff(source, two), source, two).notes == ()


def test_partitioning_changed_is_refused_with_its_reason():
    source = Snapshot({USERS: {"partition by": "RANGE (id)"}})
    target = Snapshot({USERS: {"partition by": "LIST (id)"}})
    script = statements(diff(source, target), source, target)
    assert [str(u) for u in script.unexpressed] == [
        "table users: partition by changed: PostgreSQL cannot change how a table is partitioned in place, and "
        "making the table again would move its rows"]


def test_notes_are_left_as_they_are():
    table = {USERS: {}, column("a"): {"type": "int", "position": "1"}, column("b"): {"type": "int", "position": "2"}}
    moved = {**table, column("a"): {"type": "int", "position": "2"}, column("b"): {"type": "int", "position": "1"}}
    differences = diff(Snapshot(table), Snapshot(moved))
    assert [d.is_note for d in differences] == [True]
    assert statements(differences, Snapshot(table), Snapshot(moved)).changes == ()


def test_the_file_has_its_header_then_statements_grouped_by_object():
    target = Snapshot({USERS: {"comment": "people"}, column("id"): {"type": "bigint", "position": "1"}})
    text = statements(diff(Snapshot({}), target), Snapshot({}), target).text(["made from x", ""])
    assert text == ("-- made from x\n--\n\n"
                    "-- the names and expressions below are as PostgreSQL prints them for this search_path\n"
                    "SET LOCAL search_path = public;\n\n"
                    "-- table users\n"
                    "CREATE TABLE users (\n    id bigint\n);\n"
                    "COMMENT ON TABLE users IS 'people';\n")

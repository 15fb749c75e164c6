"""The snapshot diff and its text forms: pure functions on plain data, no database."""
from __future__ import annotations

from sqlmigrate.schema import Difference, Key, Snapshot, diff, format_snapshot, normalise_body


def table(name: str, schema: str = "public") -> Key:
    return Key("table", schema, name)


def column(tab: str, name: str, schema: str = "public") -> Key:
    return Key("column", schema, tab, name, "table")


def col(type_: str, position: int, nullable: str = "nullable", **more: str) -> dict[str, str]:
    return {"type": type_, "nullable": nullable, "position": str(position), **more}


USERS = {
    table("users"): {},
    column("users", "id"): col("bigint", 1, "not null"),
    column("users", "company"): col("character varying(255)", 2),
    Key("constraint", "public", "users", "users_pkey", "table"): {"definition": "PRIMARY KEY (id)"},
    Key("index", "public", "users", "users_company_idx", "table"): {
        "definition": "CREATE INDEX users_company_idx ON public.users USING btree (company)"},
}


def texts(differences: list[Difference]) -> list[str]:
    return [str(d) for d in differences]


def test_equal_snapshots_have_no_difference():
    assert diff(Snapshot(USERS), Snapshot(dict(USERS))) == []
    assert Snapshot(USERS) == Snapshot(dict(reversed(list(USERS.items()))))


def test_changed_type_reads_as_before_and_after():
    found = dict(USERS)
    found[column("users", "company")] = col("text", 2)
    [d] = diff(Snapshot(USERS), Snapshot(found))
    assert str(d) == "column users.company: type character varying(255) -> text"
    assert (d.change, d.attribute, d.expected, d.found, d.is_note) == (
        "changed", "type", "character varying(255)", "text", False)


def test_missing_and_extra_objects():
    found = {k: v for k, v in USERS.items() if k.kind != "index"}
    found[Key("trigger", "public", "users", "users_touch", "table")] = {"definition": "CREATE TRIGGER users_touch"}
    assert texts(diff(Snapshot(USERS), Snapshot(found))) == [
        "index users_company_idx: missing (CREATE INDEX users_company_idx ON public.users USING btree (company))",
        "trigger users.users_touch: extra (CREATE TRIGGER users_touch)",
    ]


def test_index_is_named_without_its_table_and_other_schemas_are_qualified():
    assert str(Key("index", "public", "api_keys", "idx_api_keys_user_id", "table")) == "index idx_api_keys_user_id"
    assert str(Key("index", "billing", "invoices", "invoices_idx", "table")) == "index billing.invoices_idx"
    assert str(Key("column", "billing", "invoices", "amount", "table")) == "column billing.invoices.amount"
    assert str(Key("extension", "", "pgcrypto")) == "extension pgcrypto"
    assert str(Key("function", "public", "touch()")) == "function touch()"


def test_members_of_a_missing_table_are_not_listed_one_by_one():
    assert texts(diff(Snapshot(USERS), Snapshot({}))) == ["table users: missing"]
    assert texts(diff(Snapshot({}), Snapshot(USERS))) == ["table users: extra"]


def test_nullability_default_and_identity_changes():
    found = dict(USERS)
    found[column("users", "id")] = col("bigint", 1, "nullable", default="0", identity="always")
    assert texts(diff(Snapshot(USERS), Snapshot(found))) == [
        "column users.id: not null -> nullable",
        "column users.id: default none -> 0",
        "column users.id: identity none -> always",
    ]


def test_column_order_alone_is_a_note():
    # a dropped column that comes back at the end of its table
    found = dict(USERS)
    found[column("users", "id")] = col("bigint", 2, "not null")
    found[column("users", "company")] = col("character varying(255)", 1)
    [d] = diff(Snapshot(USERS), Snapshot(found))
    assert d.is_note
    assert str(d) == "table users: column order: id now after company"
    assert (d.expected, d.found) == ("id, company", "company, id")


def test_a_missing_column_is_not_also_a_column_order_note():
    expected = dict(USERS)
    expected[column("users", "email")] = col("text", 3)
    found = dict(USERS)
    [d] = diff(Snapshot(expected), Snapshot(found))
    assert str(d) == "column users.email: missing (text)"
    assert not d.is_note


def function(body: str, **more: str) -> dict[Key, dict[str, str]]:
    return {Key("function", "public", "touch()"): {"returns": "trigger", "language": "plpgsql", "body": body, **more}}


def test_function_body_whitespace_and_comments_alone_are_a_note():
    before = function("begin\n  new.at := now();  -- fresh\n  return new;\nend")
    after = function("begin new.at:=now(); /* fresh */ return new; end\n")
    [d] = diff(Snapshot(before), Snapshot(after))
    assert d.is_note
    assert str(d) == "function touch(): body differs only in whitespace or comments"


def test_function_body_change_is_a_failure():
    [d] = diff(Snapshot(function("begin return new; end")), Snapshot(function("begin return old; end")))
    assert not d.is_note
    assert str(d) == "function touch(): body begin return new; end -> begin return old; end"


def test_function_options_are_compared():
    before = function("select 1", config="search_path=public")
    after = function("select 1")
    assert texts(diff(Snapshot(before), Snapshot(after))) == ["function touch(): config search_path=public -> none"]


def test_normalise_body_drops_only_whitespace_and_comments():
    assert normalise_body("a  +\tb -- x\n/* y /* nested */ z */ c") == "a + b c"
    assert normalise_body("a+b") == normalise_body("a + b")
    # inside strings, quoted names and dollar quotes, every character counts
    assert normalise_body("select '  -- not a comment'") == "select '  -- not a comment'"
    assert normalise_body("select '  a'") != normalise_body("select ' a'")
    assert normalise_body('select "a  b"') != normalise_body('select "a b"')
    assert normalise_body("execute $q$ a  b $q$") != normalise_body("execute $q$ a b $q$")
    # case is not whitespace
    assert normalise_body("BEGIN") != normalise_body("begin")
    assert normalise_body("x := 'it''s'") == "x := 'it''s'"


def test_enum_labels_order_and_comments_are_compared():
    key = Key("type", "public", "mood")
    before = {key: {"form": "enum", "labels": "'a', 'b'"}}
    after = {key: {"form": "enum", "labels": "'a', 'b', 'c'", "comment": "feelings"}}
    assert texts(diff(Snapshot(before), Snapshot(after))) == [
        "type mood: labels 'a', 'b' -> 'a', 'b', 'c'",
        "type mood: comment none -> 'feelings'",
    ]


def test_a_comment_reading_none_is_not_no_comment():
    key = Key("table", "public", "s")
    [d] = diff(Snapshot({key: {}}), Snapshot({key: {"comment": "none"}}))
    assert str(d) == "table s: comment none -> 'none'"
    [d] = diff(Snapshot({key: {"comment": "it's"}}), Snapshot({key: {"comment": "its"}}))
    assert str(d) == "table s: comment 'it''s' -> 'its'"
    assert (d.expected, d.found) == ("it's", "its")  # JSON keeps the values as they are


def test_differences_are_sorted_by_object_whatever_the_insertion_order():
    expected = {Key("extension", "", "pgcrypto"): {"version": "1.3", "schema": "public"}, **USERS}
    found = dict(reversed(list(expected.items())))
    found.pop(Key("extension", "", "pgcrypto"))
    found[column("users", "company")] = col("text", 2)
    assert texts(diff(Snapshot(expected), Snapshot(found))) == [
        "extension pgcrypto: missing (version 1.3 in schema public)",
        "column users.company: type character varying(255) -> text",
    ]


def test_format_snapshot_is_stable_sorted_and_nested():
    objects = {
        Key("function", "public", "touch()"): {"returns": "trigger", "language": "plpgsql",
                                               "volatility": "volatile", "body": "begin\n  return new;\nend"},
        **USERS,
        Key("schema", "", "public"): {"comment": "standard public schema"},
        Key("table", "billing", "invoices"): {},
        Key("column", "billing", "invoices", "amount", "table"): col("numeric(10,2)", 1),
    }
    text = format_snapshot(Snapshot(objects))
    assert text == format_snapshot(Snapshot(dict(reversed(list(objects.items())))))
    assert text == (
        "schema public\n"
        "  comment 'standard public schema'\n"
        "\n"
        "table users\n"
        "  column id: bigint not null\n"
        "  column company: character varying(255)\n"
        "  constraint users_pkey: PRIMARY KEY (id)\n"
        "  index users_company_idx: CREATE INDEX users_company_idx ON public.users USING btree (company)\n"
        "\n"
        "table billing.invoices\n"
        "  column amount: numeric(10,2)\n"
        "\n"
        "function touch(): returns trigger\n"
        "  plpgsql\n"
        "  body\n"
        "    begin\n"
        "      return new;\n"
        "    end\n"
    )


def test_columns_are_listed_in_table_order_not_by_name():
    objects = {table("t"): {}, column("t", "zeta"): col("int", 1), column("t", "alpha"): col("int", 2)}
    assert format_snapshot(Snapshot(objects)).splitlines()[1:] == ["  column zeta: int", "  column alpha: int"]


def test_sequence_headline_shows_only_options_that_are_not_defaults():
    key = Key("sequence", "public", "s")
    plain = {"type": "bigint", "start": "1", "increment": "1", "min": "1", "max": "9223372036854775807",
             "cache": "1", "cycle": "no"}
    assert format_snapshot(Snapshot({key: plain})) == "sequence s: bigint\n"
    tuned = dict(plain, type="integer", start="1000", increment="10", max="2147483647", cache="5",
                 **{"owned by": "t.id"})
    assert format_snapshot(Snapshot({key: tuned})) == \
        "sequence s: integer start 1000 increment 10 cache 5 owned by t.id\n"


def test_difference_json_carries_the_text():
    found = dict(USERS)
    found[column("users", "company")] = col("text", 2)
    [d] = diff(Snapshot(USERS), Snapshot(found))
    assert d.to_json() == {
        "object": "column users.company", "kind": "column", "change": "changed", "attribute": "type",
        "expected": "character varying(255)", "found": "text", "note": False,
        "text": "column users.company: type character varying(255) -> text",
    }


def test_long_or_multi_line_values_show_the_changed_lines():
    key = Key("view", "public", "v")
    before = {key: {"definition": " SELECT a,\n    b\n   FROM t;"}}
    after = {key: {"definition": " SELECT a,\n    c\n   FROM t;"}}
    [d] = diff(Snapshot(before), Snapshot(after))
    assert str(d).splitlines() == [
        "view v: definition changed:",
        "    SELECT a,",
        "  -    b",
        "  +    c",
        "      FROM t;",
    ]


# -- PostgreSQL 18: NOT NULL constraints, listed once ----------------------------------------

def not_null(tab: str, name: str, definition: str) -> tuple[Key, dict[str, str]]:
    return Key("constraint", "public", tab, name, "table"), {"definition": definition}


def with_members(*members: tuple[Key, dict[str, str]]) -> Snapshot:
    return Snapshot({table("t"): {}, **dict(members)})


def test_a_plain_not_null_constraint_is_its_column_s_difference():
    before = with_members((column("t", "c"), col("text", 1)))
    after = with_members((column("t", "c"), col("text", 1, "not null")), not_null("t", "t_c_not_null", "NOT NULL c"))
    assert texts(diff(before, after)) == ["column t.c: nullable -> not null"]


def test_a_named_no_inherit_or_not_valid_not_null_constraint_is_listed():
    before = with_members((column("t", "c"), col("text", 1)))
    for name, definition in (("c_required", "NOT NULL c"), ("t_c_not_null", "NOT NULL c NO INHERIT")):
        after = with_members((column("t", "c"), col("text", 1, "not null")), not_null("t", name, definition))
        assert texts(diff(before, after)) == ["column t.c: nullable -> not null",
                                              f"constraint t.{name}: extra ({definition})"]


def test_a_not_null_renamed_or_made_not_valid_is_a_difference():
    before = with_members((column("t", "c"), col("text", 1, "not null")), not_null("t", "t_c_not_null", "NOT NULL c"))
    renamed = with_members((column("t", "c"), col("text", 1, "not null")), not_null("t", "c_required", "NOT NULL c"))
    assert texts(diff(before, renamed)) == ["constraint t.c_required: extra (NOT NULL c)",
                                            "constraint t.t_c_not_null: missing (NOT NULL c)"]
    not_valid = with_members((column("t", "c"), col("text", 1, "not null (not valid)")),
                             not_null("t", "t_c_not_null", "NOT NULL c NOT VALID"))
    assert texts(diff(before, not_valid)) == [
        "column t.c: not null -> not null (not valid)",
        "constraint t.t_c_not_null: definition NOT NULL c -> NOT NULL c NOT VALID"]


def test_a_new_column_carries_its_valid_not_null_but_not_a_not_valid_one():
    before = with_members()
    named = with_members((column("t", "c"), col("text", 1, "not null")), not_null("t", "c_required", "NOT NULL c"))
    assert texts(diff(before, named)) == ["column t.c: extra (text not null)"]
    assert texts(diff(named, before)) == ["column t.c: missing (text not null)"]
    not_valid = with_members((column("t", "c"), col("text", 1, "not null (not valid)")),
                             not_null("t", "c_required", "NOT NULL c NOT VALID"))
    assert texts(diff(before, not_valid)) == ["column t.c: extra (text not null (not valid))",
                                              "constraint t.c_required: extra (NOT NULL c NOT VALID)"]

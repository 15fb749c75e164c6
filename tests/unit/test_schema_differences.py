"""A Difference as data: what DDL written from it needs, read without its display text."""
from __future__ import annotations

import subprocess
import sys

from sqlmigrate.schema import Difference, Key, Snapshot, diff
from tests.conftest import ROOT

USERS = Key("table", "public", "users")
ID = Key("column", "public", "users", "id", "table")
COMPANY = Key("column", "public", "users", "company", "table")
COMPANY_IDX = Key("index", "public", "users", "users_company_idx", "table")
TOUCH = Key("function", "billing", "touch(integer)")
MOOD = Key("type", "public", "mood")

BASE = {
    USERS: {"replica identity": "full"},
    ID: {"type": "bigint", "nullable": "not null", "position": "1"},
    COMPANY: {"type": "character varying(255)", "nullable": "nullable", "position": "2"},
    COMPANY_IDX: {"definition": "CREATE INDEX users_company_idx ON public.users USING btree (company)"},
    MOOD: {"form": "enum", "labels": "'sad', 'ok'"},
}


def only(expected: dict, found: dict) -> Difference:
    [d] = diff(Snapshot(expected), Snapshot(found))
    return d


def identity(d: Difference) -> tuple:
    return d.kind, d.schema, d.name, d.parent


def test_changed_column_type():
    found = dict(BASE)
    found[COMPANY] = dict(BASE[COMPANY], type="text")
    d = only(BASE, found)
    assert identity(d) == ("column", "public", "company", USERS)
    assert (d.change, d.attribute, d.expected, d.found, d.is_note) == (
        "changed", "type", "character varying(255)", "text", False)
    # the rest of the column, on both sides, for DDL that needs more than the one attribute
    assert d.expected_object == BASE[COMPANY]
    assert d.found_object == found[COMPANY]
    assert d.members == {}


def test_missing_index():
    found = {k: v for k, v in BASE.items() if k != COMPANY_IDX}
    d = only(BASE, found)
    assert identity(d) == ("index", "public", "users_company_idx", USERS)
    assert (d.change, d.attribute, d.expected, d.found, d.is_note) == ("missing", None, None, None, False)
    assert d.expected_object == {"definition": "CREATE INDEX users_company_idx ON public.users USING btree (company)"}
    assert d.found_object is None


def test_extra_function():
    attrs = {"arguments": "amount integer", "returns": "integer", "language": "sql", "volatility": "immutable",
             "body": "select amount + 1"}
    d = only(BASE, {**BASE, TOUCH: attrs})
    assert identity(d) == ("function", "billing", "touch(integer)", None)
    assert (d.change, d.attribute, d.expected, d.found, d.is_note) == ("extra", None, None, None, False)
    assert d.expected_object is None
    assert d.found_object == attrs


def test_changed_enum_labels():
    found = dict(BASE)
    found[MOOD] = {"form": "enum", "labels": "'sad', 'ok', 'happy'"}
    d = only(BASE, found)
    assert identity(d) == ("type", "public", "mood", None)
    assert (d.change, d.attribute, d.expected, d.found, d.is_note) == (
        "changed", "labels", "'sad', 'ok'", "'sad', 'ok', 'happy'", False)
    assert d.found_object == {"form": "enum", "labels": "'sad', 'ok', 'happy'"}


def test_column_order_is_a_note_with_both_orders():
    found = dict(BASE)
    found[ID] = dict(BASE[ID], position="2")
    found[COMPANY] = dict(BASE[COMPANY], position="1")
    d = only(BASE, found)
    assert identity(d) == ("table", "public", "users", None)
    assert (d.change, d.attribute, d.is_note) == ("changed", "column order", True)
    assert (d.expected_order, d.found_order) == (("id", "company"), ("company", "id"))
    # names are kept whole, even one with the ", " that the joined value uses
    odd = Key("column", "public", "users", "a, b", "table")
    expected = {**BASE, odd: {"type": "int", "nullable": "nullable", "position": "3"}}
    found = {**found, odd: {"type": "int", "nullable": "nullable", "position": "0"}}
    d = only(expected, found)
    assert (d.expected_order, d.found_order) == (("id", "company", "a, b"), ("a, b", "company", "id"))


def test_body_whitespace_is_a_note_and_keeps_both_bodies():
    before = {TOUCH: {"returns": "integer", "language": "sql", "body": "select  amount + 1"}}
    after = {TOUCH: {"returns": "integer", "language": "sql", "body": "select amount + 1 -- one more"}}
    d = only(before, after)
    assert (d.attribute, d.expected, d.found, d.is_note) == ("body", "select  amount + 1",
                                                             "select amount + 1 -- one more", True)


def test_a_missing_table_carries_its_members():
    d = only(BASE, {MOOD: BASE[MOOD]})
    assert identity(d) == ("table", "public", "users", None)
    assert d.change == "missing"
    assert d.expected_object == {"replica identity": "full"}
    assert d.members == {k: v for k, v in BASE.items() if k.member}


def test_an_extra_domain_carries_its_constraints():
    domain = Key("type", "public", "positive")
    check = Key("constraint", "public", "positive", "positive_check", "type")
    found = {**BASE, domain: {"form": "domain", "base type": "integer", "nullable": "nullable"},
             check: {"definition": "CHECK (VALUE > 0)"}}
    d = only(BASE, found)
    assert (d.kind, d.change, d.name) == ("type", "extra", "positive")
    assert d.members == {check: {"definition": "CHECK (VALUE > 0)"}}


def test_differences_can_be_hashed_and_compared():
    found = dict(BASE)
    found[COMPANY] = dict(BASE[COMPANY], type="text")
    first, again = diff(Snapshot(BASE), Snapshot(found)), diff(Snapshot(BASE), Snapshot(found))
    assert first == again
    assert len({*first, *again}) == 1


def test_the_diff_loads_without_the_database_driver():
    code = ("import sys\n"
            "from sqlmigrate.schema import diff, Snapshot, format_snapshot\n"
            "print('psycopg' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"

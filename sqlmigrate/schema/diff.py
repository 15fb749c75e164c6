"""How two snapshots differ, as data: pure functions on plain records, no database.

Builds on records.py alone; the text and JSON forms of a Difference live in text.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from sqlmigrate.schema.quoting import ident, leading_name
from sqlmigrate.schema.records import Attributes, Key, Snapshot

MISSING, EXTRA, CHANGED = "missing", "extra", "changed"


@dataclass(frozen=True)
class Difference:
    """One way `found` differs from `expected`, as data: enough to write the DDL
    that turns one into the other without reading any display text.

    With no `attribute`, the whole object is missing (in expected only) or
    extra (in found only). Otherwise that attribute changed from `expected`
    to `found` (None: not set on that side). A note is a difference that is
    not a failure: column order, function body whitespace and comments.
    """

    key: Key  # the object's kind and identity
    attribute: str | None = None
    expected: str | None = None
    found: str | None = None
    is_note: bool = False
    # the object's attributes on each side (None where it does not exist): a
    # missing or extra object in full, or the rest of a changed one
    expected_object: Attributes | None = field(default=None, hash=False)
    found_object: Attributes | None = field(default=None, hash=False)
    # a missing or extra table or type: its members, not listed one by one
    members: Mapping[Key, Attributes] = field(default_factory=dict, hash=False)
    # a column order note: the columns both sides have, in each side's order
    # (`expected` and `found` are these joined by ", ")
    expected_order: tuple[str, ...] = ()
    found_order: tuple[str, ...] = ()

    @property
    def change(self) -> str:
        """missing, extra or changed."""
        if self.attribute is not None:
            return CHANGED
        return MISSING if self.found_object is None else EXTRA

    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def schema(self) -> str:
        return self.key.schema

    @property
    def name(self) -> str:
        """The object's own name: a member's (column, index, ...) rather than its table's."""
        return self.key.member or self.key.name

    @property
    def parent(self) -> Key | None:
        """The table (or view, or type) that a member belongs to."""
        return self.key.parent_key

    def __str__(self) -> str:
        from sqlmigrate.schema import text

        return text.difference_text(self)

    def to_json(self) -> dict[str, Any]:
        from sqlmigrate.schema import text

        return text.difference_json(self)


def diff(expected: Snapshot, found: Snapshot) -> list[Difference]:
    """How `found` differs from `expected`, in display order; pure.

    Members of a missing or extra table are not listed one by one: its
    Difference carries them. Column order (of the columns both have) and
    function bodies that differ only in whitespace and comments are notes.
    """
    exp, got = expected.objects, found.objects
    gone = {(k.schema, k.name) for k in exp if not k.member and k not in got}
    new = {(k.schema, k.name) for k in got if not k.member and k not in exp}
    gone_members = _members(exp, gone)
    new_members = _members(got, new)
    out: list[Difference] = []
    for key in sorted(set(exp) | set(got), key=Key.sort_key):
        if key not in got:
            if not (key.member and (key.schema, key.name) in gone):
                out.append(Difference(key, expected_object=exp[key],
                                      members=gone_members.get((key.schema, key.name), {})))
            continue
        if key not in exp:
            if not (key.member and (key.schema, key.name) in new):
                out.append(Difference(key, found_object=got[key],
                                      members=new_members.get((key.schema, key.name), {})))
            continue
        before, after = exp[key], got[key]
        for attribute in _attribute_order(before, after):
            if attribute in _NOT_COMPARED or before.get(attribute) == after.get(attribute):
                continue
            is_note = attribute == "body" and normalise_body(before.get(attribute) or "") == normalise_body(
                after.get(attribute) or "")
            out.append(Difference(key, attribute, before.get(attribute), after.get(attribute), is_note,
                                  expected_object=before, found_object=after))
        if key.kind == "table":
            order = _column_order_note(key, exp, got)
            if order is not None:
                out.append(order)
    return sorted(_without_column_not_nulls(out), key=lambda d: d.key.sort_key())


def plain_not_null(key: Key, attrs: Attributes) -> str | None:
    """The column of a NOT NULL constraint (PostgreSQL 18) that says no more than the column's
    `not null`: valid, inheritable, under the name PostgreSQL gives it (`<table>_<column>_not_null`)."""
    definition = attrs.get("definition", "")
    if key.kind != "constraint" or not definition.startswith("NOT NULL "):
        return None
    column, rest = leading_name(definition[len("NOT NULL "):])
    if rest or ident(column) != definition[len("NOT NULL "):]:
        return None  # NOT VALID or NO INHERIT
    default = f"{key.name}_{column}_not_null"
    return column if key.member == default and len(default.encode()) <= 63 else None


def _without_column_not_nulls(differences: list[Difference]) -> list[Difference]:
    """A NOT NULL constraint (PostgreSQL 18) that is part of its column's own difference is not listed
    twice: a valid one that comes or goes with its column (a column's definition cannot say NOT
    VALID), or a plain one that comes or goes with the column's NOT NULL."""
    whole = {d.key: d.change for d in differences if d.kind == "column" and d.attribute is None}
    nullability = {d.key for d in differences if d.kind == "column" and d.attribute == "nullable"
                   and "nullable" in (d.expected, d.found)}

    def folded(d: Difference) -> bool:
        attrs = d.expected_object or d.found_object or {}
        definition = attrs.get("definition", "")
        if d.kind != "constraint" or d.attribute is not None or not definition.startswith("NOT NULL "):
            return False
        column_name, _ = leading_name(definition[len("NOT NULL "):])
        column = Key("column", d.key.schema, d.key.name, column_name, d.key.parent)
        if whole.get(column) == d.change:
            return not definition.endswith(" NOT VALID")  # the column's definition cannot say NOT VALID
        return column in nullability and plain_not_null(d.key, attrs) is not None

    return [d for d in differences if not folded(d)]


_NOT_COMPARED = frozenset({"position"})


def _members(objects: Mapping[Key, Attributes],
             parents: set[tuple[str, str]]) -> dict[tuple[str, str], dict[Key, Attributes]]:
    """(schema, name) of each parent -> its members, for the parents given."""
    members: dict[tuple[str, str], dict[Key, Attributes]] = {}
    if parents:
        for key, attrs in objects.items():
            if key.member and (key.schema, key.name) in parents:
                members.setdefault((key.schema, key.name), {})[key] = attrs
    return members


def _attribute_order(before: Attributes, after: Attributes) -> list[str]:
    names = list(before)
    names.extend(a for a in after if a not in before)
    return names


def _columns_in_order(table: Key, objects: Mapping[Key, Attributes]) -> list[str]:
    columns = [(int(attrs.get("position", "0")), k.member) for k, attrs in objects.items()
               if k.kind == "column" and (k.schema, k.name) == (table.schema, table.name)]
    return [name for _, name in sorted(columns)]


def _column_order_note(table: Key, exp: Mapping[Key, Attributes], got: Mapping[Key, Attributes]) -> Difference | None:
    before, after = _columns_in_order(table, exp), _columns_in_order(table, got)
    common = set(before) & set(after)
    before = [c for c in before if c in common]
    after = [c for c in after if c in common]
    if before == after:
        return None
    return Difference(table, "column order", ", ".join(before), ", ".join(after), is_note=True,
                      expected_object=exp[table], found_object=got[table],
                      expected_order=tuple(before), found_order=tuple(after))


_BODY_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<line_comment>--[^\n]*)
      | (?P<block_comment>/\*)
      | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*)?\$)
      | (?P<escape_string>[Ee]'(?:[^'\\]|\\.|'')*'?)
      | (?P<string>'(?:[^']|'')*'?)
      | (?P<quoted>"(?:[^"]|"")*"?)
      | (?P<word>[A-Za-z_0-9\x80-\uffff.$]+)
      | (?P<operator>(?:[+*<>=~!@\#%^&|`?:]|-(?!-)|/(?!\*))+)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


def normalise_body(text: str) -> str:
    """A function body's tokens joined by single spaces: whitespace and comments gone.

    Strings, quoted names and nested dollar-quoted text are kept exactly;
    case is kept too (only whitespace and comments are ignorable, SPEC 3).
    """
    tokens: list[str] = []
    i = 0
    while i < len(text):
        match = _BODY_TOKEN.match(text, i)
        assert match is not None  # `other` matches any character
        kind, value = match.lastgroup, match.group()
        if kind == "block_comment":
            i = _block_comment_end(text, i)
            continue
        if kind == "dollar":
            end = text.find(value, match.end())
            stop = len(text) if end < 0 else end + len(value)
            tokens.append(text[i:stop])
            i = stop
            continue
        if kind not in ("space", "line_comment"):
            tokens.append(value)
        i = match.end()
    return " ".join(tokens)


def _block_comment_end(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)

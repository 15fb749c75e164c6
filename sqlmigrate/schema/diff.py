"""How two snapshots differ: pure functions on plain records, no database.

Imports only records.py; the text and JSON forms of a Difference live in text.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from sqlmigrate.schema.records import Attributes, Key, Snapshot


@dataclass(frozen=True)
class Difference:
    """One way `found` differs from `expected`.

    With no `attribute`, the whole object is missing (expected only) or extra
    (found only); otherwise that attribute changed. A note is a difference
    that is not a failure: column order, function body whitespace/comments.
    """

    key: Key
    attribute: str | None
    expected: str | None
    found: str | None
    is_note: bool = False
    summary: str = ""  # the object's headline, for a missing or extra one

    @property
    def change(self) -> str:
        if self.attribute is not None:
            return "changed"
        return "missing" if self.found is None else "extra"

    def __str__(self) -> str:
        from sqlmigrate.schema import text

        return text.difference_text(self)

    def to_json(self) -> dict[str, Any]:
        from sqlmigrate.schema import text

        return text.difference_json(self)


def diff(expected: Snapshot, found: Snapshot) -> list[Difference]:
    """How `found` differs from `expected`, in display order; pure.

    Members of a missing or extra table are not listed one by one. Column
    order (of the columns both have) and function bodies that differ only in
    whitespace and comments are notes.
    """
    from sqlmigrate.schema.text import headline, moves

    exp, got = expected.objects, found.objects
    gone = {(k.schema, k.name) for k in exp if not k.member and k not in got}
    new = {(k.schema, k.name) for k in got if not k.member and k not in exp}
    out: list[Difference] = []
    for key in sorted(set(exp) | set(got), key=Key.sort_key):
        if key not in got:
            if not (key.member and (key.schema, key.name) in gone):
                out.append(Difference(key, None, headline(key, exp[key]), None, summary=headline(key, exp[key])))
            continue
        if key not in exp:
            if not (key.member and (key.schema, key.name) in new):
                out.append(Difference(key, None, None, headline(key, got[key]), summary=headline(key, got[key])))
            continue
        before, after = exp[key], got[key]
        for attribute in _attribute_order(before, after):
            if attribute in _NOT_COMPARED or before.get(attribute) == after.get(attribute):
                continue
            is_note = attribute == "body" and normalise_body(before.get(attribute) or "") == normalise_body(
                after.get(attribute) or "")
            out.append(Difference(key, attribute, before.get(attribute), after.get(attribute), is_note))
        if key.kind == "table":
            order = _column_order_note(key, exp, got, moves)
            if order is not None:
                out.append(order)
    return sorted(out, key=lambda d: d.key.sort_key())


_NOT_COMPARED = frozenset({"position"})


def _attribute_order(before: Attributes, after: Attributes) -> list[str]:
    names = list(before)
    names.extend(a for a in after if a not in before)
    return names


def _columns_in_order(table: Key, objects: Mapping[Key, Attributes]) -> list[str]:
    columns = [(int(attrs.get("position", "0")), k.member) for k, attrs in objects.items()
               if k.kind == "column" and (k.schema, k.name) == (table.schema, table.name)]
    return [name for _, name in sorted(columns)]


def _column_order_note(table: Key, exp: Mapping[Key, Attributes], got: Mapping[Key, Attributes],
                       moves) -> Difference | None:
    before, after = _columns_in_order(table, exp), _columns_in_order(table, got)
    common = set(before) & set(after)
    before = [c for c in before if c in common]
    after = [c for c in after if c in common]
    if before == after:
        return None
    return Difference(table, "column order", ", ".join(before), ", ".join(after), is_note=True,
                      summary=moves(before, after))


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

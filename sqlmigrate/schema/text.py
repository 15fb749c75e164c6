"""The text and JSON forms of snapshots and differences: what `schema`, `test` and `drift` print.

Pure functions on the records of records.py and diff.py; no database.
"""
from __future__ import annotations

import difflib
from typing import Any

from sqlmigrate.schema.diff import MISSING, Difference
from sqlmigrate.schema.records import Attributes, Key, Snapshot, display_order, member_order


def object_name(key: Key) -> str:
    """How reports name an object: `column users.company`, `index users_company_idx`."""
    if key.kind == "index":
        return f"index {qualify(key.schema, key.member)}"
    if key.member:
        return f"{key.kind} {qualify(key.schema, key.name)}.{key.member}"
    return f"{key.kind} {qualify(key.schema, key.name)}"


def qualify(schema: str, name: str) -> str:
    # the snapshot is read with search_path = public: objects there go unqualified
    return name if schema in ("", "public") else f"{schema}.{name}"


# -- snapshots -------------------------------------------------------------------------


def format_snapshot(snapshot: Snapshot) -> str:
    """Stable, sorted, human-readable text: one block per object, members indented.

    Made to be committed and diffed in review; a header line is not included
    so that the text depends on the schema only.
    """
    objects = snapshot.objects
    blocks: list[list[str]] = []
    members: dict[tuple[str, str], list[Key]] = {}
    for key in objects:
        if key.member:
            members.setdefault((key.schema, key.name), []).append(key)
    for key in sorted((k for k in objects if not k.member), key=Key.sort_key):
        lines = _object_lines(key, objects[key], "")
        for member in sorted(members.pop((key.schema, key.name), []), key=member_order(objects)):
            lines.extend(_object_lines(member, objects[member], "  "))
        blocks.append(lines)
    for (schema, name), orphans in sorted(members.items()):  # a member whose parent is not listed
        for member in sorted(orphans, key=member_order(objects)):
            blocks.append(_object_lines(member, objects[member], ""))
    return "\n\n".join("\n".join(block) for block in blocks) + ("\n" if blocks else "")


def _object_lines(key: Key, attrs: Attributes, indent: str) -> list[str]:
    label = f"{key.kind} {key.member}" if key.member else str(key)
    summary = headline(key, attrs)
    lines = [f"{indent}{label}: {summary}" if summary else f"{indent}{label}"]
    for line in _detail_lines(key, attrs):
        lines.append(f"{indent}  {line}".rstrip())
    if "comment" in attrs:
        lines.append(f"{indent}  comment {_literal(attrs['comment'])}")
    return lines


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''").replace("\n", "\\n") + "'"


def headline(key: Key, attrs: Attributes) -> str:
    """One line saying what the object is (empty for a table: its members say it)."""
    kind = key.kind
    if kind == "column":
        parts = [attrs.get("type", "?")]
        if attrs.get("collation"):
            parts.append(f"collate {attrs['collation']}")
        if attrs.get("nullable", "nullable") != "nullable":
            parts.append(attrs["nullable"])  # not null, or (PostgreSQL 18) not null (not valid)
        if "default" in attrs:
            parts.append(f"default {attrs['default']}")
        if "identity" in attrs:
            parts.append(f"generated {attrs['identity']} as identity")
            if "identity options" in attrs:
                parts.append(f"({attrs['identity options']})")
        if "generated" in attrs:
            parts.append(f"generated always as ({attrs['generated']}) {attrs.get('generated kind', 'stored')}")
        return " ".join(parts)
    if kind in ("constraint", "index", "trigger", "rule", "statistics"):
        text = attrs.get("definition", "")
        if attrs.get("valid") == "no":
            text += " (invalid)"
        if attrs.get("also local") == "yes":
            text += " (inherited, and also made on this table)"
        if attrs.get("enabled", "origin") != "origin":
            text += f" (enabled: {attrs['enabled']})"
        return text
    if kind == "policy":
        return " ".join(f"{a} {attrs[a]}" for a in ("as", "for", "to", "using", "with check") if a in attrs)
    if kind == "extension":
        return f"version {attrs.get('version', '?')} in schema {attrs.get('schema', '?')}"
    if kind == "sequence":
        return sequence_text(attrs)
    if kind == "type":
        form = attrs.get("form", "")
        if form == "enum":
            return f"enum ({attrs.get('labels', '')})"
        if form == "composite":
            return f"composite ({attrs.get('attributes', '')})"
        if form == "domain":
            text = f"domain over {attrs.get('base type', '?')}"
            if attrs.get("collation"):
                text += f" collate {attrs['collation']}"
            if attrs.get("nullable") == "not null":
                text += " not null"
            if "default" in attrs:
                text += f" default {attrs['default']}"
            return text
        if form == "range":
            return f"range of {attrs.get('subtype', '?')}"
        return form
    if kind in ("function", "procedure", "aggregate"):
        return f"returns {attrs['returns']}" if attrs.get("returns") else ""
    if kind in ("view", "materialized view"):
        return ""
    if kind == "table":
        return ", ".join(f"{a} {attrs[a]}" for a in _TABLE_HEADLINE if a in attrs)
    return ""


_TABLE_HEADLINE = ("persistence", "partition by", "partition of", "inherits", "foreign server")


def _detail_lines(key: Key, attrs: Attributes) -> list[str]:
    kind = key.kind
    lines: list[str] = []
    if kind == "table":
        lines.extend(f"{a} {attrs[a]}" for a in ("options", "access method", "tablespace", "row level security",
                                                   "replica identity", "foreign options") if a in attrs)
    elif kind in ("view", "materialized view"):
        lines.extend(f"{a} {attrs[a]}" for a in ("options", "access method", "tablespace") if a in attrs)
        lines.append("as")
        lines.extend("  " + line for line in attrs.get("definition", "").splitlines())
    elif kind in ("function", "procedure", "aggregate"):
        options = [attrs[a] for a in ("language", "volatility", "strict", "security", "leakproof", "parallel")
                   if a in attrs and attrs[a] not in _DEFAULT_FUNCTION_OPTIONS]
        for a in ("cost", "rows"):
            if a in attrs:
                options.append(f"{a} {attrs[a]}")
        if attrs.get("window") == "yes":
            options.append("window")
        if options:
            lines.append(", ".join(options))
        identity = key.name[key.name.find("(") + 1:-1]
        if attrs.get("arguments") not in (None, identity):
            lines.append(f"arguments {attrs['arguments']}")  # names, modes or defaults the key does not show
        if "config" in attrs:
            lines.extend(f"set {item}" for item in attrs["config"].split("\n"))
        if "aggregate" in attrs:
            lines.append(attrs["aggregate"])
        if "library" in attrs:
            lines.append(f"library {attrs['library']}")
        if attrs.get("body", "").strip():
            lines.append("body")
            lines.extend("  " + line for line in attrs["body"].strip("\n").splitlines())
    return lines


_DEFAULT_FUNCTION_OPTIONS = frozenset({"volatile", "called on null input", "security invoker", "not leakproof",
                                       "parallel unsafe"})


_SEQUENCE_TYPE_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}


def sequence_text(attrs: Attributes) -> str:
    """The sequence's type and its options that are not the defaults for that type."""
    text = attrs.get("type", "bigint")
    increment = int(attrs.get("increment", "1"))
    top = _SEQUENCE_TYPE_MAX.get(text, 9223372036854775807)
    low, high = (1, top) if increment > 0 else (-top - 1, -1)
    parts = [text]
    if attrs.get("start") != str(low if increment > 0 else high):
        parts.append(f"start {attrs.get('start')}")
    if increment != 1:
        parts.append(f"increment {increment}")
    if attrs.get("min") != str(low):
        parts.append(f"minvalue {attrs.get('min')}")
    if attrs.get("max") != str(high):
        parts.append(f"maxvalue {attrs.get('max')}")
    if attrs.get("cache", "1") != "1":
        parts.append(f"cache {attrs['cache']}")
    if attrs.get("cycle") == "yes":
        parts.append("cycle")
    if "owned by" in attrs:
        parts.append(f"owned by {attrs['owned by']}")
    return " ".join(parts)


def snapshot_json(snapshot: Snapshot) -> list[dict[str, Any]]:
    objects = snapshot.objects
    return [
        {"object": str(key), "kind": key.kind, "schema": key.schema or None, "name": key.name,
         "member": key.member or None, "attributes": dict(objects[key])}
        for key in sorted(objects, key=display_order(objects))
    ]


# -- differences -----------------------------------------------------------------------


def difference_text(d: Difference) -> str:
    """One line, or for long and multi-line values a line and the changed lines, diff-style."""
    if d.attribute is None:
        text = f"{d.key}: {d.change}"
        summary = _whole_object(d)
        return f"{text} ({_short(summary)})" if summary else text
    if d.attribute == "body" and d.is_note:
        return f"{d.key}: body differs only in whitespace or comments"
    if d.attribute == "column order":
        return f"{d.key}: column order: {moves(list(d.expected_order), list(d.found_order))}"
    before, after = d.expected or "", d.found or ""
    if "\n" in before + after or len(before) + len(after) > 160:
        changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                         lineterm="", n=1)
                   if not line.startswith(("---", "+++", "@@"))]
        return "\n".join([f"{d.key}: {d.attribute} changed:", *(f"  {line}" for line in changed)])
    before, after = _short(d.expected), _short(d.found)
    if d.attribute == "comment":  # free text: quoted, so that a comment 'none' is not no comment
        before, after = (_short(_quoted(v)) if v is not None else "none" for v in (d.expected, d.found))
    if d.attribute in _BARE_ATTRIBUTES:
        return f"{d.key}: {before} -> {after}"
    return f"{d.key}: {d.attribute} {before} -> {after}"


def difference_json(d: Difference) -> dict[str, Any]:
    """For a missing or extra object, `expected` or `found` is its headline."""
    expected, found = d.expected, d.found
    if d.attribute is None:
        expected, found = (_whole_object(d), None) if d.change == MISSING else (None, _whole_object(d))
    return {"object": str(d.key), "kind": d.key.kind, "change": d.change,
            "attribute": d.attribute, "expected": expected, "found": found,
            "note": d.is_note, "text": difference_text(d)}


def _whole_object(d: Difference) -> str:
    attrs = d.expected_object if d.change == MISSING else d.found_object
    return headline(d.key, attrs or {})


_BARE_ATTRIBUTES = frozenset({"nullable"})


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _short(value: str | None) -> str:
    if value is None:
        return "none"
    if "\n" in value:
        lines = [line.strip() for line in value.strip().splitlines() if line.strip()]
        value = " ".join(lines)
    return value if len(value) <= 200 else value[:197] + "..."


def moves(before: list[str], after: list[str]) -> str:
    """Where the columns that moved are now: those outside a longest common subsequence."""
    n, m = len(before), len(after)
    length = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            length[i][j] = (length[i + 1][j + 1] + 1 if before[i] == after[j]
                            else max(length[i + 1][j], length[i][j + 1]))
    kept: set[str] = set()
    i = j = 0
    while i < n and j < m:
        if before[i] == after[j]:
            kept.add(before[i])
            i, j = i + 1, j + 1
        elif length[i + 1][j] >= length[i][j + 1]:
            i += 1
        else:
            j += 1
    moved = []
    for index, column in enumerate(after):
        if column not in kept:
            moved.append(f"{column} now after {after[index - 1]}" if index else f"{column} now first")
    return "; ".join(moved)

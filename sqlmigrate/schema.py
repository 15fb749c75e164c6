"""Catalog snapshot and diff; the scratch database of `test` and `drift`.

A snapshot is read from pg_catalog into plain data (object key -> attributes),
so `diff` and the text forms are pure functions. Uses psycopg (like db.py);
imports nothing above executor.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, NoReturn

import psycopg
from psycopg import sql

from sqlmigrate import config, db
from sqlmigrate.errors import DatabaseUnavailable
from sqlmigrate.model import Finding, SqlError
from sqlmigrate.target import Target

# -- records -------------------------------------------------------------------------

# Top-level kinds in the order a snapshot lists them, then the members of a
# table (or of a domain type), in the order they are listed under it.
KINDS = ("schema", "extension", "type", "sequence", "table", "view", "materialized view",
         "function", "procedure", "aggregate", "statistics")
MEMBER_KINDS = ("column", "constraint", "index", "trigger", "policy", "rule")


@dataclass(frozen=True)
class Key:
    """Names one object, independently of its OID and of when it was created.

    `member` is set for what lives in a table or type (column, constraint,
    index, trigger, policy, rule); `name` is then that table's name and
    `parent` its kind. Functions are named with their argument types.
    """

    kind: str
    schema: str  # "" for schemas and extensions
    name: str
    member: str = ""
    parent: str = ""

    def __str__(self) -> str:
        if self.kind == "index":
            return f"index {_qualify(self.schema, self.member)}"
        if self.member:
            return f"{self.kind} {_qualify(self.schema, self.name)}.{self.member}"
        return f"{self.kind} {_qualify(self.schema, self.name)}"

    @property
    def parent_key(self) -> "Key | None":
        return Key(self.parent, self.schema, self.name) if self.member else None

    def sort_key(self) -> tuple:
        top = self.parent if self.member else self.kind
        member_rank = MEMBER_KINDS.index(self.kind) + 1 if self.member else 0
        return (_rank(KINDS, top), self.schema != "public", self.schema, self.name, member_rank, self.member)


def _rank(order: tuple[str, ...], kind: str) -> int:
    return order.index(kind) if kind in order else len(order)


def _qualify(schema: str, name: str) -> str:
    # the snapshot is read with search_path = public: objects there go unqualified
    return name if schema in ("", "public") else f"{schema}.{name}"


Attributes = Mapping[str, str]


@dataclass(frozen=True)
class Snapshot:
    """Every object of a database's schema: key -> attributes (all strings).

    Equal snapshots mean equal schemas; `diff` says how two differ.
    """

    objects: Mapping[Key, Attributes] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.objects)

    def keys(self) -> list[Key]:
        return sorted(self.objects, key=_display_order(self.objects))

    def to_text(self) -> str:
        return format_snapshot(self)

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"object": str(key), "kind": key.kind, "schema": key.schema or None, "name": key.name,
             "member": key.member or None, "attributes": dict(self.objects[key])}
            for key in self.keys()
        ]


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
        """One line, or for long and multi-line values a line and the changed lines, diff-style."""
        if self.attribute is None:
            text = f"{self.key}: {self.change}"
            return f"{text} ({_short(self.summary)})" if self.summary else text
        if self.attribute == "body" and self.is_note:
            return f"{self.key}: body differs only in whitespace or comments"
        if self.attribute == "column order":
            return f"{self.key}: column order: {self.summary}"
        before, after = self.expected or "", self.found or ""
        if "\n" in before + after or len(before) + len(after) > 160:
            changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                             lineterm="", n=1)
                       if not line.startswith(("---", "+++", "@@"))]
            return "\n".join([f"{self.key}: {self.attribute} changed:", *(f"  {line}" for line in changed)])
        before, after = _short(self.expected), _short(self.found)
        if self.attribute == "comment":  # free text: quoted, so that a comment 'none' is not no comment
            before, after = (_short(_quoted(v)) if v is not None else "none" for v in (self.expected, self.found))
        if self.attribute in _BARE_ATTRIBUTES:
            return f"{self.key}: {before} -> {after}"
        return f"{self.key}: {self.attribute} {before} -> {after}"

    def to_json(self) -> dict[str, Any]:
        return {"object": str(self.key), "kind": self.key.kind, "change": self.change,
                "attribute": self.attribute, "expected": self.expected, "found": self.found,
                "note": self.is_note, "text": str(self)}


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


@dataclass(frozen=True)
class RoundTrip:
    """The verdict of `test` on one migration.

    verdict: ok, notes (differences that are not failures), failed,
    irreversible (skipped), not tested (an earlier up failed).
    `errors` are (phase, error) with phase "up", "down" or "up again".
    """

    id: str
    name: str
    verdict: str
    differences: tuple[Difference, ...] = ()
    errors: tuple[tuple[str, SqlError], ...] = ()
    findings: tuple[Finding, ...] = ()  # down.sql validation errors: it was not run
    reason: str | None = None

    @property
    def is_failed(self) -> bool:
        return self.verdict == "failed"

    @property
    def failures(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if not d.is_note)

    @property
    def notes(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.is_note)


# -- diff ----------------------------------------------------------------------------


def diff(expected: Snapshot, found: Snapshot) -> list[Difference]:
    """How `found` differs from `expected`, in display order; pure.

    Members of a missing or extra table are not listed one by one. Column
    order (of the columns both have) and function bodies that differ only in
    whitespace and comments are notes.
    """
    exp, got = expected.objects, found.objects
    gone = {(k.schema, k.name) for k in exp if not k.member and k not in got}
    new = {(k.schema, k.name) for k in got if not k.member and k not in exp}
    out: list[Difference] = []
    for key in sorted(set(exp) | set(got), key=Key.sort_key):
        if key not in got:
            if not (key.member and (key.schema, key.name) in gone):
                out.append(Difference(key, None, _headline(key, exp[key]), None, summary=_headline(key, exp[key])))
            continue
        if key not in exp:
            if not (key.member and (key.schema, key.name) in new):
                out.append(Difference(key, None, None, _headline(key, got[key]), summary=_headline(key, got[key])))
            continue
        before, after = exp[key], got[key]
        for attribute in _attribute_order(before, after):
            if attribute in _NOT_COMPARED or before.get(attribute) == after.get(attribute):
                continue
            is_note = attribute == "body" and normalise_body(before.get(attribute) or "") == normalise_body(
                after.get(attribute) or "")
            out.append(Difference(key, attribute, before.get(attribute), after.get(attribute), is_note))
        if key.kind == "table":
            order = _column_order_note(key, exp, got)
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


def _column_order_note(table: Key, exp: Mapping[Key, Attributes], got: Mapping[Key, Attributes]) -> Difference | None:
    before, after = _columns_in_order(table, exp), _columns_in_order(table, got)
    common = set(before) & set(after)
    before = [c for c in before if c in common]
    after = [c for c in after if c in common]
    if before == after:
        return None
    return Difference(table, "column order", ", ".join(before), ", ".join(after), is_note=True,
                      summary=_moves(before, after))


def _moves(before: list[str], after: list[str]) -> str:
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
    moves = []
    for index, column in enumerate(after):
        if column not in kept:
            moves.append(f"{column} now after {after[index - 1]}" if index else f"{column} now first")
    return "; ".join(moves)


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


# -- text form -----------------------------------------------------------------------


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
        for member in sorted(members.pop((key.schema, key.name), []), key=_member_order(objects)):
            lines.extend(_object_lines(member, objects[member], "  "))
        blocks.append(lines)
    for (schema, name), orphans in sorted(members.items()):  # a member whose parent is not listed
        for member in sorted(orphans, key=_member_order(objects)):
            blocks.append(_object_lines(member, objects[member], ""))
    return "\n\n".join("\n".join(block) for block in blocks) + ("\n" if blocks else "")


def _member_order(objects: Mapping[Key, Attributes]):
    def order(key: Key) -> tuple:
        position = int(objects[key].get("position", "0")) if key.kind == "column" else 0
        return (MEMBER_KINDS.index(key.kind) if key.kind in MEMBER_KINDS else 99, position, key.member)
    return order


def _display_order(objects: Mapping[Key, Attributes]):
    member_order = _member_order(objects)

    def order(key: Key) -> tuple:
        parent = key.parent_key or key
        return (parent.sort_key(), bool(key.member), member_order(key) if key.member else ())
    return order


def _object_lines(key: Key, attrs: Attributes, indent: str) -> list[str]:
    label = f"{key.kind} {key.member}" if key.member else str(key)
    headline = _headline(key, attrs)
    lines = [f"{indent}{label}: {headline}" if headline else f"{indent}{label}"]
    for line in _detail_lines(key, attrs):
        lines.append(f"{indent}  {line}".rstrip())
    if "comment" in attrs:
        lines.append(f"{indent}  comment {_literal(attrs['comment'])}")
    return lines


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''").replace("\n", "\\n") + "'"


def _headline(key: Key, attrs: Attributes) -> str:
    """One line saying what the object is (empty for a table: its members say it)."""
    kind = key.kind
    if kind == "column":
        parts = [attrs.get("type", "?")]
        if attrs.get("collation"):
            parts.append(f"collate {attrs['collation']}")
        if attrs.get("nullable") == "not null":
            parts.append("not null")
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
        if attrs.get("enabled", "origin") != "origin":
            text += f" (enabled: {attrs['enabled']})"
        return text
    if kind == "policy":
        return " ".join(f"{a} {attrs[a]}" for a in ("as", "for", "to", "using", "with check") if a in attrs)
    if kind == "extension":
        return f"version {attrs.get('version', '?')} in schema {attrs.get('schema', '?')}"
    if kind == "sequence":
        return _sequence_text(attrs)
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


def _sequence_text(attrs: Attributes) -> str:
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


# -- reading the catalog ---------------------------------------------------------------

_USER_SCHEMA = "n.nspname <> 'information_schema' and n.nspname !~ '^pg_'"

# Output of the deparsing functions depends on these: fixed, so that two
# sessions with different settings read the same snapshot.
_SESSION = (
    "set local search_path = public; set local timezone = 'UTC'; set local datestyle = 'ISO, MDY'; "
    "set local intervalstyle = 'postgres'; set local extra_float_digits = 1; set local bytea_output = 'hex'; "
    "set local quote_all_identifiers = off"
)


def snapshot(conn: psycopg.Connection, *, exclude: tuple[str, str] | None = None) -> Snapshot:
    """Read the schema of the connected database from pg_catalog.

    `exclude` is (schema, table) of the tracking table, left out with
    everything on it. Objects that belong to an extension are left out (the
    extension stands for them). Runs in one read-only transaction, never
    writes. Raises DatabaseUnavailable.
    """
    try:
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            conn.execute(_SESSION)
            return _Reader(conn, exclude).read()
    except psycopg.Error as exc:
        raise db.database_error(exc, f"reading the schema of {conn.info.dbname}") from exc


class _Reader:
    def __init__(self, conn: psycopg.Connection, exclude: tuple[str, str] | None) -> None:
        self.conn = conn
        self.version = conn.info.server_version
        self.objects: dict[Key, dict[str, str]] = {}
        self.oids: dict[tuple[str, int, int], Key] = {}  # (catalog, oid, subid) -> key, for comments
        # FirstNormalObjectId: what initdb made is in pg_catalog and left out anyway
        rows = self._rows("select classid::regclass::text, objid from pg_depend "
                          "where deptype = 'e' and objid >= 16384")
        self.extension_members = {(r[0], r[1]) for r in rows}
        self.excluded = 0
        if exclude is not None:
            row = self._rows(
                "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relname = %s", exclude)
            self.excluded = row[0][0] if row else 0

    def _rows(self, query: str, params: Any = None) -> list[tuple]:
        return self.conn.execute(query, params).fetchall()

    def _add(self, key: Key, attrs: Mapping[str, str | None], catalog: str, oid: int, subid: int = 0) -> None:
        self.objects[key] = {k: v for k, v in attrs.items() if v is not None}
        self.oids[(catalog, oid, subid)] = key

    def _skip(self, catalog: str, oid: int) -> bool:
        return (catalog, oid) in self.extension_members

    def read(self) -> Snapshot:
        self._schemas()
        self._extensions()
        relations = self._relations()
        self._columns(relations)
        self._sequences(relations)
        self._constraints(relations)
        self._indexes(relations)
        self._triggers(relations)
        self._policies(relations)
        self._rules(relations)
        self._types()
        self._domain_constraints()
        self._functions()
        self._statistics()
        self._comments()
        return Snapshot({k: dict(v) for k, v in self.objects.items()})

    def _schemas(self) -> None:
        for oid, name in self._rows(f"select n.oid, n.nspname from pg_namespace n where {_USER_SCHEMA}"):
            if not self._skip("pg_namespace", oid):
                self._add(Key("schema", "", name), {}, "pg_namespace", oid)

    def _extensions(self) -> None:
        rows = self._rows("select e.oid, e.extname, e.extversion, n.nspname from pg_extension e "
                          "join pg_namespace n on n.oid = e.extnamespace")
        for oid, name, version, schema in rows:
            self._add(Key("extension", "", name), {"version": version, "schema": schema}, "pg_extension", oid)

    def _relations(self) -> dict[int, Key]:
        """Tables, views and materialized views: oid -> key, for their members."""
        rows = self._rows(f"""
            select c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
                   c.relforcerowsecurity, c.reloptions, c.relispartition,
                   case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end,
                   case when c.relispartition then pg_get_expr(c.relpartbound, c.oid) end,
                   (select string_agg(i.inhparent::regclass::text, ', ' order by i.inhseqno)
                      from pg_inherits i where i.inhrelid = c.oid),
                   case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid, true) end,
                   am.amname, ts.spcname, c.relreplident, fs.srvname, ft.ftoptions
            from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            left join pg_am am on am.oid = c.relam
            left join pg_tablespace ts on ts.oid = c.reltablespace
            left join pg_foreign_table ft on ft.ftrelid = c.oid
            left join pg_foreign_server fs on fs.oid = ft.ftserver
            where c.relkind in ('r', 'p', 'f', 'v', 'm') and {_USER_SCHEMA}""")
        relations: dict[int, Key] = {}
        for (oid, schema, name, relkind, persistence, rls, force_rls, options, is_partition, partkey, bound,
             parents, viewdef, am, tablespace, replident, server, foreign_options) in rows:
            if oid == self.excluded or self._skip("pg_class", oid):
                continue
            kind = {"v": "view", "m": "materialized view"}.get(relkind, "table")
            attrs: dict[str, str | None] = {}
            if persistence == "u":
                attrs["persistence"] = "unlogged"
            if partkey:
                attrs["partition by"] = partkey
            if is_partition:
                attrs["partition of"] = f"{parents} {bound}"
            elif parents:
                attrs["inherits"] = parents
            if server:
                attrs["foreign server"] = server
                attrs["foreign options"] = ", ".join(foreign_options or []) or None
            if kind != "table":
                attrs["definition"] = (viewdef or "").strip()
            if options:
                attrs["options"] = ", ".join(sorted(options))
            if am and am != "heap":
                attrs["access method"] = am
            if tablespace:
                attrs["tablespace"] = tablespace
            if rls:
                attrs["row level security"] = "enabled, forced" if force_rls else "enabled"
            if relkind in ("r", "p") and replident != "d":
                attrs["replica identity"] = {"n": "nothing", "f": "full", "i": "index"}.get(replident, replident)
            key = Key(kind, schema, name)
            self._add(key, attrs, "pg_class", oid)
            relations[oid] = key
        return relations

    def _columns(self, relations: dict[int, Key]) -> None:
        rows = self._rows("""
            select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                   case when a.attcollation <> t.typcollation then
                        quote_ident(cn.nspname) || '.' || quote_ident(co.collname) end
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_type t on t.oid = a.atttypid
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            left join pg_collation co on co.oid = a.attcollation
            left join pg_namespace cn on cn.oid = co.collnamespace
            where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'f')
              and a.attrelid = any (%s::oid[])
            order by a.attrelid, a.attnum""", (list(relations),))
        positions: dict[int, int] = {}
        self.columns: dict[tuple[int, int], Key] = {}
        for relid, attnum, name, type_, notnull, default, identity, generated, collation in rows:
            table = relations.get(relid)
            if table is None:
                continue
            positions[relid] = positions.get(relid, 0) + 1
            attrs: dict[str, str | None] = {
                "type": type_,
                "nullable": "not null" if notnull else "nullable",
                "collation": collation,
                "position": str(positions[relid]),
            }
            if generated in ("s", "v"):  # 'v': virtual generated columns, PostgreSQL 18
                attrs["generated"] = default
                attrs["generated kind"] = "stored" if generated == "s" else "virtual"
            else:
                attrs["default"] = default
            if identity:
                attrs["identity"] = {"a": "always", "d": "by default"}[identity]
            key = Key("column", table.schema, table.name, name, table.kind)
            self._add(key, attrs, "pg_class", relid, attnum)
            self.columns[(relid, attnum)] = key

    def _sequences(self, relations: dict[int, Key]) -> None:
        rows = self._rows(f"""
            select c.oid, n.nspname, c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
                   s.seqmin, s.seqmax, s.seqcache, s.seqcycle, d.deptype, d.refobjid, d.refobjsubid
            from pg_sequence s
            join pg_class c on c.oid = s.seqrelid
            join pg_namespace n on n.oid = c.relnamespace
            left join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = c.oid
                 and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
            where {_USER_SCHEMA}""")
        for oid, schema, name, type_, start, increment, low, high, cache, cycle, deptype, refobj, refsub in rows:
            if self._skip("pg_class", oid) or (refobj and refobj == self.excluded):
                continue
            attrs = {"type": type_, "start": str(start), "increment": str(increment), "min": str(low),
                     "max": str(high), "cache": str(cache), "cycle": "yes" if cycle else "no"}
            column = self.columns.get((refobj, refsub)) if refobj else None
            if deptype == "i":
                # an identity column's sequence is part of the column: its name is generated
                options = _sequence_text(attrs)[len(type_):].strip()
                if options and column is not None:
                    self.objects[column]["identity options"] = options
                continue
            if deptype == "a" and column is not None:
                attrs["owned by"] = f"{_qualify(column.schema, column.name)}.{column.member}"
            self._add(Key("sequence", schema, name), attrs, "pg_class", oid)

    def _constraints(self, relations: dict[int, Key]) -> None:
        rows = self._rows("""
            select con.oid, con.conrelid, con.conname, pg_get_constraintdef(con.oid), con.convalidated
            from pg_constraint con
            where con.conrelid = any (%s::oid[]) and con.contype in ('c', 'f', 'p', 'u', 'x')""",
                          (list(relations),))
        for oid, relid, name, definition, validated in rows:
            table = relations.get(relid)
            if table is None:
                continue
            key = Key("constraint", table.schema, table.name, name, table.kind)
            self._add(key, {"definition": definition}, "pg_constraint", oid)

    def _indexes(self, relations: dict[int, Key]) -> None:
        # an index that implements a primary key, unique or exclusion constraint is that constraint
        rows = self._rows("""
            select ic.oid, i.indrelid, ic.relname, pg_get_indexdef(ic.oid), i.indisvalid
            from pg_index i join pg_class ic on ic.oid = i.indexrelid
            where i.indrelid = any (%s::oid[])
              and not exists (select 1 from pg_constraint k where k.conrelid = i.indrelid
                              and k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x'))""",
                          (list(relations),))
        for oid, relid, name, definition, valid in rows:
            table = relations.get(relid)
            if table is None:
                continue
            attrs = {"definition": definition, "valid": None if valid else "no"}
            self._add(Key("index", table.schema, table.name, name, table.kind), attrs, "pg_class", oid)

    def _triggers(self, relations: dict[int, Key]) -> None:
        rows = self._rows("select t.oid, t.tgrelid, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled "
                          "from pg_trigger t where not t.tgisinternal and t.tgrelid = any (%s::oid[])",
                          (list(relations),))
        states = {"O": None, "D": "disabled", "R": "replica", "A": "always"}
        for oid, relid, name, definition, enabled in rows:
            table = relations.get(relid)
            if table is None:
                continue
            attrs = {"definition": definition, "enabled": states.get(enabled, enabled)}
            self._add(Key("trigger", table.schema, table.name, name, table.kind), attrs, "pg_trigger", oid)

    def _policies(self, relations: dict[int, Key]) -> None:
        rows = self._rows("""
            select p.oid, p.polrelid, p.polname, p.polpermissive, p.polcmd,
                   case when p.polroles = '{0}' then 'public' else
                        (select string_agg(quote_ident(r.rolname), ', ' order by r.rolname)
                           from pg_roles r where r.oid = any (p.polroles)) end,
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
            from pg_policy p where p.polrelid = any (%s::oid[])""", (list(relations),))
        commands = {"r": "select", "a": "insert", "w": "update", "d": "delete", "*": "all"}
        for oid, relid, name, permissive, command, roles, using, check in rows:
            table = relations.get(relid)
            if table is None:
                continue
            attrs = {"as": "permissive" if permissive else "restrictive", "for": commands.get(command, command),
                     "to": roles, "using": using, "with check": check}
            self._add(Key("policy", table.schema, table.name, name, table.kind), attrs, "pg_policy", oid)

    def _rules(self, relations: dict[int, Key]) -> None:
        rows = self._rows("select r.oid, r.ev_class, r.rulename, pg_get_ruledef(r.oid) from pg_rewrite r "
                          "where r.rulename <> '_RETURN' and r.ev_class = any (%s::oid[])", (list(relations),))
        for oid, relid, name, definition in rows:
            table = relations.get(relid)
            if table is None:
                continue
            self._add(Key("rule", table.schema, table.name, name, table.kind), {"definition": definition},
                      "pg_rewrite", oid)

    def _types(self) -> None:
        rows = self._rows(f"""
            select t.oid, n.nspname, t.typname, t.typtype,
                   (select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
                      from pg_enum e where e.enumtypid = t.oid),
                   (select string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                      || coalesce(' collate ' || quote_ident(co.collname), ''), ', '
                                      order by a.attnum)
                      from pg_attribute a
                      left join pg_collation co on co.oid = a.attcollation
                           and a.attcollation <> (select typcollation from pg_type where oid = a.atttypid)
                      where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped),
                   case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end,
                   t.typnotnull, t.typdefault,
                   case when t.typtype = 'd' and t.typcollation <> bt.typcollation then co.collname end,
                   (select format_type(r.rngsubtype, null) from pg_range r where r.rngtypid = t.oid)
            from pg_type t
            join pg_namespace n on n.oid = t.typnamespace
            left join pg_type bt on bt.oid = t.typbasetype
            left join pg_collation co on co.oid = t.typcollation
            left join pg_class rc on rc.oid = t.typrelid
            where {_USER_SCHEMA} and t.typisdefined
              and (t.typtype in ('e', 'd', 'r') or (t.typtype = 'c' and rc.relkind = 'c')
                   or (t.typtype = 'b' and not (t.typelem <> 0 and t.typlen = -1)))""")
        forms = {"e": "enum", "c": "composite", "d": "domain", "r": "range", "b": "base"}
        self.domains: dict[int, Key] = {}
        for oid, schema, name, typtype, labels, attributes, base, notnull, default, collation, subtype in rows:
            if self._skip("pg_type", oid):
                continue
            attrs: dict[str, str | None] = {"form": forms[typtype]}
            if typtype == "e":
                attrs["labels"] = labels or ""
            elif typtype == "c":
                attrs["attributes"] = attributes or ""
            elif typtype == "d":
                attrs.update({"base type": base, "nullable": "not null" if notnull else "nullable",
                              "default": default, "collation": collation})
            elif typtype == "r":
                attrs["subtype"] = subtype
            key = Key("type", schema, name)
            self._add(key, attrs, "pg_type", oid)
            if typtype == "d":
                self.domains[oid] = key

    def _domain_constraints(self) -> None:
        rows = self._rows("select con.oid, con.contypid, con.conname, pg_get_constraintdef(con.oid) "
                          # 'n': PostgreSQL 17+ also records a domain's NOT NULL here,
                          # which the domain's own nullability already says
                          "from pg_constraint con where con.contypid <> 0 and con.contype <> 'n'")
        for oid, typid, name, definition in rows:
            domain = self.domains.get(typid)
            if domain is not None:
                key = Key("constraint", domain.schema, domain.name, name, "type")
                self._add(key, {"definition": definition}, "pg_constraint", oid)

    def _functions(self) -> None:
        sqlbody = "case when p.prosqlbody is not null then pg_get_function_sqlbody(p.oid) end" \
            if self.version >= 140000 else "null"
        rows = self._rows(f"""
            select p.oid, n.nspname, p.proname, oidvectortypes(p.proargtypes), p.prokind,
                   pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), l.lanname,
                   p.provolatile, p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel, p.procost,
                   p.prorows, p.proretset, p.proconfig, p.prosrc, {sqlbody}, p.probin,
                   case when p.prokind = 'a' then (
                       select concat_ws(', ', 'sfunc ' || a.aggtransfn::regproc::text,
                                        'stype ' || format_type(a.aggtranstype, null),
                                        'finalfunc ' || nullif(a.aggfinalfn, 0)::regproc::text,
                                        'combinefunc ' || nullif(a.aggcombinefn, 0)::regproc::text,
                                        'initcond ' || quote_literal(a.agginitval),
                                        'sortop ' || nullif(a.aggsortop, 0)::regoperator::text)
                       from pg_aggregate a where a.aggfnoid = p.oid) end
            from pg_proc p
            join pg_namespace n on n.oid = p.pronamespace
            join pg_language l on l.oid = p.prolang
            where {_USER_SCHEMA}
              -- made with another object (the constructors of a range type): that object stands for it
              and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                              and d.objid = p.oid and d.deptype = 'i')""")
        for (oid, schema, name, identity, prokind, arguments, result, language, volatility, strict, definer,
             leakproof, parallel, cost, rows_, retset, configs, source, sql_body, library, aggregate) in rows:
            if self._skip("pg_proc", oid):
                continue
            kind = {"p": "procedure", "a": "aggregate"}.get(prokind, "function")
            attrs: dict[str, str | None] = {
                "arguments": arguments,
                "returns": result,
                "language": language,
            }
            if kind == "function":
                attrs.update({
                    "volatility": {"i": "immutable", "s": "stable", "v": "volatile"}[volatility],
                    "strict": "strict" if strict else "called on null input",
                    "leakproof": "leakproof" if leakproof else "not leakproof",
                    "parallel": {"s": "parallel safe", "r": "parallel restricted",
                                 "u": "parallel unsafe"}[parallel],
                    "window": "yes" if prokind == "w" else None,
                })
            if kind != "aggregate":
                attrs["security"] = "security definer" if definer else "security invoker"
                default_cost = 1 if language in ("c", "internal") else 100
                attrs["cost"] = None if float(cost) == default_cost else f"{float(cost):g}"
                attrs["rows"] = None if not retset or float(rows_) == 1000 else f"{float(rows_):g}"
                # one entry per setting name; their order means nothing to PostgreSQL
                attrs["config"] = "\n".join(sorted(configs)) if configs else None
                attrs["body"] = sql_body if sql_body is not None else source
                attrs["library"] = library
            else:
                attrs["aggregate"] = aggregate
            self._add(Key(kind, schema, f"{name}({identity})"), attrs, "pg_proc", oid)

    def _statistics(self) -> None:
        rows = self._rows(f"""
            select s.oid, n.nspname, s.stxname, pg_get_statisticsobjdef(s.oid)
            from pg_statistic_ext s join pg_namespace n on n.oid = s.stxnamespace
            where {_USER_SCHEMA} and s.stxrelid <> %s""", (self.excluded,))
        for oid, schema, name, definition in rows:
            if not self._skip("pg_statistic_ext", oid):
                self._add(Key("statistics", schema, name), {"definition": definition}, "pg_statistic_ext", oid)

    def _comments(self) -> None:
        rows = self._rows("select classoid::regclass::text, objoid, objsubid, description from pg_description "
                          "where objoid >= 16384 or classoid = 'pg_namespace'::regclass")
        for catalog, oid, subid, text in rows:
            key = self.oids.get((catalog, oid, subid))
            if key is not None:
                self.objects[key]["comment"] = text


# -- the scratch database ---------------------------------------------------------------

SCRATCH_PREFIX = "sqlmigrate_scratch_"


class ScratchDatabase:
    """A database of its own on the target's server, for `test` and `drift`.

    Created from template0 with the target's encoding and locale, named
    sqlmigrate_scratch_<random> (CREATE DATABASE fails rather than reuse an
    existing name), and dropped on exit whatever happened, Ctrl-C included.
    Nothing is written to the target database itself.
    """

    def __init__(self, url: str, options: dict[str, str] | None = None) -> None:
        self.target_url = url
        self.options = options or {}
        self.name = ""
        self.created: list[str] = []  # every scratch database this one made (recreate makes another)
        self._admin: psycopg.Connection | None = None
        self._sessions: list[psycopg.Connection] = []

    def __enter__(self) -> "ScratchDatabase":
        self._admin = db.connect(self.target_url)
        try:
            self._create()
        except BaseException:
            with contextlib.suppress(Exception):  # the error that stopped the CREATE is the one to report
                self.__exit__()  # a Ctrl-C that landed as the CREATE completed leaves a database to drop
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._drop()
        finally:
            if self._admin is not None:
                self._admin.close()

    @property
    def url(self) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.target_url) if self.target_url else {}
        params["dbname"] = self.name
        return psycopg.conninfo.make_conninfo("", **params)

    def connect(self) -> psycopg.Connection:
        """A connection to the scratch database (closed by `recreate` and on exit)."""
        conn = db.connect(self.url, options=self.options)
        self._sessions.append(conn)
        return conn

    def session(self, target: Target) -> db.Session:
        """A session on the scratch database with the target's tracking table,
        created (with its schema, if named) here."""
        conn = self.connect()
        session = db.Session(dataclasses.replace(target, url=self.url), conn)
        tracking = session.tracking
        if tracking.is_schema_given:
            try:
                conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(tracking.schema or "")))
            except psycopg.Error as exc:
                raise db.database_error(exc, "creating the tracking table's schema in the scratch database") from exc
        tracking.create()
        return session

    def recreate(self) -> None:
        """Drop the scratch database and start again with an empty one."""
        self._drop()
        self._create()

    def _create(self) -> None:
        assert self._admin is not None
        admin = self._admin
        try:
            row = admin.execute(
                "select pg_encoding_to_char(encoding), datcollate, datctype from pg_database "
                "where datname = current_database()").fetchone()
        except psycopg.Error as exc:
            raise db.database_error(exc, "reading the target database's encoding") from exc
        assert row is not None
        encoding, collate, ctype = row
        locale = sql.SQL("encoding {} lc_collate {} lc_ctype {}").format(
            sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype))
        locale = sql.SQL(" ").join([locale, self._icu_options()])
        for _ in range(3):
            name = SCRATCH_PREFIX + uuid.uuid4().hex[:16]
            # named before the CREATE is sent: a Ctrl-C may cancel it too late, once the
            # database exists, and _drop (drop if exists) must still know its name
            self.name = name
            try:
                admin.execute(sql.SQL("create database {} template template0 {}").format(
                    sql.Identifier(name), locale))
            except psycopg.Error as exc:
                self.name = ""  # not created, or another's: never dropped by this run
                if isinstance(exc, psycopg.errors.DuplicateDatabase):
                    continue  # never reuse a database this run did not create
                self._refuse_create(exc)
            self.created.append(name)
            return
        raise DatabaseUnavailable("could not find a free name for a scratch database")

    def _refuse_create(self, exc: psycopg.Error) -> NoReturn:
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            raise DatabaseUnavailable(
                f"cannot create a scratch database on the server of {config.mask_url(self.target_url)}: "
                f"{_first_line(exc)}",
                details=("test and drift build the schema in a database of their own on the same server, "
                         "so the role needs the CREATEDB right (ALTER ROLE ... CREATEDB)",),
            ) from exc
        raise db.database_error(exc, "creating a scratch database") from exc

    def _icu_options(self) -> sql.Composable:
        assert self._admin is not None
        version = self._admin.info.server_version
        if version < 150000:
            return sql.SQL("")
        column = "datlocale" if version >= 170000 else "daticulocale"
        try:
            row = self._admin.execute(
                sql.SQL("select datlocprovider, {} from pg_database where datname = current_database()").format(
                    sql.Identifier(column))).fetchone()
        except psycopg.Error as exc:
            raise db.database_error(exc, "reading the target database's locale") from exc
        if row is None or row[0] == "c":
            return sql.SQL("")
        if row[0] == "i":
            return sql.SQL("locale_provider icu icu_locale {}").format(sql.Literal(row[1]))
        return sql.SQL("locale_provider builtin builtin_locale {}").format(sql.Literal(row[1]))

    def _drop(self) -> None:
        """Drop the scratch database; a second Ctrl-C during the drop does not stop it."""
        if not self.name:
            return
        for conn in self._sessions:
            with contextlib.suppress(Exception):
                conn.close()
        self._sessions.clear()
        try:
            self._drop_once()
        except KeyboardInterrupt:
            self._drop_once()
            raise
        self.name = ""

    def _drop_once(self) -> None:
        admin = self._admin
        if admin is None or admin.closed or admin.broken:
            admin = self._admin = db.connect(self.target_url)
        force = sql.SQL(" with (force)") if admin.info.server_version >= 130000 else sql.SQL("")
        try:
            admin.execute(sql.SQL("drop database if exists {}{}").format(sql.Identifier(self.name), force))
        except psycopg.Error as exc:
            raise db.database_error(exc, f"dropping the scratch database {self.name}") from exc


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


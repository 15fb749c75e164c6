"""A snapshot as a Mermaid `erDiagram`: tables, their columns with PK/FK/UK
markers, and foreign keys as relationships, for a pull request or a README
(GitHub renders Mermaid inline).

Built from the snapshot's data alone, never from a database.
"""
from __future__ import annotations

import re

from sqlmigrate.schema.quoting import relation_name
from sqlmigrate.schema.records import Key, Snapshot

# long type names as PostgreSQL prints them -> the short names it also accepts
_SHORT_TYPES = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time with time zone": "timetz",
    "time without time zone": "time",
    "character varying": "varchar",
    "character": "char",
    "double precision": "float8",
    "bit varying": "varbit",
}
_COLUMNS = r"\((?P<{name}>(?:[^()\"]|\"(?:[^\"]|\"\")*\")*)\)"
_FOREIGN_KEY = re.compile(r"FOREIGN KEY " + _COLUMNS.format(name="columns")
                          + r" REFERENCES (?P<table>(?:[^(\"]|\"(?:[^\"]|\"\")*\")+)" + _COLUMNS.format(name="referenced"))
_KEY = re.compile(r"(?P<kind>PRIMARY KEY|UNIQUE(?: NULLS NOT DISTINCT)?) " + _COLUMNS.format(name="columns"))
_UNIQUE_INDEX = re.compile(r"^CREATE UNIQUE INDEX .* USING \w+ " + _COLUMNS.format(name="columns") + r"(?: [A-Z].*)?$")


def er_diagram(snapshot: Snapshot) -> str:
    """The tables and views' neighbours in Mermaid: one entity per table (tables
    outside `public` named schema.table), one relationship per foreign key."""
    objects = snapshot.objects
    tables = sorted((k for k in objects if k.kind == "table"), key=lambda k: (k.schema != "public", k.schema, k.name))
    lines = ["erDiagram"]
    relationships: list[str] = []
    for table in tables:
        columns = sorted((k for k in objects if k.kind == "column" and (k.schema, k.name) == (table.schema, table.name)),
                         key=lambda k: int(objects[k].get("position", "0")))
        keys = _column_keys(snapshot, table)
        lines.append(f"    {_entity(table.schema, table.name)} {{")
        for column in columns:
            markers = ", ".join(keys.get(column.member, ()))
            attributes = objects[column]
            lines.append(f"        {_type(attributes.get('type', '?'))} {_attribute_name(column.member)}"
                         + (f" {markers}" if markers else ""))
        lines.append("    }")
        relationships.extend(_relationships(snapshot, table))
    return "\n".join(lines + relationships) + "\n"


def _members(snapshot: Snapshot, table: Key, kind: str) -> list[tuple[Key, str]]:
    return sorted(((k, snapshot.objects[k].get("definition", "")) for k in snapshot.objects
                   if k.kind == kind and (k.schema, k.name, k.parent) == (table.schema, table.name, "table")),
                  key=lambda item: item[0].member)


def _column_keys(snapshot: Snapshot, table: Key) -> dict[str, list[str]]:
    """Column -> its markers: PK (in the primary key), FK (in a foreign key),
    UK (alone in a unique constraint or a unique index on plain columns)."""
    return _keys_and_unique(snapshot, table)[0]


def _unique_columns(snapshot: Snapshot, table: Key) -> set[str]:
    """The columns unique on their own: a one-column primary key, unique constraint or unique index."""
    return _keys_and_unique(snapshot, table)[1]


def _keys_and_unique(snapshot: Snapshot, table: Key) -> tuple[dict[str, list[str]], set[str]]:
    keys: dict[str, list[str]] = {}
    unique: set[str] = set()

    def mark(column: str, marker: str) -> None:
        if marker not in keys.setdefault(column, []):
            keys[column].append(marker)

    for _, definition in _members(snapshot, table, "constraint"):
        key = _KEY.match(definition)
        if key:
            columns = _names(key["columns"])
            if len(columns) == 1:
                unique.add(columns[0])
            if key["kind"] == "PRIMARY KEY":
                for column in columns:
                    mark(column, "PK")
            elif len(columns) == 1:
                mark(columns[0], "UK")
        foreign = _FOREIGN_KEY.match(definition)
        if foreign:
            for column in _names(foreign["columns"]):
                mark(column, "FK")
    for _, definition in _members(snapshot, table, "index"):
        index = _UNIQUE_INDEX.match(definition)
        if index and " WHERE " not in definition:
            columns = _names(index["columns"])
            if len(columns) == 1 and _is_plain_name(columns[0]):
                unique.add(columns[0])
                mark(columns[0], "UK")
    order = {"PK": 0, "FK": 1, "UK": 2}
    return {column: sorted(markers, key=order.__getitem__) for column, markers in keys.items()}, unique


def _relationships(snapshot: Snapshot, table: Key) -> list[str]:
    """`parent ||--o{ child : "column"`: the parent side is exactly one when the
    foreign key's columns are NOT NULL, else zero or one; the child side is
    zero or one when those columns are unique in the child, else zero or more."""
    out = []
    unique_columns = _unique_columns(snapshot, table)
    for _, definition in _members(snapshot, table, "constraint"):
        foreign = _FOREIGN_KEY.match(definition)
        if not foreign:
            continue
        columns = _names(foreign["columns"])
        schema, name = _table_name(snapshot, foreign["table"].strip(), table.schema)
        nullable = any(snapshot.objects.get(Key("column", table.schema, table.name, column, "table"), {})
                       .get("nullable") == "nullable" for column in columns)
        unique = len(columns) == 1 and columns[0] in unique_columns
        parent_side = "|o" if nullable else "||"
        child_side = "o|" if unique else "o{"
        label = ", ".join(columns).replace('"', "'")
        out.append(f"    {_entity(schema, name)} {parent_side}--{child_side} {_entity(table.schema, table.name)} "
                   f': "{label}"')
    return out


def _names(text: str) -> list[str]:
    """`a, "B c"` -> ["a", "B c"]: the column list of a constraint definition."""
    names = []
    for match in re.finditer(r'\s*("(?:[^"]|"")*"|[^,]+)\s*(?:,|$)', text):
        word = match.group(1).strip()
        names.append(word[1:-1].replace('""', '"') if word.startswith('"') else word)
    return [n for n in names if n]


def _is_plain_name(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", text) is not None


def _table_name(snapshot: Snapshot, text: str, child_schema: str) -> tuple[str, str]:
    """A REFERENCES target (`users`, `billing.invoices`, `"Odd"."Name"`) -> (schema, name).
    PostgreSQL leaves the schema out when the table is on the search_path: then
    it is the one in `public`, else the one in the child's own schema."""
    if _is_qualified(text):
        return relation_name(text)
    _, name = relation_name(text)
    if Key("table", "public", name) not in snapshot.objects and Key("table", child_schema, name) in snapshot.objects:
        return child_schema, name
    return "public", name


def _is_qualified(text: str) -> bool:
    """Whether a REFERENCES target names its schema: a dot outside double quotes."""
    return "." in re.sub(r'"(?:[^"]|"")*"', "", text)


def _entity(schema: str, name: str) -> str:
    """A Mermaid entity name: plain names as they are, others quoted."""
    full = name if schema == "public" else f"{schema}.{name}"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", full):
        return full
    return '"' + full.replace('"', "'") + '"'


def _attribute_name(name: str) -> str:
    """Mermaid takes letters, digits, `_` and `-` in an attribute name."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"_{cleaned}"


def _type(text: str) -> str:
    """A column type as one Mermaid word: `timestamptz`, `varchar(80)`, `numeric(10_2)`, `text[]`."""
    for long, short in _SHORT_TYPES.items():
        if text.startswith(long):
            text = short + text[len(long):]
            break
    text = text.replace(", ", "_").replace(",", "_").replace(" ", "_").replace('"', "")
    return re.sub(r"[^A-Za-z0-9_()\[\]-]", "_", text)

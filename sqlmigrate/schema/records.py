"""Snapshot records: what a schema holds, keyed by name, as plain data.

Nothing here reads a database or makes text: the text forms (a str() of a Key too) live in text.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

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
        from sqlmigrate.schema import text

        return text.object_name(self)

    @property
    def parent_key(self) -> "Key | None":
        return Key(self.parent, self.schema, self.name) if self.member else None

    def sort_key(self) -> tuple:
        top = self.parent if self.member else self.kind
        member_rank = MEMBER_KINDS.index(self.kind) + 1 if self.member else 0
        return (_rank(KINDS, top), self.schema != "public", self.schema, self.name, member_rank, self.member)


def _rank(order: tuple[str, ...], kind: str) -> int:
    return order.index(kind) if kind in order else len(order)


Attributes = Mapping[str, str]


@dataclass(frozen=True)
class Snapshot:
    """Every object of a database's schema: key -> attributes (all strings).

    Equal snapshots mean equal schemas; `diff` says how two differ.

    A detailed snapshot (catalog.snapshot(detailed=True)) also says what the
    DDL generator needs and the comparison leaves out, so neither takes part
    in equality: `dependencies`, the objects each object needs (from pg_depend:
    a view's tables and columns, a column's type, a foreign key's referenced
    key, ...), and `facts`, attributes of no interest to a comparison (a
    member a partition inherits, a routine's own name, a sequence's owner as
    names, ...).
    """

    objects: Mapping[Key, Attributes] = field(default_factory=dict)
    dependencies: Mapping[Key, frozenset[Key]] = field(default_factory=dict, compare=False)
    facts: Mapping[Key, Attributes] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.objects)

    def keys(self) -> list[Key]:
        """In the order the text form lists them: each member under its table."""
        return sorted(self.objects, key=display_order(self.objects))

    def to_text(self) -> str:
        from sqlmigrate.schema import text

        return text.format_snapshot(self)

    def to_json(self) -> list[dict[str, Any]]:
        from sqlmigrate.schema import text

        return text.snapshot_json(self)


def member_order(objects: Mapping[Key, Attributes]) -> Callable[[Key], tuple]:
    """Members by kind, columns by their position in the table (not by name)."""
    def order(key: Key) -> tuple:
        position = int(objects[key].get("position", "0")) if key.kind == "column" else 0
        return (MEMBER_KINDS.index(key.kind) if key.kind in MEMBER_KINDS else 99, position, key.member)
    return order


def display_order(objects: Mapping[Key, Attributes]) -> Callable[[Key], tuple]:
    member_rank = member_order(objects)

    def order(key: Key) -> tuple:
        parent = key.parent_key or key
        return (parent.sort_key(), bool(key.member), member_rank(key) if key.member else ())
    return order

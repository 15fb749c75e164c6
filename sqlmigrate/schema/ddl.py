"""DDL from structured differences: the statements that turn one schema into another (SPEC 9).

Pure: Difference records and two detailed snapshots (catalog.snapshot(detailed=True))
in, SQL text out; no database. The order comes from the snapshots' dependencies.
"""
from __future__ import annotations

import dataclasses
import heapq
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from sqlmigrate.schema.diff import EXTRA, MISSING, Difference, plain_not_null
from sqlmigrate.schema.quoting import (dollar_quoted, ident, leading_name, literal, qualified, relation_name,
                                       split_list)
from sqlmigrate.schema.records import KINDS, MEMBER_KINDS, Attributes, Key, Snapshot


@dataclass(frozen=True)
class Change:
    """One statement of a generated file (without its final semicolon) and the object it changes."""

    key: Key
    sql: str

    @property
    def group(self) -> Key:
        """The object it is listed under: a member's table, or the object itself."""
        return self.key.parent_key or self.key


@dataclass(frozen=True)
class Unexpressed:
    """A difference the generator has no statement for, and why."""

    key: Key
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


@dataclass(frozen=True)
class Script:
    """The statements that turn one schema into another, in the order they run;
    what could not be expressed; and notes for the reader (drops that look like renames)."""

    changes: tuple[Change, ...] = ()
    unexpressed: tuple[Unexpressed, ...] = ()
    notes: tuple[str, ...] = ()

    def text(self, header: Sequence[str] = ()) -> str:
        """The file: the header as comments, then one statement per change, grouped by object."""
        lines = [f"-- {line}" if line else "--" for line in header]
        if lines:
            lines.append("")
        lines.append("-- the names and expressions below are as PostgreSQL prints them for this search_path")
        lines.append("SET LOCAL search_path = public;")
        group: Key | None = None
        for change in self.changes:
            if change.group != group:
                group = change.group
                lines.extend(["", f"-- {group}"])
            lines.append(change.sql + ";")
        return "\n".join(lines) + "\n"


def invert(d: Difference) -> Difference:
    """The same difference seen from the other side: missing becomes extra, expected becomes found."""
    return dataclasses.replace(d, expected=d.found, found=d.expected, expected_object=d.found_object,
                               found_object=d.expected_object, expected_order=d.found_order,
                               found_order=d.expected_order)


def statements(differences: Iterable[Difference], source: Snapshot, target: Snapshot) -> Script:
    """The statements that turn `source` into `target`, given how they differ
    (`diff(source, target)`: missing = only in source, extra = only in target).

    Notes (column order, function-body whitespace) are left as they are. The
    snapshots must be detailed: their dependencies order the statements.
    """
    return _Planner(list(differences), source, target).plan()


def corrective(differences: Sequence[Difference], expected: Snapshot, found: Snapshot) -> tuple[Script, Script]:
    """up (expected -> found) and down (found -> expected) for drift's differences."""
    up = statements(differences, expected, found)
    down = statements([invert(d) for d in differences], found, expected)
    return up, down


# -- the plan ----------------------------------------------------------------------------

_DROP, _CHANGE = 0, 1

# What depends on a column and makes PostgreSQL refuse to change its type: these
# are dropped before and made again after; indexes, constraints and statistics
# PostgreSQL rebuilds itself.
_BLOCK_TYPE_CHANGE = frozenset({"view", "materialized view", "rule", "policy", "trigger", "function", "procedure",
                                "column"})


@dataclass
class _Alter:
    """Statements that change an object in place."""

    sql: list[str]
    needs: frozenset[Key] = frozenset()  # target objects to be in place first
    frees: frozenset[Key] = frozenset()  # source objects whose drop must wait for it
    rebuild: frozenset[str] | None = None  # kinds of dependents dropped before it and made again after
    rebuilt: frozenset[Key] = frozenset()  # those dependents
    makes: bool = True  # False: it does not bring the object to its target state (what uses it need not wait)
    waits_for: frozenset[Key] = frozenset()  # objects whose every statement comes first


@dataclass(eq=False)
class _Op:
    key: Key
    phase: int
    sql: list[str]
    seq: int = 0
    is_alter: bool = False
    makes: frozenset[Key] = frozenset()  # target objects this puts in place
    removes: frozenset[Key] = frozenset()  # source objects this takes away
    needs: frozenset[Key] = frozenset()
    frees: frozenset[Key] = frozenset()
    rebuilt: frozenset[Key] = frozenset()
    waits_for: frozenset[Key] = frozenset()
    after: list["_Op"] = field(default_factory=list)


class _Planner:
    def __init__(self, differences: list[Difference], source: Snapshot, target: Snapshot) -> None:
        self.differences = [d for d in differences if not d.is_note]
        self.src, self.dst = source.objects, target.objects
        self.src_facts, self.dst_facts = source.facts, target.facts
        self.src_needs = _needs(source)
        self.dst_needs = _needs(target)
        self.src_dependents: dict[Key, set[Key]] = {}
        for key, needed in self.src_needs.items():
            for other in needed:
                self.src_dependents.setdefault(other, set()).add(key)
        self.src_members = _members(self.src)
        self.dst_members = _members(self.dst)
        self.drop: set[Key] = set()  # gone from the target, or made again
        self.create: set[Key] = set()  # new in the target, or made again
        self.alters: dict[Key, list[_Alter]] = {}
        self.converted: set[Key] = set()  # columns given their target default with an enum's conversion
        self.touched: set[Key] = set()  # what the script writes, for _uses_new_labels
        self.unexpressed: list[Unexpressed] = []

    # -- what happens to each object

    def plan(self) -> Script:
        self._rename_not_nulls()
        changed: dict[Key, list[Difference]] = {}
        for d in self.differences:
            if d.change == MISSING:
                self._gone(d.key)
            elif d.change == EXTRA:
                self._new(d.key)
            else:
                changed.setdefault(d.key, []).append(d)
        self.touched = set(changed) | self.create
        for key in sorted(changed, key=Key.sort_key):
            self._change(key, {d.attribute for d in changed[key] if d.attribute})
        for key in sorted(self.alters, key=Key.sort_key):
            for alter in self.alters[key]:
                if alter.rebuild is not None and key not in self.create:
                    alter.rebuilt = frozenset(self._remake_dependents(
                        key, alter.rebuild, f"changing the type of {key} needs what uses it out of the way"))
        for key in sorted(self.drop & self.create, key=Key.sort_key):
            self._remake_dependents(key)
        if self.unexpressed:
            return Script(unexpressed=tuple(self._unique_unexpressed()))
        ops = self._ops()
        ordered = self._order(ops)
        if self.unexpressed:
            return Script(unexpressed=tuple(self._unique_unexpressed()))
        changes = tuple(Change(op.key, sql) for op in ordered for sql in op.sql)
        return Script(changes, (), tuple(self._renames()))

    def _unique_unexpressed(self) -> list[Unexpressed]:
        seen: dict[tuple[Key, str], Unexpressed] = {}
        for u in self.unexpressed:
            seen.setdefault((u.key, u.reason), u)
        return sorted(seen.values(), key=lambda u: u.key.sort_key())

    def _refuse(self, key: Key, reason: str) -> None:
        self.unexpressed.append(Unexpressed(key, reason))

    def _gone(self, key: Key) -> None:
        self.drop.add(key)
        self.drop.update(self.src_members.get(key, ()))

    def _new(self, key: Key) -> None:
        self.create.add(key)
        self.create.update(self.dst_members.get(key, ()))

    def _remake(self, key: Key) -> None:
        self._gone(key)
        self._new(key)

    def _remake_dependents(self, start: Key, kinds: frozenset[str] | None = None, why: str = "") -> set[Key]:
        """Drop and make again what depends on `start` (in the source) and stays
        (in the target): a view over a view that is made again, the foreign keys
        of a primary key, the indexes of a materialized view. `kinds` limits the
        first level (what blocks a column's type change). What holds data
        cannot be made again: that is unexpressed."""
        found: set[Key] = set()

        def visit(key: Key, only: frozenset[str] | None) -> None:
            for dependent in sorted(self.src_dependents.get(key, ()), key=Key.sort_key):
                if dependent in found or (only is not None and dependent.kind not in only):
                    continue
                if dependent not in self.dst:
                    continue  # gone for a difference of its own
                if not (dependent in self.drop and dependent in self.create):  # not made again already
                    if self._default_calls(dependent, key):
                        self._default_around(dependent, key)
                        continue
                    if self._holds_data(dependent):
                        reason = why or f"{start} has to be dropped and created again"
                        self._refuse(start, f"{reason}, and {dependent} depends on it: it would have to be "
                                            "dropped too, with its data")
                        continue
                    self._remake(dependent)
                found.add(dependent)
                visit(dependent, None)

        visit(start, kinds)
        return found

    def _default_calls(self, column: Key, routine: Key) -> bool:
        """Whether a column needs a routine only for its default (a column of data never needs one otherwise)."""
        return (column.kind == "column" and routine.kind in ("function", "procedure", "aggregate")
                and "default" in self.src[column] and "generated" not in self.src[column])

    def _default_around(self, column: Key, routine: Key) -> None:
        """A default calling a routine that is dropped and created again: dropped before, set again after."""
        head = f"ALTER TABLE {qualified(column.schema, column.name)} ALTER COLUMN {ident(column.member)}"
        alters = self.alters.setdefault(column, [])
        alters.insert(0, _Alter([f"{head} DROP DEFAULT"], makes=False, frees=frozenset({routine})))
        if "default" in self.dst[column]:
            alters.append(_Alter([f"{head} SET DEFAULT {self.dst[column]['default']}"], needs=frozenset({routine})))

    def _holds_data(self, key: Key) -> bool:
        if key.kind == "column":
            return not ("generated" in self.src.get(key, {}) or "generated" in self.dst.get(key, {}))
        return key.kind in ("table", "sequence", "schema", "extension")

    def _change(self, key: Key, changed: set[str]) -> None:
        before, after = self.src[key], self.dst[key]
        if self._is_inherited(key):
            # the parent's change reaches it: PostgreSQL recurses into inheritors and partitions
            changed -= {"type", "collation", "definition", "valid"}
        if key in self.converted:
            changed.discard("default")
        comment = "comment" in changed
        changed.discard("comment")
        alters: list[_Alter] | None = []
        if changed:
            handler: Callable[[Key, Attributes, Attributes, set[str]], list[_Alter] | None] = getattr(
                self, "_alter_" + key.kind.replace(" ", "_"), self._alter_unknown)
            alters = handler(key, before, after, changed)
        if alters is None:
            self._remake(key)
            return
        if comment:
            alters.append(_Alter([_comment(key, after.get("comment"), self.dst_facts.get(key, {}), after)]))
        if alters:
            self.alters.setdefault(key, []).extend(alters)

    def _is_inherited(self, key: Key) -> bool:
        return self.dst_facts.get(key, {}).get("inherited") == "yes"

    # -- the statements of each op

    def _ops(self) -> list[_Op]:
        ops: list[_Op] = []
        for key in sorted(self.drop, key=Key.sort_key):
            if key.member and key.parent_key in self.drop:
                continue  # goes with its table, view or type
            if self.src_facts.get(key, {}).get("inherited") == "yes":
                continue  # goes with what it was inherited from
            if key.kind == "sequence" and self._owner_goes(key):
                continue  # dropped with the column that owns it
            removes = {key} | set(self.src_members.get(key, ()))
            ops.append(_Op(key, _DROP, _drop(key, self.src[key], self.src_facts.get(key, {})),
                           removes=frozenset(removes)))
        for key in sorted(self.create, key=Key.sort_key):
            if key.member and key.parent_key in self.create and key.kind == "column" and key.parent == "table":
                continue  # a column of a new table: in its CREATE TABLE
            if self._is_inherited(key):
                continue  # made with the partition or the parent's member
            if self._inline_not_null(key):
                continue  # in its column's definition
            ops.extend(self._create_ops(key))
        for key in sorted(self.alters, key=Key.sort_key):
            if key in self.create:
                continue  # made again instead
            previous: _Op | None = None
            for alter in self.alters[key]:
                # one that frees what is dropped comes before, needing nothing the target adds
                needs = (alter.needs | (set() if alter.frees else self.dst_needs.get(key, set()))) - {key}
                op = _Op(key, _CHANGE, alter.sql, is_alter=True, makes=frozenset({key} if alter.makes else ()),
                         needs=frozenset(needs), frees=alter.frees, rebuilt=alter.rebuilt,
                         waits_for=alter.waits_for)
                if previous is not None:
                    op.after.append(previous)
                ops.append(op)
                previous = op
        self._not_null_drops_after_primary_keys(ops)
        for seq, op in enumerate(ops):
            op.seq = seq
        return ops

    def _not_null_drops_after_primary_keys(self, ops: list[_Op]) -> None:
        """A column's NOT NULL can go only once no primary key and no identity needs it."""
        def drops(prefix: str) -> list[_Op]:
            return [op for op in ops if op.phase == _DROP and op.key.kind == "constraint"
                    and self.src[op.key].get("definition", "").startswith(prefix)]

        primary_keys = drops("PRIMARY KEY")
        identities = [op for op in ops if op.is_alter and op.key.kind == "column"
                      and any(sql.endswith(" DROP IDENTITY") for sql in op.sql)]
        for op in drops("NOT NULL ") if primary_keys or identities else ():
            op.after.extend(pk for pk in primary_keys if pk.key.parent_key == op.key.parent_key)
            column = self.src_facts.get(op.key, {}).get("not null column")
            op.after.extend(alter for alter in identities
                            if alter.key.parent_key == op.key.parent_key and alter.key.member == column)

    def _owner_goes(self, sequence: Key) -> bool:
        owner = _owner(self.src_facts.get(sequence, {}))
        return owner is not None and (owner in self.drop or owner.parent_key in self.drop)

    def _create_ops(self, key: Key) -> list[_Op]:
        attrs, facts = self.dst[key], self.dst_facts.get(key, {})
        makes = {key}
        inline: list[tuple[Key, Attributes]] = []
        if key.kind == "table":
            inline = [(k, self.dst[k]) for k in self.dst_members.get(key, ()) if k.kind == "column"]
            inline.sort(key=lambda item: int(item[1].get("position", "0")))
            makes.update(k for k, _ in inline)
        if key.kind in ("table", "column"):
            columns = [k for k, _ in inline] if key.kind == "table" else [key]
            made = (self._not_null_of(k) for k in columns)
            makes.update(c for c in made if c is not None and c in self.dst and self._inline_not_null(c))
        sql = self._create(key, attrs, facts, inline)
        needs: set[Key] = set(self.dst_needs.get(key, set()))
        for column, _ in inline:
            needs |= self.dst_needs.get(column, set())
        ops = [_Op(key, _CHANGE, sql, makes=frozenset(makes), needs=frozenset(needs - makes))]
        owner = _owner(facts) if key.kind == "sequence" else None
        if owner is not None:
            ops.append(_Op(key, _CHANGE, [f"ALTER SEQUENCE {qualified(key.schema, key.name)} OWNED BY "
                                          f"{_column_name(owner)}"], is_alter=True, needs=frozenset({owner, key})))
        index = facts.get("replica identity index") if key.kind == "table" else None
        if index is not None and attrs.get("replica identity") == "index":
            ops.append(_Op(key, _CHANGE, [f"ALTER TABLE {qualified(key.schema, key.name)} REPLICA IDENTITY "
                                          f"USING INDEX {ident(index)}"], is_alter=True,
                           needs=frozenset({key} | self._index_keys(key, index))))
        return ops

    # -- NOT NULL constraints (PostgreSQL 18): named, possibly NOT VALID or NO INHERIT

    def _rename_not_nulls(self) -> None:
        """A column's NOT NULL constraint under another name, and otherwise the same, is renamed:
        dropping and adding it again would check every row under an ACCESS EXCLUSIVE lock."""
        def column(d: Difference, facts: Mapping[Key, Attributes]) -> tuple | None:
            name = facts.get(d.key, {}).get("not null column")
            return None if name is None else (d.key.schema, d.key.name, d.key.parent, name)

        gone = {column(d, self.src_facts): d for d in self.differences if d.change == MISSING}
        for new in [d for d in self.differences if d.change == EXTRA]:
            where = column(new, self.dst_facts)
            old = gone.get(where) if where is not None else None
            if old is None or self.src[old.key].get("definition") != self.dst[new.key].get("definition"):
                continue
            self.differences = [d for d in self.differences if d is not old and d is not new]
            if self._is_inherited(new.key) and self.src_facts.get(old.key, {}).get("inherited") == "yes":
                continue  # renamed with its parent's: PostgreSQL renames the copies too
            sql = [f"{_on_parent(new.key)} RENAME CONSTRAINT {ident(old.key.member)} TO {ident(new.key.member)}"]
            if self.src[old.key].get("comment") != self.dst[new.key].get("comment"):
                sql.append(_comment(new.key, self.dst[new.key].get("comment"), {}, self.dst[new.key]))
            self.alters.setdefault(new.key, []).append(_Alter(sql))

    def _has_not_null_constraint(self, column: Key) -> bool:
        """Whether either side reads the column's nullability as a constraint (PostgreSQL 18 and later)."""
        return any("not null constraint" in facts.get(column, {}) for facts in (self.src_facts, self.dst_facts))

    def _named_not_null(self, column: Key) -> bool:
        """Whether either side holds a NOT NULL constraint on the column that SET NOT NULL would not make:
        another name, NOT VALID or NO INHERIT."""
        for facts, objects in ((self.src_facts, self.src), (self.dst_facts, self.dst)):
            name = facts.get(column, {}).get("not null constraint")
            constraint = Key("constraint", column.schema, column.name, name or "", column.parent)
            if name is not None and plain_not_null(constraint, objects.get(constraint, {})) is None:
                return True
        return False

    def _not_null_of(self, column: Key) -> Key | None:
        name = self.dst_facts.get(column, {}).get("not null constraint")
        if name is None:
            return None
        return Key("constraint", column.schema, column.name, name, column.parent)

    def _inline_not_null(self, key: Key) -> bool:
        """A NOT NULL constraint written in its new column's definition: a valid one, on a column
        this script adds (NOT VALID has no column form; the constraint is added after)."""
        column = self.dst_facts.get(key, {}).get("not null column")
        if key.kind != "constraint" or column is None:
            return False
        column_key = Key("column", key.schema, key.name, column, key.parent)
        return (column_key in self.create and self._not_null_of(column_key) == key
                and "NOT VALID" not in self.dst[key].get("definition", "")
                and not self._is_inherited(column_key))

    def _column(self, key: Key, attrs: Attributes) -> str:
        """A column's definition; its NOT NULL under its own name where the catalog names it."""
        constraint = self._not_null_of(key)
        if constraint is None or constraint not in self.dst:
            return _column(key.member, attrs)
        if not self._inline_not_null(constraint):
            return _column(key.member, dict(attrs, nullable="nullable"))
        if plain_not_null(constraint, self.dst[constraint]) is not None:
            return _column(key.member, attrs)
        no_inherit = " NO INHERIT" if self.dst[constraint].get("definition", "").endswith(" NO INHERIT") else ""
        return (_column(key.member, dict(attrs, nullable="nullable"))
                + f" CONSTRAINT {ident(constraint.member)} NOT NULL{no_inherit}")

    def _inline_not_null_comment(self, column: Key) -> list[str]:
        constraint = self._not_null_of(column)
        if constraint is None or constraint not in self.dst or not self._inline_not_null(constraint):
            return []
        return _comment_if_set(constraint, self.dst[constraint], {})

    def _index_keys(self, table: Key, index: str) -> set[Key]:
        return {k for k in self.dst_members.get(table, ()) if k.member == index and k.kind in ("index", "constraint")}

    # -- order

    def _order(self, ops: list[_Op]) -> list[_Op]:
        """Dependencies first: a create after what it needs, a drop after what
        needed the dropped object; among the ready ones drops first, then by
        kind (schemas, types, tables, views, ...) and name, a table's members
        after it."""
        makers: dict[Key, list[_Op]] = {}  # creates, and the alters that matter to what uses the object
        removers: dict[Key, list[_Op]] = {}
        alters: dict[Key, list[_Op]] = {}
        for op in ops:
            for key in op.makes:
                # what a table, view, schema or sequence is altered in (options, row level security,
                # owner, ...) is of no concern to what is in it or uses it; a column's or a type's is
                if not op.is_alter or key.kind not in ("table", "view", "materialized view", "schema", "sequence"):
                    makers.setdefault(key, []).append(op)
            for key in op.removes:
                removers.setdefault(key, []).append(op)
            if op.is_alter:
                alters.setdefault(op.key, []).append(op)
        edges: dict[_Op, set[_Op]] = {op: set() for op in ops}  # op -> ops that must come first

        def first(before: Iterable[_Op], op: _Op) -> None:
            for other in before:
                if other is not op:
                    edges[op].add(other)

        for op in ops:
            first(op.after, op)
            for key in op.waits_for:
                first(makers.get(key, ()), op)
                first(removers.get(key, ()), op)
                first(alters.get(key, ()), op)
            for key in op.needs:
                first(makers.get(key, ()), op)
            if op.phase == _CHANGE and not op.is_alter:
                for key in op.makes:
                    first(removers.get(key, ()), op)  # made again: dropped first
            for key in op.rebuilt:
                first(removers.get(key, ()), op)
            for key in op.frees:
                for dropping in removers.get(key, ()):
                    first([op], dropping)
            if op.phase != _DROP:
                continue
            for key in op.removes:
                for dependent in self.src_dependents.get(key, ()):
                    if dependent in op.removes:
                        continue
                    first(removers.get(dependent, ()), op)
                    if key not in self.dst_needs.get(dependent, set()):
                        first(alters.get(dependent, ()), op)
        waiting = {op: len(before) for op, before in edges.items()}
        unlocks: dict[_Op, list[_Op]] = {op: [] for op in ops}
        for op, before in edges.items():
            for other in before:
                unlocks[other].append(op)
        ready = [(_priority(op), op.seq, op) for op in ops if waiting[op] == 0]
        heapq.heapify(ready)
        ordered: list[_Op] = []
        while ready:
            _, _, op = heapq.heappop(ready)
            ordered.append(op)
            for later in unlocks[op]:
                waiting[later] -= 1
                if waiting[later] == 0:
                    heapq.heappush(ready, (_priority(later), later.seq, later))
        if len(ordered) < len(ops):
            stuck = sorted({op.key for op in ops if waiting[op] > 0}, key=Key.sort_key)
            names = ", ".join(map(str, stuck[:6])) + (", ..." if len(stuck) > 6 else "")
            for key in stuck:
                self._refuse(key, f"its statements depend on each other in a cycle ({names})")
        return ordered

    # -- drop and rename notes

    def _renames(self) -> list[str]:
        """A dropped and a created object of one kind, place and shape, each the other's only match:
        perhaps a rename, which the catalog cannot tell from a drop and a create."""
        gone = [d.key for d in self.differences if d.change == MISSING]
        new = [d.key for d in self.differences if d.change == EXTRA]

        def place(key: Key) -> tuple:
            return (key.kind, key.schema, key.parent, key.name if key.member else "")

        matches: dict[Key, list[Key]] = {}
        for old in gone:
            shape = self._shape(old, self.src)
            matches[old] = [made for made in new
                            if place(made) == place(old) and self._shape(made, self.dst) == shape]
        notes = []
        for old, candidates in matches.items():
            if len(candidates) == 1 and sum(candidates[0] in others for others in matches.values()) == 1:
                notes.append(_rename_note(old, candidates[0]))
        return notes

    def _shape(self, key: Key, objects: Mapping[Key, Attributes]) -> object:
        own = key.member or key.name
        named = key.kind in ("index", "trigger", "rule", "statistics")  # definitions that hold their own name
        attrs = {a: v.replace(own, "\0") if named else v for a, v in objects[key].items()
                 if a not in ("position", "comment")}
        if key.kind == "table":
            members = _members(objects).get(key, [])
            columns = sorted((k.member, objects[k].get("type")) for k in members if k.kind == "column")
            return (tuple(sorted(attrs.items())), tuple(columns))
        return tuple(sorted(attrs.items()))

    # -- changes in place, kind by kind: a list of alters, or None to drop and create again

    def _alter_schema(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> list[_Alter]:
        return self._unknown(key, changed)

    def _alter_extension(self, key: Key, before: Attributes, after: Attributes,
                         changed: set[str]) -> list[_Alter]:
        name = ident(key.name)
        alters = []
        if "schema" in changed:
            alters.append(_Alter([f"ALTER EXTENSION {name} SET SCHEMA {ident(after['schema'])}"],
                                 needs=frozenset({Key("schema", "", after["schema"])})))
        if "version" in changed:
            alters.append(_Alter([f"ALTER EXTENSION {name} UPDATE TO {literal(after['version'])}"]))
        return alters + self._unknown(key, changed - {"schema", "version"})

    def _alter_type(self, key: Key, before: Attributes, after: Attributes,
                    changed: set[str]) -> list[_Alter] | None:
        form = after.get("form")
        if "form" in changed or form == "range":
            return self._remade_type(key, f"{key} changed from {before.get('form')} {_form_text(before)} to "
                                          f"{form} {_form_text(after)}, which no ALTER TYPE does")
        if form == "base":
            self._refuse(key, "base types are made with C functions, which the catalog reader does not capture")
            return []
        name = qualified(key.schema, key.name)
        if form == "enum":
            return self._alter_enum(key, name, before, after)
        if form == "composite":
            return self._alter_composite(key, name, before, after)
        alters = []
        if changed & {"base type", "collation"}:
            return self._remade_type(key, f"the {' and '.join(sorted(changed & {'base type', 'collation'}))} of "
                                          f"domain {name} changed, which no ALTER DOMAIN does")
        if "nullable" in changed:
            alters.append(_Alter([f"ALTER DOMAIN {name} {'SET' if after.get('nullable') == 'not null' else 'DROP'}"
                                  " NOT NULL"]))
        if "default" in changed:
            alters.append(_Alter([f"ALTER DOMAIN {name} SET DEFAULT {after['default']}" if "default" in after
                                  else f"ALTER DOMAIN {name} DROP DEFAULT"]))
        return alters + self._unknown(key, changed - {"nullable", "default"})

    def _remade_type(self, key: Key, why: str) -> list[_Alter] | None:
        users = sorted((k for k in self.src_dependents.get(key, ()) if k in self.dst and self._holds_data(k)),
                       key=Key.sort_key)
        if users:
            used = ", ".join(str(k) for k in users[:5])
            self._refuse(key, f"{why}; it would have to be dropped and created again, and {used} "
                              f"use{'s' if len(users) == 1 else ''} it: write this change by hand "
                              "(converting that data)")
            return []
        return None

    def _alter_enum(self, key: Key, name: str, before: Attributes, after: Attributes) -> list[_Alter] | None:
        old, new = split_list(before.get("labels", "")), split_list(after.get("labels", ""))
        kept = [label for label in new if label in old]
        if kept != old:
            removed = [label for label in old if label not in new]
            what = f"labels removed ({', '.join(removed)})" if removed else "labels reordered"
            if removed and len(removed) == len(new) - len(kept):
                what += "; if one was renamed, ALTER TYPE ... RENAME VALUE would keep the rows that hold it"
            users = sorted((k for k in self.src_dependents.get(key, ()) if k in self.dst), key=Key.sort_key)
            others = [k for k in users if k.kind != "column" or "generated" in self.src[k]]
            if not users:
                return None
            if not others:
                return self._convert_enum(key, name, after, users)
            listed = ", ".join(str(k) for k in others[:5]) + (", ..." if len(others) > 5 else "")
            self._refuse(key, f"enum {name}: {what}, which no ALTER TYPE does; table columns could be converted "
                              f"to a new type through text, but {listed} also use{'s' if len(others) == 1 else ''} "
                              "it: write this change by hand")
            return []
        if self._uses_new_labels(key, [label for label in new if label not in old]):
            # a label added by ALTER TYPE ... ADD VALUE cannot be used before its transaction commits
            users = [k for k in self.src_dependents.get(key, ()) if k in self.dst]
            if not users:
                return None
            if all(k.kind == "column" and "generated" not in self.src[k] for k in users):
                return self._convert_enum(key, name, after, sorted(users, key=Key.sort_key))
        alters = []
        for i, label in enumerate(new):
            if label in old:
                continue
            where = f"AFTER {new[i - 1]}" if i > 0 else f"BEFORE {new[1]}" if len(new) > 1 else ""
            alters.append(_Alter([f"ALTER TYPE {name} ADD VALUE {label} {where}".rstrip()]))
        return alters

    def _uses_new_labels(self, key: Key, labels: list[str]) -> bool:
        """Whether something this script writes names one of the enum's new labels."""
        for other in self.touched:
            if other == key or key not in self.dst_needs.get(other, set()) or other not in self.dst:
                continue
            texts = list(self.dst[other].values())
            for member in self.dst_members.get(other, ()):
                texts.extend(self.dst[member].values())
            if any(label in text for label in labels for text in texts):
                return True
        return False

    def _convert_enum(self, key: Key, name: str, after: Attributes, columns: list[Key]) -> list[_Alter]:
        """An enum whose labels were removed or reordered, used by table columns only: made again
        under its name, each column converted to it through text (which fails, leaving everything as
        it was, when a row holds a label the new type lacks), then the old type dropped."""
        taken = {k.name for k in list(self.src) + list(self.dst) if k.kind == "type" and k.schema == key.schema}
        old = next(f"{key.name}_old{n or ''}" for n in range(1000) if f"{key.name}_old{n or ''}" not in taken)
        for column in columns:
            head = f"ALTER TABLE {qualified(column.schema, column.name)} ALTER COLUMN {ident(column.member)}"
            attrs = self.dst[column]
            type_ = attrs.get("type", "")
            via = "text[]" if type_.endswith("[]") else "text"
            sql = [f"{head} DROP DEFAULT"] if "default" in self.src[column] else []
            sql.append(f"{head} TYPE {type_} USING {ident(column.member)}::{via}::{type_}")
            if "default" in attrs:
                sql.append(f"{head} SET DEFAULT {attrs['default']}")
            self.converted.add(column)
            self.alters.setdefault(column, []).insert(0, _Alter(sql, needs=frozenset({key}),
                                                                rebuild=_BLOCK_TYPE_CHANGE))
        return [_Alter([f"ALTER TYPE {name} RENAME TO {ident(old)}",
                        f"CREATE TYPE {name} AS ENUM ({after.get('labels', '')})"]),
                _Alter([f"DROP TYPE {qualified(key.schema, old)}"], makes=False, waits_for=frozenset(columns))]

    def _alter_composite(self, key: Key, name: str, before: Attributes, after: Attributes) -> list[_Alter] | None:
        old = [leading_name(a) for a in split_list(before.get("attributes", ""))]
        new = [leading_name(a) for a in split_list(after.get("attributes", ""))]
        old_names, new_names = [n for n, _ in old], [n for n, _ in new]
        result = [n for n in old_names if n in new_names] + [n for n in new_names if n not in old_names]
        old_types = dict(old)
        retyped = [n for n, definition in new if n in old_types and old_types[n] != definition]
        users = [k for k in self.src_dependents.get(key, ()) if k.kind == "column" and k in self.dst]
        if result != new_names or (retyped and users):
            # ALTER ATTRIBUTE ... TYPE refuses a type that a column uses (CASCADE would rewrite the table)
            why = (f"composite type {name}: attributes reordered" if result != new_names else
                   f"composite type {name}: the type of {', '.join(retyped)} changed")
            return self._remade_type(key, why)
        alters = []
        for attribute in old_names:
            if attribute not in new_names:
                alters.append(_Alter([f"ALTER TYPE {name} DROP ATTRIBUTE {ident(attribute)}"]))
        for attribute, definition in new:
            if attribute not in old_types:
                alters.append(_Alter([f"ALTER TYPE {name} ADD ATTRIBUTE {ident(attribute)} {definition}"]))
            elif old_types[attribute] != definition:
                alters.append(_Alter([f"ALTER TYPE {name} ALTER ATTRIBUTE {ident(attribute)} TYPE {definition}"]))
        return alters

    def _alter_sequence(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> list[_Alter]:
        name = qualified(key.schema, key.name)
        alters = []
        options = _sequence_clauses(after, before)
        if options:
            alters.append(_Alter([f"ALTER SEQUENCE {name} {' '.join(options)}"]))
        if "owned by" in changed:
            old, new = _owner(self.src_facts.get(key, {})), _owner(self.dst_facts.get(key, {}))
            frees = frozenset({old, old.parent_key}) if old is not None and old.parent_key is not None else frozenset()
            alters.append(_Alter([f"ALTER SEQUENCE {name} OWNED BY {_column_name(new) if new else 'NONE'}"],
                                 needs=frozenset({new}) if new else frozenset(), frees=frees))
        return alters + self._unknown(key, changed - set(_SEQUENCE_OPTIONS) - {"owned by"})

    def _alter_table(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> list[_Alter]:
        name = qualified(key.schema, key.name)
        alters: list[_Alter] = []
        for attribute in sorted(changed & {"partition by", "foreign server", "foreign options"}):
            what = ("how a table is partitioned" if attribute == "partition by" else
                    "foreign tables (their servers are not captured)")
            self._refuse(key, f"{attribute} changed: PostgreSQL cannot change {what} in place, and making the "
                              "table again would move its rows")
        if "persistence" in changed:
            alters.append(_Alter([f"ALTER TABLE {name} SET {'UNLOGGED' if 'persistence' in after else 'LOGGED'}"]))
        if "partition of" in changed:
            if "partition of" in before:
                parent, _ = _partition(before["partition of"])
                alters.append(_Alter([f"ALTER TABLE {parent} DETACH PARTITION {name}"]))
            if "partition of" in after:
                parent, bound = _partition(after["partition of"])
                alters.append(_Alter([f"ALTER TABLE {parent} ATTACH PARTITION {name} {bound}"]))
        if "inherits" in changed:
            old, new = split_list(before.get("inherits", "")), split_list(after.get("inherits", ""))
            for parent in old:
                if parent not in new:
                    alters.append(_Alter([f"ALTER TABLE {name} NO INHERIT {parent}"]))
            for parent in new:
                if parent not in old:
                    alters.append(_Alter([f"ALTER TABLE {name} INHERIT {parent}"]))
        if "options" in changed:
            alters.extend(_Alter([sql]) for sql in _option_changes(f"ALTER TABLE {name}", before, after))
        if "access method" in changed:
            alters.append(_Alter([f"ALTER TABLE {name} SET ACCESS METHOD {ident(after.get('access method', 'heap'))}"]))
        if "tablespace" in changed:
            alters.append(_Alter([f"ALTER TABLE {name} SET TABLESPACE {ident(after.get('tablespace', 'pg_default'))}"]))
        if "row level security" in changed:
            alters.extend(_Alter([sql]) for sql in _security_changes(name, before.get("row level security"),
                                                                     after.get("row level security")))
        if "replica identity" in changed:
            identity = after.get("replica identity", "default")
            if identity == "index":
                index = self.dst_facts.get(key, {}).get("replica identity index", "")
                alters.append(_Alter([f"ALTER TABLE {name} REPLICA IDENTITY USING INDEX {ident(index)}"],
                                     needs=frozenset(self._index_keys(key, index))))
            else:
                alters.append(_Alter([f"ALTER TABLE {name} REPLICA IDENTITY {identity.upper()}"]))
        handled = {"persistence", "partition of", "inherits", "options", "access method", "tablespace",
                   "row level security", "replica identity", "partition by", "foreign server", "foreign options"}
        return alters + self._unknown(key, changed - handled)

    def _alter_column(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> list[_Alter] | None:
        if "generated" in after and changed & {"generated", "generated kind"}:
            return None  # a generated column computes its values: dropped and added again
        if "foreign server" in self.dst.get(key.parent_key or key, {}):
            self._refuse(key, "columns of foreign tables are not generated (foreign servers are not captured)")
            return []
        if self._named_not_null(key):
            changed = changed - {"nullable"}  # its NOT NULL constraint's own difference says it
        head = f"ALTER TABLE {qualified(key.schema, key.name)} ALTER COLUMN {ident(key.member)}"
        alters: list[_Alter] = []
        if "generated" in changed:  # no longer generated: its values stay
            alters.append(_Alter([f"{head} DROP EXPRESSION"]))
        if "identity" in changed and "identity" not in after:
            alters.append(_Alter([f"{head} DROP IDENTITY"]))
        retyped = bool(changed & {"type", "collation"})
        resets_default = "default" in before and (retyped or "default" in changed)
        if resets_default:
            # the old default may not convert to the new type, or may use what is dropped
            alters.append(_Alter([f"{head} DROP DEFAULT"]))
        if retyped:
            collate = f" COLLATE {after['collation']}" if "collation" in after else (
                ' COLLATE "default"' if "collation" in before else "")
            using = ""
            if before.get("type") != after.get("type"):
                converted = _conversion(ident(key.member), self.src_facts.get(key, {}), self.dst_facts.get(key, {}),
                                        after["type"])
                using = f" USING {converted}"
            alters.append(_Alter([f"{head} TYPE {after['type']}{collate}{using}"], rebuild=_BLOCK_TYPE_CHANGE))
        if "nullable" in changed and after.get("nullable") == "not null":
            alters.append(_Alter([f"{head} SET NOT NULL"]))
        if "default" in after and (resets_default or "default" in changed):
            alters.append(_Alter([f"{head} SET DEFAULT {after['default']}"]))
        if "identity" in after:
            if "identity" not in before:
                options = _identity_clauses(after.get("identity options", ""))
                # PostgreSQL 18: after the column's NOT NULL constraint, which needs the column, not this
                not_null = self._not_null_of(key)
                first = frozenset({not_null}) if not_null is not None and not_null in self.dst else frozenset()
                alters.append(_Alter([f"{head} ADD GENERATED {after['identity'].upper()} AS IDENTITY"
                                      + (f" ({' '.join(options)})" if options else "")],
                                     needs=first, makes=not first))
            else:
                sets = []
                if "identity" in changed:
                    sets.append(f"SET GENERATED {after['identity'].upper()}")
                if "identity options" in changed:
                    sets.extend(_identity_changes(before.get("identity options", ""),
                                                  after.get("identity options", ""), after.get("type", "")))
                if sets:
                    alters.append(_Alter([f"{head} {' '.join(sets)}"]))
        if "nullable" in changed and after.get("nullable") != "not null":
            alters.append(_Alter([f"{head} DROP NOT NULL"]))
        handled = {"generated", "generated kind", "identity", "identity options", "type", "collation", "default",
                   "nullable"}
        return alters + self._unknown(key, changed - handled)

    def _alter_constraint(self, key: Key, before: Attributes, after: Attributes,
                          changed: set[str]) -> list[_Alter] | None:
        if changed == {"also local"} and key.parent == "table":
            column = self.dst_facts.get(key, {}).get("not null column", "")
            if after.get("also local") == "yes":
                return [_Alter([f"ALTER TABLE {qualified(key.schema, key.name)} ALTER COLUMN {ident(column)} "
                                "SET NOT NULL"])]
            self._refuse(key, "no statement makes an inherited NOT NULL no longer made on the table itself")
            return []
        if changed != {"definition"}:
            return None
        old, new = before.get("definition", ""), after.get("definition", "")
        if old == new + " NOT VALID":
            return [_Alter([f"{_on_parent(key)} VALIDATE CONSTRAINT {ident(key.member)}"])]
        if old.startswith("NOT NULL ") and _without_no_inherit(old) == _without_no_inherit(new):
            inherit = "NO INHERIT" if " NO INHERIT" in new else "INHERIT"  # PostgreSQL 18, in place
            return [_Alter([f"{_on_parent(key)} ALTER CONSTRAINT {ident(key.member)} {inherit}"])]
        return None

    def _alter_index(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> None:
        return None

    def _alter_trigger(self, key: Key, before: Attributes, after: Attributes,
                       changed: set[str]) -> list[_Alter] | None:
        if changed != {"enabled"}:
            return None
        return [_Alter([_trigger_state(key, after.get("enabled"))])]

    def _alter_policy(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> None:
        return None

    def _alter_rule(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> None:
        return None

    def _alter_statistics(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> None:
        return None

    def _alter_view(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> list[_Alter] | None:
        if changed - {"options"}:
            return None
        return [_Alter([sql]) for sql in _option_changes(f"ALTER VIEW {qualified(key.schema, key.name)}",
                                                         before, after)]

    def _alter_materialized_view(self, key: Key, before: Attributes, after: Attributes,
                                 changed: set[str]) -> list[_Alter] | None:
        if changed - {"options", "tablespace"}:
            return None
        head = f"ALTER MATERIALIZED VIEW {qualified(key.schema, key.name)}"
        alters = [_Alter([sql]) for sql in _option_changes(head, before, after)] if "options" in changed else []
        if "tablespace" in changed:
            alters.append(_Alter([f"{head} SET TABLESPACE {ident(after.get('tablespace', 'pg_default'))}"]))
        return alters

    def _alter_function(self, key: Key, before: Attributes, after: Attributes,
                        changed: set[str]) -> list[_Alter] | None:
        if changed & {"arguments", "returns", "window"}:
            return None  # CREATE OR REPLACE cannot change these
        return [_Alter([_routine(key, after, self.dst_facts.get(key, {}), replace=True)])]

    _alter_procedure = _alter_function

    def _alter_aggregate(self, key: Key, before: Attributes, after: Attributes,
                         changed: set[str]) -> list[_Alter] | None:
        if changed & {"arguments", "returns"}:
            return None
        return [_Alter([_aggregate(key, after, self.dst_facts.get(key, {}), replace=True)])]

    def _alter_unknown(self, key: Key, before: Attributes, after: Attributes, changed: set[str]) -> list[_Alter]:
        return self._unknown(key, changed)

    def _unknown(self, key: Key, attributes: set[str]) -> list[_Alter]:
        for attribute in sorted(attributes):
            self._refuse(key, f"no statement changes the {attribute} of a {key.kind}")
        return []

    # -- creating

    def _create(self, key: Key, attrs: Attributes, facts: Attributes,
                columns: list[tuple[Key, Attributes]]) -> list[str]:
        kind = key.kind
        if kind == "table":
            return self._create_table(key, attrs, columns)
        if kind == "column":
            if "foreign server" in self.dst.get(key.parent_key or key, {}):
                self._refuse(key, "columns of foreign tables are not generated (foreign servers are not captured)")
                return []
            sql = [f"ALTER TABLE {qualified(key.schema, key.name)} ADD COLUMN {self._column(key, attrs)}"]
            return sql + _comment_if_set(key, attrs, facts) + self._inline_not_null_comment(key)
        if kind == "index" and attrs.get("valid") == "no":
            self._refuse(key, "the index is invalid on the live database (a CREATE INDEX CONCURRENTLY that "
                              "failed): drop it or REINDEX it there first")
            return []
        if kind == "type" and attrs.get("form") == "base":
            self._refuse(key, "base types are made with C functions, which the catalog reader does not capture")
            return []
        maker = _CREATE.get(kind)
        if maker is None:
            self._refuse(key, f"no statement creates a {kind}")
            return []
        return maker(key, attrs, facts) + _comment_if_set(key, attrs, facts)

    def _create_table(self, key: Key, attrs: Attributes, columns: list[tuple[Key, Attributes]]) -> list[str]:
        name = qualified(key.schema, key.name)
        if "foreign server" in attrs:
            self._refuse(key, "foreign tables are not generated: their servers and user mappings are not captured")
            return []
        head = f"CREATE {'UNLOGGED ' if attrs.get('persistence') == 'unlogged' else ''}TABLE {name}"
        own = [(k, a) for k, a in columns if self.dst_facts.get(k, {}).get("inherited") != "yes"]
        if "partition of" in attrs:
            parent, bound = _partition(attrs["partition of"])
            sql = f"{head} PARTITION OF {parent} {bound}"
        else:
            body = ",\n".join(f"    {self._column(k, a)}" for k, a in own)
            sql = f"{head} (\n{body}\n)" if body else f"{head} ()"
            if "inherits" in attrs:
                sql += f" INHERITS ({attrs['inherits']})"
        if "partition by" in attrs:
            sql += f" PARTITION BY {attrs['partition by']}"
        if "access method" in attrs:
            sql += f" USING {ident(attrs['access method'])}"
        if "options" in attrs:
            sql += f" WITH ({attrs['options']})"
        if "tablespace" in attrs:
            sql += f" TABLESPACE {ident(attrs['tablespace'])}"
        out = [sql]
        out.extend(self._inherited_column_changes(key, attrs, columns))
        out.extend(_security_changes(name, None, attrs.get("row level security")))
        if attrs.get("replica identity") in ("full", "nothing"):
            out.append(f"ALTER TABLE {name} REPLICA IDENTITY {attrs['replica identity'].upper()}")
        out.extend(_comment_if_set(key, attrs, {}))
        for column, column_attrs in columns:
            out.extend(_comment_if_set(column, column_attrs, {}))
            out.extend(self._inline_not_null_comment(column))
        return out

    def _inherited_column_changes(self, key: Key, attrs: Attributes,
                                  columns: list[tuple[Key, Attributes]]) -> list[str]:
        """A column a table inherits, with a default or NOT NULL of its own."""
        parents = [relation_name(p) for p in split_list(attrs.get("inherits", ""))]
        if "partition of" in attrs:
            parents = [relation_name(_partition(attrs["partition of"])[0])]
        out = []
        for column, mine in columns:
            if self.dst_facts.get(column, {}).get("inherited") != "yes":
                continue
            theirs = next((self.dst[k] for schema, table in parents
                           for k in [Key("column", schema, table, column.member, "table")] if k in self.dst), None)
            if theirs is None:
                continue
            head = f"ALTER TABLE {qualified(key.schema, key.name)} ALTER COLUMN {ident(column.member)}"
            if mine.get("default") != theirs.get("default"):
                out.append(f"{head} SET DEFAULT {mine['default']}" if "default" in mine else f"{head} DROP DEFAULT")
            constraint = self._not_null_of(column)
            also_local = constraint is not None and self.dst.get(constraint, {}).get("also local") == "yes"
            if also_local or (mine.get("nullable") == "not null" and theirs.get("nullable") != "not null"
                              and not self._has_not_null_constraint(column)):
                out.append(f"{head} SET NOT NULL")
        return out


def _priority(op: _Op) -> tuple:
    group = op.key.parent_key or op.key
    rank = KINDS.index(group.kind) if group.kind in KINDS else len(KINDS)
    member = MEMBER_KINDS.index(op.key.kind) + 1 if op.key.member else 0
    if op.phase == _DROP:
        # what depends on others is dropped first: views before tables, a table's triggers,
        # indexes and constraints before its columns, before the table
        return (0, -rank, group.sort_key(), -member, op.key.member)
    return (1, rank, group.sort_key(), member, op.seq)


def _needs(snapshot: Snapshot) -> dict[Key, set[Key]]:
    """What each object needs: pg_depend's dependencies, and what pg_depend does
    not record: a member needs its table, an object its schema, and a
    LANGUAGE sql routine (checked when created) what its body names."""
    objects = snapshot.objects
    needs = {key: set(keys) for key, keys in snapshot.dependencies.items()}
    named: dict[str, list[Key]] = {}
    for key in objects:
        if key.kind in ("table", "view", "materialized view", "function", "procedure", "sequence", "type"):
            own = snapshot.facts.get(key, {}).get("name") or key.name.split("(", 1)[0]
            named.setdefault(own, []).append(key)
    for key, attrs in objects.items():
        mine = needs.setdefault(key, set())
        if key.member:
            mine.add(Key(key.parent, key.schema, key.name))
        elif key.schema and Key("schema", "", key.schema) in objects:
            mine.add(Key("schema", "", key.schema))
        if key.kind == "extension" and Key("schema", "", attrs.get("schema", "")) in objects:
            mine.add(Key("schema", "", attrs["schema"]))
        if (key.kind in ("function", "procedure") and attrs.get("language") == "sql"
                and snapshot.facts.get(key, {}).get("sql body") != "yes"):
            words = set(_WORDS.findall(attrs.get("body", "").lower()))
            for word in words:
                mine.update(k for k in named.get(word, ()) if k != key and (k.schema == "public" or k.schema in words))
    return needs


_WORDS = re.compile(r"[a-z_][a-z0-9_$]*")


def _members(objects: Mapping[Key, Attributes]) -> dict[Key, list[Key]]:
    out: dict[Key, list[Key]] = {}
    for key in objects:
        if key.member:
            out.setdefault(Key(key.parent, key.schema, key.name), []).append(key)
    return out


def _owner(facts: Attributes) -> Key | None:
    if "owner" not in facts:
        return None
    return Key("column", facts["owner schema"], facts["owner table"], facts["owner"], "table")


def _column_name(column: Key) -> str:
    return f"{qualified(column.schema, column.name)}.{ident(column.member)}"


def _rename_note(old: Key, new: Key) -> str:
    if old.kind == "column":
        table = qualified(old.schema, old.name)
        return (f"{old} is dropped and {new} added with the same definition: if the column was renamed, write "
                f"ALTER TABLE {table} RENAME COLUMN {ident(old.member)} TO {ident(new.member)} instead, or its "
                "data is lost")
    if old.kind == "table":
        return (f"{old} is dropped and {new} created with the same columns: if the table was renamed, write "
                f"ALTER TABLE {qualified(old.schema, old.name)} RENAME TO {ident(new.name)} instead, or its rows "
                "are lost")
    return (f"{old} is dropped and {new} created with the same definition: if it was renamed, an ALTER ... "
            "RENAME would say so")


# -- statements by kind ------------------------------------------------------------------


def _routine_name(key: Key, facts: Attributes) -> str:
    own = facts.get("name") or key.name[:key.name.rfind("(")]
    return qualified(key.schema, own)


def _signature(key: Key, facts: Attributes) -> str:
    """A routine as DROP and COMMENT name it: its name and argument types."""
    return f"{_routine_name(key, facts)}{key.name[key.name.rfind('('):]}"


def _relation_word(kind: str) -> str:
    return {"view": "VIEW", "materialized view": "MATERIALIZED VIEW"}.get(kind, "TABLE")


def _on_parent(key: Key) -> str:
    """ALTER TABLE t, or ALTER DOMAIN d for a domain's constraint."""
    word = "DOMAIN" if key.parent == "type" else "TABLE"
    return f"ALTER {word} {qualified(key.schema, key.name)}"


def _drop(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    name = qualified(key.schema, key.name)
    kind = key.kind
    if kind == "schema":
        return [f"DROP SCHEMA {ident(key.name)}"]
    if kind == "extension":
        return [f"DROP EXTENSION {ident(key.name)}"]
    if kind == "type":
        return [f"DROP {'DOMAIN' if attrs.get('form') == 'domain' else 'TYPE'} {name}"]
    if kind in ("sequence", "view", "materialized view", "statistics"):
        return [f"DROP {kind.upper()} {name}"]
    if kind == "table":
        return [f"DROP {'FOREIGN ' if 'foreign server' in attrs else ''}TABLE {name}"]
    if kind in ("function", "procedure"):
        return [f"DROP {kind.upper()} {_signature(key, facts)}"]
    if kind == "aggregate":
        return [f"DROP AGGREGATE {_routine_name(key, facts)}({attrs.get('arguments') or '*'})"]
    if kind == "column":
        return [f"ALTER TABLE {name} DROP COLUMN {ident(key.member)}"]
    if kind == "constraint":
        return [f"{_on_parent(key)} DROP CONSTRAINT {ident(key.member)}"]
    if kind == "index":
        return [f"DROP INDEX {qualified(key.schema, key.member)}"]
    if kind in ("trigger", "policy", "rule"):
        return [f"DROP {kind.upper()} {ident(key.member)} ON {name}"]
    raise AssertionError(f"no DROP for {kind}")


def _conversion(column: str, before: Attributes, after: Attributes, type_: str) -> str:
    """How a column's values become the new type: a cast, within a category of types (numbers, strings,
    dates, ...) or to or from a string type, where PostgreSQL has one; else through text, which
    converts what reads back as the new type and fails, changing nothing, on a value that does not."""
    old, new = before.get("type category"), after.get("type category")
    if old == new or "S" in (old, new) or old is None or new is None:
        return f"{column}::{type_}"
    return f"{column}::{'text[]' if type_.endswith('[]') else 'text'}::{type_}"


def _column(name: str, attrs: Attributes) -> str:
    parts = [ident(name), attrs.get("type", "text")]
    if "collation" in attrs:
        parts.append(f"COLLATE {attrs['collation']}")
    if "generated" in attrs:
        parts.append(f"GENERATED ALWAYS AS ({attrs['generated']}) {attrs.get('generated kind', 'stored').upper()}")
    elif "identity" in attrs:
        options = _identity_clauses(attrs.get("identity options", ""))
        parts.append(f"GENERATED {attrs['identity'].upper()} AS IDENTITY"
                     + (f" ({' '.join(options)})" if options else ""))
    if "default" in attrs:
        parts.append(f"DEFAULT {attrs['default']}")
    if attrs.get("nullable") == "not null" and "identity" not in attrs:
        parts.append("NOT NULL")
    return " ".join(parts)


def _create_schema(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    return [f"CREATE SCHEMA {ident(key.name)}"]


def _create_extension(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    sql = f"CREATE EXTENSION {ident(key.name)}"
    if "schema" in attrs:
        sql += f" WITH SCHEMA {ident(attrs['schema'])}"
    if "version" in attrs:
        sql += f" VERSION {literal(attrs['version'])}"
    return [sql]


def _create_type(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    name = qualified(key.schema, key.name)
    form = attrs.get("form")
    if form == "enum":
        return [f"CREATE TYPE {name} AS ENUM ({attrs.get('labels', '')})"]
    if form == "composite":
        return [f"CREATE TYPE {name} AS ({attrs.get('attributes', '')})"]
    if form == "range":
        return [f"CREATE TYPE {name} AS RANGE (SUBTYPE = {attrs['subtype']})"]
    sql = f"CREATE DOMAIN {name} AS {attrs['base type']}"
    if "collation" in attrs:
        sql += f" COLLATE {ident(attrs['collation'])}"
    if "default" in attrs:
        sql += f" DEFAULT {attrs['default']}"
    if attrs.get("nullable") == "not null":
        sql += " NOT NULL"
    return [sql]


_SEQUENCE_OPTIONS = ("type", "increment", "min", "max", "start", "cache", "cycle")
_TYPE_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}


def _sequence_defaults(type_: str, increment: int) -> dict[str, str]:
    top = _TYPE_MAX.get(type_, _TYPE_MAX["bigint"])
    low, high = (1, top) if increment > 0 else (-top - 1, -1)
    return {"type": type_, "increment": "1", "min": str(low), "max": str(high),
            "start": str(low if increment > 0 else high), "cache": "1", "cycle": "no"}


def _sequence_clauses(attrs: Attributes, base: Attributes | None = None) -> list[str]:
    """The options of CREATE (or, given `base`, ALTER) SEQUENCE that differ from the type's defaults
    (from `base`); CREATE always names the type."""
    type_ = attrs.get("type", "bigint")
    if base is None:
        base = dict(_sequence_defaults(type_, int(attrs.get("increment", "1"))), type="")
    clauses = []
    for option in _SEQUENCE_OPTIONS:
        value = attrs.get(option)
        retyped = option in ("min", "max") and base.get("type") not in ("", type_)
        if value is None or (value == base.get(option) and not retyped):
            continue
        clauses.append({"type": f"AS {value}", "increment": f"INCREMENT BY {value}", "min": f"MINVALUE {value}",
                        "max": f"MAXVALUE {value}", "start": f"START WITH {value}", "cache": f"CACHE {value}",
                        "cycle": "CYCLE" if value == "yes" else "NO CYCLE"}[option])
    return clauses


def _create_sequence(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    return [" ".join([f"CREATE SEQUENCE {qualified(key.schema, key.name)}", *_sequence_clauses(attrs)])]


_IDENTITY_WORDS = {"start": "START WITH", "increment": "INCREMENT BY", "minvalue": "MINVALUE",
                   "maxvalue": "MAXVALUE", "cache": "CACHE"}


def _identity_options(text: str) -> dict[str, str]:
    """The `identity options` the reader writes (`start 100 increment 2 cycle`) as a dict."""
    words, options, i = text.split(), {}, 0
    while i < len(words):
        if words[i] == "cycle":
            options["cycle"] = "yes"
            i += 1
        else:
            options[words[i]] = words[i + 1] if i + 1 < len(words) else ""
            i += 2
    return options


def _identity_clauses(text: str) -> list[str]:
    options = _identity_options(text)
    clauses = [f"{_IDENTITY_WORDS[word]} {value}" for word, value in options.items() if word in _IDENTITY_WORDS]
    return clauses + (["CYCLE"] if options.get("cycle") == "yes" else [])


def _identity_changes(before: str, after: str, type_: str) -> list[str]:
    old, new = _identity_options(before), _identity_options(after)
    old_increment, new_increment = int(old.get("increment", "1")), int(new.get("increment", "1"))
    old_defaults = _sequence_defaults(type_, old_increment)
    new_defaults = _sequence_defaults(type_, new_increment)
    names = {"start": "start", "increment": "increment", "minvalue": "min", "maxvalue": "max", "cache": "cache"}
    sets = []
    for word, default in names.items():
        was, now = old.get(word, old_defaults[default]), new.get(word, new_defaults[default])
        if was != now:
            sets.append(f"SET {_IDENTITY_WORDS[word]} {now}")
    if old.get("cycle") != new.get("cycle"):
        sets.append("SET CYCLE" if new.get("cycle") == "yes" else "SET NO CYCLE")
    return sets


def _create_view(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    options = f" WITH ({attrs['options']})" if "options" in attrs else ""
    return [f"CREATE VIEW {qualified(key.schema, key.name)}{options} AS\n{_definition(attrs)}"]


def _create_materialized_view(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    sql = f"CREATE MATERIALIZED VIEW {qualified(key.schema, key.name)}"
    if "access method" in attrs:
        sql += f" USING {ident(attrs['access method'])}"
    if "options" in attrs:
        sql += f" WITH ({attrs['options']})"
    if "tablespace" in attrs:
        sql += f" TABLESPACE {ident(attrs['tablespace'])}"
    populated = "WITH NO DATA" if facts.get("populated") == "no" else "WITH DATA"
    return [f"{sql} AS\n{_definition(attrs)}\n{populated}"]


def _without_no_inherit(definition: str) -> str:
    return definition.replace(" NO INHERIT", "", 1)


def _definition(attrs: Attributes) -> str:
    return attrs.get("definition", "").strip().rstrip(";").rstrip()


def _create_member(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    kind = key.kind
    if kind == "constraint":
        return [f"{_on_parent(key)} ADD CONSTRAINT {ident(key.member)} {attrs['definition']}"]
    if kind == "index":
        # an index of a partitioned table, made on it alone, would stay invalid until every partition had one
        return [attrs["definition"].replace(" ON ONLY ", " ON ", 1)]
    if kind == "trigger":
        statements = [attrs["definition"]]
        if "enabled" in attrs:
            statements.append(_trigger_state(key, attrs["enabled"]))
        return statements
    if kind == "rule":
        return [attrs["definition"].strip().rstrip(";")]
    if kind == "policy":
        sql: str = f"CREATE POLICY {ident(key.member)} ON {qualified(key.schema, key.name)}"
        sql += f" AS {attrs.get('as', 'permissive').upper()} FOR {attrs.get('for', 'all').upper()}"
        sql += f" TO {attrs.get('to', 'public')}"
        if "using" in attrs:
            sql += f" USING ({attrs['using']})"
        if "with check" in attrs:
            sql += f" WITH CHECK ({attrs['with check']})"
        return [sql]
    raise AssertionError(f"no CREATE for {kind}")


def _trigger_state(key: Key, enabled: str | None) -> str:
    action = {None: "ENABLE", "disabled": "DISABLE", "replica": "ENABLE REPLICA",
              "always": "ENABLE ALWAYS"}.get(enabled, "ENABLE")
    return f"ALTER {_relation_word(key.parent)} {qualified(key.schema, key.name)} {action} TRIGGER {ident(key.member)}"


def _create_statistics(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    return [attrs["definition"]]


# settings whose value is a list of names: SET quotes each element it is given
_LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces", "session_preload_libraries",
                            "local_preload_libraries", "shared_preload_libraries"})


def _setting(item: str) -> str:
    name, _, value = item.partition("=")
    if name in _LIST_SETTINGS:
        elements = [leading_name(e)[0] if e.startswith('"') else e for e in split_list(value)]
        return f"SET {name} TO {', '.join(literal(e) for e in elements) or literal('')}"
    return f"SET {name} TO {literal(value)}"


def _routine(key: Key, attrs: Attributes, facts: Attributes, replace: bool = False) -> str:
    kind = key.kind.upper()
    lines = [f"CREATE {'OR REPLACE ' if replace else ''}{kind} {_routine_name(key, facts)}({attrs.get('arguments', '')})"]
    if key.kind == "function":
        lines.append(f"    RETURNS {attrs.get('returns', 'void')}")
    options = [f"LANGUAGE {ident(attrs.get('language', 'sql'))}"]
    if attrs.get("window") == "yes":
        options.append("WINDOW")
    for attribute, default in (("volatility", "volatile"), ("strict", "called on null input"),
                               ("security", "security invoker"), ("leakproof", "not leakproof"),
                               ("parallel", "parallel unsafe")):
        if attribute in attrs and attrs[attribute] != default:
            options.append(attrs[attribute].upper())
    for attribute in ("cost", "rows"):
        if attribute in attrs:
            options.append(f"{attribute.upper()} {attrs[attribute]}")
    lines.append("    " + " ".join(options))
    lines.extend(f"    {_setting(item)}" for item in attrs.get("config", "").split("\n") if item)
    body = attrs.get("body", "")
    if facts.get("sql body") == "yes":
        lines.append(body)
    elif "library" in attrs:
        lines.append(f"AS {literal(attrs['library'])}, {literal(body)}")
    elif attrs.get("language") in ("internal", "c"):
        lines.append(f"AS {literal(body)}")
    else:
        lines.append(f"AS {dollar_quoted(body)}")
    return "\n".join(lines)


def _create_routine(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    return [_routine(key, attrs, facts)]


def _aggregate(key: Key, attrs: Attributes, facts: Attributes, replace: bool = False) -> str:
    clauses = []
    for part in split_list(attrs.get("aggregate", "")):
        word, _, value = part.partition(" ")
        if word == "sortop":
            value = "OPERATOR(" + value.split("(", 1)[0] + ")"
        clauses.append(f"{word.upper()} = {value}")
    return (f"CREATE {'OR REPLACE ' if replace else ''}AGGREGATE {_routine_name(key, facts)}"
            f"({attrs.get('arguments') or '*'}) ({', '.join(clauses)})")


def _create_aggregate(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    return [_aggregate(key, attrs, facts)]


_CREATE: dict[str, Callable[[Key, Attributes, Attributes], list[str]]] = {
    "schema": _create_schema,
    "extension": _create_extension,
    "type": _create_type,
    "sequence": _create_sequence,
    "view": _create_view,
    "materialized view": _create_materialized_view,
    "function": _create_routine,
    "procedure": _create_routine,
    "aggregate": _create_aggregate,
    "statistics": _create_statistics,
    "constraint": _create_member,
    "index": _create_member,
    "trigger": _create_member,
    "policy": _create_member,
    "rule": _create_member,
}


def _comment_target(key: Key, facts: Attributes, attrs: Attributes) -> str:
    kind = key.kind
    name = qualified(key.schema, key.name)
    if kind in ("schema", "extension"):
        return f"{kind.upper()} {ident(key.name)}"
    if kind == "type":
        return f"{'DOMAIN' if attrs.get('form') == 'domain' else 'TYPE'} {name}"
    if kind in ("function", "procedure"):
        return f"{kind.upper()} {_signature(key, facts)}"
    if kind == "aggregate":
        return f"AGGREGATE {_routine_name(key, facts)}({attrs.get('arguments') or '*'})"
    if kind == "column":
        return f"COLUMN {name}.{ident(key.member)}"
    if kind == "index":
        return f"INDEX {qualified(key.schema, key.member)}"
    if kind == "constraint":
        return f"CONSTRAINT {ident(key.member)} ON {'DOMAIN ' if key.parent == 'type' else ''}{name}"
    if kind in ("trigger", "policy", "rule"):
        return f"{kind.upper()} {ident(key.member)} ON {name}"
    if kind == "table" and "foreign server" in attrs:
        return f"FOREIGN TABLE {name}"
    return f"{kind.upper()} {name}"


def _comment(key: Key, text: str | None, facts: Attributes, attrs: Attributes) -> str:
    return f"COMMENT ON {_comment_target(key, facts, attrs)} IS {literal(text) if text is not None else 'NULL'}"


def _comment_if_set(key: Key, attrs: Attributes, facts: Attributes) -> list[str]:
    return [_comment(key, attrs["comment"], facts, attrs)] if "comment" in attrs else []


def _form_text(attrs: Attributes) -> str:
    form = attrs.get("form")
    if form == "enum":
        return f"({attrs.get('labels', '')})"
    if form == "composite":
        return f"({attrs.get('attributes', '')})"
    if form == "range":
        return f"of {attrs.get('subtype', '?')}"
    if form == "domain":
        return f"over {attrs.get('base type', '?')}"
    return ""


def _partition(text: str) -> tuple[str, str]:
    """`parent FOR VALUES ...` (or `parent DEFAULT`), as the reader writes `partition of`: (parent, bound)."""
    if text.endswith(" DEFAULT"):
        return text[: -len(" DEFAULT")], "DEFAULT"
    at = text.find(" FOR VALUES ")
    return (text[:at], text[at + 1:]) if at >= 0 else (text, "")


def _options(text: str | None) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in split_list(text or "")) if text else {}


def _option_changes(head: str, before: Attributes, after: Attributes) -> list[str]:
    old, new = _options(before.get("options")), _options(after.get("options"))
    changed = [f"{name}={value}" for name, value in new.items() if old.get(name) != value]
    removed = [name for name in old if name not in new]
    out = []
    if changed:
        out.append(f"{head} SET ({', '.join(changed)})")
    if removed:
        out.append(f"{head} RESET ({', '.join(removed)})")
    return out


def _security_changes(name: str, before: str | None, after: str | None) -> list[str]:
    out = []
    was_on, is_on = before is not None, after is not None
    was_forced, is_forced = before == "enabled, forced", after == "enabled, forced"
    if is_on != was_on:
        out.append(f"ALTER TABLE {name} {'ENABLE' if is_on else 'DISABLE'} ROW LEVEL SECURITY")
    if is_forced != was_forced:
        out.append(f"ALTER TABLE {name} {'FORCE' if is_forced else 'NO FORCE'} ROW LEVEL SECURITY")
    return out

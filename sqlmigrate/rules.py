"""Pure checks of SPEC 4: SqlFile / Migration -> Finding list, and the rule registry.

Works on the statements sqlfile built; no database, no lexing of its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlmigrate import sqltext
from sqlmigrate.discovery import Scan
from sqlmigrate.model import Finding, Migration, MigrationFile, Severity, SqlFile, Statement, TrackingTable

E, W = Severity.ERROR, Severity.WARNING

# rule id -> severity; ids are stable: users type them in ignore directives
RULES: dict[str, Severity] = {
    "bad-name": E,
    "duplicate-id": E,
    "missing-up": E,
    "missing-down": E,
    "empty-up": E,
    "empty-down": E,
    "not-utf8": E,
    "unterminated": E,
    "syntax": E,
    "transaction-control": E,
    "needs-no-transaction": E,
    "unknown-directive": E,
    "misplaced-directive": E,
    "touches-tracking-table": E,
    "destructive": W,
    "lock-unsafe": W,
    # deploy safety, each on a table not created earlier in the same file
    "add-column-rewrite": W,
    "add-primary-key": W,
    "unique-without-index": W,
    "set-not-null": W,
    "drop-index-blocking": W,
    "reindex-blocking": W,
    "detach-partition-blocking": W,
    "domain-constraint": W,
    # clients of the old schema, still running while the migration deploys
    "rename-column": W,
    "rename-table": W,
    # data
    "drop-database": W,
    # schema design
    "char-type": W,
    "timestamp-without-time-zone": W,
    "int-primary-key": W,
    "enum-value-ordering": W,
    "identifier-too-long": W,
}
WARNING_RULES = frozenset(r for r, s in RULES.items() if s is W)
DIRECTIVES_BY_FILE = {
    "up": frozenset({"no-transaction", "empty", "ignore"}),
    "down": frozenset({"no-transaction", "irreversible", "empty", "ignore"}),
}
NO_TRANSACTION_HINT = 'add "-- sqlmigrate: no-transaction" before the first statement'


def finding(sql: SqlFile, stmt: Statement, rule: str, message: str, hint: str | None = None) -> Finding:
    return Finding(sql.path, stmt.line, stmt.col, RULES[rule], rule, message, hint)


# -- helpers on statement words ------------------------------------------------


def _ident(word: str) -> str:
    """A name as PostgreSQL resolves it: quoted kept exactly, unquoted folded."""
    if len(word) >= 2 and word[0] == '"' and word[-1] == '"':
        return word[1:-1].replace('""', '"')
    return sqltext.fold(word)


def _qualified_name(words: tuple[str, ...], i: int) -> tuple[str | None, str, int]:
    """Read `[schema.]name` at words[i]; returns (schema, name, index after)."""
    if i + 2 < len(words) and words[i + 1] == ".":
        return _ident(words[i]), _ident(words[i + 2]), i + 3
    if i < len(words):
        return None, _ident(words[i]), i + 1
    return None, "", i


def _skip(words: tuple[str, ...], i: int, *optional: str) -> int:
    while i < len(words) and words[i] in optional:
        i += 1
    return i


def _skip_parenthesised(words: tuple[str, ...], i: int) -> int:
    """Skip an option list such as REINDEX (VERBOSE) at words[i]."""
    if i < len(words) and words[i] == "(":
        depth = 0
        for j in range(i, len(words)):
            depth += words[j] == "("
            depth -= words[j] == ")"
            if depth == 0:
                return j + 1
        return len(words)
    return i


def _top_level(words: tuple[str, ...]) -> list[str]:
    """The words outside parentheses."""
    out: list[str] = []
    depth = 0
    for word in words:
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0:
            out.append(word)
    return out


def _cte_bodies(words: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The queries of a WITH clause: each `AS [NOT] [MATERIALIZED] ( ... )` at the top level."""
    depth, start = 0, None
    for i, word in enumerate(words):
        if word == "(":
            if depth == 0 and _skip_back(words, i) == "as":
                start = i + 1
            depth += 1
        elif word == ")":
            depth -= 1
            if depth == 0 and start is not None:
                yield words[start:i]
                start = None


def _skip_back(words: tuple[str, ...], i: int) -> str:
    """The word before words[i], passing over [NOT] MATERIALIZED."""
    i -= 1
    while i >= 0 and words[i] in ("materialized", "not"):
        i -= 1
    return words[i] if i >= 0 else ""


def _table_after(words: tuple[str, ...], i: int) -> tuple[str | None, str, int]:
    i = _skip(words, i, "if exists", "if not exists", "only")
    return _qualified_name(words, i)


def _top_level_parts(words: tuple[str, ...], start: int) -> Iterator[tuple[str, ...]]:
    """Split words[start:] on commas outside parentheses (ALTER TABLE actions)."""
    depth = 0
    part: list[str] = []
    for word in words[start:]:
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif word in (",", ";") and depth == 0:
            if part:
                yield tuple(part)
            part = []
            continue
        part.append(word)
    if part:
        yield tuple(part)


def _has_top_level(words: tuple[str, ...], wanted: str) -> bool:
    depth = 0
    for word in words:
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word == wanted:
            return True
    return False


def _table_of(stmt: Statement) -> tuple[str, tuple[str | None, str, int]] | None:
    """(verb, table) for statements acting on one table by name."""
    w = stmt.words
    if len(w) < 2:
        return None
    head = w[0]
    if head in ("create", "create or replace"):
        i = _skip(w, 1, "global", "local", "temporary", "temp", "unlogged")
        if i < len(w) and w[i] == "table":
            return "create", _table_after(w, i + 1)
    if head in ("create", "create or replace"):
        i = _skip(w, 1, "foreign")
        if i > 1 and i < len(w) and w[i] == "table":
            return "create", _table_after(w, i + 1)
    if head in ("alter", "drop") and w[1] == "table":
        return head, _table_after(w, 2)
    if head in ("alter", "drop") and w[1:3] == ("foreign", "table"):
        return head, _table_after(w, 3)
    into = _select_into(w)
    if into is not None:
        return "create", _table_after(w, _skip(w, into + 1, "global", "local", "temporary", "temp",
                                               "unlogged", "table"))
    if head == "truncate":
        return "truncate", _table_after(w, _skip(w, 1, "table"))
    return None


def _select_into(words: tuple[str, ...]) -> int | None:
    """Index of the INTO of `SELECT ... INTO [TEMP|UNLOGGED] [TABLE] name`, which creates a table."""
    if words[0] not in ("select", "with"):
        return None
    top = []  # (index, word) outside parentheses
    depth = 0
    for i, word in enumerate(words):
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0:
            top.append((i, word))
    if top[0][1] == "with":
        # the main statement of WITH ... : its first keyword outside the CTE bodies
        main = next((word for _, word in top[1:] if word in _DML), "")
        if main != "select":
            return None  # WITH ... INSERT INTO t ... inserts, it creates nothing
    elif top[0][1] != "select":
        return None
    return next((i for i, word in top if word == "into"), None)


def _created_relation(stmt: Statement) -> list[tuple[str | None, str]]:
    """The (schema, name) of the table or materialized view a CREATE statement
    makes (lock-unsafe exempts it); schema None when unqualified."""
    target = _table_of(stmt)
    if target and target[0] == "create":
        return [(target[1][0], target[1][1])]
    w = stmt.words
    if w[0] == "create" and w[1:3] == ("materialized", "view"):
        schema, name, _ = _table_after(w, 3)
        return [(schema, name)]
    return []


def _was_created(created: set[tuple[str | None, str]], schema: str | None, name: str) -> bool:
    """Whether [schema.]name is one of `created`: the names match, and so do the
    schemas when both are given (offline, an unqualified name may be in any)."""
    return any(made == name and (made_in is None or schema is None or made_in == schema)
               for made_in, made in created)


# -- error rules on statements -------------------------------------------------

_TRANSACTION_WORDS = {"begin", "commit", "end", "abort"}


def _transaction_control(stmt: Statement) -> str | None:
    w = stmt.words
    head = w[0]
    nxt = w[1] if len(w) > 1 else ""
    if head in _TRANSACTION_WORDS:
        if head == "commit" and nxt == "prepared":
            return "COMMIT PREPARED"
        return head.upper()
    if head == "start" and nxt == "transaction":
        return "START TRANSACTION"
    if head == "rollback":
        if "to" in w[1:3]:
            return None  # ROLLBACK [WORK] TO SAVEPOINT works inside the runner's transaction
        return "ROLLBACK PREPARED" if nxt == "prepared" else "ROLLBACK"
    if head == "prepare" and nxt == "transaction":
        return "PREPARE TRANSACTION"
    return None


def _is_concurrently(w: tuple[str, ...]) -> bool:
    """CREATE [UNIQUE] INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY,
    REINDEX [(options)] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} CONCURRENTLY."""
    head = w[0]
    if head == "create":
        i = _skip(w, 1, "unique")
        return w[i:i + 2] == ("index", "concurrently")
    if head == "drop":
        return w[1:3] == ("index", "concurrently")
    if head == "reindex":
        # an option list of any length: (VERBOSE, TABLESPACE x, CONCURRENTLY [bool])
        i = _skip_parenthesised(w, 1)
        options = list(_top_level_parts(w[2:i - 1], 0)) if i > 1 else []
        if any(part[0] == "concurrently" and part[1:] in ((), ("true",), ("on",), ("1",))
               for part in options):
            return True
        return w[i + 1:i + 2] == ("concurrently",)
    return False


def _needs_no_transaction(stmt: Statement) -> str | None:
    w = stmt.words
    head = w[0]
    nxt = w[1] if len(w) > 1 else ""
    if _is_concurrently(w):
        return f"{head.upper()} ... CONCURRENTLY"
    if head == "alter" and nxt == "table" and "detach" in w and "concurrently" in w:
        return "DETACH PARTITION ... CONCURRENTLY"
    if head == "vacuum":
        return "VACUUM"
    if head == "reindex":
        kind = w[_skip_parenthesised(w, 1):][:1]
        if kind and kind[0] in ("schema", "database", "system"):
            return f"REINDEX {kind[0].upper()}"
    if head == "cluster" and w[_skip_parenthesised(w, _skip(w, 1, "verbose")):] in ((), (";",)):
        return "CLUSTER without a table"  # reclusters every table, one transaction each
    if head == "discard" and nxt == "all":
        return "DISCARD ALL"
    if head in ("create", "drop") and nxt in ("database", "tablespace"):
        return f"{head.upper()} {nxt.upper()}"
    if head == "alter" and nxt == "system":
        return "ALTER SYSTEM"
    if head == "alter" and nxt == "database" and "set" in w and "tablespace" in w:
        return "ALTER DATABASE ... SET TABLESPACE"
    if head in ("create", "drop") and nxt == "subscription":
        return f"{head.upper()} SUBSCRIPTION"
    return None


def _names_tracking_table(schema: str | None, name: str, table: TrackingTable) -> bool:
    if name != table.name:
        return False
    return schema is None or table.schema is None or schema == table.schema


def _touches_tracking_table(stmt: Statement, table: TrackingTable) -> bool:
    w = stmt.words
    target = _table_of(stmt)
    if target is None:
        return False
    verb, (schema, name, after) = target
    if _names_tracking_table(schema, name, table):
        return True
    if verb == "drop" or verb == "truncate":
        # DROP TABLE a, b / TRUNCATE [ONLY] a [*], [ONLY] b [*]
        i = _skip(w, after, "*")
        while i < len(w) and w[i] == ",":
            schema, name, i = _qualified_name(w, _skip(w, i + 1, "only"))
            if _names_tracking_table(schema, name, table):
                return True
            i = _skip(w, i, "*")
    if verb == "alter":
        # ALTER TABLE x RENAME TO tracking
        for i in range(after, len(w) - 2):
            if w[i] == "rename" and w[i + 1] == "to":
                schema2, name2, _ = _qualified_name(w, i + 2)
                if _names_tracking_table(schema2 or schema, name2, table):
                    return True
    return False


# -- warning rules -------------------------------------------------------------


def _destructive(stmt: Statement) -> str | None:
    w = stmt.words
    head = w[0]
    nxt = w[1] if len(w) > 1 else ""
    if head == "drop" and nxt in ("table", "schema"):
        return f"DROP {nxt.upper()} destroys data"
    if head == "truncate":
        return "TRUNCATE destroys data"
    if head == "with":
        for body in _cte_bodies(w):  # WITH d AS (DELETE FROM t RETURNING *) SELECT ...
            if body[:1] in (("delete",), ("update",)) and not _has_top_level(body, "where"):
                return f"{body[0].upper()} without WHERE changes every row"
        head = next((word for word in _top_level(w) if word in _DML), "")
    if head in ("delete", "update") and not stmt.is_truncated and not _has_top_level(w, "where"):
        return f"{head.upper()} without WHERE changes every row"
    if head == "alter" and nxt == "table":
        _, _, after = _table_after(w, 2)
        for part in _top_level_parts(w, after):
            if part[0] == "drop" and (len(part) < 2 or part[1] not in _DROP_NOT_COLUMN):
                return "DROP COLUMN destroys data"
    return None


_DML = ("select", "insert", "update", "delete", "merge")
_DROP_NOT_COLUMN = {"constraint", "default", "not null", "not", "identity", "expression", "trigger"}


def _lock_unsafe(stmt: Statement, created: set[tuple[str | None, str]]) -> tuple[str, str] | None:
    w = stmt.words
    head = w[0]
    if head == "create" and "index" in w[1:3]:
        if "concurrently" in w[:6]:
            return None
        on = _index_of(w, "on")
        if on is None:
            return None
        schema, table, _ = _table_after(w, on + 1)
        if _was_created(created, schema, table):
            return None
        return (
            f"CREATE INDEX without CONCURRENTLY blocks writes to {table} while it builds",
            "use CREATE INDEX CONCURRENTLY in a migration marked no-transaction",
        )
    if head == "alter" and len(w) > 1 and w[1] == "table":
        schema, table, after = _table_after(w, 2)
        if _was_created(created, schema, table):
            return None
        for part in _top_level_parts(w, after):
            problem = _unsafe_action(part, table)
            if problem:
                return problem
    return None


def _index_of(words: tuple[str, ...], wanted: str) -> int | None:
    try:
        return words.index(wanted)
    except ValueError:
        return None


_SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


def _unsafe_action(part: tuple[str, ...], table: str) -> tuple[str, str] | None:
    """The lock-unsafe finding (message, hint) of one ALTER TABLE action, if any."""
    verb = part[0]
    top = _top_level(part)
    not_valid = _is_not_valid(top)
    if verb == "add":
        kind = top[3] if len(top) > 3 and top[1] == "constraint" else (top[1] if len(top) > 1 else "")
        if kind in ("foreign", "check") and not not_valid:
            what = "foreign key" if kind == "foreign" else "CHECK constraint"
            return (
                f"adding a {what} without NOT VALID scans {table} while holding a lock",
                "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration",
            )
        if kind in ("constraint", "foreign", "check", "primary key", "unique", "exclude", "not null"):
            return None  # a table constraint (NOT NULL: PostgreSQL 18's form, see set-not-null)
        # a column: its constraints cannot be NOT VALID, so they check every row at once
        if "not null" in top and "default" not in top and "generated" not in top \
                and not _SERIAL_TYPES.intersection(top):
            return (
                f"ADD COLUMN ... NOT NULL without DEFAULT fails on a non-empty {table} "
                "and rewrites it under an exclusive lock",
                "add the column nullable, backfill it, then make it NOT NULL without a long lock (see the "
                "set-not-null rule)",
            )
        if "references" in top:
            return (
                f"ADD COLUMN ... REFERENCES validates every row of {table} under lock",
                "add the column, then the foreign key with NOT VALID, then VALIDATE CONSTRAINT",
            )
        if "check" in top:
            return (
                f"ADD COLUMN ... CHECK scans {table} under an ACCESS EXCLUSIVE lock",
                "add the column, then the CHECK constraint with NOT VALID, then VALIDATE CONSTRAINT",
            )
        return None
    if verb == "alter" and _is_type_change(part):
        return (
            f"ALTER COLUMN ... TYPE may rewrite {table} under an ACCESS EXCLUSIVE lock",
            "add a new column, backfill it, and switch over",
        )
    return None


def _is_type_change(part: tuple[str, ...]) -> bool:
    """ALTER [COLUMN] name [SET DATA] TYPE ... (not a column that is named type)."""
    i = 2 if len(part) > 1 and part[1] == "column" else 1
    rest = part[i + 1:i + 4]
    return rest[:1] == ("type",) or rest == ("set", "data", "type")


# -- more warning rules: one pass over the statements whose head can match ---------------

_LINTED_HEADS = frozenset({"alter", "create", "drop", "reindex"})
_Lint = tuple[str, str, str]  # rule, message, hint


def _lint(stmt: Statement, created: set[tuple[str | None, str]],
          created_indexes: set[tuple[str | None, str]]) -> Iterator[_Lint]:
    """The findings of the rules below on one up.sql statement, a rule possibly more than once."""
    w = stmt.words
    head, nxt = w[0], (w[1] if len(w) > 1 else "")
    if head in ("create", "alter"):
        long = _too_long(w)
        if long is not None:
            yield ("identifier-too-long", f"the name {long[:20]}... is longer than 63 bytes: PostgreSQL cuts it "
                   "there, so a later statement using the whole name does not find it",
                   "choose a name of at most 63 bytes")
    if head == "alter" and nxt == "table":
        if _ALTER_TABLE_WORDS.isdisjoint(w):
            return  # none of its actions can match: most ALTER TABLEs, and the test is one set operation
        schema, table, after = _table_after(w, 2)
        is_new = _was_created(created, schema, table)
        for part in _top_level_parts(w, after):
            yield from _alter_table_action(part, table, is_new)
    elif head == "alter" and nxt == "type" and "add" in w and "value" in w:
        if not any(word in ("before", "after") for word in w):
            yield ("enum-value-ordering", "ADD VALUE without BEFORE or AFTER puts the new label after every "
                   "existing one, whatever the order the type's values should sort in",
                   "say where it goes: ADD VALUE 'x' BEFORE 'y' (or AFTER the last label, which keeps "
                   "comparisons fast)")
    elif head == "alter" and nxt == "domain" and "add" in w:
        top = _top_level(w)
        if not _is_not_valid(top):
            yield ("domain-constraint", f"ALTER DOMAIN ... ADD CONSTRAINT checks every column of type "
                   f"{_qualified_name(w, 2)[1]} in every table, holding a SHARE lock on each (writes wait)",
                   "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration")
    elif head == "create":
        i = _skip(w, 1, "global", "local", "temporary", "temp", "unlogged")
        if i < len(w) and w[i] == "table" and not (_FLAGGED_TYPES.isdisjoint(w) and (
                _INT4_TYPES.isdisjoint(w) or "primary key" not in w)):
            _, table, after = _table_after(w, i + 1)
            if after < len(w) and w[after] == "(":
                yield from _column_types(_table_elements(w, after), table)
    elif head == "drop" and nxt == "index" and "concurrently" not in w[2:3]:
        names = _names_after(w, _skip(w, 2, "if exists"))
        if any(not _was_created(created_indexes, schema, name) for schema, name in names):
            yield ("drop-index-blocking", "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on its "
                   "table: reads and writes wait for it, and it waits for every query on the table",
                   "DROP INDEX CONCURRENTLY in a migration marked no-transaction")
    elif head == "drop" and nxt == "database":
        yield ("drop-database", "DROP DATABASE destroys a whole database",
               "make sure this is intended; silence with -- sqlmigrate: ignore drop-database")
    elif head == "reindex" and not _is_concurrently(w):
        i = _skip_parenthesised(w, 1)
        kind = w[i] if i < len(w) else ""
        schema, name, _ = _qualified_name(w, i + 1)
        made = created_indexes if kind == "index" else created
        if not (kind in ("index", "table") and _was_created(made, schema, name)):
            yield ("reindex-blocking", f"REINDEX without CONCURRENTLY blocks writes to the {kind or 'table'} "
                   "being rebuilt, and reads that use an index being rebuilt",
                   "REINDEX ... CONCURRENTLY (PostgreSQL 12 and later) in a migration marked no-transaction")


def _too_long(words: tuple[str, ...]) -> str | None:
    """The first identifier longer than 63 bytes, if any (the lengths are compared in C first)."""
    longest = max(map(len, words))
    if longest <= 63 and (longest <= 15 or all(map(str.isascii, words))):
        return None  # an ASCII word of at most 63 characters is at most 63 bytes
    return next((word for word in words if _is_too_long(word)), None)


def _is_too_long(word: str) -> bool:
    """An identifier (unquoted, or quoted) longer than PostgreSQL's 63 bytes;
    literals are not names."""
    if len(word) <= 15 or word[0] in "'$" or word[:2] in ("e'", "E'", "b'", "x'", "n'", "u&"):
        return False  # 15 characters are at most 60 bytes of UTF-8
    if word[0] == '"':
        word = word[1:-1].replace('""', '"')
    elif not (word[0].isalpha() or word[0] == "_" or not word[0].isascii()):
        return False  # PostgreSQL starts a name with a letter, "_" or any character beyond ASCII
    return len(word.encode("utf-8")) > 63


def _alter_table_action(part: tuple[str, ...], table: str, is_new: bool) -> Iterator[_Lint]:
    verb = part[0]
    top = _top_level(part)
    if verb == "rename" and not is_new:
        if top[1:2] == ["to"]:
            yield ("rename-table", f"renaming table {table} breaks the clients that still use its old name, "
                   "such as the application deployed before this migration",
                   "make the clients use the new name first (a view with the old name can stand in meanwhile)")
        elif top[1:2] != ["constraint"]:
            yield ("rename-column", f"renaming a column of {table} breaks the clients that still use its old name, "
                   "such as the application deployed before this migration",
                   "add the new column, write both, move the clients over, then drop the old one")
    elif verb == "alter" and part[1:2] == ("constraint",):
        if top[-1:] == ["inherit"] and top[-2:-1] != ["no"] and not is_new:
            yield ("set-not-null", f"ALTER CONSTRAINT ... INHERIT checks every row of the tables that inherit "
                   f"from {table} under an ACCESS EXCLUSIVE lock", "add a NOT NULL NOT VALID constraint to each of "
                   "them and VALIDATE it in an earlier migration")
    elif verb == "alter":
        i = 2 if len(part) > 1 and part[1] == "column" else 1
        rest = part[i + 1:]
        if rest[:2] == ("set", "not null") and not is_new:
            yield ("set-not-null", f"SET NOT NULL scans all of {table} under an ACCESS EXCLUSIVE lock, unless a "
                   "valid CHECK (column IS NOT NULL) constraint already proves it", _NOT_NULL_ROUTE)
        elif _is_type_change(part):
            at = rest.index("type") + 1
            yield from _type_findings(rest[at:], table, _column_name(part[i]))
    elif verb == "add":
        kind = top[3] if len(top) > 3 and top[1] == "constraint" else (top[1] if len(top) > 1 else "")
        using_index = "using" in top
        if kind == "primary key":
            if not using_index and not is_new:
                yield _ADD_PRIMARY_KEY(table)
            return
        if kind == "unique":
            if not using_index and not is_new:
                yield _UNIQUE(table)
            return
        if kind == "not null":
            if not is_new and not _is_not_valid(top):
                yield ("set-not-null", f"adding a NOT NULL constraint checks every row of {table} under an ACCESS "
                       "EXCLUSIVE lock", _NOT_NULL_ROUTE)
            return
        if kind in ("constraint", "foreign", "check", "exclude"):
            return
        i = _skip(part, 2 if part[1:2] == ("column",) else 1, "if not exists")
        if i >= len(part):
            return
        name, column = _column_name(part[i]), part[i + 1:]
        yield from _column_types([part[i:]], table)
        column_top = _top_level(column)
        if not is_new:
            if "primary key" in column_top:
                yield _ADD_PRIMARY_KEY(table)
            elif "unique" in column_top:
                yield _UNIQUE(table)
            rewrite = _rewriting_column(column, column_top)
            if rewrite:
                yield ("add-column-rewrite", f"ADD COLUMN {name} with {rewrite} rewrites {table} under an "
                       "ACCESS EXCLUSIVE lock", "add it without that default (NULL, or a constant), backfill it "
                       "in batches, then SET DEFAULT for new rows")
    elif verb == "detach" and "concurrently" not in top and "finalize" not in top:
        yield ("detach-partition-blocking", f"DETACH PARTITION without CONCURRENTLY takes an ACCESS EXCLUSIVE lock "
               f"on {table}", "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14 and later) in a migration "
               "marked no-transaction")


# PostgreSQL 18 made NOT NULL a constraint of its own, which can be added NOT VALID
_NOT_NULL_ROUTE = ("on PostgreSQL 18 and later: ADD CONSTRAINT name NOT NULL column NOT VALID, then VALIDATE "
                   "CONSTRAINT name in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes go on); "
                   "before 18: add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then "
                   "SET NOT NULL, which skips the scan")


def _is_not_valid(top: list[str]) -> bool:
    return "not valid" in top or any(a == "not" and b == "valid" for a, b in zip(top, top[1:]))


def _ADD_PRIMARY_KEY(table: str) -> _Lint:
    return ("add-primary-key", f"adding a primary key to {table} builds its index under an ACCESS EXCLUSIVE lock",
            "CREATE UNIQUE INDEX CONCURRENTLY first (no-transaction), then ADD PRIMARY KEY USING INDEX")


def _UNIQUE(table: str) -> _Lint:
    return ("unique-without-index", f"adding a UNIQUE constraint to {table} builds its index under an ACCESS "
            "EXCLUSIVE lock", "CREATE UNIQUE INDEX CONCURRENTLY first (no-transaction), then ADD CONSTRAINT ... "
            "UNIQUE USING INDEX")


# A default PostgreSQL computes once for the ALTER (a constant, or a stable
# function such as now()) is stored in the catalog: no rewrite since PostgreSQL
# 11. A call to any function not known to be stable is taken to be volatile.
_STABLE_FUNCTIONS = frozenset({
    "now", "current_timestamp", "current_date", "current_time", "localtimestamp", "localtime",
    "transaction_timestamp", "statement_timestamp", "current_user", "current_role", "session_user",
    "current_schema", "current_database", "current_setting", "to_timestamp", "to_date", "make_date",
    "make_timestamp", "make_timestamptz", "make_interval", "lower", "upper", "concat", "coalesce",
    "nullif", "greatest", "least", "array", "jsonb_build_object", "json_build_object", "jsonb_build_array",
    "json_build_array", "to_jsonb", "to_json", "row", "cast", "date_trunc", "timezone", "interval",
    "numeric", "decimal", "varchar", "char", "character", "timestamp", "timestamptz", "time", "bit",
})
_SERIAL_NAMES = ("serial", "serial2", "serial4", "serial8", "smallserial", "bigserial")


def _rewriting_column(column: tuple[str, ...], top: list[str]) -> str | None:
    """What in an added column's definition makes PostgreSQL rewrite the table, if anything."""
    if top[:1] and top[0] in _SERIAL_NAMES:
        return f"type {top[0]}"
    if "generated" in top:
        return "GENERATED ... STORED" if "stored" in top else "an identity (GENERATED ... AS IDENTITY)"
    if "default" not in column:
        return None
    start = column.index("default") + 1
    depth = 0
    for i in range(start, len(column)):
        word = column[i]
        if word == "(":
            if depth == 0 and i > start and _is_function_name(column[i - 1]):
                name = column[i - 1]
                if name not in _STABLE_FUNCTIONS:
                    return f"the volatile default {name}()"
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word in _COLUMN_CONSTRAINT_WORDS:
            break
        elif word in ("nextval", "random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v4"):
            return f"the volatile default {word}()"
    return None


def _is_function_name(word: str) -> bool:
    return (word[:1].isalpha() or word[:1] == "_") and word not in _NOT_FUNCTIONS


_NOT_FUNCTIONS = frozenset({"default", "in", "and", "or", "not", "is", "as", "any", "all", "exists", "then",
                            "else", "when", "case", "values", "select", "array", "row"})
_COLUMN_CONSTRAINT_WORDS = frozenset({"not null", "null", "constraint", "primary key", "unique", "check",
                                      "references", "collate", "generated"})


def _table_elements(words: tuple[str, ...], start: int) -> list[tuple[str, ...]]:
    """The elements (column definitions, table constraints) of CREATE TABLE's list at
    words[start] == "(". One pass, cutting slices."""
    out: list[tuple[str, ...]] = []
    depth, first = 0, start + 1
    for j in range(first, len(words)):
        word = words[j]
        if word == "(":
            depth += 1
        elif word == ")" and depth:
            depth -= 1
        elif depth == 0 and word in (",", ")"):
            if j > first:
                out.append(words[first:j])
            if word == ")":
                break
            first = j + 1
    return out


_TABLE_CONSTRAINT_WORDS = frozenset({"constraint", "primary key", "unique", "check", "foreign", "exclude", "like"})


def _column_name(word: str) -> str:
    return _ident(word)


def _column_types(elements: list[tuple[str, ...]], table: str) -> Iterator[_Lint]:
    """char-type, timestamp-without-time-zone and int-primary-key of column definitions
    (each its name, then its type and constraints; table constraints are passed over)."""
    keys: set[str] | None = None
    for element in elements:
        if element[0] in _TABLE_CONSTRAINT_WORDS:
            continue
        words = element[1:]
        type_name = _type_name(words)
        if type_name in _FLAGGED_TYPES:
            yield from _type_findings(words, table, _column_name(element[0]))
        elif type_name in _INT4_TYPES:
            name = _column_name(element[0])
            if keys is None:
                keys = _table_key(elements)
            if "primary key" in words or name in keys:
                yield ("int-primary-key", f"primary key {table}.{name} is {type_name}: its values run out at "
                       f"about {'32 thousand' if type_name in _INT2_TYPES else '2.1 billion'}, and widening it "
                       "later rewrites the table under an ACCESS EXCLUSIVE lock",
                       "use bigint (bigserial, or bigint GENERATED ... AS IDENTITY)")


def _table_key(elements: list[tuple[str, ...]]) -> set[str]:
    """The columns a table constraint PRIMARY KEY (a, b) names."""
    for element in elements:
        if element[0] in ("primary key", "constraint") and "primary key" in element:
            at = element.index("primary key") + 1
            if element[at:at + 1] == ("(",):
                return {_column_name(x) for x in element[at + 1:] if x not in ("(", ")", ",")}
    return set()


_CHAR_TYPES = frozenset({"char", "character", "bpchar", "nchar"})
_FLAGGED_TYPES = _CHAR_TYPES | {"timestamp"}  # flagged whatever the column
# a word every ALTER TABLE action that _alter_table_action flags holds
_ALTER_TABLE_WORDS = frozenset({"rename", "not null", "inherit", "primary key", "unique", "detach", "default", "generated",
                                *_FLAGGED_TYPES, *_SERIAL_NAMES})
_INT2_TYPES = frozenset({"smallint", "int2", "smallserial", "serial2"})
_INT4_TYPES = frozenset({"int", "integer", "int4", "serial", "serial4"}) | _INT2_TYPES


def _type_name(words: tuple[str, ...]) -> str:
    """The (last part of the) type name a column definition starts with."""
    if len(words) > 2 and words[1] == ".":
        return words[2]
    return words[0] if words else ""


def _type_findings(words: tuple[str, ...], table: str, column: str) -> Iterator[_Lint]:
    type_name = _type_name(words)
    rest = words[3:] if len(words) > 2 and words[1] == "." else words[1:]
    if type_name in _CHAR_TYPES and rest[:1] != ("varying",):
        yield ("char-type", f"column {table}.{column} is char(n): it pads values with spaces, and comparisons "
               "and lengths ignore them", "use text (or varchar(n), with a CHECK on its length if it needs one)")
    if type_name == "timestamp":
        after = rest[3:] if rest[:1] == ("(",) else rest
        if after[:3] != ("with", "time", "zone"):
            yield ("timestamp-without-time-zone", f"column {table}.{column} is timestamp without time zone: it "
                   "keeps no offset, so clients in other time zones read another instant",
                   "use timestamptz (timestamp with time zone)")


def _names_after(words: tuple[str, ...], i: int) -> list[tuple[str | None, str]]:
    """`a, s.b, c` at words[i] (DROP INDEX's list), up to CASCADE/RESTRICT or the end."""
    out: list[tuple[str | None, str]] = []
    while i < len(words) and words[i] not in (";", "cascade", "restrict"):
        schema, name, i = _qualified_name(words, i)
        out.append((schema, name))
        if i < len(words) and words[i] == ",":
            i += 1
        else:
            break
    return out


def _created_index(stmt: Statement) -> list[tuple[str | None, str]]:
    """The index a CREATE INDEX names (DROP INDEX and REINDEX of it in the same file are harmless)."""
    w = stmt.words
    if w[0] != "create" or "index" not in w[1:3]:
        return []
    i = _skip(w, w.index("index") + 1, "concurrently", "if not exists")
    if i >= len(w) or w[i] == "on":
        return []
    schema, name, _ = _qualified_name(w, i)
    return [(schema, name)]


# -- per file ------------------------------------------------------------------


def parse(mfile: MigrationFile) -> SqlFile | None:
    """Lex a readable migration file (None when missing or not UTF-8)."""
    if mfile.data is None:
        return None
    from sqlmigrate import sqlfile  # sqlparse, loaded only where a file is lexed

    return sqlfile.parse(mfile.path, mfile.data, mfile.checksum)


def check_file(sql: SqlFile, kind: str, table: TrackingTable) -> list[Finding]:
    """Every finding of one up.sql or down.sql file."""
    out: list[Finding] = []
    out.extend(_directive_findings(sql, kind))
    for problem in sql.problems:
        out.append(Finding(sql.path, problem.line, problem.col, RULES[problem.rule], problem.rule, problem.message))
    if not sql.statements:
        out.extend(_empty_findings(sql, kind))
    created: set[tuple[str | None, str]] = set()
    created_indexes: set[tuple[str | None, str]] = set()
    ignored = sql.ignored_rules
    for stmt in sql.statements:
        if not stmt.words or stmt.words == (";",):
            continue
        what = _transaction_control(stmt)
        if what:
            out.append(
                finding(sql, stmt, "transaction-control",
                        f"{what} at top level: sqlmigrate runs each migration in its own transaction",
                        "remove it; use no-transaction for statements that must run outside one")
            )
        if sql.is_transactional:
            what = _needs_no_transaction(stmt)
            if what:
                out.append(
                    finding(sql, stmt, "needs-no-transaction",
                            f"{what} cannot run inside a transaction block", NO_TRANSACTION_HINT)
                )
        if _touches_tracking_table(stmt, table):
            shown = f"{table.schema}.{table.name}" if table.schema else table.name
            out.append(
                finding(sql, stmt, "touches-tracking-table",
                        f"statement changes a table named like the tracking table {shown}",
                        "rename the table, or run sqlmigrate with another --table")
            )
        if kind == "up":
            if "destructive" not in ignored:
                message = _destructive(stmt)
                if message:
                    out.append(finding(sql, stmt, "destructive", message,
                                       "make sure this is intended; silence with -- sqlmigrate: ignore destructive"))
            if "lock-unsafe" not in ignored:
                unsafe = _lock_unsafe(stmt, created)
                if unsafe:
                    out.append(finding(sql, stmt, "lock-unsafe", *unsafe))
            head = stmt.words[0]
            if head in _LINTED_HEADS:
                reported: set[str] = set()
                for rule, message, hint in _lint(stmt, created, created_indexes):
                    if rule not in ignored and rule not in reported:
                        reported.add(rule)
                        out.append(finding(sql, stmt, rule, message, hint))
            created.update(_created_relation(stmt))
            if head == "create":
                created_indexes.update(_created_index(stmt))
    return out


def _empty_findings(sql: SqlFile, kind: str) -> list[Finding]:
    if sql.is_marked_empty or (kind == "down" and sql.is_irreversible):
        return []
    if kind == "up":
        return [Finding(sql.path, 1, 1, E, "empty-up", "up.sql holds no statement",
                        'write its SQL, or mark it "-- sqlmigrate: empty" if that is on purpose')]
    return [Finding(sql.path, 1, 1, E, "empty-down", "down.sql holds no statement",
                    'write the rollback, or mark it "-- sqlmigrate: irreversible" or "-- sqlmigrate: empty"')]


def _directive_findings(sql: SqlFile, kind: str) -> Iterable[Finding]:
    for d in sql.misplaced_directives:
        yield Finding(sql.path, d.line, d.col, E, "misplaced-directive",
                      "sqlmigrate directive after the first statement has no effect",
                      "move it above the first statement")
    allowed = DIRECTIVES_BY_FILE[kind]
    for d in sql.directives:
        if d.word not in allowed:
            where = " in up.sql" if d.word in DIRECTIVES_BY_FILE["down"] else ""
            yield Finding(sql.path, d.line, d.col, E, "unknown-directive",
                          f"unknown directive {d.word!r}{where}",
                          "allowed here: " + ", ".join(sorted(allowed)))
        elif d.word == "ignore":
            if not d.args:
                yield Finding(sql.path, d.line, d.col, E, "unknown-directive",
                              "ignore names no rule", "write -- sqlmigrate: ignore RULE[, RULE...]")
            for rule in d.args:
                if rule not in WARNING_RULES:
                    what = "an error rule, which cannot be ignored" if rule in RULES else "an unknown rule"
                    yield Finding(sql.path, d.line, d.col, E, "unknown-directive",
                                  f"ignore names {rule!r}, {what}",
                                  "rules that can be ignored: " + ", ".join(sorted(WARNING_RULES)))
        elif d.args:
            yield Finding(sql.path, d.line, d.col, E, "unknown-directive",
                          f"directive {d.word!r} takes no argument")
        elif d.word == "empty" and any(stmt.words and stmt.words != (";",) for stmt in sql.statements):
            # "runs nothing on purpose" and a statement that would run contradict each other
            yield Finding(sql.path, d.line, d.col, E, "unknown-directive",
                          f"{Path(sql.path).name} is marked empty but holds statements",
                          'remove "-- sqlmigrate: empty", or the statements')


def check_migration(
    migration: Migration, table: TrackingTable, parsed: dict[Path, SqlFile] | None = None
) -> list[Finding]:
    """Findings of both files of one migration (layout findings aside).

    Each file lexed here is put in `parsed` (by path) when given, so that a
    caller about to run it does not lex it again.
    """
    out: list[Finding] = []
    for kind, mfile in (("up", migration.up), ("down", migration.down)):
        sql = parse(mfile)
        if sql is not None:
            if parsed is not None:
                parsed[mfile.path] = sql
            out.extend(check_file(sql, kind, table))
    return out


def check_down(migration: Migration, table: TrackingTable) -> tuple[SqlFile | None, list[Finding]]:
    """down.sql lexed (None when missing or not UTF-8), with its findings: what
    `down` needs of a migration before it runs the file."""
    sql = parse(migration.down)
    return sql, (check_file(sql, "down", table) if sql is not None else [])


def check_downs(migrations: list[Migration], table: TrackingTable) -> list[tuple[SqlFile | None, list[Finding]]]:
    return [check_down(m, table) for m in migrations]


def check(
    scan: Scan,
    table: TrackingTable,
    only: Callable[[Migration], bool] | None = None,
    parsed: dict[Path, SqlFile] | None = None,
    check_one: Callable[..., list[Finding]] | None = None,
) -> list[Finding]:
    """Layout findings plus those of every migration (or those `only` selects), sorted.

    `check_one` stands in for check_migration (prevalidate's, with results
    computed ahead in another process)."""
    check_one = check_one or check_migration
    out = list(scan.findings)
    for migration in scan.migrations:
        if only is None or only(migration):
            out.extend(check_one(migration, table, parsed))
    return sort_findings(out)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (str(f.path), f.line, f.col, f.rule))


def is_down_file(f: Finding) -> bool:
    return Path(f.path).name == "down.sql"


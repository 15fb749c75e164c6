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
    not_valid = any(a == "not" and b == "valid" for a, b in zip(top, top[1:]))
    if verb == "add":
        kind = top[3] if len(top) > 3 and top[1] == "constraint" else (top[1] if len(top) > 1 else "")
        if kind in ("foreign", "check") and not not_valid:
            what = "foreign key" if kind == "foreign" else "CHECK constraint"
            return (
                f"adding a {what} without NOT VALID scans {table} while holding a lock",
                "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration",
            )
        if kind in ("constraint", "foreign", "check", "primary key", "unique", "exclude"):
            return None
        # a column: its constraints cannot be NOT VALID, so they check every row at once
        if "not null" in top and "default" not in top and "generated" not in top \
                and not _SERIAL_TYPES.intersection(top):
            return (
                f"ADD COLUMN ... NOT NULL without DEFAULT fails on a non-empty {table} "
                "and rewrites it under an exclusive lock",
                "add the column nullable, backfill it, then SET NOT NULL",
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
            created.update(_created_relation(stmt))
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


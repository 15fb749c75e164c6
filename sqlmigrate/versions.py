"""The PostgreSQL majors sqlmigrate supports, and the SQL each newer one added.

Pure: statement text and a server version in, a hint out; imports nothing
from the package. Used by executor.py to explain errors such as a bare
`syntax error at or near "MERGE"` on a server too old for the statement.
"""
from __future__ import annotations

import re

# What an older server says when it meets SQL it does not know yet: a syntax
# error, an unknown function, type or object, or an unknown option.
_NOT_KNOWN_YET = {"42601", "42883", "42704", "22023", "0A000"}

# (first major that has it, what it is, how to spot it in a statement), oldest first.
# For a statement failing with one of the states above on an older server, the
# hint names the newest major it needs (MERGE ... RETURNING: 17, not MERGE's 15).
_NEWER_SQL = tuple(
    (major, what, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    for major, what, pattern in (
        (14, "CREATE OR REPLACE TRIGGER", r"\bcreate\s+or\s+replace\s+(?:constraint\s+)?trigger\b"),
        (14, "a BEGIN ATOMIC function body", r"\bbegin\s+atomic\b"),
        (14, "a multirange type", r"\b(?:int4|int8|num|ts|tstz|date)multirange\b"),
        (15, "MERGE", r"\bmerge\s+into\b"),
        (15, "UNIQUE NULLS NOT DISTINCT", r"\bnulls\s+(?:not\s+)?distinct\b"),
        (15, "a security_invoker view", r"\bsecurity_invoker\b"),
        (15, "regexp_like(), regexp_count(), regexp_instr() or regexp_substr()",
         r"\bregexp_(?:like|count|instr|substr)\s*\("),
        (15, "a publication FOR TABLES IN SCHEMA", r"\bfor\s+tables\s+in\s+schema\b"),
        (15, "ALTER TABLE ... SET ACCESS METHOD", r"\bset\s+access\s+method\b"),
        (16, "IS JSON or an SQL/JSON constructor (JSON_ARRAY, JSON_ARRAYAGG, JSON_OBJECTAGG)",
         r"\bis\s+(?:not\s+)?json\b|\bjson_(?:array|arrayagg|objectagg)\s*\("),
        (16, "any_value()", r"\bany_value\s*\("),
        (17, "JSON_TABLE or an SQL/JSON query function (JSON_QUERY, JSON_VALUE, JSON_EXISTS, ...)",
         r"\bjson_(?:table|query|value|exists|scalar|serialize)\s*\("),
        (17, "MERGE ... WHEN NOT MATCHED BY SOURCE", r"\bnot\s+matched\s+by\s+source\b"),
        (17, "MERGE ... RETURNING", r"\bmerge\s+into\b.*\breturning\b"),
        (18, "a virtual generated column", r"\bgenerated\s+always\s+as\b.*\bvirtual\b"),
        (18, "a temporal constraint (WITHOUT OVERLAPS)", r"\bwithout\s+overlaps\b"),
        (18, "a NOT ENFORCED constraint", r"\bnot\s+enforced\b"),
        (18, "uuidv7() or uuidv4()", r"\buuidv[47]\s*\("),
        (18, "a NOT NULL table constraint (ADD [CONSTRAINT name] NOT NULL column)",
         r"\badd\s+(?:constraint\s+(?:\w+|\"(?:[^\"]|\"\")+\")\s+)?not\s+null\b"),
    )
)


def describe(server_version: int) -> str:
    """150004 -> '15.4' (the form of libpq's server_version number since PostgreSQL 10)."""
    return f"{server_version // 10000}.{server_version % 10000}"


def newer_server_hint(statement: str, sqlstate: str | None, server_version: int) -> str | None:
    """Why a statement may have failed on this server: it uses SQL of a later major.

    Returns e.g. "MERGE needs PostgreSQL 15 or newer; this server is PostgreSQL
    14.23", or None when the error is of another kind or nothing matches.
    """
    if sqlstate not in _NOT_KNOWN_YET or not server_version:
        return None
    lacking = [(major, what) for major, what, pattern in _NEWER_SQL
               if server_version < major * 10000 and pattern.search(statement)]
    if not lacking:
        return None
    major, what = max(lacking, key=lambda entry: entry[0])
    return f"{what} needs PostgreSQL {major} or newer; this server is PostgreSQL {describe(server_version)}"

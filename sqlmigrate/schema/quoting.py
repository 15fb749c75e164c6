"""Quoting names and literals for the DDL generator, and splitting the lists the catalog reader joins.

Pure string functions; no database.
"""
from __future__ import annotations

import re

# Words PostgreSQL's quote_ident() quotes: every keyword that is not unreserved
# (pg_get_keywords() where catcode <> 'U', PostgreSQL 15), and those later
# versions added. Quoting one too many is harmless; one too few is a syntax error.
_KEYWORDS = frozenset("""
    all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both
    case cast char character check coalesce collate collation column concurrently constraint create cross
    current_catalog current_date current_role current_schema current_time current_timestamp current_user dec
    decimal default deferrable desc distinct do else end except exists extract false fetch float for foreign
    freeze from full grant greatest group grouping having ilike in initially inner inout int integer intersect
    interval into is isnull join lateral leading least left like limit localtime localtimestamp national natural
    nchar none normalize not notnull null nullif numeric offset on only or order out outer overlaps overlay
    placing position precision primary real references returning right row select session_user setof similar
    smallint some substring symmetric table tablesample then time timestamp to trailing treat trim true union
    unique user using values varchar variadic verbose when where window with xmlattributes xmlconcat xmlelement
    xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
    system_user json json_array json_arrayagg json_exists json_object json_objectagg json_query json_scalar
    json_serialize json_table json_value merge_action
""".split())
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def ident(name: str) -> str:
    """A name as SQL: bare when PostgreSQL would read it back unchanged, else double-quoted."""
    if _PLAIN.match(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """schema.name, or the bare name in public (the generated files set search_path = public,
    the setting the catalog reader writes its texts for)."""
    return ident(name) if schema == "public" else f"{ident(schema)}.{ident(name)}"


def literal(text: str) -> str:
    """A string constant (standard_conforming_strings is on: a backslash is just a backslash)."""
    return "'" + text.replace("'", "''") + "'"


def dollar_quoted(body: str) -> str:
    """`body` between dollar quotes whose tag it does not contain."""
    tag, n = "$$", 0
    while tag in body or body.endswith(tag[:-1]):
        n += 1
        tag = f"$body{n if n > 1 else ''}$"
    return f"{tag}{body}{tag}"


def split_list(text: str, separator: str = ",") -> list[str]:
    """Split a list the catalog reader joined, at the separators outside quotes and parentheses."""
    parts: list[str] = []
    depth, start, i, quote = 0, 0, 0, ""
    while i < len(text):
        char = text[i]
        if quote:
            if char == quote:
                if text.startswith(quote * 2, i):
                    i += 2
                    continue
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i].strip())
            start = i + len(separator)
            i = start
            continue
        i += 1
    tail = text[start:].strip()
    if tail or parts:
        parts.append(tail)
    return parts


def leading_name(text: str) -> tuple[str, str]:
    """A possibly quoted name at the start of `text` (unquoted as PostgreSQL reads it), and the rest."""
    text = text.lstrip()
    if text.startswith('"'):
        name, rest = _name_part(text)
        return name, rest.lstrip()
    word, _, rest = text.partition(" ")
    return word.lower(), rest.lstrip()


def relation_name(text: str) -> tuple[str, str]:
    """(schema, name) of a regclass text (`users`, `billing.invoices`, `"Odd"."Name"`), public when unqualified."""
    first, rest = _name_part(text)
    if rest.startswith("."):
        second, _ = _name_part(rest[1:])
        return first, second
    return "public", first


def _name_part(text: str) -> tuple[str, str]:
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == '"':
                if text.startswith('""', i):
                    i += 2
                    continue
                return text[1:i].replace('""', '"'), text[i + 1:]
            i += 1
        return text[1:], ""
    match = re.match(r"[^.\s]*", text)
    assert match is not None
    return match.group(), text[match.end():]

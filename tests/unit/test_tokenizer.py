"""The tokenizer gives sqlparse's tokens, and the content checksum is SPEC 2's, byte for byte.

The tokenizer drives sqlparse's rules through one compiled pattern; these tests
hold it to sqlparse's own loop on every SQL file the project has, and on the
awkward cases of PostgreSQL's lexical rules.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sqlmigrate import sqlfile
from tests.conftest import CORPORA, ROOT

SQL_FILES = sorted(CORPORA.rglob("*.sql")) + sorted((ROOT / "migrations").rglob("*.sql"))

AWKWARD = [
    "select $$a;b$$, $tag$ $$ ; $tag$, $1 from t;",
    "select 'it''s', E'a\\'b', U&'x', \"Quoted\"\"Name\" from t;",
    "/* outer /* nested */ still */ select 1;",
    "select a>=-1, b<>2, c::text, d->>'k', e @> f, g !~~* h from t;",
    "create function f() returns int begin atomic select 1; select 2; end;",
    "select 1 -- trailing\n;\n\n   \t",
    "select 'never ends",
    "select $body$ never ends",
    "select a$b$c, $q$ x $q$ from \u00e9t\u00e9;",
    "select \u00a7 from t;",  # a character no rule takes: one error token
    "",
    "   \n\t ",
]


def sqlparse_tokens(text: str) -> list[tuple[object, str, int]]:
    """What sqlparse's own loop yields, whitespace dropped, with start offsets."""
    out, pos = [], 0
    for ttype, value in sqlfile._build_lexer().get_tokens(text):
        if ttype not in sqlfile.T.Whitespace and ttype not in sqlfile.T.Newline:
            out.append((ttype, value, pos))
        pos += len(value)
    return out


def test_the_fast_path_is_in_use():
    assert sqlfile._tokenizer()._match is not None


@pytest.mark.parametrize("text", AWKWARD)
def test_tokens_equal_sqlparse_on_awkward_sql(text):
    assert list(sqlfile._tokenizer().tokens(text)) == sqlparse_tokens(text)


def test_tokens_equal_sqlparse_on_every_sql_file_of_the_project():
    assert len(SQL_FILES) > 500
    for path in SQL_FILES:
        try:
            text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            continue
        assert list(sqlfile._tokenizer().tokens(text)) == sqlparse_tokens(text), path


def test_content_checksum_is_the_spec_definition():
    """Tokens without comments (directives kept, normalised) or whitespace, keywords and
    unquoted names lower-cased, literals and quoted names exact, joined by single spaces."""
    text = (
        "-- sqlmigrate:  IGNORE destructive\n"
        "-- a comment\n"
        "CREATE TABLE \"Mixed\" (Id INT DEFAULT 42, note TEXT DEFAULT 'It''s');\n"
        "/* gone */ INSERT INTO \"Mixed\" VALUES (1, $x$ Body ; $x$), (2, E'\\n');\n"
        "SELECT a NOT  NULL FROM t"
    )
    expected = " ".join([
        "-- sqlmigrate: ignore destructive",
        "create", "table", '"Mixed"', "(", "id", "int", "default", "42", ",", "note", "text",
        "default", "'It''s'", ")", ";",
        "insert", "into", '"Mixed"', "values", "(", "1", ",", "$x$ Body ; $x$", ")", ",",
        "(", "2", ",", "e'\\n'", ")", ";",
        "select", "a", "not null", "from", "t",
    ])
    assert sqlfile.content_checksum(Path("m/1_x/up.sql"), text) == hashlib.sha256(expected.encode()).hexdigest()


def test_content_checksum_of_a_statement_past_the_word_cap_streams_the_same_bytes():
    values = ", ".join(f"({n}, 'v{n}')" for n in range(sqlfile.MAX_WORDS))
    text = f"insert into t values {values};\nselect 1;"
    words = ["insert", "into", "t", "values"]
    for n in range(sqlfile.MAX_WORDS):
        words += ["(", str(n), ",", f"'v{n}'", ")", ","]
    words[-1] = ";"
    words += ["select", "1", ";"]
    parsed = sqlfile.parse_text(Path("m/1_x/up.sql"), text)
    assert parsed.statements[0].is_truncated
    assert parsed.content_checksum == hashlib.sha256(" ".join(words).encode()).hexdigest()


# Statements the builder treats in a way of its own: BEGIN ATOMIC bodies, CREATE
# RULE action lists, COPY data, nested and stray comments, openers that never
# end, directives before and after SQL, a NUL, the word cap.
BUILDER_CASES = AWKWARD + [
    "create function f() returns int language sql begin atomic select 1; "
    "select case when true then 1 end; end; select 2;",
    "create or replace procedure p() begin atomic insert into t values (1); end if; end; select 3;",
    "begin atomic; select 1;",
    "create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 1;",
    "select (1; select 2;",
    "select ((1)); select 2); select 3;",
    "copy t (a, b) from stdin;\n1\t2\n\\.\nselect 1;",
    "copy t from stdin;\n1\t2\n",
    "select 1; /* a /* b */ c */ select 2; /* never /* ends */",
    "select 1 */ ; select 2;",
    "select E'never \\' ends",
    'select "never',
    "select 1\x00; select 2;",
    "-- sqlmigrate: no-transaction\n-- sqlmigrate: ignore B, a\nselect 1;\n-- sqlmigrate: ignore x\nselect 2;",
    "SELECT a NOT  NULL FROM t ORDER\tBY x DESC  NULLS\nFIRST; create  or\n replace view v as select 1;",
    "select " + ", ".join(["x"] * (sqlfile.MAX_WORDS // 2 - 1)) + "; select 1;",
    "select " + ", ".join(["x"] * (sqlfile.MAX_WORDS // 2)) + " ( ; ) ; select 1;",
    "insert into t values " + ", ".join(f"({n}, 'v{n}')" for n in range(1000)) + ", (end;",
]


def test_the_builder_reads_the_tokens_as_the_tokenizer_gives_them(monkeypatch):
    """_lex_inline, the tokenizer's loop written into the builder, builds what
    the builder makes of _Tokenizer.tokens one token at a time."""
    texts = [text for text in BUILDER_CASES]
    for path in SQL_FILES:
        try:
            texts.append(path.read_text(encoding="utf-8").removeprefix("\ufeff"))
        except UnicodeDecodeError:
            continue
    inline = [sqlfile.parse_text(Path("m/1_x/up.sql"), text) for text in texts]
    monkeypatch.setattr(
        sqlfile._Builder, "_lex_inline", lambda builder, base, text, tokenizer: builder._lex_tokens(base, text))
    for text, parsed in zip(texts, inline):
        assert sqlfile.parse_text(Path("m/1_x/up.sql"), text) == parsed, text[:200]


@pytest.mark.parametrize(("regex", "expected"), [
    (r"(a|b)\(c(d)?\)", r"(?:a|b)\(c(?:d)?\)"),
    (r"\\(a)", r"\\(?:a)"),
    (r"(?:a)(?=b)(?!c)", r"(?:a)(?=b)(?!c)"),
    (r"[(](a)", r"[(](?:a)"),  # a '(' in a set is a character, not a group
    (r"[^]()](a)[\](]", r"[^]()](?:a)[\](]"),  # ']' first in a set, and escaped in one
    (r"(?P<x>a)(b)", r"(?P<x>a)(?:b)"),  # a named group stays
    (r"(a)\1", r"(a)\1"),  # a reference: left as it is
    (r"(?P<x>a)(?P=x)", r"(?P<x>a)(?P=x)"),
])
def test_uncaptured_makes_groups_non_capturing_or_leaves_the_regex(regex, expected):
    assert sqlfile._uncaptured(regex) == expected

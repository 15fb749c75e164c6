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

ROOT = Path(__file__).resolve().parents[2]
SQL_FILES = sorted((ROOT / "tests" / "corpora").rglob("*.sql")) + sorted((ROOT / "migrations").rglob("*.sql"))

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

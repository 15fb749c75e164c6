"""sqlfile: splitting, line/col (1-based, in characters), directives, lex problems, checksums."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sqlmigrate import sqlfile, sqltext
from sqlmigrate.model import LexProblem

PATH = Path("m/001_x/up.sql")


def parse(text: str):
    return sqlfile.parse_text(PATH, text)


def starts(text: str) -> list[tuple[int, int]]:
    """(line, col) of every statement."""
    return [(s.line, s.col) for s in parse(text).statements]


def texts(text: str) -> list[str]:
    sql = parse(text)
    return [s.text_in(sql.text) for s in sql.statements]


def problems(text: str) -> list[tuple[str, int, int]]:
    return [(p.rule, p.line, p.col) for p in parse(text).problems]


# -- splitting and positions -----------------------------------------------------


def test_dollar_quoted_body_is_one_token():
    text = (
        "select 1;\n"
        "create function f() returns int as $$\n"
        "begin\n"
        "  return 1;\n"
        "end\n"
        "$$ language plpgsql;\n"
        "select 2;\n"
    )
    assert starts(text) == [(1, 1), (2, 1), (7, 1)]
    assert texts(text)[1].endswith("$$ language plpgsql;")
    assert problems(text) == []


def test_tagged_dollar_quote_holds_plain_dollar_quotes():
    text = "do $body$ begin perform $$;$$; end $body$;\n  select 2;"
    assert starts(text) == [(1, 1), (2, 3)]
    assert texts(text)[0] == "do $body$ begin perform $$;$$; end $body$;"


def test_dollar_quote_tags_take_any_character_beyond_ascii_as_postgresql_does():
    text = "select $ф$a;b$ф$, $€1$c;$€1$;\nselect 2;"
    assert starts(text) == [(1, 1), (2, 1)]
    assert parse(text).statements[0].words == ("select", "$ф$a;b$ф$", ",", "$€1$c;$€1$", ";")


def test_a_dollar_after_a_name_character_opens_nothing():
    # `ф$b$` is one name: PostgreSQL's names may hold "$"
    text = "create table ф$b$ (id int);\nselect 2;"
    assert starts(text) == [(1, 1), (2, 1)]
    assert parse(text).statements[0].words[2] == "ф$b$"


def test_an_unterminated_dollar_quote_tagged_beyond_ascii_is_reported():
    assert problems("select 1;\nselect $ф$ never ends;\n") == [("unterminated", 2, 1)]


@pytest.mark.parametrize("name", ["€e", "\xa0e", "\u2003e", "a\u0301e", "©e", "😀e", "´e"])
def test_every_character_beyond_ascii_belongs_to_a_name(name):
    # PostgreSQL reads "€e" (a no-break space, an accent on its own ...) as one
    # name, so the quote after it opens a plain string, not an E'' string whose
    # backslash would run it on past the COMMIT
    text = f"select {name}'\\';\ncommit;\nselect 1 --';\n"
    assert starts(text) == [(1, 1), (2, 1), (3, 1)]
    assert parse(text).statements[0].words == ("select", name, "'\\'", ";")


def test_an_acute_accent_quotes_nothing():
    # sqlparse's generic rules quote names in ´...´; PostgreSQL has no such quotes
    text = "select 1 as ´x;\ncommit;\nselect 1 as y´;\n"
    assert starts(text) == [(1, 1), (2, 1), (3, 1)]


@pytest.mark.parametrize("text,word", [
    ("select 1 as x€$$;\nselect 2;", "x€$$"),  # "$" after a name's character goes on with the name
    ("select end€$x;\nselect 2;", "end€$x"),  # a keyword's spelling, then name characters: one name
])
def test_names_run_on_through_dollars_and_characters_beyond_ascii(text, word):
    assert starts(text) == [(1, 1), (2, 1)] and not problems(text)
    assert word in parse(text).statements[0].words


def test_a_dollar_quote_right_after_a_quoted_name_is_a_typed_literal():
    text = 'select "text"$$a;b$$, U&"te\\0078t"$x$c$x$;\nselect 2;'
    assert starts(text) == [(1, 1), (2, 1)] and not problems(text)
    assert "$$a;b$$" in parse(text).statements[0].words


def test_escape_string_with_backslash_quote():
    text = "select E'it\\'s; ok';\n\tselect 2;"
    assert starts(text) == [(1, 1), (2, 2)]
    assert parse(text).statements[0].words == ("select", "e'it\\'s; ok'", ";")


@pytest.mark.parametrize("gap", ["\n", " \n\t", " -- a comment\n", "\n-- one\n  -- two\n  "])
def test_an_escape_string_continued_on_the_next_line_keeps_its_escapes(gap):
    # E'a'<newline>'\' ...' is one literal (PostgreSQL's quote continuation),
    # its "\'" an escaped quote: the COMMIT after it is inside
    text = f"select E'a'{gap}'\\' ;commit; ' ;\nselect 2;\n"
    assert len(parse(text).statements) == 2 and not problems(text)


def test_two_escape_strings_on_one_line_are_two_literals():
    assert parse("select e'a' 'b';").statements[0].words == ("select", "e'a'", "'b'", ";")


def test_backslash_does_not_escape_in_a_standard_string():
    # standard_conforming_strings: 'a\' is a whole string, the ; after it ends the statement
    text = "select 'a\\'; select 2;"
    assert starts(text) == [(1, 1), (1, 14)]


def test_doubled_quotes_in_string_and_identifier():
    text = "select 'a''; b';  select \"x\"\";y\" from t;\nselect 3;"
    assert starts(text) == [(1, 1), (1, 19), (2, 1)]
    assert parse(text).statements[1].words[1] == '"x"";y"'


def test_quoted_identifier_containing_semicolon():
    text = 'create table "a;b" (x int);\n    insert into "a;b" values (1);'
    assert starts(text) == [(1, 1), (2, 5)]


def test_nested_block_comments():
    # PostgreSQL nests block comments; the ';' inside belong to the comment
    text = "/* a /* b; */ c; */ select 1;\nselect 2;"
    assert starts(text) == [(1, 21), (2, 1)]
    assert texts(text) == ["select 1;", "select 2;"]
    assert problems(text) == []


def test_quote_inside_nested_comment_is_not_a_string():
    text = "/* a /* b */ it's; still a comment */\nselect 1;\nselect 'x';"
    assert starts(text) == [(2, 1), (3, 1)]
    assert problems(text) == []


def test_comment_inside_a_statement_does_not_move_its_start():
    text = "select /* a /* b */ ; */ 1;"
    assert starts(text) == [(1, 1)]
    assert parse(text).statements[0].words == ("select", "1", ";")


def test_double_dash_inside_string_is_not_a_comment():
    text = "select '--not a comment;' as x; select 2;"
    assert starts(text) == [(1, 1), (1, 33)]


def test_begin_commit_inside_function_body_do_not_split():
    text = (
        "create procedure p() language plpgsql as $$\n"
        "begin\n"
        "  insert into t values (1);\n"
        "  commit;\n"
        "end $$;\n"
        "select 2;\n"
    )
    assert starts(text) == [(1, 1), (6, 1)]
    assert parse(text).statements[0].keyword == "create"


def test_begin_commit_inside_do_block_do_not_split():
    text = "do $$\nbegin\n  commit;\n  rollback;\nend\n$$;\nselect 2;"
    assert starts(text) == [(1, 1), (7, 1)]
    assert parse(text).statements[0].words == ("do", "$$\nbegin\n  commit;\n  rollback;\nend\n$$", ";")


def test_begin_atomic_body_with_case_is_one_statement():
    text = (
        "create function f(x int) returns int language sql\n"
        "begin atomic\n"
        "  select case when x > 0 then 1 else 2 end;\n"
        "  select 3;\n"
        "end;\n"
        "select 4;\n"
    )
    assert starts(text) == [(1, 1), (6, 1)]
    assert texts(text)[0].endswith("select 3;\nend;")


def test_begin_atomic_procedure_then_more_statements():
    text = "create or replace procedure p()\nbegin atomic insert into t values (1); end;\nselect 1;\nselect 2;"
    assert starts(text) == [(1, 1), (3, 1), (4, 1)]


ROUTINE = "create function f() returns int language sql\nbegin atomic\n"


@pytest.mark.parametrize("label", ["select 1 as case;", "select 1 case;", "select t.case from t;"])
def test_case_as_a_column_label_in_an_atomic_body_opens_nothing(label):
    # the server's grammar ends the body at END: a CASE counted here would hold
    # the body open and hide the COMMIT after it
    text = f"{ROUTINE}  {label}\nend;\ncommit;\n"
    assert starts(text) == [(1, 1), (5, 1)]


@pytest.mark.parametrize("label", ["select 1 as end;", "select t.end from t;"])
def test_end_as_a_column_label_in_an_atomic_body_closes_nothing(label):
    text = f"{ROUTINE}  {label}\nend;\nselect 2;\n"
    assert starts(text) == [(1, 1), (5, 1)]


@pytest.mark.parametrize("expression", [
    "select x, case when true then 1 end from t;",
    "select 1 + (case when true then 1 end) * case 1 when 1 then 2 end;",
    "select case when true then case 1 when 1 then 2 end else 3 end as case;",
    "return case when true then 1 end;",
])
def test_case_expressions_in_an_atomic_body_nest(expression):
    text = f"{ROUTINE}  {expression}\nend;\nselect 2;\n"
    assert starts(text) == [(1, 1), (5, 1)]


@pytest.mark.parametrize("statement", [
    # labels: followed by what follows a label
    "select by case;",  # after a name that is also a keyword
    "select values case from t;",
    "select zone case, 1;",
    "select t.* case from t;",
    "select 1 case /* a /* nested */ comment */ from t;",
    "select 1 case\n  -- a comment\n  from t;",
    # expressions: where no label can be
    "select distinct on (a) case when true then 1 end from t;",
    "select g(a := case when true then 1 end);",
    "select t.case + 1 from t;",
    "select case by when 1 then 2 end;",
    "select case -- a comment ended by a carriage return\rwhen true then 1 end\r\n  from t;",
])
def test_case_in_an_atomic_body_is_told_a_label_or_an_expression(statement):
    # a label counted as CASE would hold the body open over "select 2"; an
    # expression not counted would close it early and leave its END over
    text = f"create function f(by int) returns int language sql\nbegin atomic\n  {statement}\nend;\nselect 2;\n"
    assert [s.keyword for s in parse(text).statements] == ["create", "select"]


def test_end_after_a_column_named_as_closes_the_case():
    # "t.as" is a column: the END after it is the CASE's, not a label
    text = f"{ROUTINE}  select case when true then t.as end from t;\nend;\ncommit;\n"
    assert starts(text) == [(1, 1), (5, 1)]


def test_end_after_the_keyword_as_is_a_label_whatever_lies_between():
    text = f"{ROUTINE}  select 1 as /* the label */ end;\nend;\ncommit;\n"
    assert [s.keyword for s in parse(text).statements] == ["create", "commit"]


def test_as_in_a_comment_makes_no_label():
    text = f"{ROUTINE}  select 1 -- as\nend;\ncommit;\n"
    assert [s.keyword for s in parse(text).statements] == ["create", "commit"]


@pytest.mark.parametrize("text", [
    "create function f(begin atomic) returns int language sql as $$select 1$$;\ncommit;\n",
    "create function f() returns table (begin atomic) language sql as $$select 1$$;\ncommit;\n",
])
def test_begin_atomic_in_parentheses_is_a_name_and_its_type(text):
    assert starts(text) == [(1, 1), (2, 1)]


def test_a_standard_body_never_closed_is_a_syntax_problem():
    # every ';' after BEGIN ATOMIC was taken as the body's: the server may have
    # ended it sooner, and would run what follows on its own
    assert problems(f"select 1;\n{ROUTINE}  select 1;\ncommit;\n") == [("syntax", 2, 1)]


def test_an_end_label_without_as_ends_the_body_on_the_safe_side():
    # a bare label END (select 1 end;) is told from the body's END by the
    # server's grammar only: taken for the body's end, its last END is left as
    # a statement of its own, refused as transaction control
    text = f"{ROUTINE}  select 1 end;\nend;\n"
    assert [s.keyword for s in parse(text).statements] == ["create", "end"]


@pytest.mark.parametrize("head", ["create /* c */ or replace", "create -- c\nor replace", "create or\treplace"])
def test_begin_atomic_is_found_whatever_lies_between_create_or_replace(head):
    text = f"{head} procedure p()\nbegin atomic insert into t values (1); end;\nselect 1;"
    assert len(parse(text).statements) == 2


def test_savepoint_statements_are_split():
    text = "savepoint a;\nrelease savepoint a;\nrollback to savepoint a;"
    assert starts(text) == [(1, 1), (2, 1), (3, 1)]
    assert [s.keyword for s in parse(text).statements] == ["savepoint", "release", "rollback"]


def test_copy_from_stdin_data_is_not_sql():
    text = (
        "create table t (a int, b text);\n"
        "copy t (a, b) from stdin;\n"
        "1\tone; drop table t;\n"
        "2\t$$two\n"
        "\\.\n"
        "select 3;\n"
    )
    sql = parse(text)
    assert starts(text) == [(1, 1), (2, 1), (6, 1)]
    assert sql.statements[1].text_in(text) == "copy t (a, b) from stdin;"
    assert sql.statements[1].copy_data == "1\tone; drop table t;\n2\t$$two\n"
    assert sql.statements[2].text_in(text) == "select 3;"
    assert sql.problems == ()


@pytest.mark.parametrize("line,col", [("copy t from stdin; commit;", 20), ("copy t from stdin;\tselect 1; -- x", 20)])
def test_text_after_copy_from_stdin_on_its_line_is_a_syntax_problem(line, col):
    # neither data (that starts on the next line) nor a statement of its own
    assert problems(f"{line}\n1\n\\.\n") == [("syntax", 1, col)]


def test_a_comment_after_copy_from_stdin_on_its_line_is_fine():
    text = "copy t from stdin; -- the users\n1\n\\.\n"
    assert not problems(text) and parse(text).statements[0].copy_data == "1\n"


def test_from_stdin_in_a_copied_query_is_not_copy_data():
    text = "copy (select 1 from stdin) to stdout;\nselect 2;\n"
    sql = parse(text)
    assert starts(text) == [(1, 1), (2, 1)] and not sql.problems
    assert sql.statements[0].copy_data is None


def test_copy_without_end_marker_is_unterminated():
    text = "copy t from stdin;\n1\n2\n"
    sql = parse(text)
    assert sql.statements[0].copy_data == "1\n2\n"
    assert problems(text) == [("unterminated", 1, 1)]


def test_dollar_signs_in_a_line_comment_are_not_a_dollar_quote():
    text = "-- Query pattern: $$x$$ = ANY(a) and $$y\nselect 1;\nselect $$a$$;"
    assert starts(text) == [(2, 1), (3, 1)]
    assert problems(text) == []


def test_last_statement_without_semicolon():
    text = "select 1;\nselect 2\n\n-- trailing comment\n"
    assert starts(text) == [(1, 1), (2, 1)]
    assert texts(text)[1] == "select 2"


def test_empty_statements_are_dropped():
    text = "select 1;;\n ; select 2;"
    assert starts(text) == [(1, 1), (2, 4)]


def test_offsets_point_into_the_text():
    text = "-- header\n\tselect 1;\n/* x */ select 'é';"
    sql = parse(text)
    assert sql.text == text and sql.data == text.encode()
    assert [stmt.text_in(text) for stmt in sql.statements] == ["select 1;", "select 'é';"]
    for stmt in sql.statements:
        assert sqltext.line_col(sql.text, stmt.offset) == (stmt.line, stmt.col)


def test_crlf_file_positions():
    text = "select 1;\r\n\r\n  select 2;\r\n"
    assert starts(text) == [(1, 1), (3, 3)]
    assert texts(text) == ["select 1;", "select 2;"]


def test_bom_and_crlf_give_the_same_checksums_as_lf():
    lf = b"-- sqlmigrate: no-transaction\nselect 1;\nselect 2;\n"
    crlf_bom = sqltext.BOM + lf.replace(b"\n", b"\r\n")
    assert sqltext.checksum(crlf_bom) == sqltext.checksum(lf)
    assert sqltext.checksum(lf) == hashlib.sha256(lf).hexdigest()
    with_bom = sqlfile.parse(PATH, crlf_bom)
    plain = sqlfile.parse(PATH, lf)
    assert with_bom.data == lf.replace(b"\n", b"\r\n")  # the BOM is not sent to the server
    assert with_bom.checksum == plain.checksum
    assert with_bom.content_checksum == plain.content_checksum
    assert [(s.line, s.col) for s in with_bom.statements] == [(2, 1), (3, 1)]
    assert with_bom.directives[0].word == "no-transaction"


def test_bom_left_in_text_is_ignored():
    assert starts("\ufeffselect 1;") == [(1, 1)]


def test_columns_count_characters_not_bytes():
    # é is 2 bytes, ☕ 3 and 😀 4 in UTF-8; a tab is one character
    text = "/* café ☕ */\tselect 1;\n\t\t-- ü 😀\n\t/* 😀 */ select 2;"
    sql = parse(text)
    assert [(s.line, s.col) for s in sql.statements] == [(1, 14), (3, 10)]


# -- unterminated ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, col, what, opening",
    [
        pytest.param("select 1;\nselect 'abc;\nselect 2;", 2, 1, "string", (2, 8), id="string"),
        pytest.param("select 'abc'';", 1, 1, "string", (1, 8), id="string-ending-in-doubled-quote"),
        pytest.param("select\n  E'abc\\';", 1, 1, "string", (2, 3), id="escape-string"),
        pytest.param("'abc", 1, 1, "string", (1, 1), id="string-starting-the-statement"),
        pytest.param('select 1;\n  select "abc;', 2, 3, "quoted identifier", (2, 10), id="quoted-identifier"),
        pytest.param("create function f() as $$ begin;\nselect 2;", 1, 1, "dollar-quoted body", (1, 24),
                     id="dollar"),
        pytest.param("select 1;\ndo $body$ begin end $bod$;", 2, 1, "dollar-quoted body", (2, 4),
                     id="tagged-dollar"),
        # the statement starts at its first token that is not a comment
        pytest.param("-- note\n  /* c */ select 'x", 2, 11, "string", (2, 18), id="after-comments"),
        # a block comment inside a statement: the statement; between statements: the comment itself
        pytest.param("select 1 /* abc\nselect 2;", 1, 1, "block comment", (1, 10), id="comment-in-a-statement"),
        pytest.param("select\n 1 /* a /* b */ c\nselect 2;", 1, 1, "block comment", (2, 4),
                     id="nested-comment-in-a-statement"),
        pytest.param("select 1; /* abc\nselect 2;", 1, 11, "block comment", (1, 11), id="block-comment"),
        pytest.param("select 1;\n\t/* a /* b */ c\nselect 2;", 2, 2, "block comment", (2, 2), id="nested-comment"),
        pytest.param("/* licence\nselect 1;", 1, 1, "block comment", (1, 1), id="comment-before-any-sql"),
    ],
)
def test_unterminated_points_at_the_statement_and_names_the_opening(text, line, col, what, opening):
    # SPEC 3: line and column point at the start of the offending statement; the
    # message says where the quote, dollar quote or comment opens
    sql = parse(text)
    message = f"{what} starting at line {opening[0]}, column {opening[1]} never ends"
    assert sql.problems == (LexProblem("unterminated", message, line, col),)


def test_copy_data_without_end_marker_names_where_the_data_starts():
    assert [(p.message, p.line, p.col) for p in parse("select 1;\ncopy t from stdin;\n1\n2\n").problems] == [
        ("COPY data starting at line 3 has no '\\.' line", 2, 1)]


def test_unterminated_string_swallows_the_rest_of_the_file():
    # as in PostgreSQL: nothing after the opening quote is SQL
    sql = parse("select 'abc;\ncommit;\nvacuum;")
    assert len(sql.statements) == 1
    assert sql.statements[0].words == ("select", "'abc;\ncommit;\nvacuum;")


def test_terminated_quotes_are_not_problems():
    text = "select 'a', E'\\\\', \"b\", $$c$$, $t$d$t$ /* e /* f */ */;"
    assert problems(text) == []


def test_comment_close_outside_comment_is_a_syntax_problem_but_star_slash_star_is_not():
    assert problems("select 2 */ 3;") == [("syntax", 1, 10)]
    assert problems("select 2*/* a comment */3;") == []
    assert parse("select 2*/* a comment */3;").statements[0].words == ("select", "2", "*", "3", ";")


# -- directives ------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, word, args",
    [
        ("-- sqlmigrate: no-transaction", "no-transaction", ()),
        ("--SQLMigrate : No-Transaction", "no-transaction", ()),
        ("--   sqlmigrate:EMPTY   ", "empty", ()),
        ("-- SQLMIGRATE :irreversible", "irreversible", ()),
        ("-- sqlmigrate: ignore destructive, lock-unsafe", "ignore", ("destructive", "lock-unsafe")),
        ("--sqlmigrate:ignore Destructive ,LOCK-UNSAFE", "ignore", ("destructive", "lock-unsafe")),
        ("-- sqlmigrate: ignore destructive,lock-unsafe", "ignore", ("destructive", "lock-unsafe")),
    ],
)
def test_directive_spellings(line, word, args):
    sql = parse(f"-- header\n{line}\r\nselect 1;")
    assert [(d.word, d.args, d.line, d.col) for d in sql.directives] == [(word, args, 2, 1)]
    assert sql.misplaced_directives == ()


def test_indented_directive_after_block_comment_is_a_directive():
    sql = parse("/* licence */\n   -- sqlmigrate: no-transaction\nselect 1;")
    assert [(d.word, d.line, d.col) for d in sql.directives] == [("no-transaction", 2, 4)]
    assert not sql.is_transactional


def test_directive_after_first_statement_is_misplaced():
    sql = parse("-- sqlmigrate: empty\nselect 1;\n  -- sqlmigrate: no-transaction\nselect 2;")
    assert [d.word for d in sql.directives] == ["empty"]
    assert [(d.word, d.line, d.col) for d in sql.misplaced_directives] == [("no-transaction", 3, 3)]
    assert sql.is_transactional


def test_directive_inside_first_statement_is_misplaced():
    sql = parse("select 1 -- sqlmigrate: no-transaction\n;")
    assert sql.directives == ()
    assert [(d.line, d.col) for d in sql.misplaced_directives] == [(1, 10)]


def test_directive_text_in_string_or_dollar_body_is_not_a_directive():
    text = "select '\n-- sqlmigrate: no-transaction\n';\ndo $$\n-- sqlmigrate: empty\nbegin end $$;"
    sql = parse(text)
    assert sql.directives == ()
    assert sql.misplaced_directives == ()
    assert len(sql.statements) == 2


def test_directive_in_block_comment_is_not_a_directive():
    sql = parse("/* -- sqlmigrate: no-transaction */\nselect 1;")
    assert sql.directives == ()
    assert sql.is_transactional


# -- content checksum (SPEC 2) ---------------------------------------------------

BASE = (
    "-- sqlmigrate: no-transaction\n"
    "create table users (id int primary key, name text not null default 'x', \"Mixed\" int);\n"
    "insert into users values (1, 'Ann', 2), (a-1, E'b', 3);\n"
    "create function f() returns int as $$ select 1 $$ language sql;\n"
)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("-- Copyright 2026 Example\n-- Licence: MIT\n" + BASE, id="licence-header"),
        pytest.param(BASE.replace("\n", "\r\n"), id="crlf"),
        pytest.param(BASE.replace("create table", "CREATE   TABLE").replace("insert into", "INSERT\n\tINTO"),
                     id="keyword-case-and-spacing"),
        pytest.param(BASE.replace("users", "USERS").replace("name text", "Name TEXT"), id="unquoted-name-case"),
        pytest.param(BASE.replace("(id int", "(\n  id int /* key */").replace("a-1", "a - 1"),
                     id="comments-and-spacing"),
        pytest.param(BASE.replace("-- sqlmigrate: no-transaction", "--SQLMIGRATE : No-Transaction"),
                     id="directive-spelling"),
        pytest.param(BASE.replace("E'b'", "e'b'"), id="escape-string-prefix-case"),
    ],
)
def test_content_checksum_ignores_formatting(variant):
    assert sqlfile.content_checksum(PATH, variant) == sqlfile.content_checksum(PATH, BASE)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(BASE.replace("'Ann'", "'ann'"), id="string-literal-case"),
        pytest.param(BASE.replace("'Ann'", "'Ann '"), id="string-literal-space"),
        pytest.param(BASE.replace('"Mixed"', '"mixed"'), id="quoted-identifier-case"),
        pytest.param(BASE.replace("(1, 'Ann', 2)", "(1, 'Ann', 20)"), id="number"),
        pytest.param(BASE.replace("$$ select 1 $$", "$$ select  1 $$"), id="dollar-body"),
        pytest.param(BASE.replace("-- sqlmigrate: no-transaction\n", ""), id="directive-removed"),
        pytest.param(BASE.replace("int primary key", "bigint primary key"), id="keyword"),
    ],
)
def test_content_checksum_sees_real_edits(variant):
    assert sqlfile.content_checksum(PATH, variant) != sqlfile.content_checksum(PATH, BASE)


def test_operators_are_cut_as_postgresql_cuts_them():
    tight = "select a>=-1, b+-2, c->>'k', d||e, f@>g, h*-3, i/-4 from t where x=-1;"
    spaced = "select a >= - 1, b + - 2, c ->> 'k', d || e, f @> g, h * - 3, i / - 4 from t where x = - 1;"
    assert parse(tight).statements[0].words == parse(spaced).statements[0].words
    assert sqlfile.content_checksum(PATH, tight) == sqlfile.content_checksum(PATH, spaced)


def test_time_zone_literal_is_kept_exactly():
    a = "select now() at time zone 'UTC';"
    b = "select now() AT TIME ZONE 'utc';"
    assert parse(a).statements[0].words[-2] == "'UTC'"
    assert sqlfile.content_checksum(PATH, a) != sqlfile.content_checksum(PATH, b)


def test_content_checksum_includes_copy_data():
    a = "copy t from stdin;\n1\n\\.\n"
    b = "copy t from stdin;\n2\n\\.\n"
    assert sqlfile.content_checksum(PATH, a) != sqlfile.content_checksum(PATH, b)


IGNORED = "-- sqlmigrate: ignore destructive, lock-unsafe\ndrop table t;\ncreate index on u (x);\n"


@pytest.mark.parametrize("directive", [
    "-- sqlmigrate: ignore lock-unsafe, destructive",
    "-- sqlmigrate: ignore destructive, lock-unsafe, destructive",
    "--SQLMIGRATE: Ignore Lock-Unsafe,Destructive,lock-unsafe",
])
def test_ignore_rules_are_a_set_in_the_content_checksum(directive):
    text = IGNORED.replace("-- sqlmigrate: ignore destructive, lock-unsafe", directive)
    assert sqltext.checksum(text.encode()) != sqltext.checksum(IGNORED.encode())
    assert sqlfile.content_checksum(PATH, text) == sqlfile.content_checksum(PATH, IGNORED)


def test_ignoring_other_rules_changes_the_content_checksum():
    one_rule = IGNORED.replace("destructive, lock-unsafe", "destructive")
    assert sqlfile.content_checksum(PATH, one_rule) != sqlfile.content_checksum(PATH, IGNORED)


def test_a_nul_character_is_a_syntax_problem_at_its_place():
    # libpq would cut the query at the NUL and send the rest nowhere: refuse it
    assert problems("create table a (id int);\ninsert into a values (1);\x00\nselect 1;\n") == [("syntax", 2, 26)]
    assert problems("select 'a\x00b';") == [("syntax", 1, 10)]


def test_a_parenthesis_never_closed_is_a_syntax_problem_at_its_statement():
    assert problems("select 1;\n  insert into t values (1;\nselect 2;\n") == [("syntax", 2, 3)]
    assert problems("create rule r as on insert to t do also (insert into a values (1); insert into b values (2));\n"
                    "select 1;\n") == []


def test_the_content_checksum_folds_ascii_letters_only():
    """SPEC 2 folds what PostgreSQL folds: `Äpfel` and `äpfel` name two tables, so
    changing one into the other is a modification, not a reformatting."""
    base = sqlfile.content_checksum(PATH, "create table Äpfel (Id int);")
    assert sqlfile.content_checksum(PATH, "CREATE TABLE Äpfel (ID INT);") == base
    assert sqlfile.content_checksum(PATH, "create table äpfel (id int);") != base
    assert parse("select Ñame from Äpfel;").statements[0].words == ("select", "Ñame", "from", "Äpfel", ";")

"""Very large and binary files: split correctly, checked, never a crash (SPEC 4)."""
from __future__ import annotations

from pathlib import Path

from sqlmigrate import discovery, rules, sqlfile

TABLE = rules.TrackingTable.parse("schema_migrations")
PATH = Path("m/001_big/up.sql")


def test_five_megabyte_single_insert():
    # one statement of ~5 MB: a long string holding ';', quotes and newlines
    value = ("line; with 'quotes'' and -- dashes /* and */ $$\n" * 110_000).replace("'", "''")
    text = (
        "create table t (a int, b text);\n"
        f"insert into t (a, b) values (1, '{value}');\n"
        "  update t set a = 2;\n"
    )
    assert len(text.encode()) > 5_000_000
    sql = sqlfile.parse_text(PATH, text)
    assert [s.keyword for s in sql.statements] == ["create", "insert", "update"]
    insert, update = sql.statements[1], sql.statements[2]
    assert (insert.line, insert.col) == (2, 1)
    assert insert.text_in(text).endswith("');")
    assert (update.line, update.col) == (2 + 110_000 + 1, 3)
    assert sql.problems == ()
    found = rules.check_file(sql, "up", TABLE)
    assert [(f.line, f.col, f.rule) for f in found] == [(110_003, 3, "destructive")]


def test_fifty_thousand_row_values_list():
    rows = ",\n".join(f"  ({i}, 'name {i}', E'it\\'s {i}', {i}.5, -{i}, NULL)" for i in range(50_000))
    text = (
        "-- sqlmigrate: ignore lock-unsafe\n"
        "create table t (a int, b text, c text, d numeric, e int, f int);\n"
        f"insert into t values\n{rows};\n"
        "\tdelete from t where a < 0;\n"
        "select count(*) from t"
    )
    sql = sqlfile.parse_text(PATH, text)
    assert [s.keyword for s in sql.statements] == ["create", "insert", "delete", "select"]
    insert, delete, select = sql.statements[1:]
    assert (insert.line, insert.col) == (3, 1)
    assert insert.is_truncated and len(insert.words) == sqlfile.MAX_WORDS
    assert insert.text_in(text).endswith("NULL);")
    assert (delete.line, delete.col) == (3 + 50_000 + 1, 2)
    assert (select.line, select.col) == (3 + 50_000 + 2, 1)
    assert select.text_in(text) == "select count(*) from t"
    assert rules.check_file(sql, "up", TABLE) == []


def test_huge_update_without_visible_where_is_not_guessed():
    # past MAX_WORDS the rule cannot see a WHERE, so it does not claim there is none
    values = ", ".join(f"c{i} = {i}" for i in range(5_000))
    sql = sqlfile.parse_text(PATH, f"update t set {values} where id = 1;")
    assert sql.statements[0].is_truncated
    assert rules.check_file(sql, "up", TABLE) == []


def test_content_checksum_of_a_big_file_sees_an_edit_at_its_end():
    rows = ",".join(f"({i})" for i in range(50_000))
    a = f"insert into t values {rows};"
    assert sqlfile.content_checksum(PATH, a) != sqlfile.content_checksum(PATH, a.replace("(49999)", "(49998)"))
    assert sqlfile.content_checksum(PATH, a) == sqlfile.content_checksum(PATH, a.replace(",", ",\n  "))


def test_binary_file_is_not_utf8(write_migrations):
    scan = discovery.scan(write_migrations({"001_blob": (bytes(range(256)) * 4096, "select 1;\n")}))
    found = rules.check(scan, TABLE)
    assert [(Path(f.path).name, f.line, f.col, f.rule) for f in found] == [("up.sql", 1, 1, "not-utf8")]
    assert found[0].is_error


def test_a_parsed_file_keeps_its_bytes_and_not_its_text():
    """`up` of a 5 MB INSERT stays under 4× the file in memory (benchmarks/big_file.py)
    only if nothing holds the decoded text once the file is lexed: the bytes are sent as read."""
    data = ("insert into t values " + ",\n".join(f"({i}, 'é{i}')" for i in range(20_000)) + ";\n").encode()
    sql = sqlfile.parse(PATH, data)
    assert sql.data is data  # no BOM: the very bytes read, not a copy
    held = [value for stmt in sql.statements for value in vars(stmt).values()] + list(vars(sql).values())
    assert not [value for value in held if isinstance(value, str) and len(value) > 1000]
    assert sql.statements[0].text_in(sql.text).endswith("'é19999');")


def test_lexing_a_big_values_list_allocates_little_more_than_its_text():
    """The lexer's caches hold words (keywords, names), never the literals of a data file:
    while a 2 MB INSERT is lexed, Python allocates about its decoded text, and keeps
    a small fraction of that once done (the SqlFile's statements and words)."""
    import random
    import tracemalloc

    rng = random.Random(1)
    rows = ",\n".join(f"({i}, 'name {i}', '{rng.getrandbits(64):x}', {rng.random():.6f})" for i in range(40_000))
    data = f"insert into t values\n{rows};\n".encode()
    tracemalloc.start()
    try:
        sql = sqlfile.parse(PATH, data)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sql.statements) == 1 and sql.statements[0].is_truncated
    assert peak < 2 * len(data), peak / len(data)
    assert kept < 0.5 * len(data), kept / len(data)

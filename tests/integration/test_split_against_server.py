"""The statement split against the server's own, on generated SQL-standard bodies.

A transactional migration goes to the server as one query string, which the
server splits by its grammar; `check` splits it by its own rules. In a
BEGIN ATOMIC body the two can part over CASE, END and AS, each a keyword or a
column name or label depending on the grammar. Here the server runs a few
hundred generated files (in a transaction rolled back) and counts its
statements: the split must never see fewer (a statement it never checked),
and may see more only where it refuses the file.
"""
from __future__ import annotations

import random
from pathlib import Path

import psycopg
from psycopg import pq

from sqlmigrate.sqlfile import parse_text

CASES = 400
COLUMNS = ("by", "zone", "set", "escape", "values", "return", "case", "end", "as", "a", "atomic", "begin")
TABLE = "create temp table t (" + ", ".join(f'"{name}" int' for name in COLUMNS) + ");\n"
OPERANDS = ("t.by", "t.zone", "t.set", "t.escape", "t.values", "t.case", "t.end", "t.as", "t.a",
            "t.atomic", "t.begin", "a", "1", "(1)")
GAPS = (" ", " ", "\n", "\t", "\r\n", " /* c */ ", " -- c\n", " /* a /* b */ c */ ")


class _Generator:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def gap(self) -> str:
        return self.random.choice(GAPS)

    def words(self, *words: str) -> str:
        return "".join(word + self.gap() for word in words)

    def expression(self, depth: int = 0) -> str:
        pick = self.random.random()
        if depth > 2 or pick < 0.4:
            return self.random.choice(OPERANDS)
        if pick < 0.7:
            return self.words("case", "when", "true", "then", self.expression(depth + 1),
                              "else", self.expression(depth + 1)) + "end"
        if pick < 0.85:
            return self.words("case", self.expression(depth + 1), "when 1 then 2") + "end"
        return self.words(self.expression(depth + 1), self.random.choice("+*-")) + self.expression(depth + 1)

    def item(self) -> str:
        expression, pick = self.expression(), self.random.random()
        if pick < 0.3:
            return expression
        if pick < 0.6:  # a label after AS: any word goes, keywords too
            return self.words(expression, "as") + self.random.choice(("case", "end", "x", "as", '"end"'))
        # a bare label; END is left out: taken for the body's end, it is refused (README)
        return self.words(expression) + self.random.choice(("case", "x", "zone", "by"))

    def select(self) -> str:
        items = ", ".join(self.item() for _ in range(self.random.randint(1, 3)))
        return "select " + items + self.random.choice((" from t", " from t where true", " from t order by 1"))

    def file(self, number: int) -> str:
        parts = []
        for index in range(self.random.randint(1, 3)):
            body = ";".join(self.gap() + self.select() for _ in range(self.random.randint(1, 3)))
            parts.append(f"create procedure pg_temp.p{number}_{index}() language sql begin atomic{body};"
                         f"{self.gap()}end;")
            parts.append(f"select {index};")
        return "\n".join(parts) + "\n"


def _server_statements(conn: psycopg.Connection, text: str) -> int | None:
    """How many statements the server runs in `text`, sent as one query string
    after the table they use, all rolled back; None when one fails."""
    pgconn = conn.pgconn
    pgconn.send_query(("begin;\n" + TABLE + text + "\nrollback;").encode())
    results = []
    while (result := pgconn.get_result()) is not None:
        results.append(result)
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("rollback")
    if any(result.status == pq.ExecStatus.FATAL_ERROR for result in results):
        return None
    return len(results) - 3  # begin, the table, rollback


def test_the_split_never_sees_fewer_statements_than_the_server_runs(database):
    hidden, agreed = [], 0
    with psycopg.connect(database, autocommit=True) as conn:
        for number in range(CASES):
            text = _Generator(number).file(number)
            server = _server_statements(conn, text)
            assert server is not None, f"the generator wrote SQL the server rejects:\n{text}"
            sql_file = parse_text(Path("m/001_x/up.sql"), text)
            ours = len(sql_file.statements)
            if ours < server:
                hidden.append(text)
            agreed += ours == server and not sql_file.problems
    assert not hidden, f"{len(hidden)} files hide statements from the split, the first:\n{hidden[0]}"
    # bare END labels are left out of the generator: all the rest must agree
    assert agreed == CASES

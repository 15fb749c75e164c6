"""Start-up cost of the commands that talk to a server: what they import
(checked in a fresh interpreter). tests/unit/test_imports.py has the others."""
import psycopg

from tests.conftest import modules_loaded_after


def test_up_and_down_leave_lexing_to_their_child_and_status_only_hashes(database, write_migrations):
    """`up` and `down` validate in a forked child, so their own process never
    loads sqlparse; neither do `status` and `verify` while every checksum
    matches (SPEC 2)."""
    mdir = str(write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n"),
                                 "002_b": ("create table b (id int);\n", "drop table b;\n")}))
    common = ["--dir", mdir, "--database-url", database]
    assert modules_loaded_after(["up", *common]) == {"psycopg"}
    assert modules_loaded_after(["status", *common]) == {"psycopg"}
    assert modules_loaded_after(["verify", *common]) == {"psycopg"}
    assert modules_loaded_after(["down", "--all", "--yes", *common]) == {"psycopg"}
    with psycopg.connect(database) as conn:  # the down.sql files lexed by the child did run
        assert conn.execute("select to_regclass('a'), to_regclass('b')").fetchone() == (None, None)


def test_status_lexes_an_up_sql_whose_checksum_changed(database, write_migrations):
    """The other side of the test above: telling reformatted from modified needs the lexer."""
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    common = ["--dir", str(mdir), "--database-url", database]
    assert modules_loaded_after(["up", *common]) == {"psycopg"}
    (mdir / "001_a" / "up.sql").write_text("CREATE TABLE a (id int);\n")
    assert modules_loaded_after(["status", *common]) == {"psycopg", "sqlparse"}

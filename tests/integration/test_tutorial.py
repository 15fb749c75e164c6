"""The README's tutorial, run as written: its make commands and its SQL, in a copy of the project."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import psycopg

from tests.conftest import ROOT


def tutorial() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Tutorial: adding user roles")
    return readme[start:readme.index("\n## ", start + 1)]


def sql_blocks(text: str) -> dict[str, str]:
    """Each ```sql block, by the file named (in backticks) in the paragraph before it."""
    blocks = {}
    for match in re.finditer(r"`([^`]+\.sql)`[^`]*?:\n\n```sql\n(.*?)```", text, re.DOTALL):
        blocks[match.group(1)] = match.group(2)
    return blocks


def commands(text: str) -> list[str]:
    return re.findall(r"^\$ (make .*)$", text, re.MULTILINE)


def test_the_tutorial_runs_as_written(tmp_path, database):
    text = tutorial()
    files = sql_blocks(text)
    assert set(files) == {"migrations/004_add_user_roles/up.sql", "migrations/004_add_user_roles/down.sql"}
    assert commands(text) == ["make migration name=add_user_roles", "make migrate", "make migrate-status",
                              "make migrate-down", "make migrate"]
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    shutil.copytree(ROOT / "migrations", project / "migrations")
    env = {**os.environ, "DATABASE_URL": database}
    # the suite's own environment, installed already: make must not install it again from the copy
    venv = [f"VENV={ROOT / '.venv'}", "-o", str(ROOT / ".venv" / ".installed")]

    def make(command: str) -> str:
        result = subprocess.run([*command.split(), *venv], cwd=project, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def tables() -> set[str]:
        with psycopg.connect(database) as conn:
            return {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}

    make("make migrate")  # the quick start's state: the example schema applied
    migration, migrate, status, down, again = commands(text)
    assert "created migrations/004_add_user_roles/up.sql" in make(migration)
    for path, sql in files.items():
        (project / path).write_text(sql, encoding="utf-8")
    output = make(migrate)
    assert "applying 004_add_user_roles ... ok" in output and "applying 001" not in output
    assert {"roles", "user_roles", "users"} <= tables()
    assert re.search(r"^004\s+add_user_roles\s+applied ", make(status), re.MULTILINE)
    assert "rolling back 004_add_user_roles ... ok" in make(down)
    assert not {"roles", "user_roles"} & tables()
    assert "applying 004_add_user_roles ... ok" in make(again)
    with psycopg.connect(database) as conn:
        assert conn.execute("select name from roles order by id").fetchall() == [("admin",), ("member",)]

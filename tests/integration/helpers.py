"""Shorthand shared by the integration tests: run a command on a folder and a
database, read what it printed, drive the executor directly. Fixtures,
processes and the server are in tests/conftest.py."""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from tests.conftest import CliResult, run_cli, run_process

# the smallest migration sets: table a; tables a and b
ONE = {"001_a": ("create table a (id int);\n", "drop table a;\n")}
TWO = {**ONE, "002_b": ("create table b (id int);\n", "drop table b;\n")}

# the keys of the JSON reports (README, "--format json")
FINDING_KEYS = {"path", "line", "col", "severity", "rule", "message", "hint"}
STEP_KEYS = {"id", "name", "path", "transactional"}
NOTICE_KEYS = {"notices", "notices_omitted"}  # of a step that ran
# a command that stops early: {"error", "exit_code", "details", "findings"}, and "command" where given
ERROR_KEYS = {"command", "error", "exit_code", "details", "findings"}


def run(command: str, mdir: object, database: str, *args: object, table: str | None = None,
        env: dict[str, str] | None = None, process: bool = False, expect_exit: int | None = None) -> CliResult:
    """`sqlmigrate COMMAND --dir MDIR --database-url DATABASE ARGS`, in-process unless
    `process` (a real `python -m sqlmigrate`, for what libpq reads from `env`).

    COMMAND may hold its own argument ("baseline 1"). `table` adds --table; with
    `expect_exit`, the exit code is asserted before the result is returned.
    """
    argv = [*command.split(), "--dir", mdir, "--database-url", database, *(("--table", table) if table else ()), *args]
    result = run_process(*argv, env=env) if process else run_cli(*argv, env=env)
    if expect_exit is not None:
        assert result.exit_code == expect_exit, result.stderr
    return result


def up(mdir: object, database: str, *args: object, **options) -> CliResult:
    """`sqlmigrate up`; the options are run()'s."""
    return run("up", mdir, database, *args, **options)


def applied(write_migrations, database: str, migrations: dict, *args: object) -> Path:
    """Write `migrations`, apply them (asserting exit 0) and return the folder."""
    mdir = write_migrations(migrations)
    up(mdir, database, *args, expect_exit=0)
    return mdir


def check(mdir: object, *args: object) -> CliResult:
    """`sqlmigrate check --dir MDIR ARGS`: no database."""
    return run_cli("check", "--dir", mdir, *args)


def one_json(stdout: str) -> dict:
    """stdout holds exactly one JSON object (json.loads refuses trailing text)."""
    payload = json.loads(stdout)
    assert isinstance(payload, dict), payload
    return payload


def error_object(stdout: str, command: str, exit_code: int) -> dict:
    """The one JSON object of a command that stopped early, with its exit code."""
    payload = one_json(stdout)
    assert {"error", "exit_code"} <= set(payload) <= ERROR_KEYS, payload
    assert payload["exit_code"] == exit_code
    assert payload.get("command", command) == command
    return payload


def run_json(command: str, mdir: object, database: str, *args: object) -> dict:
    """The JSON report of COMMAND, whose exit_code must be the process's own."""
    result = run(command, mdir, database, "--format", "json", *args)
    data = json.loads(result.stdout)
    assert data["exit_code"] == result.exit_code
    return data


def no_crash(stderr: str) -> None:
    """No traceback and no "internal error": a failure was handled, not crashed into."""
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr


def one_line(stderr: str, *, crash_check: bool = True) -> str:
    """The single non-blank line of stderr, asserting there is exactly one (and,
    unless crash_check=False, that no_crash holds)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    if crash_check:
        no_crash(stderr)
    return lines[0]


def status_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of `status`'s table by id: [id, name, state, ...], in the printed order."""
    out = {}
    for line in stdout.splitlines():
        cells = line.split()
        # not the summary line ("2 applied, 1 pending")
        if len(cells) >= 4 and cells[0].isdigit() and not cells[1].endswith(","):
            out[cells[0]] = cells
    return out


def sha256(data: str | bytes) -> str:
    """The hex SHA-256 of `data` (text as UTF-8): the form of the stored checksums."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def folders(directory: Path, *, by_id: bool = False) -> list[str]:
    """Names of the folders in `directory`, sorted by name, or with by_id by their ids as integers."""
    names = [p.name for p in directory.iterdir() if p.is_dir()]
    return sorted(names, key=lambda name: int(name.split("_", 1)[0])) if by_id else sorted(names)


# -- driving the executor directly, behind the command line -------------------------


def one_step_plan(up_sql, down_sql: str = "drop table a;\n"):
    """A plan of one up step, 001_a, running `up_sql` (text, or a file already parsed)."""
    from sqlmigrate import sqlfile
    from sqlmigrate.model import Direction, Plan, Step

    parsed = sqlfile.parse_text(Path("m/001_a/up.sql"), up_sql) if isinstance(up_sql, str) else up_sql
    return Plan((Step(Direction.UP, "001", "a", parsed, None, down_sql),))


@contextlib.contextmanager
def tracked_connection(database: str):
    """sqlmigrate's own session on `database` (connection and tracking table, made), as the executor takes it."""
    from sqlmigrate import db as dbmod
    from sqlmigrate.model import TrackingTable
    from sqlmigrate.target import Target

    with dbmod.connect(database) as conn:
        session = dbmod.Session(Target(database, TrackingTable("schema_migrations")), conn)
        session.tracking.create()
        yield session

"""SPEC 7, warnings at deploy time: `up` shows at most 20 lint warnings before
it applies, then how many more; its JSON keeps every one."""
from __future__ import annotations

import contextlib
import io
import json

from sqlmigrate import cli
from tests.conftest import run_cli, tracking_ids

MORE = "... and {n} more warning(s) (sqlmigrate check lists them all)"


def _destructive(count: int) -> dict[str, tuple[str, str]]:
    """`count` migrations with one `destructive` warning each."""
    return {f"{i:03}_drop_{i}": (f"create table t{i} (id int);\ndrop table t{i};\n", "select 1;\n")
            for i in range(1, count + 1)}


def _one_stream(*args: object) -> tuple[int, list[str]]:
    """The command line with stdout and stderr in one stream, as a terminal shows them."""
    both = io.StringIO()
    with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
        code = cli.main([str(a) for a in args], {})
    return code, both.getvalue().splitlines()


def test_up_shows_20_warnings_then_how_many_more_before_it_applies(database, db, write_migrations):
    mdir = write_migrations(_destructive(25))
    code, lines = _one_stream("up", "--dir", mdir, "--database-url", database)
    assert code == 0, lines
    warnings = [i for i, line in enumerate(lines) if ": warning: " in line]
    assert len(warnings) == 20
    assert [lines[i].split("/")[-2] for i in warnings] == [f"{i:03}_drop_{i}" for i in range(1, 21)]
    more = lines.index(MORE.format(n=5))
    first = next(i for i, line in enumerate(lines) if line.startswith("applying "))
    assert max(warnings) < more < first
    assert lines[-1].startswith("applied 25 migration(s)")
    assert sum(": warning: " in line for line in lines) == 20  # not shown again at the end
    assert len(tracking_ids(db)) == 25


def test_up_json_keeps_every_warning(database, write_migrations):
    mdir = write_migrations(_destructive(25))
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["warnings"]) == 25
    assert {w["rule"] for w in report["warnings"]} == {"destructive"}
    assert "more warning" not in result.stdout + result.stderr


def test_twenty_warnings_are_all_shown(database, write_migrations):
    mdir = write_migrations(_destructive(20))
    result = run_cli("up", "--dir", mdir, "--database-url", database)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count(": warning: ") == 20
    assert "more warning" not in result.stderr


def test_dry_run_shows_the_same_20(database, write_migrations):
    mdir = write_migrations(_destructive(21))
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count(": warning: ") == 20
    assert MORE.format(n=1) in result.stderr


def test_check_lists_them_all(write_migrations):
    mdir = write_migrations(_destructive(25))
    result = run_cli("check", "--dir", mdir)
    assert result.exit_code == 0
    assert result.stdout.count(": warning: ") == 25

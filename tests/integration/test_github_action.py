"""The GitHub Action's steps (scripts/github-action.sh, as action.yml runs them) under a
simulated GitHub environment: the INPUT_* variables, the summary and output files."""
from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT, run_cli

ACTION = ROOT / "scripts" / "github-action.sh"


def run_action(tmp_path, **inputs: str) -> tuple[subprocess.CompletedProcess, str, str]:
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLMIGRATE_DIR", "SQLMIGRATE_TABLE")}
    env.update({"GITHUB_ACTION_PATH": str(ROOT), "RUNNER_TEMP": str(tmp_path), "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_OUTPUT": str(output), "INPUT_SQLMIGRATE": str(ROOT / ".venv" / "bin" / "sqlmigrate")})
    env.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    result = subprocess.run(["bash", str(ACTION)], capture_output=True, text=True, env=env, timeout=300)
    return result, summary.read_text() if summary.exists() else "", output.read_text() if output.exists() else ""


def test_action_yml_runs_the_script_with_its_inputs():
    action = (ROOT / "action.yml").read_text()
    assert "using: composite" in action
    assert '"$GITHUB_ACTION_PATH/scripts/github-action.sh"' in action
    for name in ("DIR", "DATABASE_URL", "TABLE", "STRICT", "PYTHON", "SQLMIGRATE"):
        assert f"INPUT_{name}: ${{{{ inputs." in action


def test_offline_the_action_annotates_the_sql_and_summarises_the_check(tmp_path, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ndrop table a;\n", "select 1;\n")})
    result, summary, _ = run_action(tmp_path, dir=str(mdir))
    assert result.returncode == 0, result.stderr
    assert f"::warning file={mdir}/001_a/up.sql,line=2,col=1::" in result.stdout
    assert "[destructive]" in result.stdout
    assert "- check: checked 1 migration(s): 0 error(s), 1 warning(s) (exit 0)" in summary
    assert "Pending" not in summary  # no database: no verify, plan or status


def test_strict_makes_warnings_fail(tmp_path, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\ndrop table a;\n", "select 1;\n")})
    result, summary, _ = run_action(tmp_path, dir=str(mdir), strict="true")
    assert result.returncode == 1
    assert "(exit 1)" in summary


def test_with_a_database_it_verifies_plans_and_lists_the_pending_migrations(tmp_path, database, db,
                                                                             write_migrations):
    mdir = write_migrations({
        "001_orders": ("create table orders (id int, total int);\n", "drop table orders;\n"),
        "002_index": ("create index orders_total on orders (total);\n", "drop index orders_total;\n"),
    })
    assert run_cli("up", "--to", "1", "--dir", mdir, "--database-url", database).exit_code == 0
    db.execute("insert into orders select g, g from generate_series(1, 1000) g; analyze orders")
    result, summary, output = run_action(tmp_path, dir=str(mdir), database_url=database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"::warning file={mdir}/002_index/up.sql,line=1,col=1::SHARE lock on orders" in result.stdout
    assert "### Pending migrations: 1" in summary
    assert "| 002 | index |" in summary
    assert "- verify: verify ok: 1 applied migration(s) match their files; 1 pending (exit 0)" in summary
    assert "no drift:" in summary
    assert output.strip() == "pending=1"


def test_a_modified_migration_fails_verify_with_an_error_annotation(tmp_path, database, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    assert run_cli("up", "--dir", mdir, "--database-url", database).exit_code == 0
    (mdir / "001_a" / "up.sql").write_text("create table a (id bigint);\n")
    result, summary, _ = run_action(tmp_path, dir=str(mdir), database_url=database)
    assert result.returncode == 1
    assert "::error::verify: 001_a: modified" in result.stdout
    assert "(exit 1)" in summary

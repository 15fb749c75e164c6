"""`python -m sqlmigrate` as a real process: entry point, help, environment, no tracebacks."""
from __future__ import annotations

from sqlmigrate import __version__
import subprocess
import sys

from tests.conftest import CORPORA, ROOT, run_cli, run_process, tables


def test_version():
    result = run_process("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sqlmigrate {__version__}"


def test_help_lists_commands_and_command_help_lists_options():
    result = run_process("--help")
    assert result.exit_code == 0
    for command in ("status", "up", "down", "generate", "check"):
        assert command in result.stdout
    up = run_process("up", "--help")
    assert up.exit_code == 0
    for option in ("--to", "--dry-run", "--allow-out-of-order", "--database-url", "--dir", "--table",
                   "--format", "--lock-wait", "--lock-timeout", "--statement-timeout"):
        assert option in up.stdout, option
    down = run_process("down", "--help")
    for option in ("--steps", "--to", "--all", "--yes", "--dry-run"):
        assert option in down.stdout, option


def test_no_command_is_a_usage_error():
    result = run_process()
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_bad_url_prints_no_traceback(write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    result = run_process("up", "--dir", mdir, "--database-url", "postgresql://u:secretpw@127.0.0.1:1/db")
    assert result.exit_code == 3
    assert "Traceback" not in result.stderr
    assert "secretpw" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_environment_defaults(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    result = run_process("up", env={"DATABASE_URL": database, "SQLMIGRATE_DIR": str(mdir),
                                    "SQLMIGRATE_TABLE": "env_tracking"})
    assert result.exit_code == 0, result.stderr
    assert tables(db) == {"a", "env_tracking"}


def test_pgoptions_hold_in_every_migration_also_with_timeouts(database, db, write_migrations):
    db.execute("create schema other")
    mdir = write_migrations({
        "001_set": ("set search_path = public;\nset work_mem = '1MB';\ncreate table a (id int);\n",
                    "drop table a;\n"),
        "002_see": ("create table seen as select current_schema() as schema, "
                    "current_setting('work_mem') as work_mem, current_setting('lock_timeout') as lt;\n",
                    "drop table seen;\n"),
    })
    env = {"PGOPTIONS": "-c search_path=other,public -c work_mem=7MB"}
    # --lock-timeout is SET after connecting: the startup options of PGOPTIONS must hold beside it
    result = run_process("up", "--dir", mdir, "--database-url", database, "--lock-timeout", "4s", env=env)
    assert result.exit_code == 0, result.stderr
    assert tables(db, "other") == {"schema_migrations", "seen"}
    assert db.execute("select schema, work_mem, lt from other.seen").fetchone() == ("other", "7MB", "4s")
    assert [r[0] for r in db.execute("select id from other.schema_migrations order by id")] == ["001", "002"]


def test_no_color_and_no_escape_codes_when_piped(database, write_migrations):
    mdir = write_migrations({"001_a": ("select 1;\n", "select 1;\n")})
    result = run_process("up", "--dir", mdir, "--database-url", database)
    assert result.exit_code == 0, result.stderr
    assert "\033[" not in result.stdout + result.stderr


def test_common_options_may_come_before_the_command(database, db, write_migrations):
    mdir = write_migrations({"001_a": ("create table a (id int);\n", "drop table a;\n")})
    result = run_process("--database-url", database, f"--dir={mdir}", "--table", "early_tracking", "up")
    assert result.exit_code == 0, result.stderr
    assert tables(db) == {"a", "early_tracking"}
    # the same option after the command wins, as a repeated option does
    status = run_process("--format", "text", "--dir", "/nowhere", "status", "--dir", mdir,
                         "--database-url", database, "--table", "early_tracking", "--format", "json")
    assert status.exit_code == 0, status.stderr
    assert '"state": "applied"' in status.stdout


def test_offline_commands_accept_the_database_options(write_migrations):
    """One set of options serves every command: check and generate take --database-url and --table."""
    mdir = write_migrations({"001_a": ("create table schema_migrations_x (id int);\n", "drop table a;\n")})
    # the URL names no server at all: check must not try it
    url = "postgresql://u:pw@127.0.0.1:1/nowhere"
    checked = run_process("check", "--dir", mdir, "--database-url", url, "--table", "schema_migrations_x")
    assert checked.exit_code == 1, checked.stderr
    assert "touches-tracking-table" in checked.stdout  # --table still means what it says to check
    generated = run_process("generate", "add orders", "--dir", mdir, "--database-url", url, "--table", "t")
    assert generated.exit_code == 0, generated.stderr
    assert (mdir / "002_add_orders" / "up.sql").exists()


def test_leading_options_without_a_command_are_a_usage_error():
    result = run_process("--dir", "db/migrations")
    assert result.exit_code == 2
    assert "a command must follow --dir and its value" in result.stderr
    assert "invalid choice" not in result.stderr and "Traceback" not in result.stderr


def test_output_longer_than_a_pipe_arrives_whole(database):
    """The command ends without the interpreter's teardown (cli.entry): what it
    printed must still all reach a pipe, more than the pipe holds at once."""
    # crates_io has a table of its own named schema_migrations
    args = ("up", "--dry-run", "--dir", CORPORA / "crates_io", "--table", "applied", "--database-url", database)
    piped = run_process(*args)
    assert piped.exit_code == 0, piped.stderr
    assert len(piped.stdout.encode()) > 128 * 1024  # twice what a Linux pipe holds
    assert piped.stdout == run_cli(*args).stdout


def test_a_reader_that_goes_away_gets_exit_1_and_no_traceback(database):
    """`sqlmigrate up --dry-run | head -1`: the rest of the output has nowhere to go."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlmigrate", "up", "--dry-run", "--dir", str(CORPORA / "crates_io"),
         "--table", "applied", "--database-url", database],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert first.strip()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


def test_a_report_that_cannot_be_written_is_exit_1_with_one_line():
    """The last flush fails (a full disk): the command says so instead of exiting 0."""
    code = (
        "import errno, sys\n"
        "from sqlmigrate import cli\n"
        "class FullDisk:\n"
        "    def write(self, text): return len(text)\n"
        "    def flush(self): raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    def isatty(self): return False\n"
        "sys.stdout = FullDisk()\n"
        "sys.argv = ['sqlmigrate', 'check', '--dir', 'migrations']\n"
        "cli.entry()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "sqlmigrate: could not write the report: [Errno 28] No space left on device\n"

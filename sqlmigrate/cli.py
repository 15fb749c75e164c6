"""Command line: arguments, environment defaults, exception -> exit code.

The only reader of sys.argv and os.environ, and the only exit.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

from sqlmigrate import __version__, configfile
from sqlmigrate.config import DEFAULT_DIR, DEFAULT_LOCK_WAIT, DEFAULT_MAX_ROWS, DEFAULT_TABLE, Settings, parse_duration
from sqlmigrate.errors import Interrupted, Refused, SqlMigrateError, UsageError


class _ArgumentsRejected(Exception):
    """A usage error found by argparse: run() prints it as text or as JSON."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise _ArgumentsRejected(self, message)


LEADING_OPTIONS = ("--database-url", "--dir", "--table", "--format", "--env")


def _command_first(argv: list[str]) -> list[str]:
    """`sqlmigrate --dir db/migrations up` as `sqlmigrate up --dir db/migrations`.

    The common options may also come before the command, as in git or psql
    wrappers; they are moved just after it, so an option repeated after the
    command still wins (argparse keeps the last one).
    """
    leading: list[str] = []
    i = 0
    while i < len(argv):
        name, eq, _ = argv[i].partition("=")
        if name not in LEADING_OPTIONS:
            break
        width = 1 if eq or i + 1 == len(argv) else 2
        leading += argv[i:i + width]
        i += width
    if not leading or i == len(argv) or argv[i] not in COMMANDS:
        return argv
    return [argv[i], *leading, *argv[i + 1:]]


def _command_of(argv: list[str]) -> str | None:
    """The command named in argv (options only follow it), or None."""
    for arg in argv:
        if arg == "--":
            break
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _wants_json(argv: list[str]) -> bool:
    """`--format json` (or `--format=json`, or an abbreviation argparse accepts) in argv.

    Read before argparse, so that a usage error or a Ctrl-C that comes before
    the options are parsed still prints one JSON object.
    """
    wanted = False
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if len(name) < 3 or not "--format".startswith(name):
            continue
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        wanted = value == "json"  # the last one given wins, as in argparse
    return wanted


def _json_error(command: str | None, message: str, exit_code: int) -> None:
    payload = {"command": command, "error": message, "exit_code": exit_code}
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    sys.stdout.flush()


def _duration(text: str) -> str:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _count(text: str) -> int:
    if re.fullmatch(r"[0-9]+", text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def _is_on(duration: str | None) -> bool:
    """A lock_timeout or statement_timeout that is set and not 0 (0 turns it off)."""
    return bool(duration) and re.fullmatch(r"0+(\.0+)?[a-z]*", duration or "") is None


def _folder(text: str) -> Path:
    if not text:
        # an unset variable in `--backup "$DIR"`: no backup at all is not what was meant
        raise argparse.ArgumentTypeError("is empty (give the folder for the backup)")
    return Path(text)


def _positive(text: str) -> int:
    if re.fullmatch(r"[0-9]+", text) is None or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _common(env: dict[str, str], formats: tuple[str, ...] = ("text", "json")) -> _Parser:
    common = _Parser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--dir", metavar="PATH", help="migrations folder (env SQLMIGRATE_DIR; default ./migrations)")
    group.add_argument("--format", choices=formats, default="text", help="output format (default text)")
    group.add_argument("--env", metavar="NAME",
                       help=f"use the [environments.NAME] settings of {configfile.FILE_NAME} (or pyproject.toml)")
    return common


def _database(env: dict[str, str], offline: str = "", many: bool = False) -> _Parser:
    """--database-url and --table; an offline command (check, generate) accepts and ignores what it cannot use,
    so that one set of options (a Makefile variable, say) serves every command. A command that runs on many
    targets (`many`) takes --database-url more than once."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("database options")
    url_help = "PostgreSQL URL or conninfo (env DATABASE_URL; default: libpq's own defaults)"
    table_help = "tracking table, NAME or SCHEMA.NAME (env SQLMIGRATE_TABLE; default schema_migrations)"
    if offline:
        url_help = f"accepted and ignored: {offline} never connects"
    if offline == "check":
        table_help = "tracking table name that migrations must not touch (env SQLMIGRATE_TABLE)"
    elif offline:
        table_help = f"accepted and ignored: {offline} never reads the tracking table"
    if many:
        group.add_argument("--database-url", action="append", metavar="URL",
                           help=url_help + "; give it again for each further database")
    else:
        group.add_argument("--database-url", metavar="URL", help=url_help)
    group.add_argument("--table", metavar="NAME", help=table_help)
    return parent


def _locking() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("locking and timeouts")
    group.add_argument("--lock-wait", type=_seconds, metavar="SECONDS",
                       help="wait this long for another run's lock, then exit 5 (default 60)")
    group.add_argument("--lock-timeout", type=_duration, metavar="DURATION",
                       help="PostgreSQL lock_timeout for the migration SQL (500ms, 5s, 1min; bare number = ms)")
    group.add_argument("--statement-timeout", type=_duration, metavar="DURATION",
                       help="PostgreSQL statement_timeout for the migration SQL")
    group.add_argument("--lock-retries", type=_count, metavar="N",
                       help="with --lock-timeout: run a migration again from its start, up to N more times, "
                            "when a statement times out waiting for a lock (default 0)")
    return parent


# SPEC 7: what up, down, repair and baseline check before they take the lock
_WRITES = (" Exits 3 before changing anything on a read-only standby (run it against the primary) and through a "
           "connection pooler in transaction or statement mode (use session pooling or a direct connection).")


def _many() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("many databases (README: Many databases at once)")
    group.add_argument("--targets", metavar="FILE", type=Path,
                       help="run on each database of FILE: a URL or key=value connection string per line; blank "
                            "lines and # comments ignored; ${VAR} replaced from the environment")
    group.add_argument("--schemas", metavar="PATTERN",
                       help="run on every schema of each database whose name matches this LIKE pattern, as a "
                            "target of its own: search_path set to it, its own tracking table in it")
    group.add_argument("--jobs", type=_positive, default=4, metavar="N", help="run at most N targets at once "
                                                                              "(default 4)")
    group.add_argument("--canary", type=_count, default=0, metavar="K",
                       help="run the first K targets first, and start no other if one of them fails")
    group.add_argument("--on-error", choices=("stop", "continue"), default="stop",
                       help="after a target fails, start no new one (stop, the default; running ones finish) "
                            "or run the rest (continue)")
    return parent


class _Commands:
    """Adds each command's parser to the subparsers; the shared option groups are built once."""

    def __init__(self, sub, env: dict[str, str]) -> None:
        self.sub, self.env = sub, env
        self.common, self.database, self.locking = _common(env), _database(env), _locking()
        self.databases, self.many = _database(env, many=True), _many()

    def status(self) -> None:
        self.sub.add_parser("status", parents=[self.common, self.databases, self.many],
                            help="list migrations and their state",
                            description="One row per migration: id, name, state, when applied. Always exits 0.")

    def up(self) -> None:
        p = self.sub.add_parser("up", parents=[self.common, self.databases, self.locking, self.many],
                                help="apply pending migrations",
                                description="Validate, then apply pending migrations in id order, each in its own "
                                            "transaction together with its tracking row." + _WRITES)
        p.add_argument("--to", metavar="ID", help="stop after this migration")
        p.add_argument("--dry-run", action="store_true", help="print the SQL that would run; change nothing")
        p.add_argument("--allow-out-of-order", action="store_true",
                       help="apply pending migrations older than the newest applied one")
        deploy = p.add_argument_group("backup")
        deploy.add_argument("--backup", type=_folder,
                            metavar="DIR",
                            help="before the first pending migration runs, pg_dump --format=custom the target into "
                                 "DIR/<database>-<UTC time>-before-<id>.dump; no dump when nothing is pending or "
                                 "with --dry-run; exit 3, nothing applied, when pg_dump fails "
                                 "(env SQLMIGRATE_BACKUP_DIR)")
        deploy.add_argument("--pg-dump", metavar="PATH",
                            help="the pg_dump to run for --backup (env SQLMIGRATE_PG_DUMP; default: the newest of "
                                 "PATH's and /usr/lib/postgresql/*/bin's that is at least the server's major)")

    def down(self) -> None:
        p = self.sub.add_parser("down", parents=[self.common, self.databases, self.locking, self.many],
                                help="roll back applied migrations",
                                description="Roll back applied migrations from the highest id down (one by "
                                            "default)." + _WRITES)
        which = p.add_mutually_exclusive_group()
        which.add_argument("--steps", type=_positive, metavar="N", help="roll back N migrations")
        which.add_argument("--to", metavar="ID", help="roll back every migration above ID")
        which.add_argument("--all", action="store_true", help="roll back every applied migration")
        p.add_argument("--yes", action="store_true", help="confirm --all, or many targets, without asking")
        p.add_argument("--dry-run", action="store_true", help="print the SQL that would run; change nothing")

    def verify(self) -> None:
        self.sub.add_parser("verify", parents=[self.common, self.databases, self.many],
                            help="compare applied migrations with the files",
                            description="Exit 1 naming each modified, missing or failed migration; "
                                        "pending ones are fine.")

    def repair(self) -> None:
        p = self.sub.add_parser("repair", parents=[self.common, self.database, self.locking],
                                help="accept deliberate edits, clear failed runs",
                                description="Record the current checksums of modified or reformatted migrations, "
                                            "and clear failed runs so they can run again (default: every such "
                                            "migration)." + _WRITES)
        p.add_argument("ids", nargs="*", metavar="ID", help="migrations to repair (default: all that need it)")

    def baseline(self) -> None:
        p = self.sub.add_parser("baseline", parents=[self.common, self.database, self.locking],
                                help="adopt an existing database",
                                description="On a database whose tracking table is empty, record every migration "
                                            "up to ID as applied without running it." + _WRITES)
        p.add_argument("id", metavar="ID", help="the last migration the database already has")

    def generate(self) -> None:
        p = self.sub.add_parser("generate", parents=[self.common, _database(self.env, offline="generate")],
                                help="create the next migration folder",
                                description="Create <next id>_<name>/up.sql and down.sql templates.")
        # optional for argparse, so that `generate -x` is reported as the stray option it is
        # (see run), not as a missing name; commands.generate requires it
        p.add_argument("name", nargs="*", help="migration name, one word or several (`generate add user roles`); "
                                               "lower-cased, spaces and '-' become '_'")

    def test(self) -> None:
        p = self._scratch("test", "prove every down.sql in a scratch database",
                          "In a scratch database on the same server: for each migration, apply up.sql, apply "
                          "down.sql, check the schema is back to what it was, apply up.sql again. Exit 1 on any "
                          "failure. The target database is never written to.")
        p.add_argument("--from", dest="start", metavar="ID",
                       help="test only the migrations from ID on (a branch's new ones); those below ID are "
                            "applied as up applies them, without a round trip")

    def drift(self) -> None:
        p = self._scratch("drift", "compare the live schema with what the applied migrations build",
                          "Apply the migrations recorded as applied to a scratch database and compare its schema "
                          "with the live one (tracking table left out). Exit 1 on drift; with --generate, exit 0 "
                          "once the migration that captures it is written and proven.")
        group = p.add_argument_group("corrective migration")
        group.add_argument("--generate", metavar="NAME",
                           help="write the next migration, NAME, whose up.sql turns what the migrations build into "
                                "the live schema (down.sql the reverse); written only once proven in a scratch "
                                "database; exit 1 and nothing written when a difference cannot be expressed")
        group.add_argument("--record", action="store_true",
                           help="with --generate: then record the new migration as applied on this database, "
                                "which has the change already (under the migration lock)")
        group.add_argument("--lock-wait", type=_seconds, metavar="SECONDS",
                           help="with --record: wait this long for another run's lock, then exit 5 (default 60)")

    def plan(self) -> None:
        p = self.sub.add_parser("plan", parents=[_common(self.env, ("text", "json", "github")), self.database],
                                help="rehearse pending migrations: the locks and rewrites they would cause",
                                description="Build the applied migrations in a scratch database, run each pending "
                                            "migration there as up would, and report every statement that locks "
                                            "or rewrites a table of the target, graded by its size on the target. "
                                            "Only reads the target. Exit 1 on an error (or a warning with "
                                            "--strict), or when a migration fails in the scratch database.")
        p.add_argument("--to", metavar="ID", help="rehearse the pending migrations up to this one")
        p.add_argument("--max-rows", type=_count, default=DEFAULT_MAX_ROWS, metavar="N",
                       help="a rewrite under ACCESS EXCLUSIVE of a table of more rows than this on the target "
                            f"is an error, and a data change on one a warning (default {DEFAULT_MAX_ROWS:,})")
        p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
        p.add_argument("--statement-timeout", type=_duration, metavar="DURATION",
                       help="PostgreSQL statement_timeout for the migration SQL in the scratch database")
        p.add_argument("--scratch-url", metavar="URL",
                       help="create the scratch database on this server (and connect to this database to do so) "
                            "instead of the target's: for a read-only standby, or a role without CREATEDB")

    def _scratch(self, name: str, help_: str, description: str) -> _Parser:
        p = self.sub.add_parser(name, parents=[self.common, self.database], help=help_, description=description)
        p.add_argument("--scratch-url", metavar="URL",
                       help="create the scratch database on this server (and connect to this database to do so) "
                            "instead of the target's: for a read-only standby, or a role without CREATEDB")
        p.add_argument("--statement-timeout", type=_duration, metavar="DURATION",
                       help="PostgreSQL statement_timeout for the migration SQL in the scratch database")
        return p

    def schema(self) -> None:
        p = self.sub.add_parser("schema", parents=[_common(self.env, ("text", "json", "mermaid")), self.database],
                                help="print the database's schema, sorted and stable",
                                description="Print a snapshot of the schema read from pg_catalog (tracking table "
                                            "left out), as stable sorted text to commit next to the migrations; "
                                            "or (--format mermaid) its tables and foreign keys as a Mermaid ER "
                                            "diagram.")
        p.add_argument("--output", metavar="FILE", type=Path, help="write the text to FILE instead of printing it")

    def config(self) -> None:
        self.sub.add_parser("config", parents=[self.common, self.database, self.locking],
                            help="show the settings in effect and where each came from",
                            description="Print each setting's value (the password masked) and where it came "
                                        "from: the command line, the environment, sqlmigrate.toml (or "
                                        "[tool.sqlmigrate] of pyproject.toml, its --env environment first), "
                                        "or the default. Never connects.")

    def check(self) -> None:
        p = self.sub.add_parser("check", parents=[_common(self.env, ("text", "json", "github")),
                                                  _database(self.env, offline="check")],
                                help="validate migrations offline",
                                description="Validate every migration without a database (SPEC rules).")
        p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")


def build_parser(env: dict[str, str], only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (`only`) the main parser with that one command:
    a run names one, and building them all is time every run would pay."""
    parser = _Parser(
        prog="sqlmigrate",
        description="Plain-SQL migrations for PostgreSQL.",
        epilog="exit status: 0 ok, 1 problems found or refused, 2 usage error, 3 database unavailable, "
               "4 migration SQL failed, 5 lock wait timed out, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"sqlmigrate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    adder = _Commands(sub, env)
    for name in COMMANDS if only is None else (only,):
        add_parser, _ = _TABLE[name]
        add_parser(adder)
    return parser


# setting -> its option, its environment variable, its default (SPEC 3, 7, 11)
_SOURCES: dict[str, tuple[str, str | None, object]] = {
    "database_url": ("--database-url", "DATABASE_URL", ""),
    "dir": ("--dir", "SQLMIGRATE_DIR", DEFAULT_DIR),
    "table": ("--table", "SQLMIGRATE_TABLE", DEFAULT_TABLE),
    "lock_wait": ("--lock-wait", None, DEFAULT_LOCK_WAIT),
    "lock_timeout": ("--lock-timeout", None, None),
    "lock_retries": ("--lock-retries", None, 0),
    "statement_timeout": ("--statement-timeout", None, None),
    "backup_dir": ("--backup", "SQLMIGRATE_BACKUP_DIR", None),
    "pg_dump": ("--pg-dump", "SQLMIGRATE_PG_DUMP", None),
    "targets": ("--targets", None, None),
}


# an empty SQLMIGRATE_BACKUP_DIR or SQLMIGRATE_PG_DUMP (a CI variable left blank) means none
_EMPTY_IS_NONE = frozenset({"backup_dir", "pg_dump"})


def resolved_settings(args: argparse.Namespace, env: dict[str, str]) -> dict[str, configfile.Resolved]:
    """Each setting's value and where it came from: the command line, the
    environment, the settings file (its --env environment first), the default."""
    file = configfile.load(configfile.current_folder(), env, getattr(args, "env", None))
    values = {}
    for key, (option, variable, default) in _SOURCES.items():
        given = getattr(args, option.lstrip("-").replace("-", "_"), None)
        if given is None and key in _EMPTY_IS_NONE and variable is not None and env.get(variable) == "":
            values[key] = configfile.Resolved(None, variable)  # set empty: none, over the settings file
            continue
        values[key] = configfile.resolve(key, given, option, env, variable, file, default)
    return values


def _settings(args: argparse.Namespace, values: dict[str, configfile.Resolved]) -> Settings:
    def value(key: str):
        return values[key].value

    return Settings(
        database_url=value("database_url"),
        directory=Path(value("dir")),
        table=value("table"),
        format=args.format,
        lock_wait=float(value("lock_wait")),
        lock_timeout=value("lock_timeout"),
        statement_timeout=value("statement_timeout"),
        lock_retries=value("lock_retries"),
        show_progress=args.format == "text",
        validate_in_parallel=True,
        sources=tuple((key, resolved.source) for key, resolved in values.items()),
        backup_dir=Path(value("backup_dir")) if value("backup_dir") else None,
        scratch_url=getattr(args, "scratch_url", None),
        targets=_targets_shown(value("targets")),
        pg_dump=value("pg_dump"),
    )


def _progress_interval(env: dict[str, str]) -> float:
    """SQLMIGRATE_PROGRESS_INTERVAL: seconds between progress lines when stdout is not
    a terminal; 0 when unset (the renderer's default)."""
    text = env.get("SQLMIGRATE_PROGRESS_INTERVAL", "")
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise UsageError(f"SQLMIGRATE_PROGRESS_INTERVAL={text!r} is not a number of seconds above 0")
    return seconds


def _confirm_all(args: argparse.Namespace) -> None:
    if args.yes or args.dry_run:
        return
    if not sys.stdin.isatty():
        raise Refused("down --all rolls back every migration: add --yes to confirm (stdin is not a terminal)")
    # the question goes to stderr: stdout holds the report (one JSON object with --format json)
    sys.stderr.write("Roll back EVERY applied migration? Type 'yes' to continue: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        # Ctrl-D: no answer is not a yes; end the prompt's line so the refusal gets its own
        sys.stderr.write("\n")
        raise Refused("down --all cancelled (no answer); nothing was rolled back")
    if answer.strip().lower() != "yes":
        raise Refused("down --all cancelled; nothing was rolled back")


def _drift(c: Any, settings: Settings, args: argparse.Namespace, listener: Any) -> Any:
    if args.generate is None:
        if args.record:
            raise UsageError("--record needs --generate NAME: it records the migration that --generate writes")
        return c.drift(settings, listener)
    return c.drift_generate(settings, listener, args.generate, record=args.record)


def _down(c: Any, settings: Settings, args: argparse.Namespace, listener: Any) -> Any:
    if args.all:
        _confirm_all(args)
    return c.down(settings, listener, steps=args.steps, to=args.to, all_=args.all, dry_run=args.dry_run)


def _targets_shown(value: object) -> str:
    if isinstance(value, list):
        return f"{len(value)} connection string(s)"
    return str(value) if value else ""


def _given_urls(args: argparse.Namespace) -> list[str]:
    """The --database-url values given (status, verify, up and down take several);
    args.database_url is left as the one given, or None, for the settings' resolution."""
    given = getattr(args, "database_url", None)
    if not isinstance(given, list):
        return [given] if given is not None else []
    args.database_url = given[0] if len(given) == 1 else None
    return given


def _many_targets(args: argparse.Namespace, urls: list[str],
                  values: dict[str, configfile.Resolved]) -> tuple[list[str], Path | None] | None:
    """The connection strings and targets file of a run on many targets (SPEC 10):
    --database-url given more than once, --targets or --schemas, or `targets` in the
    settings file when neither the command line nor DATABASE_URL names a database.
    None for a run on one database, whose output is as it always was."""
    if not hasattr(args, "schemas"):
        return None
    chosen = values["targets"]
    from_file = chosen.source not in ("--targets", "default") and values["database_url"].source in (
        "default", chosen.source)
    listed: list[str] = []
    targets_file: Path | None = None
    if chosen.source == "--targets" or from_file:
        if isinstance(chosen.value, list):
            listed = list(chosen.value)
        elif chosen.value:
            targets_file = Path(chosen.value)
    if len(urls) > 1 or listed or targets_file is not None or args.schemas is not None:
        if len(urls) <= 1 and not listed and targets_file is None:
            urls = [values["database_url"].value]  # --schemas alone: the schemas of the one database
        return urls + listed, targets_file
    return None


def _run_many(c: Any, settings: Settings, args: argparse.Namespace, many: tuple[list[str], Path | None],
              env: dict[str, str], renderer: Any) -> Any:
    """status, verify, up or down on many targets; the fleet's report."""
    from sqlmigrate import fleet, targets
    from sqlmigrate.target import Target

    options: dict[str, Any] = {}
    if args.command == "up":
        options = dict(to=args.to, dry_run=args.dry_run, allow_out_of_order=args.allow_out_of_order)
    elif args.command == "down":
        if not (args.yes or args.dry_run):
            raise Refused("down on many targets rolls back on every one of them: add --yes to confirm")
        options = dict(steps=args.steps, to=args.to, all_=args.all, dry_run=args.dry_run)
    urls, targets_file = many
    given = targets.collect(urls, targets_file, env)
    job = fleet.job(args.command, settings, c.scan_folder(settings), **options)
    return fleet.run(job, [Target.from_settings(settings, g.url) for g in given],
                     fleet.Options(jobs=args.jobs, canary=args.canary, on_error=args.on_error),
                     schemas=args.schemas, listener=renderer.event, on_done=renderer.finished, own_sigint=True)


# Every command: how its parser is built, and how it runs (given the commands
# module, imported only once the arguments are parsed, the settings, the
# arguments and the progress listener) to return its report.
_Run = Callable[[Any, Settings, argparse.Namespace, Any], Any]
_TABLE: dict[str, tuple[Callable[[_Commands], None], _Run]] = {
    "status": (_Commands.status, lambda c, settings, args, listener: c.status(settings)),
    "up": (_Commands.up, lambda c, settings, args, listener: c.up(
        settings, listener, to=args.to, dry_run=args.dry_run, allow_out_of_order=args.allow_out_of_order)),
    "down": (_Commands.down, _down),
    "verify": (_Commands.verify, lambda c, settings, args, listener: c.verify(settings)),
    "repair": (_Commands.repair, lambda c, settings, args, listener: c.repair(settings, listener, args.ids)),
    "baseline": (_Commands.baseline, lambda c, settings, args, listener: c.baseline(settings, listener, args.id)),
    "generate": (_Commands.generate, lambda c, settings, args, listener: c.generate(
        settings, " ".join(args.name) if args.name else None)),
    "test": (_Commands.test, lambda c, settings, args, listener: c.test(settings, listener, start=args.start)),
    "drift": (_Commands.drift, _drift),
    "plan": (_Commands.plan, lambda c, settings, args, listener: c.plan(
        settings, listener, to=args.to, max_rows=args.max_rows, strict=args.strict)),
    "schema": (_Commands.schema, lambda c, settings, args, listener: c.schema(
        settings, args.output, form="mermaid" if args.format == "mermaid" else "text")),
    "check": (_Commands.check, lambda c, settings, args, listener: c.check(settings, strict=args.strict)),
    "config": (_Commands.config, lambda c, settings, args, listener: c.config(settings)),
}
COMMANDS = tuple(_TABLE)


def run(argv: list[str], env: dict[str, str]) -> int:
    try:
        parser = build_parser(env, only=_command_of(argv))
        if argv and argv[0].partition("=")[0] in LEADING_OPTIONS:
            # _command_first found no command after them to move them behind
            raise _ArgumentsRejected(parser, f"a command must follow {argv[0].partition('=')[0]} and its value "
                                             f"(choose from {', '.join(COMMANDS)})")
        args = parser.parse_args(argv)
    except _ArgumentsRejected as exc:
        if _command_of(argv) == "generate" and exc.message.startswith("unrecognized arguments: -"):
            exc.message += " (a migration name cannot start with '-')"
        if _wants_json(argv):
            _json_error(_command_of(argv), exc.message, UsageError.exit_code)
        else:
            exc.parser.print_usage(sys.stderr)
            sys.stderr.write(f"sqlmigrate: {exc.message}\n")
        return UsageError.exit_code
    except SystemExit as exc:
        # argparse exits on --help and --version; main() returns
        # the code instead, so that in-process callers get an int like any other run
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    from sqlmigrate import commands
    from sqlmigrate.render import Renderer

    renderer = Renderer(args.format, command=args.command, directory=args.dir)
    try:
        given_urls = _given_urls(args)
        values = resolved_settings(args, env)
        settings = _settings(args, values)
        many = _many_targets(args, given_urls, values)
        if many is not None:
            from sqlmigrate.render_fleet import FleetRenderer

            renderer = FleetRenderer(args.format, command=args.command, directory=args.dir)
        renderer.directory = values["dir"].value
        renderer.progress_every = _progress_interval(env) or renderer.progress_every
        if not values["dir"].value:
            # an unset variable in `--dir "$DIR"`: the current folder is rarely what was meant
            raise UsageError("--dir is empty (give the migrations folder, or `--dir .` for the current one)")
        if args.command in ("up", "down") and settings.lock_retries and not _is_on(settings.lock_timeout):
            retries, timeout = values["lock_retries"].source, values["lock_timeout"].source
            named = "--lock-retries" if retries == "--lock-retries" else f"lock_retries ({retries})"
            raise UsageError(f"{named} needs a lock timeout above 0 (--lock-timeout, or lock_timeout in the "
                             "settings file): without one a statement waits for its lock as long as it takes, "
                             f"and there is nothing to retry" + ("" if timeout == "default" else
                                                                f" (lock_timeout is 0, from {timeout})"))
        if many is not None:
            report = _run_many(commands, settings, args, many, env, renderer)
        else:
            _, run_command = _TABLE[args.command]
            report = run_command(commands, settings, args, renderer.event)
    except SqlMigrateError as exc:
        renderer.error(exc)
        return exc.exit_code
    try:
        renderer.report(report)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # a full disk, say: the report is incomplete, and the exit code says so
        sys.stderr.write(f"sqlmigrate: could not write the report: {exc}\n")
        return report.exit_code or 1
    return report.exit_code


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    argv = _command_first(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ) if env is None else env
    try:
        return run(argv, env)
    except KeyboardInterrupt:
        # commands that run SQL catch Ctrl-C themselves and say what they rolled back
        if _wants_json(argv):
            _json_error(_command_of(argv), "interrupted", Interrupted.exit_code)
        else:
            sys.stderr.write("\nsqlmigrate: interrupted\n")
        return Interrupted.exit_code
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the one place an unexpected error becomes one line
        if env.get("SQLMIGRATE_DEBUG"):
            raise
        sys.stderr.write(f"sqlmigrate: internal error: {type(exc).__name__}: {exc} "
                         "(set SQLMIGRATE_DEBUG=1 for a traceback)\n")
        return 1


def entry() -> NoReturn:
    """The `sqlmigrate` command: main(), then an exit without the interpreter's teardown.

    Tearing down the modules psycopg brings is a noticeable part of a small
    `up`. By the time main() returns there is nothing left for it to do: every
    connection is closed, every scratch database dropped, the validating child
    reaped. Only the output streams need flushing, and that happens here.
    """
    try:
        code = main()
        try:
            sys.stdout.flush()
        except OSError:  # a reader that went away (`| head -1`), or what run() reported already
            code = code or 1
        try:
            sys.stderr.flush()
        except OSError:
            pass
    except KeyboardInterrupt:  # Ctrl-C after main() was done: its report is out already
        code = Interrupted.exit_code
    os._exit(code)

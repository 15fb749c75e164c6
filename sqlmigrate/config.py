"""Settings of one run, and the database URL with its password masked for display.

Imports no driver: `check` and `--help` must start without psycopg.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DIR = "migrations"
DEFAULT_TABLE = "schema_migrations"
DEFAULT_LOCK_WAIT = 60.0
DEFAULT_MAX_ROWS = 100_000  # plan: the size from which a rewrite is an error (SPEC 8)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
_MS_PER_UNIT = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_MAX_MS = 2_147_483_647  # lock_timeout and statement_timeout are int milliseconds


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    directory: Path = Path(DEFAULT_DIR)
    table: str = DEFAULT_TABLE
    format: str = "text"
    lock_wait: float = DEFAULT_LOCK_WAIT
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    lock_retries: int = 0  # runs again of a transactional migration whose lock wait timed out
    targets: str = ""  # as `config` shows it: a targets file, or how many connection strings the settings list
    scratch_url: str | None = None  # where test, drift and plan create their scratch database
    show_progress: bool = False  # watch long statements and report their progress (text output)
    # where each setting came from ("--dir", "SQLMIGRATE_DIR", "sqlmigrate.toml", "default"), for `config`
    sources: tuple[tuple[str, str], ...] = ()
    # `up` and `down` validate in a forked child while they import psycopg (prevalidate):
    # the command line's choice; a library caller's process is not forked
    validate_in_parallel: bool = False
    # SPEC 7: `up` dumps the target into this folder before it applies anything
    backup_dir: Path | None = None
    pg_dump: str | None = None  # the pg_dump to use; None: backup.find_pg_dump chooses

    def server_options(self) -> dict[str, str]:
        """Settings for the migration SQL, which hold for every migration (SPEC 5)."""
        options = {}
        if self.lock_timeout:
            options["lock_timeout"] = self.lock_timeout
        if self.statement_timeout:
            options["statement_timeout"] = self.statement_timeout
        return options


def parse_duration(text: str) -> str:
    """PostgreSQL duration syntax (`500ms`, `5s`, `1min`; bare number = ms).

    Returns the value normalised for a server option; raises ValueError.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 500ms, 5s or 1min")
    number, unit = match.groups()
    ms = float(number) * _MS_PER_UNIT[unit or "ms"]
    # checked here, not left to the server: it would round 500us down to 0 (no
    # timeout at all) and refuse 100d only at connection start, as if it were down
    if 0 < ms < 1:
        raise ValueError(f"{text!r} is less than 1ms, which PostgreSQL would round to 0 (no timeout); "
                         "use 0 to disable the timeout")
    if ms > _MAX_MS:
        raise ValueError(f"{text!r} is longer than PostgreSQL allows ({_MAX_MS}ms, about 24 days)")
    return f"{number}{unit or 'ms'}"


def mask_url(url: str) -> str:
    """The URL or conninfo string with any password replaced by ***."""
    if not url:
        return "the default server (libpq defaults)"
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostinfo = netloc.rpartition("@")
            if ":" in userinfo:
                user = userinfo.split(":", 1)[0]
                netloc = f"{user}:***@{hostinfo}"
        query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
        # joined by hand: urlunsplit drops the "//" of an empty host (postgresql:///db)
        return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
                + (f"#{parts.fragment}" if parts.fragment else ""))
    return re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)

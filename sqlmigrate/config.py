"""Settings of one run, and the database URL with its password masked for display.

Imports no driver: `check` and `--help` must start without psycopg.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DIR = "migrations"
DEFAULT_TABLE = "schema_migrations"
DEFAULT_LOCK_WAIT = 60.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    directory: Path = Path(DEFAULT_DIR)
    table: str = DEFAULT_TABLE
    format: str = "text"
    lock_wait: float = DEFAULT_LOCK_WAIT
    lock_timeout: str | None = None
    statement_timeout: str | None = None

    def server_options(self) -> dict[str, str]:
        """Settings for the migration SQL, given at connection start (SPEC 5)."""
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
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)

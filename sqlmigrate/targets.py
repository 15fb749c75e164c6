"""The connection strings of a run on many databases (SPEC 10): each
`--database-url`, then the lines of a `--targets` file, checked before anything connects.

A bad list is a usage error naming the file and line; the same database
twice is refused. Imports no driver until a list is checked (db parses it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from sqlmigrate.config import mask_url
from sqlmigrate.errors import UsageError

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Given:
    """A connection string and where it was given (`shards.txt:7`, `--database-url #2`)."""

    url: str
    origin: str


def collect(urls: Sequence[str], file: Path | None, env: Mapping[str, str], *,
            given_as: str = "--database-url") -> list[Given]:
    """Every connection string, in the order given: the --database-url values
    (`given_as` names them in messages), then the file's lines.

    Raises UsageError for a targets file that is missing, unreadable or lists
    none; a line that is no connection string; a `${VAR}` not set in `env`;
    and two connection strings naming the same database (however spelled):
    the second is most often a line copied to be edited and left as it was.
    """
    given = [Given(url, f"{given_as} #{i}" if len(urls) > 1 else given_as) for i, url in enumerate(urls, 1)]
    if file is not None:
        given += read_file(file, env)
    _refuse_twice(given)
    return given


def read_file(path: Path, env: Mapping[str, str]) -> list[Given]:
    """The connection strings of a targets file: one per line, blank lines and
    lines starting with `#` ignored, `${VAR}` replaced from `env`."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"targets file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"targets file {path} is a folder, not a file") from None
    except UnicodeDecodeError:
        raise UsageError(f"targets file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read targets file {path}: {exc.strerror}") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        out.append(Given(expand(line, env, where), where))
    if not out:
        raise UsageError(f"targets file {path} lists no target (only blank lines and comments)")
    return out


def expand(line: str, env: Mapping[str, str], where: str) -> str:
    """`line` with each `${VAR}` replaced by its value in `env` (as it is:
    percent-encode what a URL needs encoded). Raises UsageError naming an
    unset VAR, or a `${` that is not `${NAME}`."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise UsageError(f"{where}: ${{{name}}} is not set in the environment")
        return env[name]

    expanded = []
    rest = line
    while True:
        start = rest.find("${")
        if start < 0:
            expanded.append(rest)
            break
        match = _VARIABLE.match(rest, start)
        if match is None:
            raise UsageError(f"{where}: '${{' starts no ${{NAME}} (a name of letters, digits and '_', "
                             "then '}')")
        expanded += [rest[:start], value(match)]
        rest = rest[match.end():]
    return "".join(expanded)


def _refuse_twice(given: list[Given]) -> None:
    """Check each connection string's syntax, and that no database comes twice."""
    from sqlmigrate import db

    seen: dict[tuple[str, str, str], Given] = {}
    for item in given:
        try:
            identity = db.database_identity(item.url)
        except UsageError as exc:
            raise UsageError(f"{item.origin}: {exc.message}") from None
        host, port, dbname = identity
        if not all(part.strip().isdigit() for part in port.split(",") if part.strip()):
            # libpq would take it for a host name to resolve, and blame the host
            raise UsageError(f"{item.origin}: invalid connection string {mask_url(item.url)}: "
                             f"port {port!r} is not a number")
        first = seen.setdefault(identity, item)
        if first is not item:
            raise UsageError(f"{first.origin} and {item.origin} both name database {dbname} on "
                             f"{host or 'the local socket'}:{port}; give each target once")

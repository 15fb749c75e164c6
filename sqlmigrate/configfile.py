"""Settings kept in a file: `sqlmigrate.toml`, or `[tool.sqlmigrate]` of `pyproject.toml` (SPEC 11).

Read from the current folder only, so a relative path in the file (`dir`,
`backup_dir`, a `targets` file) means the same from the file's folder as from
where the command runs. Precedence, highest first: the command line, the
environment variables, the chosen `[environments.NAME]` table, the file's top
level, the defaults; `resolve` says for each setting where its value came from.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sqlmigrate.config import parse_duration
from sqlmigrate.errors import UsageError

FILE_NAME = "sqlmigrate.toml"
PYPROJECT = "pyproject.toml"

# key -> what its value must be: "text", "duration", "count" (a whole number >= 0), "targets"
KEYS: dict[str, str] = {
    "dir": "text",
    "table": "text",
    "database_url": "text",
    "lock_wait": "count",
    "lock_timeout": "duration",
    "lock_retries": "count",
    "statement_timeout": "duration",
    "backup_dir": "text",
    "targets": "targets",
}
EXPANDED = frozenset({"database_url", "targets"})  # ${VAR} is replaced in these
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# [tool.sqlmigrate...] headers, or `sqlmigrate = {...}` / `sqlmigrate.dir = ...` under a [tool] header
_MENTIONS_TOOL_TABLE = re.compile(rb"tool\s*\.\s*sqlmigrate|^\[tool\][^\[]*^\s*sqlmigrate\s*[.=]", re.MULTILINE)


@dataclass(frozen=True)
class FileSettings:
    """The settings a file gives (the chosen environment's over its top level)."""

    path: Path | None = None  # the file read, None when there is none
    environment: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # key -> "sqlmigrate.toml [environments.prod]"


def load(folder: Path, env: Mapping[str, str], environment: str | None = None) -> FileSettings:
    """The settings of `folder`'s sqlmigrate.toml (else its pyproject.toml's [tool.sqlmigrate]).

    Raises UsageError, naming the file and the key, for a file that is not
    TOML, an unknown key, a value of the wrong type, an unset ${VAR}, or an
    `environment` the file does not have.
    """
    found = _find(folder)
    if found is None:
        if environment is not None:
            raise UsageError(f"--env {environment}: there is no {FILE_NAME} (nor [tool.sqlmigrate] in "
                             f"{PYPROJECT}) in {folder.resolve()} to define it")
        return FileSettings()
    path, table, prefix = found
    label = path.name
    environments = table.get("environments", {})
    if not isinstance(environments, dict):
        raise UsageError(f"{label}: [{prefix}environments] must be a table of environments")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in table.items():
        if key == "environments":
            continue
        values[key] = _checked(label, f"{prefix.rstrip('.')}" if prefix else "", key, value, env, expand=False)
        sources[key] = label
    for name, other in environments.items():  # a typo in any environment is caught, not only in the one chosen
        if not isinstance(other, dict):
            raise UsageError(f"{label}: [{prefix}environments.{name}] must be a table")
        if name != environment:
            for key, value in other.items():
                _checked(label, f"{prefix}environments.{name}", key, value, env, expand=False)
    if environment is not None:
        chosen = environments.get(environment)
        if not isinstance(chosen, dict):
            known = ", ".join(sorted(environments)) or "none"
            raise UsageError(f"--env {environment}: {label} has no [{prefix}environments.{environment}] "
                             f"(environments: {known})")
        where = f"{prefix}environments.{environment}"
        for key, value in chosen.items():
            values[key] = _checked(label, where, key, value, env, expand=False)
            sources[key] = f"{label} [{where}]"
    return FileSettings(path, environment, values, sources)


def _find(folder: Path) -> tuple[Path, dict, str] | None:
    """The file, its sqlmigrate table, and the prefix of that table's name in messages."""
    own = folder / FILE_NAME
    if own.is_file():
        return own, _parse(own), ""
    pyproject = folder / PYPROJECT
    try:
        data = pyproject.read_bytes()
    except OSError:
        return None
    if not _MENTIONS_TOOL_TABLE.search(data):  # most projects' pyproject.toml: no need to parse it
        return None
    tool = _parse(pyproject, data).get("tool", {})
    table = tool.get("sqlmigrate") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError(f"{PYPROJECT}: [tool.sqlmigrate] must be a table")
    return pyproject, table, "tool.sqlmigrate."


def _parse(path: Path, data: bytes | None = None) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        text = (path.read_bytes() if data is None else data).decode("utf-8-sig")  # an editor's BOM is no error
        return tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read {path.name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path.name} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = f":{where.group(1)}:{where.group(2)}" if where else ""
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise UsageError(f"{path.name}{line}: not valid TOML: {reason}") from None


def _checked(label: str, where: str, key: str, value: Any, env: Mapping[str, str], *, expand: bool = True) -> Any:
    """The value, checked for its key (and ${VAR} replaced, when `expand`)."""
    named = f"{label}: {f'[{where}] ' if where else ''}{key}"
    kind = KEYS.get(key)
    if kind is None:
        raise UsageError(f"{named}: unknown setting (known: {', '.join(KEYS)}, environments)")
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{named} must be a whole number of 0 or more, not {_toml(value)}")
        return value
    if kind == "targets":
        if isinstance(value, str):
            return _expanded(named, value, env) if expand else value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [_expanded(named, v, env) for v in value] if expand else value
        raise UsageError(f"{named} must be the path of a targets file or a list of connection strings")
    if not isinstance(value, str):
        raise UsageError(f"{named} must be a string, not {_toml(value)}")
    if kind == "duration":
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise UsageError(f"{named}: {exc}") from None
    return _expanded(named, value, env) if key in EXPANDED and expand else value


def _toml(value: Any) -> str:
    """A value as the file spells it (`true`, not Python's `True`)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _expanded(named: str, text: str, env: Mapping[str, str]) -> str:
    """`${VAR}` replaced from the environment; an unset VAR is an error naming it
    (never a silently empty password)."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in env:
            raise UsageError(f"{named}: environment variable {name} is not set")
        return env[name]

    return _VARIABLE.sub(replace, text)


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "--dir", "SQLMIGRATE_DIR", "sqlmigrate.toml", "default"


def resolve(key: str, given: Any, option: str, env: Mapping[str, str], variable: str | None,
            file: FileSettings, default: Any) -> Resolved:
    """One setting by precedence: the command line (`given`, None when not given),
    the environment variable, the file (its environment over its top level), the default."""
    if given is not None:
        return Resolved(given, option)
    if variable is not None and variable in env:
        return Resolved(env[variable], variable)
    if key in file.values:
        value = file.values[key]
        if key in EXPANDED:  # only the value in use: a ${VAR} of one overridden may stay unset
            named = f"{file.sources[key]}: {key}"
            value = [_expanded(named, v, env) for v in value] if isinstance(value, list) else _expanded(
                named, value, env)
        return Resolved(value, file.sources[key])
    return Resolved(default, "default")


def current_folder() -> Path:
    return Path(os.curdir)

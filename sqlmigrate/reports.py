"""What each command did: one frozen record per command, for the renderer and the library.

`exit_code` follows SPEC 5. The renderer chooses its text and JSON forms by
the report's type; nothing reads a report by key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlmigrate.model import Finding, Migration, MigrationStatus, Plan, Repair, Step, StepResult

if TYPE_CHECKING:  # the schema package needs psycopg, which offline commands never load
    from sqlmigrate.grading import Rehearsed, TableSize  # plan's only: no other command loads grading
    from sqlmigrate.model import SqlError
    from sqlmigrate.schema import Difference, RoundTrip, Snapshot
    from sqlmigrate.schema.ddl import Unexpressed


@dataclass(frozen=True, kw_only=True)
class Report:
    command: ClassVar[str]
    exit_code: int = 0


@dataclass(frozen=True, kw_only=True)
class CheckReport(Report):
    command: ClassVar[str] = "check"
    findings: tuple[Finding, ...]
    migrations: int  # how many folders were checked


@dataclass(frozen=True, kw_only=True)
class StatusReport(Report):
    command: ClassVar[str] = "status"
    statuses: tuple[MigrationStatus, ...]
    database: str
    table: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MigrateReport(Report):
    """`up` or `down`: the plan, and what ran of it (nothing on a dry run)."""

    plan: Plan
    table: str
    dry_run: bool = False
    results: tuple[StepResult, ...] = ()
    failed: StepResult | None = None
    not_run: tuple[Step, ...] = ()
    backup: Any = None  # the backup.Backup `up --backup` took, if any


@dataclass(frozen=True, kw_only=True)
class UpReport(MigrateReport):
    command: ClassVar[str] = "up"


@dataclass(frozen=True, kw_only=True)
class DownReport(MigrateReport):
    command: ClassVar[str] = "down"


@dataclass(frozen=True, kw_only=True)
class VerifyReport(Report):
    command: ClassVar[str] = "verify"
    statuses: tuple[MigrationStatus, ...]
    problems: tuple[MigrationStatus, ...]


@dataclass(frozen=True, kw_only=True)
class RepairReport(Report):
    command: ClassVar[str] = "repair"
    repairs: tuple[Repair, ...]


@dataclass(frozen=True, kw_only=True)
class BaselineReport(Report):
    command: ClassVar[str] = "baseline"
    recorded: tuple[Migration, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GenerateReport(Report):
    command: ClassVar[str] = "generate"
    created: tuple[Path, ...]
    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class TestReport(Report):
    command: ClassVar[str] = "test"
    __test__: ClassVar[bool] = False  # not a test class, whatever its name
    results: tuple[RoundTrip, ...]
    table: str
    scratch_databases: tuple[str, ...] = ()
    start: str | None = None  # --from: the first migration tested
    built: int = 0  # the migrations below it, applied as `up` applies them and not tested
    failed_build: StepResult | None = None  # the one of those that failed; nothing was tested then


@dataclass(frozen=True, kw_only=True)
class DriftReport(Report):
    command: ClassVar[str] = "drift"
    database: str
    applied: int  # how many applied migrations built the expected schema
    notes: tuple[str, ...] = ()
    failed: StepResult | None = None  # an applied migration that did not build in the scratch database
    differences: tuple[Difference, ...] = ()
    scratch_databases: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PlanReport(Report):
    """`plan` (SPEC 8): each pending migration rehearsed in a scratch database,
    and the findings of its statements graded by the target's table sizes."""

    command: ClassVar[str] = "plan"
    database: str
    migrations: tuple[Rehearsed, ...] = ()  # the pending ones, in order, up to --to
    findings: tuple[Finding, ...] = ()
    max_rows: int
    applied: int = 0  # how many applied migrations built the scratch database
    failed_build: StepResult | None = None  # an applied migration that did not build: nothing was rehearsed
    notes: tuple[str, ...] = ()
    held_back: int = 0  # pending migrations above --to
    sizes: dict[tuple[str, str], TableSize] = field(default_factory=dict)  # the target's tables
    scratch_databases: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CorrectiveReport(Report):
    """`drift --generate NAME [--record]` (SPEC 9): the drift, and the migration
    that captures it, written only once proven.

    `unexpressed`, `leftovers` and `proof_error` are what stopped it, each with
    the file ("up.sql" or "down.sql") it concerns; then nothing was written.
    """

    command: ClassVar[str] = "drift"
    database: str
    applied: int  # how many applied migrations built the expected schema
    pending: tuple[str, ...] = ()  # <id>_<name> of pending migrations, which drift does not build
    notes: tuple[str, ...] = ()
    failed: StepResult | None = None  # an applied migration that did not build in the scratch database
    differences: tuple[Difference, ...] = ()
    id: str = ""
    name: str = ""
    folder: Path | None = None  # where the migration goes (written when `created` is not empty)
    created: tuple[Path, ...] = ()
    renames: tuple[str, ...] = ()  # drops and creates that look like renames
    warnings: tuple[Finding, ...] = ()  # `check` on the generated files
    unexpressed: tuple[tuple[str, Unexpressed], ...] = ()
    leftovers: tuple[tuple[str, Difference], ...] = ()  # what the proof left different
    proof_error: tuple[str, SqlError, str] | None = None  # file, error, the statement that failed
    proven: bool = False
    recorded: bool = False
    scratch_databases: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SchemaReport(Report):
    command: ClassVar[str] = "schema"
    snapshot: Snapshot
    database: str
    output: Path | None = None
    form: str = "text"  # or "mermaid": an ER diagram


@dataclass(frozen=True, kw_only=True)
class ConfigReport(Report):
    command: ClassVar[str] = "config"
    settings: tuple[tuple[str, str, str], ...]  # name, value as shown (password masked), where it came from


ALL: tuple[type[Any], ...] = (CheckReport, StatusReport, UpReport, DownReport, VerifyReport, RepairReport,
                              BaselineReport, GenerateReport, TestReport, DriftReport, PlanReport, SchemaReport,
                              ConfigReport, CorrectiveReport)

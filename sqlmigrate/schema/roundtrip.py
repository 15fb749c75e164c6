"""The round trip of `test`: up, down, compare, up again, per migration, in a scratch database."""
from __future__ import annotations

from dataclasses import dataclass

from sqlmigrate.model import Finding, SqlError
from sqlmigrate.schema.diff import Difference


@dataclass(frozen=True)
class RoundTrip:
    """The verdict of `test` on one migration.

    verdict: ok, notes (differences that are not failures), failed,
    irreversible (skipped), not tested (an earlier up failed).
    `errors` are (phase, error) with phase "up", "down" or "up again".
    """

    id: str
    name: str
    verdict: str
    differences: tuple[Difference, ...] = ()
    errors: tuple[tuple[str, SqlError], ...] = ()
    findings: tuple[Finding, ...] = ()  # down.sql validation errors: it was not run
    reason: str | None = None

    @property
    def is_failed(self) -> bool:
        return self.verdict == "failed"

    @property
    def failures(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if not d.is_note)

    @property
    def notes(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.is_note)

"""Many targets as text or JSON (SPEC 10): a line per target as it finishes,
then a summary line; or one JSON object holding each target's one-database
object. The renderer's part for many targets: printing, nothing else.
"""
from __future__ import annotations

from typing import Any

from sqlmigrate.config import mask_url
from sqlmigrate.errors import DatabaseUnavailable, Refused
from sqlmigrate.events import Event, LockRetry, LockWaiting
from sqlmigrate.fleet import FleetReport, Outcome, State
from sqlmigrate.model import Finding, SqlError, State as MigrationState
from sqlmigrate.render import Renderer, json_text
from sqlmigrate.reports import DownReport, MigrateReport, Report, StatusReport, UpReport, VerifyReport

_LABELS = {
    State.OK: ("ok", "green"),
    State.FAILED: ("FAILED", "red"),
    State.UNREACHABLE: ("unreachable", "red"),
    State.INTERRUPTED: ("interrupted", "red"),
    State.SKIPPED: ("skipped", "yellow"),
}
_WIDTH = max(len(label) for label, _ in _LABELS.values())
_SUMMARY_ORDER = (State.OK, State.FAILED, State.UNREACHABLE, State.INTERRUPTED, State.SKIPPED)


class FleetRenderer(Renderer):
    """Prints the targets of a run as they finish (`finished`) and the run's
    report at its end (`fleet_report`). Its listener hears many targets at
    once, from their threads: it prints only what cannot wait for the target's
    line (waiting for a lock, a lock retry)."""

    def event(self, event: Event) -> None:
        with self._events_lock:
            if isinstance(event, LockWaiting):
                self._print(f"{event.target}: waiting for the migration lock: {event.holder}", err=True)
            elif self.is_text and isinstance(event, LockRetry):
                step = event.step
                held = ("; the lock was held by " + "; ".join(event.blockers)) if event.blockers else ""
                self._print(f"{event.target}: {step.id}_{step.name}: a statement timed out waiting for a lock; "
                            f"rolled back, attempt {event.attempt} of {event.attempts} in {event.pause_s:.1f} s"
                            f"{held}", err=True)

    def finished(self, outcome: Outcome) -> None:
        """`STATE  target: what happened`, on stderr when it is a problem."""
        if not self.is_text:
            return
        label, colour = _LABELS[outcome.state]
        is_problem = outcome.state in (State.FAILED, State.UNREACHABLE, State.INTERRUPTED)
        stream = self.err if is_problem else self.out
        painted = self._paint(label.ljust(_WIDTH), colour, stream)
        with self._events_lock:
            self._print(f"{painted} {outcome.target.display}: {self._detail(outcome)}", err=is_problem)

    def report(self, report: Report | FleetReport) -> None:
        if not isinstance(report, FleetReport):
            super().report(report)
            return
        if self.format == "json":
            self._print(json_text(self.fleet_json(report)))
            return
        warnings = _warnings(report)
        if warnings:
            self.findings(warnings, err=True)
        for note in report.notes:
            self._print(f"note: {note}", err=True)
        line = f"{report.command}: " + ", ".join(
            f"{report.count(state)} {_LABELS[state][0].lower()}" for state in _SUMMARY_ORDER
            if report.count(state) or state in (State.OK, State.FAILED))
        self._print(self._paint(line, "red") if report.exit_code else line)

    def fleet_json(self, report: FleetReport) -> dict[str, Any]:
        """`{"command", "exit_code", "targets": [...], "summary": {...}, "notes"}`; each
        target's `report` is the object `--format json` prints for that database
        alone (its report, or the error that stopped it), null when not started."""
        summary: dict[str, Any] = {"total": len(report.outcomes)}
        summary.update((state.value, report.count(state)) for state in _SUMMARY_ORDER)
        summary["duration_s"] = round(report.duration_s, 3)
        return {
            "command": report.command,
            "exit_code": report.exit_code,
            "targets": [self._target_json(o) for o in report.outcomes],
            "summary": summary,
            "notes": list(report.notes),
        }

    def _target_json(self, outcome: Outcome) -> dict[str, Any]:
        if outcome.report is not None:
            one: dict[str, Any] | None = self.report_json(outcome.report)
        elif outcome.error is not None:
            one = self.error_json(outcome.error)
        else:
            one = None
        return {"target": outcome.target.display, "schema": outcome.target.schema, "state": outcome.state.value,
                "exit_code": outcome.exit_code, "duration_s": round(outcome.duration_s, 6),
                "reason": outcome.reason or None, "report": one}

    # -- one line per target ---------------------------------------------------------

    def _detail(self, outcome: Outcome) -> str:
        if outcome.state is State.SKIPPED:
            return outcome.reason
        if outcome.report is not None:
            return self._report_detail(outcome.report)
        assert outcome.error is not None
        return self._error_detail(outcome)

    def _report_detail(self, report: Report) -> str:
        if isinstance(report, StatusReport):
            counts: dict[str, int] = {}
            for s in report.statuses:
                counts[s.state.value] = counts.get(s.state.value, 0) + 1
            return ", ".join(f"{n} {state}" for state, n in counts.items()) or "no migrations"
        if isinstance(report, VerifyReport):
            applied = sum(1 for s in report.statuses if s.row is not None)
            if report.problems:
                return "verify failed: " + ", ".join(f"{s.id}_{s.name} {s.state.value}" for s in report.problems)
            pending = sum(1 for s in report.statuses if s.state is MigrationState.PENDING)
            return f"{applied} applied migration(s) match their files; {pending} pending"
        assert isinstance(report, MigrateReport)
        if report.failed is not None and report.failed.error is not None:
            return self._sql_error_line(report.failed.error)
        verb = "applied" if isinstance(report, UpReport) else "rolled back"
        steps = report.plan.steps
        if report.dry_run:
            if not steps:
                return f"dry run: nothing to {'apply' if isinstance(report, UpReport) else 'roll back'}"
            return f"dry run: would have {verb} " + ", ".join(f"{s.id}_{s.name}" for s in steps)
        if not steps:
            if isinstance(report, DownReport):
                return "nothing to roll back"
            held_back = report.plan.held_back
            return (f"nothing to apply up to --to ({held_back} pending above it)" if held_back
                    else "nothing to apply: up to date")
        total = sum(r.duration_s for r in report.results)
        return f"{verb} {len(report.results)} migration(s) in {total:.2f} s"

    def _sql_error_line(self, error: SqlError) -> str:
        return f"{self.shown(error.path)}:{error.line}:{error.col}: ERROR {error.sqlstate}: {error.message}"

    def _error_detail(self, outcome: Outcome) -> str:
        error = outcome.error
        assert error is not None
        message = error.message
        if isinstance(error, DatabaseUnavailable):
            # the line names the target already
            message = message.removeprefix(f"cannot connect to {mask_url(outcome.target.url)}: ")
        if isinstance(error, Refused) and error.findings:
            first = error.findings[0]
            more = f" (and {len(error.findings) - 1} more)" if len(error.findings) > 1 else ""
            message += f": {self._finding_line(first)}{more}"
        return message

    def _finding_line(self, f: Finding) -> str:
        return f"{self.shown(f.path)}:{f.line}:{f.col}: {f.severity.value}: {f.message} [{f.rule}]"


def _warnings(report: FleetReport) -> list[Finding]:
    """The lint warnings of every target's plan, each once: the files are the same."""
    seen: dict[tuple[str, int, int, str], Finding] = {}
    for outcome in report.outcomes:
        if isinstance(outcome.report, MigrateReport):
            for f in outcome.report.plan.warnings:
                seen.setdefault((str(f.path), f.line, f.col, f.rule), f)
    return list(seen.values())

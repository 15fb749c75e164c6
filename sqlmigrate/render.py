"""Reports and findings -> text, json or GitHub annotations. The only printing.

Progress goes to stdout, problems to stderr; with --format json, stdout holds
exactly one JSON object.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TextIO

from sqlmigrate.errors import Refused, SqlMigrateError
from sqlmigrate.events import (BackedUp, Event, LockRetry, LockWaiting, MigrationFinished, MigrationStarted, Planned,
                               RoundTripTested, ScratchBuilt, StatementRunning)
from sqlmigrate.model import (
    Direction,
    Finding,
    Notice,
    Plan,
    RepairAction,
    State,
    SqlError,
    SqlFile,
    Step,
    StepResult,
)
from sqlmigrate.plan import DOWN_EDITED
from sqlmigrate.reports import (BaselineReport, CheckReport, ConfigReport, CorrectiveReport, DownReport, DriftReport,
                                GenerateReport, MigrateReport, PlanReport, RepairReport, Report, SchemaReport,
                                StatusReport, TestReport, UpReport, VerifyReport)

_COLOURS = {"red": "31", "yellow": "33", "green": "32", "bold": "1", "dim": "2"}
PROGRESS_EVERY_S = 30.0  # between progress lines when stdout is not a terminal (SPEC 7)
WARNINGS_SHOWN = 20  # lint warnings `up` prints before it applies


class Renderer:
    def __init__(self, fmt: str = "text", out: TextIO | None = None, err: TextIO | None = None, *,
                 command: str | None = None, directory: str | None = None,
                 progress_every: float = PROGRESS_EVERY_S) -> None:
        self.format = fmt
        self.command = command  # named in the JSON error object
        self.directory = directory  # --dir as the user typed it: paths are shown under it
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._colour = _wants_colour(self.out)
        self._colour_err = _wants_colour(self.err)
        # the migration's line: "applying X ...", its outcome not yet printed; on a
        # terminal "live" (rewritten with progress), elsewhere "closed" once a
        # progress line followed it
        self._line = ""
        self._line_state: str | None = None
        self._running: Step | None = None
        self._last_progress = 0.0
        self._is_terminal = _is_terminal(self.out)
        self.progress_every = progress_every
        self._events_lock = threading.Lock()
        self._is_count_shown = False  # "building the scratch database: n/N" on a terminal

    # -- helpers -----------------------------------------------------------------

    def _paint(self, text: str, colour: str, stream: TextIO | None = None) -> str:
        enabled = self._colour_err if stream is self.err else self._colour
        if not enabled:
            return text
        return f"\033[{_COLOURS[colour]}m{text}\033[0m"

    def _print(self, text: str = "", *, err: bool = False, end: str = "\n") -> None:
        stream = self.err if err else self.out
        stream.write(text + end)
        stream.flush()

    def shown(self, path: Path | str) -> str:
        """A file's path as the migrations folder was given (`./db/` stays `./db/`) joined with its name."""
        return display_path(path, self.directory)

    @property
    def is_text(self) -> bool:
        return self.format == "text"

    # -- progress events (events.Listener) ----------------------------------------------

    def event(self, event: Event) -> None:
        """A run's progress, printed as it happens in text; JSON prints only the report.

        Events may come from the watcher's thread while a migration runs: one at a time."""
        with self._events_lock:
            if isinstance(event, LockWaiting):
                self._print(f"waiting for the migration lock: {event.holder}", err=True)
            elif not self.is_text:
                return
            elif isinstance(event, Planned):
                self._planned(event.plan)
            elif isinstance(event, BackedUp):
                self._print(f"backup: {event.backup.path} ({human_size(event.backup.bytes)})")
            elif isinstance(event, MigrationStarted):
                self._open(event.step)
            elif isinstance(event, StatementRunning):
                self._still_running(event)
            elif isinstance(event, LockRetry):
                self._retrying(event)
            elif isinstance(event, MigrationFinished):
                self._finished(event.result)
            elif isinstance(event, RoundTripTested):
                label, colour = _VERDICT_TEXT[event.result.verdict]
                # n/N on a terminal only: logs and tests read the lines as they always were
                count = f"[{event.done}/{event.total}] " if self._is_terminal and event.total else ""
                self._print(f"{count}{event.result.id}_{event.result.name} ... {self._paint(label, colour)}")
            elif isinstance(event, ScratchBuilt) and self._is_terminal:
                self._print(f"\r\033[Kbuilding the scratch database: {event.done}/{event.total}", end="")
                self._is_count_shown = True

    def _planned(self, plan: Plan) -> None:
        """The plan's lint warnings (at most WARNINGS_SHOWN: `check` lists them all)
        and notes, before anything runs, so that a failure's error stays the last
        thing on screen."""
        warnings = list(plan.warnings)
        self.findings(warnings[:WARNINGS_SHOWN], err=True)
        if len(warnings) > WARNINGS_SHOWN:
            self._print(f"... and {len(warnings) - WARNINGS_SHOWN} more warning(s) "
                        "(sqlmigrate check lists them all)", err=True)
        for note in plan.notes:
            self._print(f"note: {note}", err=True)

    def _open(self, step: Step, attempt: int = 1) -> None:
        verb = "applying" if step.direction is Direction.UP else "rolling back"
        again = f" (attempt {attempt})" if attempt > 1 else ""
        self._line = f"{verb} {step.id}_{step.name}{again} ..."
        self._print(self._line, end="")
        self._line_state = "open"
        self._running = step
        self._last_progress = 0.0

    def _still_running(self, event: StatementRunning) -> None:
        """On a terminal, the migration's line shows the elapsed time and phase as
        they change; elsewhere a line every `progress_every` seconds."""
        if event.step is not self._running or self._line_state is None:
            return
        what = " ".join(part for part in (event.phase, None if event.percent is None else f"{event.percent:.0f}%")
                        if part)
        if self._is_terminal:
            live = " ".join(part for part in (self._line, what, f"({_elapsed(event.elapsed_s)})") if part)
            self._print(f"\r\033[K{live}", end="")
            self._line_state = "live"
            return
        if event.elapsed_s - self._last_progress < self.progress_every and self._last_progress:
            return
        if self._last_progress == 0.0 and event.elapsed_s < self.progress_every:
            return
        self._last_progress = event.elapsed_s
        if self._line_state == "open":
            self._print()  # the migration's line stays as it is; its outcome comes on a line of its own
        self._line_state = "closed"
        step = event.step
        self._print(f"  still running {step.id}_{step.name}{': ' + what if what else ''} "
                    f"({_elapsed(event.elapsed_s)})")

    def _retrying(self, event: LockRetry) -> None:
        self._close_line(self._paint("lock timeout", "yellow"))
        step = event.step
        held = ("; the lock was held by " + "; ".join(event.blockers)) if event.blockers else ""
        self._print(f"  {step.id}_{step.name}: a statement timed out waiting for a lock; rolled back, "
                    f"attempt {event.attempt} of {event.attempts} in {event.pause_s:.1f} s{held}", err=True)
        self._open(step, event.attempt)

    def _close_line(self, outcome: str) -> None:
        """End the migration's line with its outcome, however much progress it showed."""
        if self._line_state == "open":
            self._print(f" {outcome}")
        elif self._line_state == "live":
            self._print(f"\r\033[K{self._line} {outcome}")
        elif self._line_state == "closed":
            self._print(f"{self._line} {outcome}")
        self._line_state = None
        self._running = None

    def _finished(self, result: StepResult) -> None:
        ms = f"{result.duration_s * 1000:.0f} ms"
        if result.error is None:
            self._close_line(f"{self._paint('ok', 'green')} ({ms})")
            self.notices(result)
        else:
            self._close_line(f"{self._paint('FAILED', 'red')} ({ms})")
            self.notices(result)  # raised before the failure, so above the error
            self.sql_error(result.error)

    # -- deploy (SPEC 7) --------------------------------------------------------------

    def notices(self, result: StepResult) -> None:
        """The server's notices under the migration's line, as they arrived: information, so stdout."""
        for notice in result.notices:
            severity = self._paint(notice.severity, "yellow") if notice.severity == "WARNING" else notice.severity
            self._labelled(severity, len(notice.severity), notice.message, "  ")
            for label, value in (("DETAIL", notice.detail), ("HINT", notice.hint)):
                if value:
                    self._labelled(label, len(label), value, "    ")
        if result.notices_omitted:
            more = "notice" if result.notices_omitted == 1 else "notices"
            self._print(f"  ... and {result.notices_omitted} more {more}")

    def _labelled(self, label: str, width: int, text: str, indent: str) -> None:
        """`LABEL: text`, its further lines aligned under the first."""
        for i, line in enumerate(text.splitlines() or [""]):
            self._print(f"{indent}{label + ':' if i == 0 else ' ' * (width + 1)} {line}".rstrip())

    # -- findings ----------------------------------------------------------------

    def findings(self, findings: list[Finding], *, fmt: str | None = None, err: bool = False,
                 hints: bool = True) -> None:
        fmt = fmt or self.format
        if fmt == "github":
            for f in findings:
                kind = "error" if f.is_error else "warning"
                self._annotation(kind, f.path, f.line, f.col, f"{f.message} [{f.rule}]", err=err)
            return
        for f in findings:
            colour = "red" if f.is_error else "yellow"
            stream = self.err if err else self.out
            label = self._paint(f.severity.value, colour, stream)
            self._print(f"{self.shown(f.path)}:{f.line}:{f.col}: {label}: {f.message} [{f.rule}]", err=err)
            if f.hint and hints:
                self._print(f"  hint: {f.hint}", err=err)

    def _annotation(self, kind: str, path: Path | str, line: int, col: int, message: str, *,
                    err: bool = False) -> None:
        """A GitHub Actions annotation (`::error file=...,line=...,col=...::message`)."""
        file = _github_property(self.shown(path))
        self._print(f"::{kind} file={file},line={line},col={col}::{_github_escape(message)}", err=err)

    def sql_error(self, error: SqlError) -> None:
        self._print(f"{self.shown(error.path)}:{error.line}:{error.col}: ERROR {error.sqlstate}: {error.message}",
                    err=True)
        for label, value in (("DETAIL", error.detail), ("HINT", error.hint), ("CONTEXT", error.context)):
            if value:
                for i, line in enumerate(value.splitlines()):
                    self._print(f"  {label + ':' if i == 0 else ' ' * (len(label) + 1)} {line}", err=True)

    # -- reports -----------------------------------------------------------------

    def report(self, report: Report) -> None:
        if self._is_count_shown:  # the count of a scratch build gives way to the report
            self._print("\r\033[K", end="")
            self._is_count_shown = False
        if self.format == "json":
            self._print(json_text(self.report_json(report)))
            return
        text, _ = _FORMS[type(report)]
        text(self, report)

    def report_json(self, report: Report) -> dict[str, Any]:
        """The JSON object of a report, as `--format json` prints it."""
        _, to_json = _FORMS[type(report)]
        return {"command": report.command, "exit_code": report.exit_code, **to_json(report, self.shown)}

    def _text_check(self, report: CheckReport) -> None:
        findings = list(report.findings)
        self.findings(findings, fmt=self.format)
        if self.format != "text":
            return
        errors = sum(1 for f in findings if f.is_error)
        warnings = len(findings) - errors
        count = report.migrations
        self._print(f"checked {count} migration(s): {errors} error(s), {warnings} warning(s)")

    def _text_status(self, report: StatusReport) -> None:
        statuses = report.statuses
        self.findings(list(report.findings), err=True)
        self._print(f"database: {report.database}  table: {report.table}")
        if not statuses:
            self._print("no migrations")
            return
        rows = [("ID", "NAME", "STATE", "APPLIED AT")]
        for s in statuses:
            rows.append((s.id, s.name, s.state.value, _when(s.applied_at)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        colours = {"applied": "green", "pending": "yellow", "modified": "red", "missing": "red",
                   "failed": "red", "reformatted": "dim"}
        w_id, w_name, w_state, _ = widths
        # printed at once: a table of thousands of rows is one write, not one each
        lines = [self._paint("  ".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip(), "bold")]
        for s, (id_, name, state, when) in zip(statuses, rows[1:]):
            painted = self._paint(state.ljust(w_state), colours.get(state, "bold"))
            lines.append(f"{id_:<{w_id}}  {name:<{w_name}}  {painted}  {when}".rstrip())
            for note in s.notes:
                lines.append(f"{'':{w_id}}  note: {note}")
        counts: dict[str, int] = {}
        for s in statuses:
            counts[s.state.value] = counts.get(s.state.value, 0) + 1
        lines.append(", ".join(f"{n} {state}" for state, n in counts.items()))
        self._print("\n".join(lines))

    def _text_up(self, report: UpReport) -> None:
        held_back = report.plan.held_back
        self._text_migrate(report, "applied", f"nothing to apply up to --to ({held_back} pending above it)"
                           if held_back else "nothing to apply: the database is up to date")

    def _text_down(self, report: DownReport) -> None:
        self._text_migrate(report, "rolled back", "nothing to roll back")

    def _text_migrate(self, report: MigrateReport, verb: str, nothing: str) -> None:
        plan = report.plan
        if report.dry_run:
            self._dry_run(plan, report.table)
            return
        results = report.results
        failed = report.failed
        done = [r for r in results if r.error is None]
        total = sum(r.duration_s for r in results)
        if not plan.steps:
            self._print(nothing)
            return
        line = f"{verb} {len(done)} migration(s) in {total:.2f} s"
        if failed is not None:
            step = failed.step
            what = "FAILED and was rolled back" if step.sql.is_transactional else (
                f"FAILED after {failed.statements_run or 0} statement(s) (no-transaction) and is recorded as failed"
            )
            line = f"{line}; {step.id}_{step.name} {what}"
            left = report.not_run
            if left:
                line += f"; {len(left)} not run: " + _listed([f"{s.id}_{s.name}" for s in left])
            self._print(line, err=True)
            if failed.error is not None:  # said again: a long run's output may have scrolled it away
                error = failed.error
                self._print(f"{self.shown(error.path)}:{error.line}:{error.col}: ERROR {error.sqlstate}: "
                            f"{error.message}", err=True)
        else:
            self._print(line)

    def _dry_run(self, plan: Plan, table: str) -> None:
        if not plan.steps:
            self._print("-- nothing to run")
        for step in plan.steps:
            self._print(f"-- {step.id}_{step.name}: {self.shown(step.sql.path)}")
            transactional = step.sql.is_transactional
            if transactional:
                self._print("BEGIN;")
            else:
                self._print("-- (no-transaction: each statement on its own)")
            file_text = step.sql.text
            for stmt in step.sql.statements:
                text = stmt.text_in(file_text)
                self._print(text if text.rstrip().endswith(";") else text + ";")
                if stmt.copy_data is not None:
                    self._print(stmt.copy_data + "\\.")
            action = "insert" if step.direction is Direction.UP else "delete"
            self._print(f"-- {action} the row of {step.id} in {table}")
            if transactional:
                self._print("COMMIT;")
            self._print()

    def _text_verify(self, report: VerifyReport) -> None:
        problems = report.problems
        statuses = report.statuses
        for s in problems:
            self._print(f"{s.id}_{s.name}: {self._paint(s.state.value, 'red', self.err)}", err=True)
            for note in s.notes:
                self._print(f"  {note}", err=True)
        for s in statuses:
            if s.state is State.REFORMATTED:
                self._print(f"{s.id}_{s.name}: reformatted (comments, spacing or case only; not a problem)")
            if DOWN_EDITED in s.notes and s not in problems:
                self._print(f"{s.id}_{s.name}: {DOWN_EDITED} (not a problem; `down` runs the file on disk)")
        applied = sum(1 for s in statuses if s.row is not None)
        pending = sum(1 for s in statuses if s.state is State.PENDING)
        if problems:
            self._print(f"verify failed: {len(problems)} problem(s) among {applied} applied migration(s)", err=True)
        else:
            self._print(f"verify ok: {applied} applied migration(s) match their files; {pending} pending")

    def _text_repair(self, report: RepairReport) -> None:
        repairs = report.repairs
        if not repairs:
            self._print("nothing to repair")
        for r in repairs:
            self._print(f"{r.id}_{r.name}: {_REPAIR_TEXT[r.action]}")

    def _text_baseline(self, report: BaselineReport) -> None:
        recorded = report.recorded
        for m in recorded:
            self._print(f"recorded {m.id}_{m.name} as applied (not run)")
        self._print(f"baseline: {len(recorded)} migration(s) recorded")
        for note in report.notes:
            self._print(f"note: {note}", err=True)

    def _text_generate(self, report: GenerateReport) -> None:
        for path in report.created:
            self._print(f"created {self.shown(path)}")

    def _text_config(self, report: ConfigReport) -> None:
        width = max(len(name) for name, _, _ in report.settings)
        for name, value, source in report.settings:
            self._print(f"{name.ljust(width)}  {value or '(none)'}  ({source})")

    # -- test, drift, schema -------------------------------------------------------------

    def _text_test(self, report: TestReport) -> None:
        failed = report.failed_build
        if failed is not None:
            self._print(f"test: the migrations before --from {report.start} do not build in a scratch database; "
                        f"{failed.step.id}_{failed.step.name} failed:")
            assert failed.error is not None
            self._sql_error_lines(failed.error, "  ")
            return
        results = report.results
        for r in results:
            if r.verdict not in ("failed", "notes"):
                continue
            self._print()
            self._print(f"{r.id}_{r.name}: {self._paint('FAILED', 'red') if r.is_failed else 'notes'}")
            for phase, error in r.errors:
                self._print(f"  {_PHASE_TEXT[phase]}:")
                self._sql_error_lines(error, "    ")
            if r.findings:
                self._print(f"  {r.reason}:")
                for f in r.findings:
                    self._print(f"    {self.shown(f.path)}:{f.line}:{f.col}: {f.severity.value}: {f.message} "
                                f"[{f.rule}]")
            if r.failures:
                self._print("  down.sql does not restore the schema (before up.sql -> after down.sql):")
                for d in r.failures:
                    self._print(_indent(str(d), "    "))
            for d in r.notes:
                self._print(_indent(f"note: {d}", "  "))
        counts: dict[str, int] = {}
        for r in results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        parts = [f"{counts.get('ok', 0)} ok", f"{counts.get('failed', 0)} failed"]
        parts += [f"{counts[v]} {label}" for v, label in (("notes", "with notes only"),
                                                          ("irreversible", "irreversible (skipped)"),
                                                          ("not tested", "not tested")) if v in counts]
        if results:
            self._print()
        line = f"test: {len(results)} migration(s): " + ", ".join(parts)
        self._print(self._paint(line, "red") if report.exit_code else line)
        if report.start is not None:
            self._print(f"built without test: {report.built} migration(s) before --from {report.start}")
        skipped = [f"{r.id}_{r.name}" for r in results if r.verdict == "irreversible"]
        if skipped:
            self._print("irreversible, not rolled back: " + ", ".join(skipped))
        reason = next((r.reason for r in results if r.verdict == "not tested"), None)
        if reason:
            self._print(reason)

    def _sql_error_lines(self, error: SqlError, indent: str) -> None:
        self._print(f"{indent}{self.shown(error.path)}:{error.line}:{error.col}: ERROR {error.sqlstate}: "
                    f"{error.message}")
        for label, value in (("DETAIL", error.detail), ("HINT", error.hint)):
            if value:
                for i, line in enumerate(value.splitlines()):
                    self._print(f"{indent}  {label + ':' if i == 0 else ' ' * (len(label) + 1)} {line}")

    def _text_drift(self, report: DriftReport) -> None:
        for note in report.notes:
            self._print(f"note: {note}")
        failed = report.failed
        if failed is not None:
            self._print(f"drift: the applied migrations do not build in a scratch database; "
                        f"{failed.step.id}_{failed.step.name} failed:")
            assert failed.error is not None
            self._sql_error_lines(failed.error, "  ")
            return
        differences = report.differences
        failures = [d for d in differences if not d.is_note]
        if failures:
            self._print(f"drift: {report.database} differs from what its {report.applied} applied migration(s) "
                        "build (migrations -> database):")
            for d in failures:
                self._print(_indent(str(d), "  "))
        for d in differences:
            if d.is_note:
                self._print(_indent(f"note: {d}", "  "))
        if not failures:
            self._print(f"no drift: {report.database} matches its {report.applied} applied migration(s)")
        else:
            self._print(self._paint(f"drift: {len(failures)} difference(s)", "red"))

    def _text_plan(self, report: PlanReport) -> None:
        """SPEC 8: the findings, as check prints them (hints are in the JSON), a
        failed migration as `test` shows it, then the summary line."""
        for note in report.notes:
            self._print(f"note: {note}", err=True)
        github = self.format == "github"
        built = report.failed_build
        if built is not None and built.error is not None:
            label = f"{built.step.id}_{built.step.name}"
            if github:
                error = built.error
                self._annotation("error", error.path, error.line, error.col,
                                 f"ERROR {error.sqlstate}: {error.message} (applied migration {label} does not "
                                 "build in a scratch database; nothing was rehearsed)")
                return
            self._print(f"plan: the applied migrations do not build in a scratch database; {label} failed:")
            self._sql_error_lines(built.error, "  ")
            self._print(self._paint("plan: nothing was rehearsed", "red"))
            return
        self.findings(list(report.findings), hints=False)
        failed = next((m for m in report.migrations if m.verdict == "failed"), None)
        if github:
            if failed is not None and failed.error is not None:
                error = failed.error
                self._annotation("error", error.path, error.line, error.col,
                                 f"ERROR {error.sqlstate}: {error.message} (in the scratch database)")
            return
        if failed is not None and failed.error is not None:
            self._print(f"{failed.id}_{failed.name}: {self._paint('FAILED', 'red')} in the scratch database")
            self._sql_error_lines(failed.error, "  ")
        not_tested = [m for m in report.migrations if m.verdict == "not tested"]
        if not report.migrations:
            held = report.held_back
            self._print(f"plan: nothing to rehearse up to --to ({held} pending above it)" if held
                        else "plan: nothing pending: the database is up to date")
            return
        errors = sum(1 for f in report.findings if f.is_error)
        warnings = len(report.findings) - errors
        from sqlmigrate import grading  # only plan needs it

        flagged = len(grading.statement_severity(report.findings))
        line = (f"plan: {len(report.migrations)} pending migration(s), {flagged} statement(s) flagged "
                f"({_counted(errors, 'error')}, {_counted(warnings, 'warning')})")
        if failed is not None:
            line += f"; {failed.id}_{failed.name} failed in the scratch database"
        if not_tested:
            line += f"; {len(not_tested)} not tested: " + _listed([f"{m.id}_{m.name}" for m in not_tested])
        self._print(self._paint(line, "red") if report.exit_code else line)

    def _text_corrective(self, report: CorrectiveReport) -> None:
        """drift's report, then the migration: written and proven, or why nothing was written."""
        for note in report.notes:
            self._print(f"note: {note}")
        failed = report.failed
        if failed is not None:
            assert failed.error is not None
            self._print(f"drift: the applied migrations do not build in a scratch database; "
                        f"{failed.step.id}_{failed.step.name} failed (nothing was generated):")
            self._sql_error_lines(failed.error, "  ")
            return
        failures = [d for d in report.differences if not d.is_note]
        if failures:
            self._print(f"drift: {report.database} differs from what its {report.applied} applied migration(s) "
                        "build (migrations -> database):")
            for d in failures:
                self._print(_indent(str(d), "  "))
        for d in report.differences:
            if d.is_note:
                self._print(_indent(f"note: {d} (left as it is)", "  "))
        if not failures:
            self._print(f"no drift: {report.database} matches its {report.applied} applied migration(s); "
                        "nothing was generated")
            return
        for note in report.renames:
            self._print(f"note: {note}")
        migration = f"{report.id}_{report.name}"
        if report.unexpressed:
            self._print(self._paint("drift --generate: some differences cannot be expressed as SQL; nothing was "
                                    "written:", "red"))
            for kind, u in report.unexpressed:
                self._print(f"  {u.key} ({kind}): {u.reason}")
            return
        if report.proof_error is not None:
            kind, error, statement = report.proof_error
            self._print(self._paint(f"drift --generate: the generated {kind} failed in the scratch database; "
                                    "nothing was written:", "red"))
            self._print(f"  {migration}/{kind}:{error.line}:{error.col}: ERROR {error.sqlstate}: {error.message}")
            for label, value in (("DETAIL", error.detail), ("HINT", error.hint)):
                if value:
                    self._print(f"    {label}: {value}")
            self._print(_indent(statement, "    | "))
            return
        if report.leftovers:
            self._print(self._paint("drift --generate: the proof left differences; nothing was written:", "red"))
            for kind, heading in (("up.sql", "after up.sql, the scratch database still differs from the live one "
                                             "(live -> after up.sql):"),
                                  ("down.sql", "after down.sql, it still differs from what the migrations build "
                                               "(migrations -> after down.sql):")):
                left = [d for k, d in report.leftovers if k == kind]
                if left:
                    self._print(f"  {heading}")
                    for d in left:
                        self._print(_indent(str(d), "    "))
            return
        if not report.created:
            self.findings([f for f in report.warnings if f.is_error])
            self._print(self._paint("drift --generate: `check` refuses the generated SQL; nothing was written",
                                    "red"))
            return
        for path in report.created:
            self._print(f"created {self.shown(path)}")
        self.findings(list(report.warnings))
        self._print(self._paint(f"proven in a scratch database: the {report.applied} applied migration(s) plus "
                                f"{migration}/up.sql give the live schema, and its down.sql then gives the "
                                "migrations' schema again", "green"))
        if report.recorded:
            self._print(f"recorded {migration} as applied on {report.database} (not run there: it has the "
                        "change already)")
        else:
            self._print(f"not recorded: {report.database} has the change already, so `up` there would run "
                        f"{migration} again and fail; --record records a generated migration as applied")

    def _text_schema(self, report: SchemaReport) -> None:
        snapshot = report.snapshot
        if report.output is not None:
            what = "an ER diagram of the schema" if report.form == "mermaid" else "the schema"
            self._print(f"wrote {what} of {report.database} to {report.output}: {len(snapshot)} object(s)")
            return
        if report.form == "mermaid":
            from sqlmigrate.schema.mermaid import er_diagram

            self._print(er_diagram(snapshot), end="")
            return
        self._print(snapshot.to_text(), end="")

    # -- fatal errors ----------------------------------------------------------------

    def error(self, exc: SqlMigrateError) -> None:
        if self._is_count_shown:
            self._print()
            self._is_count_shown = False
        if self._line_state is not None:
            # a run stopped mid-migration (lost connection, Ctrl-C): end its progress line
            self._close_line(self._paint("stopped", "red"))
        if self.format == "json":
            self._print(json.dumps(self.error_json(exc), indent=2))
            return
        if isinstance(exc, Refused) and exc.findings:
            self.findings(list(exc.findings), err=True)
        self._print(f"sqlmigrate: {exc.message}", err=True)
        for detail in exc.details:
            self._print(f"  {detail}", err=True)

    def error_json(self, exc: SqlMigrateError) -> dict[str, Any]:
        """The JSON object of a run that stopped on `exc`, as `--format json` prints it."""
        payload: dict[str, Any] = {"command": self.command, "error": exc.message, "exit_code": exc.exit_code}
        if exc.details:
            payload["details"] = list(exc.details)
        if isinstance(exc, Refused) and exc.findings:
            payload["findings"] = [_finding_json(f, self.shown) for f in exc.findings]
        return payload


def _counted(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _listed(names: list[str], shown: int = 10) -> str:
    """The first `shown` names, then how many more (JSON keeps them all)."""
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f", and {len(names) - shown} more"


def human_size(size: int) -> str:
    """1536 -> `1.5 kB`, in pg_size_pretty's units (powers of 1024)."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


_VERDICT_TEXT = {
    "ok": ("ok", "green"),
    "notes": ("ok, with notes", "green"),
    "failed": ("FAILED", "red"),
    "irreversible": ("irreversible, skipped", "yellow"),
    "not tested": ("not tested", "dim"),
}
_PHASE_TEXT = {
    "up": "up.sql failed",
    "down": "down.sql failed",
    "up again": "up.sql failed when applied again after down.sql",
}

_REPAIR_TEXT = {
    RepairAction.RECORD_CHECKSUMS: "recorded the current checksums of up.sql (and its down.sql)",
    RepairAction.CLEAR_FAILED_UP: "cleared the failed run; the migration is pending again",
    RepairAction.CLEAR_FAILED_DOWN: "cleared the failed rollback; the migration is applied again",
}


def _wants_colour(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and _is_terminal(stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _elapsed(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S%z") if value else "-"


def display_path(path: Path | str, directory: str | None) -> str:
    """`path` shown under `directory` as the user wrote it: `./chk/` + `001_a/up.sql`
    gives `./chk/001_a/up.sql` (pathlib would print `chk/001_a/up.sql`). A path
    outside it (a stored down.sql's label) is shown as it is."""
    text = str(path)
    if not directory:
        return text
    try:
        rel = Path(path).relative_to(Path(directory))
    except ValueError:
        return text
    base = directory.rstrip("/")
    if rel == Path("."):
        return base or "/"
    return f"{base}/{rel.as_posix()}" if base else f"/{rel.as_posix()}"


def _github_escape(text: str) -> str:
    """Annotation message data, escaped as the GitHub Actions runner reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """An annotation property value (file=...): also `:` and `,`, which end a value."""
    return _github_escape(text).replace(":", "%3A").replace(",", "%2C")


_Shown = Callable[[Any], str]


def _finding_json(f: Finding, shown: _Shown = str) -> dict[str, Any]:
    return {"path": shown(f.path), "line": f.line, "col": f.col, "severity": f.severity.value,
            "rule": f.rule, "message": f.message, "hint": f.hint}


def _sql_error_json(e: SqlError, shown: _Shown = str) -> dict[str, Any]:
    return {"path": shown(e.path), "line": e.line, "col": e.col, "sqlstate": e.sqlstate,
            "message": e.message, "detail": e.detail, "hint": e.hint, "context": e.context}


def _notice_json(n: Notice) -> dict[str, Any]:
    return {"severity": n.severity, "message": n.message, "detail": n.detail, "hint": n.hint}


def _statement_texts(sql_file: SqlFile) -> list[str]:
    file_text = sql_file.text
    return [stmt.text_in(file_text) for stmt in sql_file.statements]


def _notices_json(r: StepResult) -> dict[str, Any]:
    return {"notices": [_notice_json(n) for n in r.notices], "notices_omitted": r.notices_omitted}


def _step_json(step: Step, shown: _Shown = str) -> dict[str, Any]:
    return {"id": step.id, "name": step.name, "path": shown(step.sql.path),
            "transactional": step.sql.is_transactional}


def _check_json(report: CheckReport, shown: _Shown) -> dict[str, Any]:
    return {"findings": [_finding_json(f, shown) for f in report.findings]}


def _status_json(report: StatusReport, shown: _Shown) -> dict[str, Any]:
    return {
        "database": report.database,
        "table": report.table,
        "migrations": [
            {"id": s.id, "name": s.name, "state": s.state.value,
             "applied_at": s.applied_at.isoformat() if s.applied_at else None, "notes": list(s.notes)}
            for s in report.statuses
        ],
        "findings": [_finding_json(f, shown) for f in report.findings],
    }


def _migrate_json(report: MigrateReport, shown: _Shown) -> dict[str, Any]:
    plan = report.plan
    out: dict[str, Any] = {
        "dry_run": report.dry_run,
        "warnings": [_finding_json(f, shown) for f in plan.warnings],
        "notes": list(plan.notes),
    }
    if isinstance(report, UpReport):
        backup = report.backup
        out["backup"] = None if backup is None else {"path": str(backup.path), "bytes": backup.bytes}
    if report.dry_run:
        out["planned"] = [dict(_step_json(s, shown), statements=_statement_texts(s.sql)) for s in plan.steps]
        return out
    out["done"] = [dict(_step_json(r.step, shown), duration_s=round(r.duration_s, 6), attempts=r.attempts,
                        **_notices_json(r))
                   for r in report.results if r.error is None]
    failed = report.failed
    out["failed"] = None if failed is None or failed.error is None else dict(
        _step_json(failed.step, shown), error=_sql_error_json(failed.error, shown),
        statements_run=failed.statements_run, attempts=failed.attempts, **_notices_json(failed))
    out["not_run"] = [_step_json(s, shown) for s in report.not_run]
    return out


def _verify_json(report: VerifyReport, shown: _Shown) -> dict[str, Any]:
    return {
        "problems": [{"id": s.id, "name": s.name, "state": s.state.value, "notes": list(s.notes)}
                     for s in report.problems],
        "reformatted": [s.id for s in report.statuses if s.state is State.REFORMATTED],
        "down_edited": [s.id for s in report.statuses if DOWN_EDITED in s.notes],
    }


def _repair_json(report: RepairReport, shown: _Shown) -> dict[str, Any]:
    return {"repaired": [{"id": r.id, "name": r.name, "action": r.action.value, "was": r.was.value}
                         for r in report.repairs]}


def _baseline_json(report: BaselineReport, shown: _Shown) -> dict[str, Any]:
    return {"recorded": [{"id": m.id, "name": m.name} for m in report.recorded], "notes": list(report.notes)}


def _generate_json(report: GenerateReport, shown: _Shown) -> dict[str, Any]:
    return {"created": [shown(p) for p in report.created], "id": report.id, "name": report.name}


def json_text(value: Any) -> str:
    """One JSON object as --format json prints it."""
    return json.dumps(value, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _test_json(report: TestReport, shown: _Shown) -> dict[str, Any]:
    failed = report.failed_build
    summary: dict[str, int] = {}
    for r in report.results:
        summary[r.verdict] = summary.get(r.verdict, 0) + 1
    return {
        "migrations": [
            {"id": r.id, "name": r.name, "verdict": r.verdict,
             "differences": [d.to_json() for d in r.differences],
             "errors": [dict(_sql_error_json(e, shown), phase=phase) for phase, e in r.errors],
             "findings": [_finding_json(f, shown) for f in r.findings],
             "reason": r.reason}
            for r in report.results
        ],
        "summary": summary,
        "irreversible": [r.id for r in report.results if r.verdict == "irreversible"],
        "from": report.start,
        "built_without_test": report.built,
        "failed_build": None if failed is None or failed.error is None else dict(
            _step_json(failed.step, shown), error=_sql_error_json(failed.error, shown)),
        "scratch_databases": list(report.scratch_databases),
    }


def _drift_json(report: DriftReport, shown: _Shown) -> dict[str, Any]:
    failed = report.failed
    return {
        "database": report.database,
        "applied": report.applied,
        "drift": report.exit_code != 0,
        "differences": [d.to_json() for d in report.differences],
        "notes": list(report.notes),
        "failed": None if failed is None or failed.error is None else dict(
            _step_json(failed.step, shown), error=_sql_error_json(failed.error, shown)),
        "scratch_databases": list(report.scratch_databases),
    }


def _plan_json(report: PlanReport, shown: _Shown) -> dict[str, Any]:
    from sqlmigrate import grading  # only plan needs it

    graded = grading.statement_severity(report.findings)
    sizes = report.sizes

    def lock_json(lock: Any) -> dict[str, Any]:  # a grading.Lock
        relation = lock.relation
        size = None if relation.is_created or not relation.is_table else sizes.get(relation.key)
        return {"relation": relation.shown, "mode": lock.mode, "rows": None if size is None else size.rows,
                "bytes": None if size is None else size.bytes, "kind": _RELATION_KINDS.get(relation.kind, "other"),
                "created": relation.is_created}

    def statement_json(m: Any, r: Any) -> dict[str, Any]:  # a grading.Rehearsed and its StatementRecord
        severity = graded.get((str(m.path), r.statement.line, r.statement.col))
        return {"path": shown(m.path), "line": r.statement.line, "col": r.statement.col,
                "locks": [lock_json(lock) for lock in r.locks], "rewrites": [x.shown for x in r.rewrites],
                "duration_ms": round(r.duration_s * 1000, 3), "severity": None if severity is None else severity.value}

    built = report.failed_build
    return {
        "database": report.database,
        "max_rows": report.max_rows,
        "migrations": [
            {"id": m.id, "name": m.name, "path": shown(m.path), "transactional": m.is_transactional,
             "verdict": m.verdict, "statements": [statement_json(m, r) for r in m.statements],
             "error": None if m.error is None else _sql_error_json(m.error, shown), "reason": m.reason}
            for m in report.migrations
        ],
        "findings": [_finding_json(f, shown) for f in report.findings],
        "applied": report.applied,
        "failed_build": None if built is None or built.error is None else dict(
            _step_json(built.step, shown), error=_sql_error_json(built.error, shown)),
        "notes": list(report.notes),
        "scratch_databases": list(report.scratch_databases),
    }


def _corrective_json(report: CorrectiveReport, shown: _Shown) -> dict[str, Any]:
    failed, folder = report.failed, report.folder
    error = None
    if report.proof_error is not None:
        kind, sql_error, statement = report.proof_error
        error = dict(_sql_error_json(sql_error, shown), file=kind, statement=statement)
    created = {p.name: shown(p) for p in report.created}
    return {
        "database": report.database,
        "applied": report.applied,
        "pending": list(report.pending),
        "drift": any(not d.is_note for d in report.differences),
        "differences": [d.to_json() for d in report.differences],
        "notes": list(report.notes),
        "generated": {"id": report.id, "name": report.name, "folder": shown(folder) if folder else None,
                      "up": created.get("up.sql"), "down": created.get("down.sql")} if created else None,
        "proven": report.proven,
        "recorded": report.recorded,
        "renames": list(report.renames),
        "warnings": [_finding_json(f, shown) for f in report.warnings],
        "unexpressed": [{"file": kind, "object": str(u.key), "kind": u.key.kind, "reason": u.reason}
                        for kind, u in report.unexpressed],
        "leftovers": [dict(d.to_json(), file=kind) for kind, d in report.leftovers],
        "error": error,
        "failed": None if failed is None or failed.error is None else dict(
            _step_json(failed.step, shown), error=_sql_error_json(failed.error, shown)),
        "scratch_databases": list(report.scratch_databases),
    }


_RELATION_KINDS = {"r": "table", "p": "table", "m": "materialized view", "i": "index", "I": "index",
                   "S": "sequence", "v": "view", "f": "foreign table", "t": "toast", "c": "type"}


def _schema_json(report: SchemaReport, shown: _Shown) -> dict[str, Any]:
    out: dict[str, Any] = {"database": report.database, "output": report.output, "count": len(report.snapshot)}
    if report.output is None:
        out["objects"] = report.snapshot.to_json()
    return out


def _config_json(report: ConfigReport, shown: _Shown) -> dict[str, Any]:
    return {"settings": {name: {"value": value or None, "source": source}
                         for name, value, source in report.settings}}


# each report type's text form (a Renderer method) and JSON fields
_FORMS: dict[type, tuple[Callable[[Renderer, Any], None], Callable[[Any, _Shown], dict[str, Any]]]] = {
    CheckReport: (Renderer._text_check, _check_json),
    StatusReport: (Renderer._text_status, _status_json),
    UpReport: (Renderer._text_up, _migrate_json),
    DownReport: (Renderer._text_down, _migrate_json),
    VerifyReport: (Renderer._text_verify, _verify_json),
    RepairReport: (Renderer._text_repair, _repair_json),
    BaselineReport: (Renderer._text_baseline, _baseline_json),
    GenerateReport: (Renderer._text_generate, _generate_json),
    TestReport: (Renderer._text_test, _test_json),
    DriftReport: (Renderer._text_drift, _drift_json),
    PlanReport: (Renderer._text_plan, _plan_json),
    SchemaReport: (Renderer._text_schema, _schema_json),
    ConfigReport: (Renderer._text_config, _config_json),
    CorrectiveReport: (Renderer._text_corrective, _corrective_json),
}

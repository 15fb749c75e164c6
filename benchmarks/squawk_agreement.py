"""How often `check`'s lint rules agree with squawk's on real migrations, rule by rule.

    python benchmarks/squawk_agreement.py [FOLDER ...] [--squawk PATH] [--pg-version 15] [--list]

squawk (`pip install squawk-cli`, or SQUAWK_BIN) is an oracle here, never a
dependency. For every up.sql of each migrations folder (default: the corpora
under ../shared/corpora, else tests/corpora), both tools run: squawk with
--assume-in-transaction on the files sqlmigrate runs in a transaction, without
it on the no-transaction ones. For each pair of rules that look for the same
thing, a file agrees when both flag it or neither does. Prints per pair the
files each flags, where they differ, and the agreement; `--list` names every
file where they differ. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from sqlmigrate import discovery, rules
from sqlmigrate.model import Finding, TrackingTable

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"

# (sqlmigrate's rule or part of one, squawk's rules that look for the same thing)
PAIRS: list[tuple[str, tuple[str, ...]]] = [
    ("lock-unsafe: CREATE INDEX", ("require-concurrent-index-creation",)),
    ("lock-unsafe: foreign key", ("adding-foreign-key-constraint",)),
    ("lock-unsafe: ADD COLUMN NOT NULL", ("adding-required-field",)),
    ("lock-unsafe: ALTER COLUMN TYPE", ("changing-column-type",)),
    ("lock-unsafe: FK or CHECK, unique-without-index, add-primary-key", ("constraint-missing-not-valid",)),
    ("destructive: DROP TABLE", ("ban-drop-table",)),
    ("destructive: DROP COLUMN", ("ban-drop-column",)),
    ("destructive: DROP SCHEMA", ("ban-drop-schema",)),
    ("needs-no-transaction: CREATE INDEX CONCURRENTLY", ("ban-concurrent-index-creation-in-transaction",)),
    ("transaction-control", ("transaction-nesting",)),
    ("add-column-rewrite", ("adding-field-with-default",)),
    ("add-primary-key", ("adding-serial-primary-key-field",)),
    ("unique-without-index", ("disallowed-unique-constraint",)),
    ("set-not-null", ("adding-not-nullable-field",)),
    ("drop-index-blocking", ("require-concurrent-index-deletion",)),
    ("reindex-blocking", ("require-concurrent-reindex",)),
    ("detach-partition-blocking", ("require-concurrent-partition-detach",)),
    ("domain-constraint", ("ban-alter-domain-with-add-constraint",)),
    ("identifier-too-long", ("identifier-too-long",)),
    ("rename-column", ("renaming-column",)),
    ("rename-table", ("renaming-table",)),
    ("drop-database", ("ban-drop-database",)),
    ("char-type", ("ban-char-field",)),
    ("timestamp-without-time-zone", ("prefer-timestamp-tz",)),
    ("enum-value-ordering", ("require-enum-value-ordering",)),
    # sqlmigrate flags integer primary keys only; squawk every integer column
    ("int-primary-key", ("prefer-bigint-over-int", "prefer-bigint-over-smallint")),
]
SCOPE_DIFFERS = {"int-primary-key"}


def _kinds(f: Finding) -> set[str]:
    """The PAIRS names a finding of sqlmigrate's counts for."""
    m = f.message
    if f.rule == "lock-unsafe":
        if m.startswith("CREATE INDEX"):
            return {"lock-unsafe: CREATE INDEX"}
        if "foreign key" in m or "REFERENCES" in m:
            return {"lock-unsafe: foreign key", "lock-unsafe: FK or CHECK, unique-without-index, add-primary-key"}
        if "CHECK" in m:
            return {"lock-unsafe: FK or CHECK, unique-without-index, add-primary-key"}
        if m.startswith("ADD COLUMN ... NOT NULL"):
            return {"lock-unsafe: ADD COLUMN NOT NULL"}
        if m.startswith("ALTER COLUMN"):
            return {"lock-unsafe: ALTER COLUMN TYPE"}
    if f.rule == "destructive":
        for what in ("DROP TABLE", "DROP COLUMN", "DROP SCHEMA"):
            if m.startswith(what):
                return {f"destructive: {what}"}
        return set()
    if f.rule == "needs-no-transaction":
        return {"needs-no-transaction: CREATE INDEX CONCURRENTLY"} if m.startswith("CREATE ... CONCURRENTLY") else set()
    if f.rule in ("unique-without-index", "add-primary-key"):
        return {f.rule, "lock-unsafe: FK or CHECK, unique-without-index, add-primary-key"}
    return {f.rule}


def _ours(folder: Path) -> tuple[dict[Path, set[str]], dict[Path, bool]]:
    """Per up.sql: the PAIRS names sqlmigrate flags it with; and whether it runs in a transaction."""
    scan = discovery.scan(folder)
    parsed: dict[Path, object] = {}
    findings = rules.check(scan, TrackingTable.parse("sqlmigrate_agreement"), parsed=parsed)  # type: ignore[arg-type]
    flagged: dict[Path, set[str]] = defaultdict(set)
    for f in findings:
        if Path(f.path).name == "up.sql":
            flagged[Path(f.path)] |= _kinds(f)
    transactional = {m.up.path: getattr(parsed.get(m.up.path), "is_transactional", True)
                     for m in scan.migrations if m.up.exists}
    return flagged, transactional


def _theirs(squawk: str, files: list[Path], in_transaction: bool, pg_version: str) -> dict[Path, set[str]]:
    flagged: dict[Path, set[str]] = defaultdict(set)
    if not files:
        return flagged
    args = [squawk, "--reporter", "json", f"--pg-version={pg_version}"]
    args.append("--assume-in-transaction" if in_transaction else "--no-assume-in-transaction")
    out = subprocess.run([*args, *map(str, files)], capture_output=True, text=True)
    if not out.stdout.strip().startswith("["):
        raise SystemExit(f"squawk failed: {out.stderr.strip() or out.stdout.strip()}")
    for violation in json.loads(out.stdout):
        flagged[Path(violation["file"])].add(violation["rule_name"])
    return flagged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--squawk", default=os.environ.get("SQUAWK_BIN") or shutil.which("squawk"))
    parser.add_argument("--pg-version", default="15")
    parser.add_argument("--list", action="store_true", help="name each file where the two disagree")
    args = parser.parse_args()
    if not args.squawk:
        print("squawk not found: pip install squawk-cli (in any environment), then --squawk PATH or SQUAWK_BIN",
              file=sys.stderr)
        return 2
    base = SHARED_CORPORA if SHARED_CORPORA.is_dir() else ROOT / "tests" / "corpora"
    folders = args.folders or sorted(p for p in base.iterdir() if p.is_dir())
    ours: dict[Path, set[str]] = {}
    theirs: dict[Path, set[str]] = {}
    files: list[Path] = []
    for folder in folders:
        flagged, transactional = _ours(folder)
        files += sorted(transactional)
        for path in transactional:
            ours[path] = flagged.get(path, set())
        for in_transaction in (True, False):
            chosen = [p for p, t in transactional.items() if t is in_transaction]
            for path, names in _theirs(args.squawk, chosen, in_transaction, args.pg_version).items():
                theirs[path.resolve()] = names
    version = subprocess.run([args.squawk, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{version}, {len(files)} up.sql files in {', '.join(f.name for f in folders)}\n")
    print("| sqlmigrate | squawk | flagged by both | only sqlmigrate | only squawk | agreement |")
    print("|---|---|---|---|---|---|")
    totals = {True: [0, 0], False: [0, 0]}  # same scope?: [agreeing pairs, pairs]
    differing: list[str] = []
    for name, squawk_rules in PAIRS:
        both = only_ours = only_theirs = 0
        for path in files:
            a = name in ours.get(path, set())
            b = bool(theirs.get(path.resolve(), set()) & set(squawk_rules))
            both += a and b
            only_ours += a and not b
            only_theirs += b and not a
            if a != b:
                differing.append(f"{name} / {'+'.join(squawk_rules)}: only {'sqlmigrate' if a else 'squawk'}: {path}")
        agreeing = len(files) - only_ours - only_theirs
        same = name not in SCOPE_DIFFERS
        totals[same][0] += agreeing
        totals[same][1] += len(files)
        print(f"| {name}{'' if same else ' (other scope)'} | {', '.join(squawk_rules)} | {both} | {only_ours} | "
              f"{only_theirs} | {100 * agreeing / len(files):.1f}% |")
    agree, pairs = totals[True]
    print(f"\nfile/rule pairs, rules with the same scope: {agree} of {pairs} agree ({100 * agree / pairs:.2f}%)")
    agree += totals[False][0]
    pairs += totals[False][1]
    print(f"file/rule pairs, every pair above: {agree} of {pairs} agree ({100 * agree / pairs:.2f}%)")
    if args.list:
        print()
        print("\n".join(differing))
    return 0


if __name__ == "__main__":
    sys.exit(main())

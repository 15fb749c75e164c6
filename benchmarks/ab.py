"""Two installed sqlmigrate executables side by side (before and after a change), interleaved.

    python benchmarks/ab.py OLD/bin/sqlmigrate NEW/bin/sqlmigrate [--n 1000] [--reps 5] [--read-only]

For `up` of N generated migrations, `status` and `down --all`, prints each one's
median wall time, its ratio to one psql session running the same SQL (measured
in the same run), and the median CPU time of the sqlmigrate process itself
(user + system), which a busy machine disturbs far less than wall time. With
`--read-only`, the migrations are applied once and `status`, `verify` and a
no-op `up` are timed instead, against scale.py's floor (start, import psycopg,
connect, SELECT, `cat` of the files). A benchmark, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import GENERATOR, PSQL, ROOT, _createdb, _dropdb, _psql_script  # noqa: E402


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds of the child alone."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--read-only", action="store_true", help="status, verify and a no-op up against the floor")
    args = parser.parse_args()
    if args.read_only:
        return read_only(args)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "generated"
        subprocess.run([sys.executable, str(GENERATOR), "--n", str(args.n), "--out", str(folder)], check=True,
                       capture_output=True)
        up_script = _psql_script(folder, "schema_migrations", "up", Path(work) / "up.psql")
        db = f"sqlmigrate_ab_{os.getpid()}"
        url = f"postgresql:///{db}"
        common = ["--dir", str(folder), "--database-url", url]
        results: dict[str, dict[str, list[tuple[float, float]]]] = {"psql": {}, "old": {}, "new": {}}
        for _ in range(args.reps):
            for who in ("psql", "old", "new"):
                _createdb(db)
                try:
                    record = results[who]
                    if who == "psql":
                        record.setdefault("up", []).append(_timed([PSQL, "-X", "-q", "-d", db, "-f", str(up_script)]))
                        continue
                    tool = args.old if who == "old" else args.new
                    record.setdefault("up", []).append(_timed([tool, "up", *common]))
                    record.setdefault("status", []).append(_timed([tool, "status", *common]))
                    record.setdefault("down --all", []).append(_timed([tool, "down", "--all", "--yes", *common]))
                finally:
                    _dropdb(db)
    psql = statistics.median(w for w, _ in results["psql"]["up"])
    print(f"{args.n} generated migrations, medians of {args.reps}; psql up {psql:.3f} s\n")
    print("| run | old s | new s | old × psql | new × psql | old CPU s | new CPU s |")
    print("|---|---|---|---|---|---|---|")
    for measure in ("up", "status", "down --all"):
        old_wall = statistics.median(w for w, _ in results["old"][measure])
        new_wall = statistics.median(w for w, _ in results["new"][measure])
        old_cpu = statistics.median(c for _, c in results["old"][measure])
        new_cpu = statistics.median(c for _, c in results["new"][measure])
        ratio = (f"{old_wall / psql:.2f} | {new_wall / psql:.2f}" if measure == "up" else "- | -")
        print(f"| {measure} | {old_wall:.3f} | {new_wall:.3f} | {ratio} | {old_cpu:.3f} | {new_cpu:.3f} |")
    return 0


def read_only(args: argparse.Namespace) -> int:
    from scale import FLOOR_SELECT, INTERPRETER, _file_list

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "generated"
        subprocess.run([sys.executable, str(GENERATOR), "--n", str(args.n), "--out", str(folder)], check=True,
                       capture_output=True)
        files = _file_list(folder, Path(work) / "files")
        db = f"sqlmigrate_ab_{os.getpid()}"
        url = f"postgresql:///{db}"
        common = ["--dir", str(folder), "--database-url", url]
        _createdb(db)
        try:
            _timed([args.new, "up", *common])
            results: dict[str, list[tuple[float, float]]] = {}
            for _ in range(args.reps):
                floor = [_timed([INTERPRETER, "-c", FLOOR_SELECT, url]),
                         _timed(["sh", "-c", f"xargs -0 cat < '{files}' > /dev/null"])]
                results.setdefault("floor", []).append((floor[0][0] + floor[1][0], floor[0][1] + floor[1][1]))
                for command in ("status", "verify", "up"):
                    for who, tool in (("old", args.old), ("new", args.new)):
                        results.setdefault(f"{who} {command}", []).append(_timed([tool, command, *common]))
        finally:
            _dropdb(db)
    floor = statistics.median(w for w, _ in results["floor"])
    print(f"{args.n} generated migrations, all applied, medians of {args.reps}; floor {floor:.3f} s\n")
    print("| run | old s | new s | old × floor | new × floor | old CPU s | new CPU s |")
    print("|---|---|---|---|---|---|---|")
    for command in ("status", "verify", "up"):
        old, new = results[f"old {command}"], results[f"new {command}"]
        old_wall, new_wall = statistics.median(w for w, _ in old), statistics.median(w for w, _ in new)
        print(f"| {'no-op up' if command == 'up' else command} | {old_wall:.3f} | {new_wall:.3f} | "
              f"{old_wall / floor:.2f} | {new_wall / floor:.2f} | {statistics.median(c for _, c in old):.3f} | "
              f"{statistics.median(c for _, c in new):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

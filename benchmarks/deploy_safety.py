"""What deploy safety costs, in one interleaved run (ratios, so that a busy machine hits all alike).

    python benchmarks/deploy_safety.py [--reps 5] [--migrations 1000] [--rows 400000]

1. The watcher: `up` of N generated migrations with its progress watcher (text
   output, as on a terminal or in a CI log), with `--lock-timeout` as well
   (the watcher then polls for blockers), and with `--format json` (no watcher),
   each against one psql session running the same SQL.
2. The backup: `up --backup DIR` of a few migrations on a database holding
   data, against `pg_dump --format=custom` of that database alone plus `up`
   alone: the target is at most 1.05x their sum.
A benchmark, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import GENERATOR, PSQL, ROOT, SQLMIGRATE, _createdb, _dropdb, _psql_script, _run  # noqa: E402


def _pg_dump() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), reverse=True)
    return str(found[0]) if found else shutil.which("pg_dump") or "pg_dump"


def watcher(reps: int, count: int, work: Path) -> None:
    folder = work / "generated"
    subprocess.run([sys.executable, str(GENERATOR), "--n", str(count), "--out", str(folder)], check=True,
                   capture_output=True)
    migrations = folder
    script = _psql_script(migrations, "schema_migrations", "up", work / "up.psql")
    db = "sqlmigrate_bench_watch"
    url = f"postgresql:///{db}"
    args = ["up", "--dir", str(migrations), "--database-url", url]
    variants = {
        "psql": [PSQL, "-X", "-q", "-d", db, "-f", str(script)],
        "up (progress watcher)": [*SQLMIGRATE, *args],
        "up --lock-timeout 5s (watcher polls for blockers)": [*SQLMIGRATE, *args, "--lock-timeout", "5s"],
        "up --format json (no watcher)": [*SQLMIGRATE, *args, "--format", "json"],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, command in variants.items():
            _createdb(db)
            try:
                times[name].append(_run(command, cwd=ROOT))
            finally:
                _dropdb(db)
    psql = statistics.median(times["psql"])
    print(f"\n{count} migrations, medians of {reps}\n")
    print("| run | s | × psql |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {median / psql:.2f} |")


def backup(reps: int, rows: int, work: Path) -> None:
    folder = work / "few"
    for n in range(1, 4):
        (folder / f"00{n}_m{n}").mkdir(parents=True)
        (folder / f"00{n}_m{n}" / "up.sql").write_text(f"create table extra{n} (id int);\n")
        (folder / f"00{n}_m{n}" / "down.sql").write_text(f"drop table extra{n};\n")
    db = "sqlmigrate_bench_backup"
    url = f"postgresql:///{db}"
    dumps = work / "dumps"
    times: dict[str, list[float]] = {"pg_dump": [], "up": [], "up --backup": []}
    for _ in range(reps):
        for name in times:
            _createdb(db)
            try:
                subprocess.run([PSQL, "-X", "-q", "-d", db, "-c",
                                f"create table data as select g as id, md5(g::text) as v, now() as at "
                                f"from generate_series(1, {rows}) g"], check=True, capture_output=True)
                shutil.rmtree(dumps, ignore_errors=True)
                dumps.mkdir()
                if name == "pg_dump":
                    command = [_pg_dump(), "--format=custom", "--file", str(dumps / "x.dump"), "--dbname", db]
                elif name == "up":
                    command = [*SQLMIGRATE, "up", "--dir", str(folder), "--database-url", url]
                else:
                    command = [*SQLMIGRATE, "up", "--dir", str(folder), "--database-url", url, "--backup",
                               str(dumps)]
                times[name].append(_run(command, cwd=ROOT))
            finally:
                _dropdb(db)
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["pg_dump"] + median["up"]
    print(f"\nbackup of a database with {rows:,} rows, medians of {reps}\n")
    print("| run | s |\n|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.3f} |")
    print(f"| up --backup / (pg_dump + up) | {median['up --backup'] / base:.2f}× (target ≤ 1.05×) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--migrations", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=400_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        watcher(args.reps, args.migrations, Path(work))
        backup(args.reps, args.rows, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())

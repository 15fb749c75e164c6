"""`drift --generate` against plain `drift` on the same drift: crates_io built from its
first migrations, its last ones applied by hand.

    python benchmarks/drift_generate.py [--by-hand 50] [--reps 5]

Both commands build the applied migrations in a scratch database and compare
it with the live one; --generate also reads dependencies, writes the SQL and
proves it (up.sql and down.sql run in the scratch database, two more
snapshots). Also timed in this process: a snapshot of the live database,
plain and detailed, the generator alone on two detailed snapshots, and the
proof's own work (both files and a snapshot after each). Prints
medians. A benchmark, not a test: run it on a quiet machine, trust
differences of 20% or more.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpora" / "crates_io"
TABLE = "sqlmigrate_migrations"  # crates_io drops a table named schema_migrations
sys.path.insert(0, str(ROOT))


from bench import SQLMIGRATE  # noqa: E402


def _sqlmigrate(*args: str, expect: int = 0) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*SQLMIGRATE, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"sqlmigrate {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def _database(admin: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(admin)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)


def _drop(admin: str, *names: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by-hand", type=int, default=50, help="how many of the last migrations make the drift")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--admin", default=os.environ.get("DATABASE_URL") or "dbname=postgres",
                        help="a database on the server to work on (default: postgres over libpq's defaults)")
    options = parser.parse_args()

    import psycopg

    from sqlmigrate.schema import catalog, diff
    from sqlmigrate.schema.ddl import corrective

    work = Path(tempfile.mkdtemp(prefix="sqlmigrate-drift-bench-"))
    live_name, built_name = "sqlmigrate_bench_drift_live", "sqlmigrate_bench_drift_built"
    try:
        migrations, by_hand = work / "migrations", work / "by_hand"
        shutil.copytree(CORPUS, migrations)
        folders = sorted((p for p in migrations.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))
        by_hand.mkdir()
        for folder in folders[-options.by_hand:]:
            shutil.move(folder, by_hand / folder.name)
        live = _database(options.admin, live_name)
        built = _database(options.admin, built_name)
        _sqlmigrate("up", "--dir", str(migrations), "--database-url", live, "--table", TABLE)
        _sqlmigrate("up", "--dir", str(by_hand), "--database-url", live, "--table", "by_hand")
        _sqlmigrate("up", "--dir", str(migrations), "--database-url", built, "--table", TABLE)
        with psycopg.connect(live, autocommit=True) as conn:
            conn.execute("drop table by_hand")

        common = ["--dir", str(migrations), "--database-url", live, "--table", TABLE]
        times: dict[str, list[float]] = {"drift": [], "drift --generate": [], "snapshot": [], "detailed snapshot": [],
                                         "generator alone": [], "proof alone": []}
        report: dict = {}
        for rep in range(options.reps):
            # in turn first and second, so that neither always runs on a warmer server
            for command in (("drift", "drift --generate") if rep % 2 == 0 else ("drift --generate", "drift")):
                if command == "drift":
                    times["drift"].append(_sqlmigrate("drift", *common, expect=1)[0])
                    continue
                elapsed, out = _sqlmigrate("drift", *common, "--generate", "bench drift", "--format", "json")
                times["drift --generate"].append(elapsed)
                report = json.loads(out)
                shutil.rmtree(report["generated"]["folder"])  # the next run generates it again
            with psycopg.connect(live, autocommit=True) as live_conn, \
                    psycopg.connect(built, autocommit=True) as built_conn:
                for detailed in ((False, True) if rep % 2 == 0 else (True, False)):
                    started = time.perf_counter()
                    found = catalog.snapshot(live_conn, exclude=("public", TABLE), detailed=detailed)
                    times["detailed snapshot" if detailed else "snapshot"].append(time.perf_counter() - started)
                found = catalog.snapshot(live_conn, exclude=("public", TABLE), detailed=True)
                expected = catalog.snapshot(built_conn, exclude=("public", TABLE), detailed=True)
            started = time.perf_counter()
            differences = [d for d in diff(expected, found) if not d.is_note]
            up, down = corrective(differences, expected, found)
            times["generator alone"].append(time.perf_counter() - started)
            # the proof's own work, on the database the migrations built: up.sql, a snapshot,
            # down.sql (which brings it back), a snapshot
            with psycopg.connect(built, autocommit=True) as built_conn:
                started = time.perf_counter()
                for script in (up, down):
                    with built_conn.transaction():
                        built_conn.execute(script.text())
                    catalog.snapshot(built_conn, exclude=("public", TABLE))
                times["proof alone"].append(time.perf_counter() - started)
        count = len([d for d in report["differences"] if not d["note"]])
        print(f"crates_io: {len(folders) - options.by_hand} migrations applied, the last {options.by_hand} applied "
              f"by hand: {count} differences; up.sql {len(up.changes)} statements, down.sql "
              f"{len(down.changes)}; proven: {report['proven']}")
        print(f"median of {options.reps}:")
        for label, values in times.items():
            print(f"  {label:<20} {statistics.median(values):7.3f} s")
        ratio = statistics.median(times["drift --generate"]) / statistics.median(times["drift"])
        print(f"  drift --generate / drift: {ratio:.2f}x")
    finally:
        _drop(options.admin, live_name, built_name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

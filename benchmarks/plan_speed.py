"""How long `plan` takes on a real migration set, against `test` and `drift` on the same.

    python benchmarks/plan_speed.py [--corpus crates_io] [--applied 200] [--reps 3] [--database-url URL]

Makes a database on the server (DATABASE_URL or libpq's defaults), applies
the corpus's first --applied migrations with `up --to`, then times, turn
about, `plan` (scratch database, the applied ones built, the pending ones
rehearsed statement by statement), `drift` (the same build, then a schema
comparison) and `test` (every migration's up, down, up again). Prints the
median and fastest wall time of each, and `plan`'s cost per pending
migration. A benchmark, not a test; the database is dropped at the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
SQLMIGRATE = [str(Path(sys.executable).with_name("sqlmigrate"))]
if not Path(SQLMIGRATE[0]).exists():
    SQLMIGRATE = [sys.executable, "-m", "sqlmigrate"]
# crates_io drops and re-creates a table named schema_migrations (tests/corpora/README.md)
TABLE = "sqlmigrate_migrations"


def _with_db(url: str, name: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(url) if url else {}
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **params)


def _run(*args: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([*SQLMIGRATE, *args], capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, done.stdout.strip().splitlines()[-1:][0] if done.stdout.strip() else done.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="crates_io")
    parser.add_argument("--applied", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    folder = ROOT / "tests" / "corpora" / args.corpus
    ids = sorted((p.name.split("_", 1)[0] for p in folder.iterdir() if p.is_dir() and p.name[:1].isdigit()), key=int)
    admin = _with_db(args.database_url, "postgres")
    name = f"sqlmigrate_plan_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = _with_db(args.database_url, name)
    common = ["--dir", str(folder), "--database-url", target, "--table", TABLE]
    try:
        took, code, last = _run("up", *common, "--to", ids[args.applied - 1])
        if code != 0:
            print(f"up --to failed: {last}", file=sys.stderr)
            return 1
        pending = len(ids) - args.applied
        print(f"{args.corpus}: {len(ids)} migrations, {args.applied} applied (up took {took:.2f} s), "
              f"{pending} pending\n")
        times: dict[str, list[float]] = {"plan": [], "drift": [], "test": []}
        lasts: dict[str, str] = {}
        for _ in range(args.reps):
            for command in times:
                took, code, last = _run(command, *common)
                times[command].append(took)
                lasts[command] = f"exit {code}: {last}"
        print("| command | what it runs in its scratch database | median s | fastest s |")
        print("|---|---|---|---|")
        what = {"plan": f"{args.applied} ups, then {pending} rehearsed statement by statement",
                "drift": f"{args.applied} ups, then a schema comparison",
                "test": f"{len(ids)} round trips (up, down, up again, three snapshots each)"}
        for command, runs in times.items():
            print(f"| {command} | {what[command]} | {statistics.median(runs):.2f} | {min(runs):.2f} |")
        rehearsal = statistics.median(times["plan"]) - statistics.median(times["drift"])
        print(f"\nplan - drift (the rehearsal, roughly): {rehearsal:.2f} s, {1000 * rehearsal / pending:.0f} ms "
              "per pending migration")
        for command, last in lasts.items():
            print(f"last line of {command}: {last}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

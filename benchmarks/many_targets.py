"""sqlmigrate on many targets (SPEC 10) against doing it without it. Prints figures; not a test.

    python benchmarks/many_targets.py [--count 100] [--reps 3] [--sizes 10 100 1000] [--only a b c]

(a) `up` with nothing to do on COUNT up-to-date databases: one run with a
    --database-url per database, against COUNT runs one after the other.
(b) the repository's migrations/ applied to COUNT fresh databases: one run
    with --jobs 8, against `xargs -P 8` starting psql on each database with a
    script that runs each up.sql in a transaction with its tracking row (the
    baseline of bench.py).
(c) the scaling curve: migrations/ applied to SIZES fresh schemas of one
    database (--schemas, --jobs 16), then `up` again with nothing to do;
    wall time, time per target, and the run's maximum resident set size.

Medians of REPS runs, the tools interleaved. Run it on a quiet machine and
trust differences of 20% or more.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"
ADMIN = os.environ.get("BENCH_ADMIN_URL", "dbname=postgres")


def _sqlmigrate() -> list[str]:
    script = Path(sys.executable).with_name("sqlmigrate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sqlmigrate"]


def _psql() -> str:
    """The psql binary itself: Debian's /usr/bin/psql is a Perl wrapper costing ~30 ms a start."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True)
    return os.environ.get("PSQL_BIN") or (str(found[0]) if found else shutil.which("psql") or "psql")


SQLMIGRATE = _sqlmigrate()
PSQL = _psql()


def _url(name: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(ADMIN)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)


class Databases:
    """COUNT fresh databases, created and dropped four at a time."""

    def __init__(self, count: int) -> None:
        self.names = [f"sqlmigrate_mt_{uuid.uuid4().hex[:10]}" for _ in range(count)]
        self.urls = [_url(name) for name in self.names]

    def _each(self, statement: str) -> None:
        def run(name: str) -> None:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(run, self.names))

    def __enter__(self) -> Databases:
        self._each("create database {}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._each("drop database if exists {} with (force)")


def _timed(cmd: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, **kwargs)
    return time.perf_counter() - started


def _timed_rss(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, maximum resident set size in MiB, and the last line of stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... exited {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024, out.decode().strip().splitlines()[-1]


def _targets_file(urls: list[str], work: Path) -> Path:
    path = work / f"targets-{uuid.uuid4().hex[:6]}.txt"
    path.write_text("\n".join(urls) + "\n")
    return path


def _psql_script(work: Path) -> Path:
    lines = ["\\set ON_ERROR_STOP 1", "\\set QUIET 1",
             "CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, name text, checksum text, "
             "executed_at timestamptz DEFAULT now());"]
    for folder in sorted(p for p in MIGRATIONS.iterdir() if p.is_dir()):
        mid, name = folder.name.split("_", 1)
        up = folder / "up.sql"
        digest = hashlib.sha256(up.read_bytes()).hexdigest()
        lines += ["BEGIN;", f"\\i {up}", f"INSERT INTO schema_migrations VALUES ('{mid}', '{name}', '{digest}');",
                  "COMMIT;"]
    path = work / "up.psql"
    path.write_text("\n".join(lines) + "\n")
    return path


def no_op(count: int, reps: int, work: Path) -> None:
    with Databases(count) as dbs:
        listing = _targets_file(dbs.urls, work)
        _timed([*SQLMIGRATE, "up", "--dir", str(MIGRATIONS), "--targets", str(listing)])
        many, one_by_one = [], []
        for _ in range(reps):
            many.append(_timed([*SQLMIGRATE, "up", "--dir", str(MIGRATIONS), "--targets", str(listing)]))
            started = time.perf_counter()
            for url in dbs.urls:
                subprocess.run([*SQLMIGRATE, "up", "--dir", str(MIGRATIONS), "--database-url", url],
                               check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            one_by_one.append(time.perf_counter() - started)
    m, s = statistics.median(many), statistics.median(one_by_one)
    print(f"(a) no-op up on {count} up-to-date databases: one run {m:.2f} s ({m / count * 1000:.1f} ms a target), "
          f"{count} runs one after the other {s:.2f} s ({s / count * 1000:.1f} ms a target): {s / m:.1f}x faster")


def apply(count: int, reps: int, work: Path) -> None:
    script = _psql_script(work)
    ours, theirs = [], []
    for _ in range(reps):
        with Databases(count) as dbs:
            listing = _targets_file(dbs.urls, work)
            ours.append(_timed([*SQLMIGRATE, "up", "--dir", str(MIGRATIONS), "--targets", str(listing),
                                "--jobs", "8"]))
        with Databases(count) as dbs:
            names = "\n".join(dbs.urls) + "\n"
            theirs.append(_timed(["xargs", "-P", "8", "-d", "\n", "-I", "{}", PSQL, "-X", "-q", "-d", "{}", "-f",
                                  str(script)], input=names.encode()))
    m, p = statistics.median(ours), statistics.median(theirs)
    print(f"(b) migrations/ applied to {count} fresh databases: up --jobs 8 {m:.2f} s, xargs -P 8 psql {p:.2f} s: "
          f"{m / p:.2f}x psql")


def scaling(sizes: list[int]) -> None:
    print("(c) migrations/ on N fresh schemas of one database, --jobs 16:")
    print("| schemas | up s | ms a schema | max RSS MiB | no-op up s | ms a schema | max RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        with Databases(1) as dbs:
            with psycopg.connect(dbs.urls[0], autocommit=True) as conn:
                conn.execute("; ".join(f"create schema mt_{n:05d}" for n in range(size)))
            args = [*SQLMIGRATE, "up", "--dir", str(MIGRATIONS), "--database-url", dbs.urls[0],
                    "--schemas", "mt\\_%", "--jobs", "16"]
            first, first_rss, summary = _timed_rss(args)
            if summary != f"up: {size} ok, 0 failed":
                raise SystemExit(f"unexpected summary: {summary}")
            again, again_rss, _ = _timed_rss(args)
        print(f"| {size} | {first:.2f} | {first / size * 1000:.1f} | {first_rss:.0f} | {again:.2f} | "
              f"{again / size * 1000:.1f} | {again_rss:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--only", nargs="*", choices=("a", "b", "c"), default=["a", "b", "c"])
    args = parser.parse_args()
    print(f"sqlmigrate: {' '.join(SQLMIGRATE)}; psql: {PSQL}; medians of {args.reps}; {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory() as tmp:
        if "a" in args.only:
            no_op(args.count, args.reps, Path(tmp))
        if "b" in args.only:
            apply(args.count, args.reps, Path(tmp))
        if "c" in args.only:
            scaling(args.sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

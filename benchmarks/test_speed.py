"""`test` of a long history against `up` of the same corpus, and `test --from` the last ones.

    python benchmarks/test_speed.py [--reps 3] [--last 10] [--corpora crates_io docs_rs quickwit]

For each corpus under tests/corpora, interleaved, `--reps` times: `up` into
a fresh database, `test` (a round trip of every migration), and `test --from`
the `--last`-th migration from the end (the ones before it built as `up`
builds them). Each is one `sqlmigrate` process, as a user runs it. Prints
the medians and their ratios to `up`. A benchmark, not a test: the machine
and the server's fsyncs move the figures, so compare ratios of one run.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
TABLE = "sqlmigrate_migrations"  # crates_io drops a table named schema_migrations


from bench import SQLMIGRATE  # noqa: E402


def _timed(*args: str, exits: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run([*SQLMIGRATE, *args, "--format", "json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in exits:
        raise SystemExit(f"sqlmigrate {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def _url(admin: str, name: str) -> str:
    import psycopg

    return psycopg.conninfo.make_conninfo(admin, dbname=name)


def _recreate(admin: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def _drop(admin: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _ids(corpus: Path) -> list[str]:
    """The corpus's ids, in the order they apply (as integers)."""
    ids = [d.name.split("_", 1)[0] for d in corpus.iterdir() if d.is_dir() and (d / "up.sql").exists()]
    return sorted(ids, key=int)


def _machine(admin: str) -> str:
    import psycopg

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    with psycopg.connect(admin, autocommit=True) as conn:
        server = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
    return (f"{platform.node()}: {os.cpu_count()} cores, {cpu}; {platform.system()} {platform.release()}; "
            f"PostgreSQL {server}; Python {platform.python_version()}")


def _measure(admin: str, corpus: Path, reps: int, last: int) -> dict[str, object]:
    ids = _ids(corpus)
    start = ids[-last] if len(ids) >= last else ids[0]
    target = f"sqlmigrate_bench_test_speed_{os.getpid()}"
    url = _url(admin, target)
    times: dict[str, list[float]] = {"up": [], "test": [], "from": []}
    try:
        for _ in range(reps):
            _recreate(admin, target)
            times["up"].append(_timed("up", "--dir", str(corpus), "--table", TABLE, "--database-url", url))
            _recreate(admin, target)  # test only reaches the server through it; it writes nothing there
            times["test"].append(_timed("test", "--dir", str(corpus), "--table", TABLE, "--database-url", url,
                                        exits=(0, 1)))
            times["from"].append(_timed("test", "--dir", str(corpus), "--table", TABLE, "--database-url", url,
                                        "--from", start, exits=(0, 1)))
    finally:
        _drop(admin, target)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"corpus": corpus.name, "migrations": len(ids), "start": start, **medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--last", type=int, default=10, help="test --from the N-th migration from the end")
    parser.add_argument("--corpora", nargs="+", default=["crates_io", "docs_rs", "quickwit"])
    parser.add_argument("--admin", default=os.environ.get("DATABASE_URL") or "dbname=postgres",
                        help="a database on the server to create the target in (default: DATABASE_URL)")
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"test_speed.py, {now}, medians of {args.reps}, interleaved")
    print(_machine(args.admin))
    print()
    print(f"| corpus | migrations | up s | test s | test × up | --from (last {args.last}) | --from s | --from × up |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.corpora:
        row = _measure(args.admin, CORPORA / name, args.reps, args.last)
        up, test, from_ = row["up"], row["test"], row["from"]
        assert isinstance(up, float) and isinstance(test, float) and isinstance(from_, float)
        print(f"| {name} | {row['migrations']} | {up:.2f} | {test:.2f} | {test / up:.1f} | {row['start']} "
              f"| {from_:.2f} | {from_ / up:.1f} |", flush=True)


if __name__ == "__main__":
    main()

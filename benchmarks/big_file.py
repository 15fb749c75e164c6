"""A migration holding one 5 MB INSERT: time of `check` and `up`, and the memory `up` needs.

    python benchmarks/big_file.py [--mb 5] [--reps 3]

Prints medians of: `check` on the file, `sqlparse.split` of the same text (the
lexer's own speed), `up` of the migration and psql running the same file in one
transaction; and the peak resident memory of `up` above that of `up` on a
one-row migration (same process, same imports), as a multiple of the file size.
Each tool runs as its own process, its peak memory read from the kernel
(getrusage of the child). A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench import PSQL, SQLMIGRATE, _createdb, _dropdb  # noqa: E402

TABLE = "create table big (id int primary key, name text, tag text, score float8);\n"


def write_migration(folder: Path, megabytes: float) -> int:
    """One migration: CREATE TABLE, then one INSERT of about `megabytes` MB.

    Written row by row: this process stays small, as a child's peak memory
    counts what its parent held when it was forked."""
    rng = random.Random(42)
    (folder / "001_big").mkdir(parents=True)
    (folder / "001_big" / "down.sql").write_text("drop table big;\n")
    path = folder / "001_big" / "up.sql"
    with path.open("w") as out:
        out.write(TABLE + "insert into big (id, name, tag, score) values\n")
        n, separator = 0, ""
        while n == 0 or out.tell() < megabytes * 1024 * 1024:
            n += 1
            out.write(f"{separator}({n}, 'name {n}', '{rng.getrandbits(64):x}', {rng.random():.6f})")
            separator = ",\n"
        out.write(";\n")
    return path.stat().st_size


SPLIT = "import sqlparse, sys, time; t = open(sys.argv[1]).read(); s = time.perf_counter(); sqlparse.split(t); " \
        "print(time.perf_counter() - s)"


def _python_with_sqlparse() -> str:
    """The interpreter sqlmigrate is installed in (it has sqlparse), else this one."""
    beside = Path(SQLMIGRATE[0]).with_name("python")
    return str(beside) if beside.exists() else sys.executable


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident set (bytes) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    db, url = f"sqlmigrate_big_{os.getpid()}", f"postgresql:///sqlmigrate_big_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        size = write_migration(big, args.mb)
        write_migration(small, 0)  # the same migration with one row: the process's own footprint
        times: dict[str, list[float]] = {}
        memory: dict[str, list[int]] = {}
        for _ in range(args.reps):
            split = subprocess.run([_python_with_sqlparse(), "-c", SPLIT, str(big / "001_big" / "up.sql")],
                                   check=True, capture_output=True, text=True)
            times.setdefault("split", []).append(float(split.stdout))
            times.setdefault("check", []).append(run([*SQLMIGRATE, "check", "--dir", str(big)])[0])
            for name, folder in (("up", big), ("up small", small)):
                _createdb(db)
                try:
                    seconds, rss = run([*SQLMIGRATE, "up", "--dir", str(folder), "--database-url", url])
                finally:
                    _dropdb(db)
                times.setdefault(name, []).append(seconds)
                memory.setdefault(name, []).append(rss)
            _createdb(db)
            try:
                times.setdefault("psql", []).append(
                    run([PSQL, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(big / "001_big" / "up.sql")])[0])
            finally:
                _dropdb(db)
    med = {name: statistics.median(values) for name, values in times.items()}
    peak, base = statistics.median(memory["up"]), statistics.median(memory["up small"])
    print(f"file: {size / 1e6:.1f} MB, one INSERT; medians of {args.reps}\n")
    print("| measure | seconds | note |")
    print("|---|---|---|")
    print(f"| sqlparse.split of the text | {med['split']:.2f} | the lexer alone, no start-up |")
    print(f"| sqlmigrate check | {med['check']:.2f} | {med['check'] / med['split']:.2f} × split, start-up included |")
    print(f"| psql -1 -f | {med['psql']:.2f} | |")
    print(f"| sqlmigrate up | {med['up']:.2f} | {med['up'] / med['psql']:.2f} × psql |")
    print(f"\npeak memory of up: {peak / 1e6:.1f} MB, {base / 1e6:.1f} MB for the one-row migration: "
          f"{(peak - base) / 1e6:.1f} MB more = {(peak - base) / size:.1f} × the file")
    return 0


if __name__ == "__main__":
    sys.exit(main())

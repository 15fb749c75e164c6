"""sqlmigrate against one psql session running the same SQL, in one interleaved run.

    python benchmarks/bench.py [--reps 3] [--sizes 100 1000] [--corpora crates_io docs_rs quickwit]

For each migrations folder: `up` of every migration on an empty database,
`status` with all applied, and (for generated corpora, whose downs all work)
`down --all`; each against the psql baseline, which runs per migration
`BEGIN; \\i up.sql; INSERT INTO schema_migrations ...; COMMIT;` in a single
session (no-transaction files without BEGIN/COMMIT). Prints medians and the
ratio to psql. A benchmark, not a test: run it on a quiet machine, trust
differences of 20% or more.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_corpus.py"


def _sqlmigrate_command() -> list[str]:
    """SQLMIGRATE_BIN (as ../shared/bench uses it), else the console script of this
    interpreter's environment: what a user runs, start-up included."""
    chosen = os.environ.get("SQLMIGRATE_BIN")
    if chosen:
        return [chosen]
    script = Path(sys.executable).with_name("sqlmigrate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sqlmigrate"]


SQLMIGRATE = _sqlmigrate_command()


def _psql_binary() -> str:
    """The real psql binary: Debian's /usr/bin/psql is a Perl wrapper costing ~30 ms a start."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True)
    return os.environ.get("PSQL_BIN") or (str(found[0]) if found else shutil.which("psql") or "psql")


PSQL = _psql_binary()


def _interpreter() -> str:
    """The Python that runs sqlmigrate (its console script's #! line), for the start-up floor."""
    first = SQLMIGRATE[0]
    if first.endswith("python") or "python3" in Path(first).name:
        return first
    with open(first, "rb") as script:
        line = script.readline().decode(errors="replace")
    return line[2:].strip().split()[0] if line.startswith("#!") else sys.executable


# What any tool in Python on psycopg pays before its first migration: the
# interpreter, the psycopg import and one connection. psql + this is the lowest
# `up` any such tool could show; the ratio column says how far that floor is.
# It ends as sqlmigrate does, without the interpreter's teardown (cli.entry).
FLOOR = "import os, psycopg, sys; psycopg.connect(sys.argv[1]).close(); os._exit(0)"
INTERPRETER = _interpreter()


def _run(cmd: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    return time.perf_counter() - started


def _createdb(name: str) -> None:
    subprocess.run([PSQL, "-X", "-q", "-d", "postgres", "-c", f'drop database if exists "{name}"',
                    "-c", f'create database "{name}"'], check=True, capture_output=True)


def _dropdb(name: str) -> None:
    subprocess.run([PSQL, "-X", "-q", "-d", "postgres", "-c", f'drop database if exists "{name}" with (force)'],
                   check=True, capture_output=True)


def _migrations(folder: Path) -> list[Path]:
    dirs = [p for p in folder.iterdir() if p.is_dir() and p.name.split("_", 1)[0].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name.split("_", 1)[0]))


def _is_no_transaction(path: Path) -> bool:
    head = path.read_text(encoding="utf-8-sig").lstrip()
    return head.lower().startswith("-- sqlmigrate: no-transaction")


def _psql_script(folder: Path, table: str, direction: str, out: Path) -> Path:
    """The baseline: every file through one psql session, with its tracking row."""
    lines = ["\\set ON_ERROR_STOP 1", "\\set QUIET 1",
             f"CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, name text, checksum text, "
             "executed_at timestamptz DEFAULT now());"]
    migrations = _migrations(folder)
    if direction == "down":
        migrations.reverse()
    for m in migrations:
        path = m / f"{direction}.sql"
        mid, name = m.name.split("_", 1)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        row = (f"INSERT INTO {table} VALUES ('{mid}', '{name}', '{digest}');" if direction == "up"
               else f"DELETE FROM {table} WHERE id = '{mid}';")
        if _is_no_transaction(path):
            lines += [f"\\i {path}", row]
        else:
            lines += ["BEGIN;", f"\\i {path}", row, "COMMIT;"]
    out.write_text("\n".join(lines) + "\n")
    return out


class Corpus:
    def __init__(self, name: str, folder: Path, table: str, with_down: bool) -> None:
        self.name, self.folder, self.table, self.with_down = name, folder, table, with_down

    def size(self) -> tuple[int, int]:
        migrations = _migrations(self.folder)
        return len(migrations), sum((m / "up.sql").stat().st_size for m in migrations)


def measure(corpus: Corpus, reps: int, work: Path) -> dict[str, dict[str, list[float]]]:
    db = f"sqlmigrate_bench_{os.getpid()}"
    url = f"postgresql:///{db}"
    up_script = _psql_script(corpus.folder, corpus.table, "up", work / f"{corpus.name}_up.psql")
    down_script = _psql_script(corpus.folder, corpus.table, "down", work / f"{corpus.name}_down.psql")
    times: dict[str, dict[str, list[float]]] = {"psql": {}, "sqlmigrate": {}, "floor": {}}
    tool_args = ["--dir", str(corpus.folder), "--database-url", url, "--table", corpus.table]
    for _ in range(reps):
        for tool in ("psql", "sqlmigrate"):  # interleaved: drift hits both alike
            _createdb(db)
            try:
                record = times[tool]
                if tool == "psql":
                    record.setdefault("up", []).append(_run([PSQL, "-X", "-q", "-d", db, "-f", str(up_script)]))
                    record.setdefault("status", []).append(
                        _run([PSQL, "-X", "-q", "-d", db, "-c", f"SELECT * FROM {corpus.table}"]))
                    if corpus.with_down:
                        record.setdefault("down", []).append(
                            _run([PSQL, "-X", "-q", "-d", db, "-f", str(down_script)]))
                    times["floor"].setdefault("up", []).append(_run([INTERPRETER, "-c", FLOOR, url]))
                else:
                    record.setdefault("up", []).append(_run([*SQLMIGRATE, "up", *tool_args], cwd=ROOT))
                    record.setdefault("status", []).append(_run([*SQLMIGRATE, "status", *tool_args], cwd=ROOT))
                    if corpus.with_down:
                        record.setdefault("down", []).append(
                            _run([*SQLMIGRATE, "down", "--all", "--yes", *tool_args], cwd=ROOT))
            finally:
                _dropdb(db)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--corpora", nargs="*", default=["crates_io", "docs_rs", "quickwit"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpora = []
        for n in args.sizes:
            if not GENERATOR.exists():
                print(f"(no generator at {GENERATOR}: generated corpora skipped)", file=sys.stderr)
                break
            out = work / f"generated_{n}"
            subprocess.run([sys.executable, str(GENERATOR), "--n", str(n), "--out", str(out)],
                           check=True, capture_output=True)
            corpora.append(Corpus(f"generated {n}", out, "schema_migrations", with_down=True))
        for name in args.corpora:
            # crates_io drops a table named schema_migrations: track elsewhere
            corpora.append(Corpus(name, CORPORA / name, "bench_migrations", with_down=False))
        print(f"psql: {PSQL}; medians of {args.reps}; ratio = sqlmigrate / psql; floor = {INTERPRETER} "
              "starting, importing psycopg and connecting once (floor × psql = (psql + floor) / psql, the "
              "lowest ratio a tool in Python on psycopg could show)\n")
        print("| corpus | migrations | KiB | up s | psql s | up × psql | floor s | floor × psql | status s "
              "| down s | psql s | down × psql |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for corpus in corpora:
            print(f"  measuring {corpus.name} ...", file=sys.stderr)
            times = measure(corpus, args.reps, work)
            count, size = corpus.size()
            med = {tool: {k: statistics.median(v) for k, v in t.items()} for tool, t in times.items()}
            s, p = med["sqlmigrate"], med["psql"]
            down = (f"{s['down']:.3f} | {p['down']:.3f} | {s['down'] / p['down']:.2f}"
                    if "down" in s else "n/a | n/a | n/a")
            floor = med["floor"]["up"]
            print(f"| {corpus.name} | {count} | {size / 1024:.0f} | {s['up']:.3f} | {p['up']:.3f} | "
                  f"{s['up'] / p['up']:.2f} | {floor:.3f} | {(p['up'] + floor) / p['up']:.2f} | "
                  f"{s['status']:.3f} | {down} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""sqlmigrate from 100 to 10,000 migrations against its floor and psql, in one interleaved run.

    python benchmarks/scale.py [--sizes 100 1000 10000] [--reps 3] [--crates-reps 5] [--plot docs/scaling.svg]

For each generated corpus (../shared/bench/gen_corpus.py), each repetition
times, one after the other:
- `up` of every migration on an empty database, and one psql session running
  the same SQL with its tracking rows (bench.py's baseline);
- the floor: the interpreter starting, importing psycopg, connecting and
  reading the tracking table with one SELECT, plus `cat` of every file to
  /dev/null (two processes, their times added);
- `status`, `verify` and a no-op `up` against that floor;
- `check` against `sqlparse.split` of the same files (each a process of the
  same interpreter, start-up included);
- `down --all` against psql running the down SQL.
Then the peak resident memory of `status` and `up` at the largest size and
of `check` on a 5 MB INSERT (big_file.py's migration), and `up` of
tests/corpora/crates_io as `(sqlmigrate - floor) / psql`, the floor being
bench.py's (start, import, connect). Prints medians and ratios with the floor
beside them, and draws the scaling as an SVG. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from big_file import _python_with_sqlparse, run, write_migration  # noqa: E402
from bench import (CORPORA, FLOOR, GENERATOR, INTERPRETER, PSQL, ROOT, SQLMIGRATE, _createdb,  # noqa: E402
                   _dropdb, _migrations, _psql_script)

# The floor of a command that reads every file and the tracking table: what
# any tool in Python on psycopg pays for `status` (with `cat` of the files).
FLOOR_SELECT = ("import os, psycopg, sys; psycopg.connect(sys.argv[1]).execute("
                "'SELECT * FROM schema_migrations').fetchall(); os._exit(0)")
SPLIT_ALL = ("import sqlparse, sys\nfor path in open(sys.argv[1]).read().split('\\0'):\n"
             "    sqlparse.split(open(path, 'rb').read().decode('utf-8-sig'))")


def _timed(cmd: list[str]) -> float:
    return run(cmd)[0]


class Sample:
    """Each measure's runs of one size, kept until their medians are taken."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = {}
        self.peak_rss: dict[str, int] = {}  # bytes, the largest of the runs

    def add(self, measure: str, seconds: float) -> None:
        self.runs.setdefault(measure, []).append(seconds)

    def add_run(self, measure: str, cmd: list[str]) -> None:
        """Time `cmd` and keep its peak resident set."""
        seconds, rss = run(cmd)
        self.add(measure, seconds)
        self.peak_rss[measure] = max(rss, self.peak_rss.get(measure, 0))

    def median(self, measure: str) -> float:
        return statistics.median(self.runs[measure])


def _file_list(folder: Path, out: Path) -> Path:
    """Every up.sql and down.sql, NUL-separated, for `xargs -0 cat` and the split."""
    out.write_text("\0".join(str(m / f) for m in _migrations(folder) for f in ("up.sql", "down.sql")))
    return out


def measure_size(folder: Path, reps: int, work: Path) -> Sample:
    sample = Sample()
    up_script = _psql_script(folder, "schema_migrations", "up", work / "up.psql")
    down_script = _psql_script(folder, "schema_migrations", "down", work / "down.psql")
    files = _file_list(folder, work / "files")
    ours, theirs = f"sqlmigrate_scale_{os.getpid()}", f"sqlmigrate_scale_psql_{os.getpid()}"
    url = f"postgresql:///{ours}"
    common = ["--dir", str(folder), "--database-url", url]
    split = [_python_with_sqlparse(), "-c", SPLIT_ALL, str(files)]
    for rep in range(reps):
        print(f"    repetition {rep + 1} of {reps}", file=sys.stderr)
        _createdb(ours)
        _createdb(theirs)
        try:
            sample.add("psql up", _timed([PSQL, "-X", "-q", "-d", theirs, "-f", str(up_script)]))
            sample.add_run("up", [*SQLMIGRATE, "up", *common])
            sample.add("floor", _timed([INTERPRETER, "-c", FLOOR_SELECT, url])
                       + _timed(["sh", "-c", f"xargs -0 cat < '{files}' > /dev/null"]))
            sample.add_run("status", [*SQLMIGRATE, "status", *common])
            sample.add_run("verify", [*SQLMIGRATE, "verify", *common])
            sample.add_run("no-op up", [*SQLMIGRATE, "up", *common])
            sample.add_run("check", [*SQLMIGRATE, "check", "--dir", str(folder)])
            sample.add("split", _timed(split))
            sample.add("psql down", _timed([PSQL, "-X", "-q", "-d", theirs, "-f", str(down_script)]))
            sample.add("down", _timed([*SQLMIGRATE, "down", "--all", "--yes", *common]))
        finally:
            _dropdb(ours)
            _dropdb(theirs)
    return sample


def peak_memory_of_check(work: Path) -> int:
    """Max resident set (bytes) of `check` on one migration holding a 5 MB INSERT."""
    big = work / "big"
    write_migration(big, 5)
    return run([*SQLMIGRATE, "check", "--dir", str(big)])[1]


def crates_io(reps: int) -> Sample:
    """`up` of crates_io, psql, and bench.py's floor (start, import psycopg, connect), interleaved."""
    sample = Sample()
    folder = CORPORA / "crates_io"
    db = f"sqlmigrate_scale_crates_{os.getpid()}"
    url = f"postgresql:///{db}"
    with tempfile.TemporaryDirectory() as tmp:
        # crates_io drops a table named schema_migrations: track elsewhere
        script = _psql_script(folder, "bench_migrations", "up", Path(tmp) / "up.psql")
        for _ in range(reps):
            for who in ("psql", "sqlmigrate"):
                _createdb(db)
                try:
                    if who == "psql":
                        sample.add("psql", _timed([PSQL, "-X", "-q", "-d", db, "-f", str(script)]))
                        sample.add("floor", _timed([INTERPRETER, "-c", FLOOR, url]))
                    else:
                        sample.add("up", _timed([*SQLMIGRATE, "up", "--dir", str(folder), "--database-url", url,
                                                 "--table", "bench_migrations"]))
                finally:
                    _dropdb(db)
    return sample


# -- output ------------------------------------------------------------------------


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    server = subprocess.run([PSQL, "-X", "-A", "-t", "-d", "postgres", "-c", "show server_version"],
                            capture_output=True, text=True).stdout.strip()
    versions = subprocess.run([INTERPRETER, "-c", "import platform, psycopg, sqlparse; print(platform."
                               "python_version(), psycopg.__version__, sqlparse.__version__)"],
                              capture_output=True, text=True).stdout.split()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "sqlmigrate"], capture_output=True,
                           text=True).stdout.strip()
    python, psycopg, sqlparse = (versions + ["?"] * 3)[:3]
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}"
            f"{' with local changes' if dirty else ''}; {os.cpu_count()} cores, {cpu}; PostgreSQL {server}; "
            f"Python {python}, psycopg {psycopg}, sqlparse {sqlparse}; {' '.join(SQLMIGRATE)}")


def _x(value: float, base: float) -> str:
    return f"{value:.3f} ({value / base:.2f}×)"


def print_table(samples: dict[int, Sample], reps: int) -> None:
    print(f"medians of {reps}; floor = start + import psycopg + connect + SELECT of the tracking table + cat of "
          "every file; ratios in brackets: to the floor for status, verify and no-op up, to sqlparse.split for "
          "check, to psql for up and down\n")
    print("| migrations | floor s | status s | verify s | no-op up s | split s | check s | psql up s | up s "
          "| psql down s | down --all s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, s in samples.items():
        floor, split, psql_up, psql_down = (s.median(k) for k in ("floor", "split", "psql up", "psql down"))
        print(f"| {n:,} | {floor:.3f} | {_x(s.median('status'), floor)} | {_x(s.median('verify'), floor)} | "
              f"{_x(s.median('no-op up'), floor)} | {split:.3f} | {_x(s.median('check'), split)} | {psql_up:.3f} | "
              f"{_x(s.median('up'), psql_up)} | {psql_down:.3f} | {_x(s.median('down'), psql_down)} |")


# -- the plot: a log-log SVG written by hand, so that no plotting library is needed


_SERIES = [  # measure, label, colour, dashed (the baselines)
    ("floor", "floor (start, connect, SELECT, cat)", "#555555", True),
    ("status", "status", "#1f77b4", False),
    ("verify", "verify", "#17becf", False),
    ("no-op up", "no-op up", "#2ca02c", False),
    ("split", "sqlparse.split", "#8c564b", True),
    ("check", "check", "#9467bd", False),
    ("psql up", "psql up", "#ff7f0e", True),
    ("up", "up", "#d62728", False),
    ("psql down", "psql down", "#bcbd22", True),
    ("down", "down --all", "#e377c2", False),
]


def write_svg(samples: dict[int, Sample], path: Path) -> None:
    width, height, left, right, top, bottom = 760, 440, 70, 230, 20, 50
    sizes = sorted(samples)
    values = [samples[n].median(m) for n in sizes for m, *_ in _SERIES]
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    x_low, x_high = math.log10(sizes[0]), math.log10(sizes[-1])

    def x(n: float) -> float:
        return left + (math.log10(n) - x_low) / ((x_high - x_low) or 1) * (width - left - right)

    def y(s: float) -> float:
        return top + (high - math.log10(s)) / (high - low) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>']
    for power in range(low, high + 1):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(10 ** power):.1f}" y2="{y(10 ** power):.1f}" '
                   f'stroke="#dddddd"/><text x="{left - 8}" y="{y(10 ** power) + 4:.1f}" text-anchor="end">'
                   f'{10 ** power:g} s</text>')
    for n in sizes:
        out.append(f'<line x1="{x(n):.1f}" x2="{x(n):.1f}" y1="{top}" y2="{height - bottom}" stroke="#dddddd"/>'
                   f'<text x="{x(n):.1f}" y="{height - bottom + 18}" text-anchor="middle">{n:,}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
               'migrations (log scale); seconds, medians (log scale)</text>')
    for i, (measure, label, colour, dashed) in enumerate(_SERIES):
        points = " ".join(f"{x(n):.1f},{y(samples[n].median(measure)):.1f}" for n in sizes)
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for n in sizes:
            out.append(f'<circle cx="{x(n):.1f}" cy="{y(samples[n].median(measure)):.1f}" r="3" fill="{colour}"/>')
        legend_y = top + 10 + i * 20
        out.append(f'<line x1="{width - right + 15}" x2="{width - right + 45}" y1="{legend_y}" y2="{legend_y}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/><text x="{width - right + 52}" y="{legend_y + 4}">'
                   f'{label}</text>')
    out.append("</svg>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--crates-reps", type=int, default=5)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "scaling.svg")
    args = parser.parse_args()
    # bytecode cached as users have it: with this set, every start would compile every module
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(_machine() + "\n")
    samples: dict[int, Sample] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in args.sizes:
            print(f"  {n} migrations ...", file=sys.stderr)
            folder = work / f"generated_{n}"
            subprocess.run([sys.executable, str(GENERATOR), "--n", str(n), "--out", str(folder)], check=True,
                           capture_output=True)
            samples[n] = measure_size(folder, args.reps, work)
        print_table(samples, args.reps)
        largest = samples[max(args.sizes)].peak_rss
        print(f"\nmax resident set, largest of the runs (target under 150 MB): at {max(args.sizes):,} migrations "
              + ", ".join(f"{m} {largest[m] / 1e6:.1f} MB" for m in ("status", "verify", "no-op up", "up", "check"))
              + f"; check of a 5 MB INSERT {peak_memory_of_check(work) / 1e6:.1f} MB")
    print("  crates_io ...", file=sys.stderr)
    crates = crates_io(args.crates_reps)
    up, psql, floor = crates.median("up"), crates.median("psql"), crates.median("floor")
    print(f"\ncrates_io `up` (medians of {args.crates_reps}): {up:.3f} s, psql {psql:.3f} s ({up / psql:.2f}×), "
          f"floor (start, import psycopg, connect) {floor:.3f} s; (sqlmigrate - floor) / psql = "
          f"{(up - floor) / psql:.2f} (target 1.1)")
    write_svg(samples, args.plot)
    print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

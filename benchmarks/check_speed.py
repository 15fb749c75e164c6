"""How fast `check` is, against plain sqlparse.split on the same files, in one run.

    python benchmarks/check_speed.py [FOLDER ...] [--reps 5] [--generate 1000]

Prints, per migrations folder: size, median seconds of `check` (scan, lex,
every rule) and of reading + sqlparse.split of every file, MB/s, and the ratio
check / split (the target is at most 1.0). A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlparse

from sqlmigrate import discovery, rules

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_corpus.py"


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.sql"))


def _time_check(folder: Path) -> float:
    started = time.perf_counter()
    rules.check(discovery.scan(folder), rules.TrackingTable.parse("schema_migrations"))
    return time.perf_counter() - started


def _time_split(folder: Path) -> float:
    started = time.perf_counter()
    for path in _files(folder):
        sqlparse.split(path.read_bytes().decode("utf-8-sig"))
    return time.perf_counter() - started


def measure(folder: Path, reps: int) -> dict[str, float]:
    size = sum(p.stat().st_size for p in _files(folder))
    checks, splits = [], []
    for _ in range(reps):  # interleaved, so machine drift hits both alike
        checks.append(_time_check(folder))
        splits.append(_time_split(folder))
    check_s, split_s = statistics.median(checks), statistics.median(splits)
    return {"bytes": size, "check_s": check_s, "split_s": split_s,
            "check_mb_s": size / check_s / 1e6, "split_mb_s": size / split_s / 1e6, "ratio": check_s / split_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--generate", type=int, default=1000,
                        help="also time a generated corpus of N migrations (0: no)")
    args = parser.parse_args()
    folders = args.folders or sorted(p for p in (ROOT / "tests" / "corpora").iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory() as tmp:
        if args.generate and GENERATOR.exists():
            out = Path(tmp) / f"generated_{args.generate}"
            subprocess.run([sys.executable, str(GENERATOR), "--n", str(args.generate), "--out", str(out)],
                           check=True, capture_output=True)
            folders.append(out)
        print("| corpus | KiB | check s | split s | check MB/s | split MB/s | check / split |")
        print("|---|---|---|---|---|---|---|")
        for folder in folders:
            m = measure(folder, args.reps)
            print(f"| {folder.name} | {m['bytes'] / 1024:.0f} | {m['check_s']:.3f} | {m['split_s']:.3f} | "
                  f"{m['check_mb_s']:.2f} | {m['split_mb_s']:.2f} | {m['ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast `check` is, against plain sqlparse.split on the same files, in one run.

    python benchmarks/check_speed.py [FOLDER ...] [--reps 5] [--generate 1000] [--against REV]

Prints, per migrations folder: size, median seconds of `check` (scan, lex,
every rule) and of reading + sqlparse.split of every file, MB/s, and the ratio
check / split (the target is at most 1.0). With `--against REV` (a git
revision), it times `check` of REV's package and of this one instead, in
fresh interpreters taking turns, and prints the fastest of each and their
ratio. A benchmark, not a test.
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


_TIMED = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from sqlmigrate import discovery, rules
table = rules.TrackingTable.parse("schema_migrations")
times = []
for folder in map(Path, sys.argv[2:]):
    rules.check(discovery.scan(folder), table)  # files cached, modules warm
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        rules.check(discovery.scan(folder), table)
        best = min(best, time.perf_counter() - started)
    times.append(best)
print(" ".join(map(str, times)))
"""


def against(revision: str, folders: list[Path], reps: int) -> None:
    """`check` of `revision`'s package against this one's, turn about, `reps` times each."""
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "sqlmigrate"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        runs: dict[str, list[list[float]]] = {"before": [], "after": []}
        for _ in range(reps):
            for name, path in (("before", old), ("after", str(ROOT))):
                out = subprocess.run([sys.executable, "-c", _TIMED, path, *map(str, folders)], capture_output=True,
                                     text=True, check=True).stdout
                runs[name].append([float(x) for x in out.split()])
    print(f"| corpus | check at {revision}, ms | check now, ms | now / then |")
    print("|---|---|---|---|")
    for i, folder in enumerate(folders):
        # the fastest run of each: on a shared machine the others mostly measure its other users
        then = min(r[i] for r in runs["before"])
        now = min(r[i] for r in runs["after"])
        print(f"| {folder.name} | {then * 1000:.1f} | {now * 1000:.1f} | {now / then:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--generate", type=int, default=1000,
                        help="also time a generated corpus of N migrations (0: no)")
    parser.add_argument("--against", metavar="REV", help="time check of this git revision against the working tree")
    args = parser.parse_args()
    folders = args.folders or sorted(p for p in (ROOT / "tests" / "corpora").iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory() as tmp:
        if args.generate and GENERATOR.exists():
            out = Path(tmp) / f"generated_{args.generate}"
            subprocess.run([sys.executable, str(GENERATOR), "--n", str(args.generate), "--out", str(out)],
                           check=True, capture_output=True)
            folders.append(out)
        if args.against:
            against(args.against, folders, args.reps)
            return 0
        print("| corpus | KiB | check s | split s | check MB/s | split MB/s | check / split |")
        print("|---|---|---|---|---|---|---|")
        for folder in folders:
            m = measure(folder, args.reps)
            print(f"| {folder.name} | {m['bytes'] / 1024:.0f} | {m['check_s']:.3f} | {m['split_s']:.3f} | "
                  f"{m['check_mb_s']:.2f} | {m['split_mb_s']:.2f} | {m['ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

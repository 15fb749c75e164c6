#!/usr/bin/env python3
"""`drift --generate` at many split points of the corpora: the first N migrations
applied, the rest applied by hand, the corrective migration generated and proven.

    .venv/bin/python scripts/drift-generate-sweep.py [--corpus quickwit docs_rs crates_io] [--step 1] [--crates-step 12]

One line per split point: how many migrations were built and applied by hand,
the differences, and whether the migration was proven; what was left unexpressed
or unproven is printed under it. Exit status 1 when any split was not proven.
Works on the server of DATABASE_URL (default: libpq's defaults), one database
at a time, dropped after.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
SQLMIGRATE = [str(Path(sys.executable).with_name("sqlmigrate"))]
TABLE = {"crates_io": "sqlmigrate_migrations"}  # crates_io drops a table named schema_migrations


def _sqlmigrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SQLMIGRATE, *args], capture_output=True, text=True)


def _split(corpus: str, built: int, admin: str) -> bool:
    import psycopg
    from psycopg import sql

    work = Path(tempfile.mkdtemp(prefix="sqlmigrate-sweep-"))
    name = f"sqlmigrate_sweep_{uuid.uuid4().hex[:8]}"
    params = psycopg.conninfo.conninfo_to_dict(admin)
    params["dbname"] = name
    live = psycopg.conninfo.make_conninfo(**params)
    table = TABLE.get(corpus, "schema_migrations")
    try:
        migrations, by_hand = work / "migrations", work / "by_hand"
        shutil.copytree(CORPORA / corpus, migrations)
        folders = sorted((p for p in migrations.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))
        by_hand.mkdir()
        for folder in folders[built:]:
            shutil.move(folder, by_hand / folder.name)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        for folder, tracking in ((migrations, table), (by_hand, "by_hand")):
            done = _sqlmigrate("up", "--dir", str(folder), "--database-url", live, "--table", tracking)
            if done.returncode != 0:
                print(f"{corpus} at {built}: up failed:\n{done.stderr}")
                return False
        with psycopg.connect(live, autocommit=True) as conn:
            conn.execute("drop table by_hand")
        done = _sqlmigrate("drift", "--dir", str(migrations), "--database-url", live, "--table", table,
                           "--generate", "by hand", "--format", "json")
        report = json.loads(done.stdout)
        differences = len([d for d in report["differences"] if not d["note"]])
        print(f"{corpus}: {built} built, {len(folders) - built} by hand: {differences} differences, "
              f"{'proven' if report['proven'] else 'NOT PROVEN'}")
        for item in report["unexpressed"]:
            print(f"  unexpressed ({item['file']}): {item['object']}: {item['reason']}")
        for item in report["leftovers"]:
            print(f"  left after {item['file']}: {item['text']}")
        if report["error"]:
            print(f"  {report['error']['file']} failed: {report['error']['message']}: {report['error']['statement']}")
        return bool(report["proven"])
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["quickwit", "docs_rs", "crates_io"])
    parser.add_argument("--step", type=int, default=1, help="between split points (default: every one)")
    parser.add_argument("--crates-step", type=int, default=12, help="between split points of crates_io")
    parser.add_argument("--admin", default=os.environ.get("DATABASE_URL") or "dbname=postgres")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    proven = total = 0
    for corpus in options.corpus:
        count = len([p for p in (CORPORA / corpus).iterdir() if p.is_dir()])
        step = options.crates_step if corpus == "crates_io" else options.step
        first = 5 if corpus == "crates_io" else 1
        for built in range(first, count, step):
            total += 1
            proven += _split(corpus, built, options.admin)
    print(f"{proven} of {total} split point(s) proven")
    return 0 if proven == total else 1


if __name__ == "__main__":
    sys.exit(main())

"""What `up` prints on a long deploy: warnings before the first migration's line, and a failure's
error repeated in the closing summary, with long lists cut (the cap of 20 warnings: test_deploy_warnings)."""
from __future__ import annotations

import json

from tests.conftest import run_cli, tracking_ids



def _many_warnings(count: int) -> dict:
    """`count` migrations, each with a lock-unsafe CREATE INDEX on a table of an earlier migration."""
    migrations = {"000_base": ("".join(f"create table t{n} (id int);\n" for n in range(count)), "select 1;\n")}
    for n in range(count):
        migrations[f"{n + 1:03d}_m{n}"] = (f"create index t{n}_id on t{n} (id);\n", f"drop index t{n}_id;\n")
    return migrations


def test_warnings_come_before_the_first_migration_runs(database, write_migrations, tmp_path):
    """The order on a terminal: stderr and stdout interleaved as written, through one pipe."""
    import subprocess
    import sys

    mdir = write_migrations(_many_warnings(2))
    proc = subprocess.run([sys.executable, "-m", "sqlmigrate", "up", "--dir", str(mdir), "--database-url", database],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = proc.stdout.splitlines()
    first_warning = next(i for i, line in enumerate(lines) if ": warning: " in line)
    first_applying = next(i for i, line in enumerate(lines) if line.startswith("applying "))
    assert first_warning < first_applying


def test_a_failed_up_repeats_its_error_last_and_cuts_the_list_of_migrations_not_run(database, db,
                                                                                    write_migrations):
    migrations = {"001_bad": ("create table a (id int);\nselect nope;\n", "drop table a;\n")}
    migrations.update({f"{n:03d}_m{n}": (f"create table m{n} (id int);\n", f"drop table m{n};\n")
                       for n in range(2, 15)})
    mdir = write_migrations(migrations)
    result = run_cli("up", "--dir", mdir, "--database-url", database)
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert lines[-2] == ("applied 0 migration(s) in " + lines[-2].split(" in ")[1].split(";")[0]
                         + "; 001_bad FAILED and was rolled back; 13 not run: 002_m2, 003_m3, 004_m4, 005_m5, "
                         "006_m6, 007_m7, 008_m8, 009_m9, 010_m10, 011_m11, and 3 more")
    assert lines[-1] == f"{mdir}/001_bad/up.sql:2:8: ERROR 42703: column \"nope\" does not exist"
    assert tracking_ids(db) == []
    full = json.loads(run_cli("up", "--dir", mdir, "--database-url", database, "--format", "json").stdout)
    assert len(full["not_run"]) == 13

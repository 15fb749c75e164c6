"""SPEC 7, `up --backup DIR`, with the real pg_dump and pg_restore: the dump
restores to the schema and rows the target had before `up`; nothing pending or
--dry-run take none; a pg_dump that is missing, too old or failing leaves no
file, applies nothing and exits 3; the password stays out of argv and output.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sqlmigrate import backup, schema
from sqlmigrate.render import human_size
from tests.conftest import with_params, finish_process, interrupt_process, run_cli, start_process, tables, tracking_ids, wait_for

FIRST = {
    "001_start": (
        """create type mood as enum ('happy', 'sad');
create table users (id bigint generated always as identity primary key, name text not null, mood mood);
create index users_name on users (name);
create table orders (id bigserial primary key, user_id bigint references users (id), total numeric(10, 2));
create view big_orders as select * from orders where total > 100;
create function order_count(u int) returns bigint language sql as $$ select count(*) from orders where user_id = u $$;
comment on table users is 'people';
insert into users (name, mood) values ('ann', 'happy'), ('bob', 'sad'), ('cy', null);
insert into orders (user_id, total) select 1 + i % 3, i * 10 from generate_series(1, 40) i;
""",
        "drop function order_count(int);\ndrop view big_orders;\ndrop table orders;\ndrop table users;\n"
        "drop type mood;\n"),
    "002_more": (
        """alter table users add column email text;
insert into users (name) values ('dee');
delete from orders where total < 50;
drop view big_orders;
""",
        "create view big_orders as select * from orders where total > 100;\nalter table users drop column email;\n"),
}


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {name: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(name))).fetchone()[0]
            for name in sorted(tables(conn))}  # type: ignore[index]


def _server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.info.server_version // 10000


def _pg_restore(url: str) -> str:
    """The pg_restore next to the pg_dump that `up --backup` chooses, else PATH's."""
    chosen = backup.find_pg_dump(_server_major(url), None, dict(os.environ))
    beside = Path(chosen.path).with_name("pg_restore")
    found = str(beside) if beside.exists() else shutil.which("pg_restore")
    assert found, "no pg_restore"
    return found


def _major_of(program: str) -> int:
    said = subprocess.run([program, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", said)
    return int(found.group(1)) if found else 0


def _fake(tmp_path: Path, name: str, body: str, version: str = "99.1") -> Path:
    """A pg_dump stand-in: answers --version with `version`, then runs `body`
    (with `argv`, and `out` the --file it was given)."""
    path = tmp_path / name
    path.write_text(f"""#!{sys.executable}
import json, os, sys, time
argv = sys.argv
if argv[1:] == ["--version"]:
    print("pg_dump (PostgreSQL) {version}")
    sys.exit(0)
out = argv[argv.index("--file") + 1]
{body}
""")
    path.chmod(0o755)
    return path


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_the_dump_restores_to_the_state_before_up(database, db, new_database, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    assert run_cli("up", "--dir", mdir, "--database-url", database, "--to", "1").exit_code == 0
    before, before_rows = schema.snapshot(db), _counts(db)
    folder = tmp_path / "backups" / "nested"
    started = datetime.now(timezone.utc).replace(microsecond=0)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", folder)
    assert result.exit_code == 0, result.stderr
    (name,) = _leftovers(folder)
    match = re.fullmatch(rf"{db.info.dbname}-(\d{{8}}T\d{{6}}Z)-before-002\.dump", name)
    assert match, name
    stamp = datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert started <= stamp <= datetime.now(timezone.utc) + timedelta(seconds=1)
    dump = folder / name
    size = dump.stat().st_size
    lines = result.stdout.splitlines()
    assert lines[0] == f"backup: {dump} ({human_size(size)})"
    assert lines[1].startswith("applying 002_more ...")
    assert (dump.stat().st_mode & 0o777) == 0o600  # every row of the database is in it
    # the target moved on; the dump did not
    assert tracking_ids(db) == ["001", "002"] and _counts(db) != before_rows
    restored = new_database()
    # the server's own address: a pg_restore built elsewhere may look for another default socket
    target = with_params(restored, host=db.info.host, port=str(db.info.port))
    restore = _pg_restore(database)
    if _major_of(restore) <= _server_major(database):
        done = subprocess.run([restore, "--no-owner", "--exit-on-error", "--dbname", target, str(dump)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    else:
        # pg_restore 17 and later send SET transaction_timeout, which a server before 17 refuses:
        # that one error, ignored, and nothing else (this machine has no pg_restore of the server's major)
        done = subprocess.run([restore, "--no-owner", "--dbname", target, str(dump)], capture_output=True, text=True)
        errors = [line for line in done.stderr.splitlines() if "ERROR:" in line]
        assert errors == ['pg_restore: error: could not execute query: ERROR:  unrecognized configuration '
                          'parameter "transaction_timeout"'] or done.returncode == 0, done.stderr
    with psycopg.connect(restored, autocommit=True) as conn:
        after = schema.snapshot(conn)
        assert schema.diff(before, after) == []
        assert after.to_text() == before.to_text()
        assert _counts(conn) == before_rows
        assert tracking_ids(conn) == ["001"]


def test_json_has_the_backup_path_and_size(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    (name,) = _leftovers(tmp_path / "b")
    assert report["backup"] == {"path": str(tmp_path / "b" / name), "bytes": (tmp_path / "b" / name).stat().st_size}
    assert name.endswith("-before-001.dump")
    without = run_cli("up", "--dir", mdir, "--database-url", database, "--format", "json")
    assert json.loads(without.stdout)["backup"] is None


def test_backup_dir_from_the_environment(database, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    result = run_cli("up", "--dir", mdir, "--database-url", database,
                     env={"SQLMIGRATE_BACKUP_DIR": str(tmp_path / "e")})
    assert result.exit_code == 0, result.stderr
    assert len(_leftovers(tmp_path / "e")) == 1


def test_nothing_pending_takes_no_backup(database, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    assert run_cli("up", "--dir", mdir, "--database-url", database).exit_code == 0
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["backup"] is None
    assert not (tmp_path / "b").exists()
    text = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b")
    assert "backup:" not in text.stdout and not (tmp_path / "b").exists()


def test_dry_run_takes_no_backup(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "backup:" not in result.stdout
    assert not (tmp_path / "b").exists()
    assert tables(db) == set()


def test_an_empty_backup_option_is_a_usage_error(database, write_migrations):
    mdir = write_migrations(FIRST)
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", "")
    assert result.exit_code == 2
    assert "--backup: is empty" in result.stderr


def _assert_nothing_applied(db: psycopg.Connection, folder: Path) -> None:
    assert tables(db) == set()  # not even the tracking table
    assert _leftovers(folder) == []


def test_a_failing_pg_dump_leaves_no_file_and_applies_nothing(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    fake = _fake(tmp_path, "pg_dump", """
with open(out, "wb") as f:
    f.write(b"PGDMP half a dump")
sys.stderr.write("pg_dump: warning: something\\n")
sys.stderr.write("pg_dump: error: query failed: ERROR:  permission denied for table secret\\n")
sys.exit(1)
""")
    folder = tmp_path / "b"
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", folder, "--pg-dump", fake)
    assert result.exit_code == 3
    assert result.stderr == (f"sqlmigrate: backup: pg_dump 99.1 ({fake}) failed (exit 1): query failed: ERROR:  "
                             "permission denied for table secret; no dump was kept and nothing was applied\n")
    _assert_nothing_applied(db, folder)


def test_a_failing_pg_dump_after_some_migrations_changes_no_tracking_row(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    assert run_cli("up", "--dir", mdir, "--database-url", database, "--to", "1").exit_code == 0
    rows = db.execute("select id, checksum, executed_at from schema_migrations").fetchall()
    fake = _fake(tmp_path, "pg_dump", "sys.exit(2)")
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b", "--pg-dump", fake,
                     "--format", "json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"].endswith("failed (exit 2): no message; no dump was kept and nothing "
                                                      "was applied")
    assert db.execute("select id, checksum, executed_at from schema_migrations").fetchall() == rows
    columns = db.execute("select attname from pg_attribute where attrelid = 'users'::regclass").fetchall()
    assert ("email",) not in columns
    assert _leftovers(tmp_path / "b") == []


def test_a_folder_that_cannot_be_written_applies_nothing(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    fake = _fake(tmp_path, "pg_dump", "sys.exit(0)")  # the folder is the problem here, whatever pg_dump is at hand
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", blocker / "backups",
                     "--pg-dump", fake)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"sqlmigrate: backup: cannot write in {blocker / 'backups'}: ")
    assert result.stderr.endswith("; nothing was applied\n") and len(result.stderr.splitlines()) == 1
    assert tables(db) == set()


def test_a_pg_dump_older_than_the_server_is_refused(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    major = _server_major(database)
    fake = _fake(tmp_path, "pg_dump", "sys.exit(0)", version=f"{major - 1}.3")
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b", "--pg-dump", fake)
    assert result.exit_code == 3
    assert result.stderr == (f"sqlmigrate: backup: pg_dump {major - 1}.3 ({fake}) is older than the server: the "
                             f"server is PostgreSQL {major}, so pg_dump {major} or newer is needed (--pg-dump or "
                             "SQLMIGRATE_PG_DUMP); nothing was applied\n")
    _assert_nothing_applied(db, tmp_path / "b")


def test_a_missing_pg_dump_is_refused(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    major = _server_major(database)
    missing = tmp_path / "nowhere" / "pg_dump"
    result = run_cli("up", "--dir", mdir, "--database-url", database, "--backup", tmp_path / "b",
                     env={"SQLMIGRATE_PG_DUMP": str(missing)})
    assert result.exit_code == 3
    assert result.stderr == (f"sqlmigrate: backup: the pg_dump given ({missing}) cannot be used: No such file or "
                             f"directory; the server is PostgreSQL {major}, so pg_dump {major} or newer is needed; "
                             "nothing was applied\n")
    _assert_nothing_applied(db, tmp_path / "b")


def test_the_pg_dump_of_the_closest_major_at_least_the_servers_is_chosen(database, tmp_path):
    major = _server_major(database)
    found = backup.find_pg_dump(major, None, dict(os.environ))
    assert found.major >= major and os.access(found.path, os.X_OK)
    (tmp_path / "newer").mkdir()
    newer = _fake(tmp_path / "newer", "pg_dump", "", version="99.0")
    # one of the installed majors is closer to the server than 99
    chosen = backup.find_pg_dump(major, None, {**os.environ, "PATH": str(newer.parent)})
    assert chosen.path != str(newer) and chosen.major == found.major
    (tmp_path / "same").mkdir()
    same = _fake(tmp_path / "same", "pg_dump", "", version=f"{major}.99")
    assert backup.find_pg_dump(major, None, {**os.environ, "PATH": str(same.parent)}).path == str(same)
    (tmp_path / "older").mkdir()
    older = _fake(tmp_path / "older", "pg_dump", "", version=f"{major - 1}.9")
    chosen = backup.find_pg_dump(major, None, {**os.environ, "PATH": str(older.parent)})
    assert chosen.path != str(older) and chosen.major >= major


def test_the_password_goes_to_pg_dump_through_its_environment_only(database, db, write_migrations, tmp_path):
    params = psycopg.conninfo.conninfo_to_dict(database)
    secret = params.get("password") or "S3cret-pw-4-backup"
    url = psycopg.conninfo.make_conninfo("", **{**params, "password": secret})
    real = backup.find_pg_dump(_server_major(database), None, dict(os.environ)).path
    record = tmp_path / "calls.jsonl"
    fake = _fake(tmp_path, "pg_dump", f"""
with open({str(record)!r}, "a") as f:
    f.write(json.dumps({{"argv": argv, "env": {{k: v for k, v in os.environ.items() if k.startswith("PG")}}}}) + "\\n")
os.execv({real!r}, [{real!r}, *argv[1:]])
""")
    mdir = write_migrations(FIRST)
    for fmt in ("text", "json"):
        result = run_cli("up", "--dir", mdir, "--database-url", url, "--backup", tmp_path / fmt, "--pg-dump", fake,
                         "--format", fmt, "--to", "1" if fmt == "text" else "2")
        assert result.exit_code == 0, result.stderr
        assert secret not in result.stdout + result.stderr
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(calls) == 2
    for call in calls:
        assert secret not in " ".join(call["argv"])
        assert call["argv"][1:4] == ["--format=custom", "--no-password", "--file"]
        assert call["env"]["PGPASSWORD"] == secret
        assert call["env"]["PGDATABASE"] == db.info.dbname
        assert call["env"]["PGUSER"] == db.info.user
        assert call["env"]["PGPORT"] == str(db.info.port)
    assert [len(_leftovers(tmp_path / fmt)) for fmt in ("text", "json")] == [1, 1]


def test_parameters_without_a_variable_go_in_a_conninfo_without_secrets(database, db, write_migrations, tmp_path):
    real = backup.find_pg_dump(_server_major(database), None, dict(os.environ)).path
    record = tmp_path / "argv.json"
    fake = _fake(tmp_path, "pg_dump", f"""
with open({str(record)!r}, "w") as f:
    json.dump(argv, f)
os.execv({real!r}, [{real!r}, *argv[1:]])
""")
    mdir = write_migrations(FIRST)
    result = run_cli("up", "--dir", mdir, "--database-url", f"{database} keepalives_idle=33 sslmode=disable",
                     "--backup", tmp_path / "b", "--pg-dump", fake, "--to", "1")
    assert result.exit_code == 0, result.stderr
    argv = json.loads(record.read_text())
    assert argv[argv.index("--dbname") + 1] == "keepalives_idle=33"
    refused = run_cli("up", "--dir", mdir, "--database-url", f"{database} sslpassword=key-secret",
                      "--backup", tmp_path / "c", "--pg-dump", fake)
    assert refused.exit_code == 2
    assert "key-secret" not in refused.stdout + refused.stderr
    assert "pg_dump could only be given the URL's sslpassword on its command line" in refused.stderr
    assert not (tmp_path / "c").exists()
    assert tracking_ids(db) == ["001"]


def test_pg_dump_s_own_words_never_show_the_password(database, db, write_migrations, tmp_path):
    params = psycopg.conninfo.conninfo_to_dict(database)
    secret = params.get("password") or "S3cret-pw-4-backup"
    url = psycopg.conninfo.make_conninfo("", **{**params, "password": secret})
    fake = _fake(tmp_path, "pg_dump", """
sys.stderr.write("pg_dump: error: bad password " + os.environ["PGPASSWORD"] + "\\n")
sys.exit(1)
""")
    mdir = write_migrations(FIRST)
    result = run_cli("up", "--dir", mdir, "--database-url", url, "--backup", tmp_path / "b", "--pg-dump", fake)
    assert result.exit_code == 3
    assert secret not in result.stdout + result.stderr
    assert "bad password ***" in result.stderr
    _assert_nothing_applied(db, tmp_path / "b")


def test_ctrl_c_during_the_backup_removes_the_partial_dump(database, db, write_migrations, tmp_path):
    mdir = write_migrations(FIRST)
    folder = tmp_path / "b"
    fake = _fake(tmp_path, "pg_dump", """
with open(out, "wb") as f:
    f.write(b"PGDMP the start")
time.sleep(60)
""")
    proc = start_process("up", "--dir", mdir, "--database-url", database, "--backup", folder, "--pg-dump", fake)
    try:
        wait_for(lambda: any(p.stat().st_size for p in folder.glob(".*.partial")), "the partial dump", 30)
    except BaseException:
        finish_process(proc, 5)
        raise
    code, _, err = interrupt_process(proc)
    assert code == 130, err
    assert "interrupted during the backup; the partial dump was removed and nothing was applied" in err
    assert "Traceback" not in err
    assert _leftovers(folder) == []
    assert tables(db) == set()


@pytest.mark.parametrize("name, safe", [("app", "app"), ("a/b", "a_b"), ("..", "_."), (".hidden", "_hidden"),
                                        ("données", "données")])
def test_database_names_make_safe_file_names(name, safe):
    assert backup._file_safe(name) == safe


@pytest.mark.parametrize("size, text", [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 kB"),
                                        (20 * 1024 * 1024, "20 MB"), (3 * 1024 ** 4 + 1, "3.0 TB")])
def test_sizes_are_shown_in_pg_size_pretty_units(size, text):
    assert human_size(size) == text

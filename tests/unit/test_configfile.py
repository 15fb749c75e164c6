"""SPEC 11: settings in sqlmigrate.toml or [tool.sqlmigrate] of pyproject.toml, environments,
${VAR}, precedence, and the usage errors that name the file and the key (no database)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

TOML = """\
dir = "db/migrations"
database_url = "postgresql://app:${APP_PASSWORD}@localhost/app"
lock_timeout = "5s"

[environments.prod]
database_url = "postgresql://app:${APP_PASSWORD}@prod/app"
lock_retries = 3
"""


def config(*args: str, env: dict | None = None) -> dict:
    result = run_cli("config", "--format", "json", *args, env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)["settings"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_file_gives_settings_and_says_so(project):
    (project / "sqlmigrate.toml").write_text(TOML)
    settings = config(env={"APP_PASSWORD": "s3cret"})
    assert settings["dir"] == {"value": "db/migrations", "source": "sqlmigrate.toml"}
    assert settings["database_url"] == {"value": "postgresql://app:***@localhost/app", "source": "sqlmigrate.toml"}
    assert settings["lock_timeout"] == {"value": "5s", "source": "sqlmigrate.toml"}
    assert settings["table"] == {"value": "schema_migrations", "source": "default"}


def test_precedence_command_line_then_environment_then_env_table_then_file(project):
    (project / "sqlmigrate.toml").write_text(TOML)
    env = {"APP_PASSWORD": "x", "SQLMIGRATE_DIR": "from_env"}
    settings = config("--env", "prod", env=env)
    assert settings["database_url"]["source"] == "sqlmigrate.toml [environments.prod]"
    assert settings["database_url"]["value"] == "postgresql://app:***@prod/app"
    assert settings["lock_retries"] == {"value": "3", "source": "sqlmigrate.toml [environments.prod]"}
    assert settings["dir"] == {"value": "from_env", "source": "SQLMIGRATE_DIR"}
    settings = config("--env", "prod", "--dir", "cli", "--lock-retries", "1", env=env)
    assert settings["dir"] == {"value": "cli", "source": "--dir"}
    assert settings["lock_retries"] == {"value": "1", "source": "--lock-retries"}


def test_env_may_come_before_the_command(project):
    (project / "sqlmigrate.toml").write_text(TOML)
    result = run_cli("--env", "prod", "config", "--format", "json", env={"APP_PASSWORD": "x"})
    assert json.loads(result.stdout)["settings"]["lock_retries"]["value"] == "3"


def test_pyproject_tool_table(project):
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.sqlmigrate]\ntable = "ops.migrations"\n'
                                            '[tool.sqlmigrate.environments.ci]\nlock_wait = 5\n')
    settings = config("--env", "ci")
    assert settings["table"] == {"value": "ops.migrations", "source": "pyproject.toml"}
    assert settings["lock_wait"] == {"value": "5", "source": "pyproject.toml [tool.sqlmigrate.environments.ci]"}


def test_sqlmigrate_toml_wins_over_pyproject(project):
    (project / "pyproject.toml").write_text('[tool.sqlmigrate]\ntable = "from_pyproject"\n')
    (project / "sqlmigrate.toml").write_text('table = "from_toml"\n')
    assert config()["table"]["value"] == "from_toml"


def test_a_pyproject_without_the_table_is_no_settings_file(project):
    (project / "pyproject.toml").write_text('[project]\nname = "sqlmigrate-user"\n')
    assert config()["table"] == {"value": "schema_migrations", "source": "default"}


def test_settings_from_the_file_are_used_by_commands(project):
    (project / "sqlmigrate.toml").write_text('dir = "db/migrations"\n')
    folder = project / "db" / "migrations" / "001_a"
    folder.mkdir(parents=True)
    (folder / "up.sql").write_text("create table a (id int);\n")
    (folder / "down.sql").write_text("drop table a;\n")
    result = run_cli("check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "checked 1 migration(s): 0 error(s), 0 warning(s)\n"


@pytest.mark.parametrize("text, message", [
    ('dir = "a\n', "sqlmigrate.toml:1:9: not valid TOML: "),
    ("dir = 3\n", "sqlmigrate.toml: dir must be a string, not 3"),
    ("nope = 1\n", "sqlmigrate.toml: nope: unknown setting (known: dir, table,"),
    ("lock_wait = true\n", "sqlmigrate.toml: lock_wait must be a whole number of 0 or more, not true"),
    ("lock_retries = -1\n", "sqlmigrate.toml: lock_retries must be a whole number of 0 or more, not -1"),
    ('lock_timeout = "soon"\n', "sqlmigrate.toml: lock_timeout: 'soon' is not a duration"),
    ("targets = 5\n", "sqlmigrate.toml: targets must be the path of a targets file or a list of connection strings"),
    ('[environments.prod]\ndirr = "x"\n', "sqlmigrate.toml: [environments.prod] dirr: unknown setting"),
    ('database_url = "postgresql://u:${NOT_SET_ANYWHERE}@h/d"\n',
     "sqlmigrate.toml: database_url: environment variable NOT_SET_ANYWHERE is not set"),
])
def test_a_bad_file_is_a_usage_error_naming_the_file_and_the_key(project, text, message):
    (project / "sqlmigrate.toml").write_text(text)
    result = run_cli("status")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"sqlmigrate: {message}"), result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_environment_is_a_usage_error(project):
    (project / "sqlmigrate.toml").write_text(TOML)
    result = run_cli("up", "--env", "staging", env={"APP_PASSWORD": "x"})
    assert result.exit_code == 2
    assert result.stderr == ("sqlmigrate: --env staging: sqlmigrate.toml has no [environments.staging] "
                             "(environments: prod)\n")


def test_env_without_a_file_is_a_usage_error(project):
    result = run_cli("status", "--env", "prod", "--format", "json")
    assert result.exit_code == 2
    assert "there is no sqlmigrate.toml" in json.loads(result.stdout)["error"]


def test_the_password_never_shows(project):
    (project / "sqlmigrate.toml").write_text(TOML)
    result = run_cli("config", env={"APP_PASSWORD": "s3cret"})
    assert "s3cret" not in result.stdout + result.stderr
    assert "database_url       postgresql://app:***@localhost/app  (sqlmigrate.toml)" in result.stdout


def test_an_unset_variable_in_a_value_not_in_use_is_no_error(project):
    """The command line, the environment or the chosen environment may override a value whose ${VAR} is unset."""
    (project / "sqlmigrate.toml").write_text(TOML)
    assert config("--env", "prod", env={"APP_PASSWORD": "x"})["database_url"]["source"] == \
        "sqlmigrate.toml [environments.prod]"
    overridden = config("--database-url", "postgresql:///other")
    assert overridden["database_url"] == {"value": "postgresql:///other", "source": "--database-url"}
    result = run_cli("config")
    assert result.exit_code == 2
    assert "sqlmigrate.toml: database_url: environment variable APP_PASSWORD is not set" in result.stderr


def test_a_byte_order_mark_is_no_error(project):
    (project / "sqlmigrate.toml").write_bytes(b"\xef\xbb\xbftable = 't'\n")
    assert config()["table"]["value"] == "t"


def test_lock_retries_without_a_lock_timeout_only_stops_up_and_down(project, tmp_path):
    (project / "sqlmigrate.toml").write_text("lock_retries = 3\n")
    assert run_cli("config").exit_code == 0
    assert run_cli("check", "--dir", tmp_path / "none").exit_code == 2  # the folder, not the setting
    result = run_cli("up", "--dir", tmp_path)
    assert result.exit_code == 2
    assert "lock_retries (sqlmigrate.toml) needs a lock timeout above 0" in result.stderr

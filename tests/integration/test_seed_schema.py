"""The project's own migrations: apply, roll back, apply again."""
from tests.conftest import ROOT, run_cli, tables, tracking_ids

SEED = ROOT / "migrations"
SEED_TABLES = {"users", "api_keys", "user_preferences", "billing_info", "usage_tracking",
               "webhooks", "webhook_deliveries"}


def test_seed_up_down_up(database, db):
    first = run_cli("up", "--dir", SEED, "--database-url", database)
    assert first.exit_code == 0, first.stderr
    assert tables(db) == SEED_TABLES | {"schema_migrations"}
    assert tracking_ids(db) == ["001", "002", "003"]

    down = run_cli("down", "--all", "--yes", "--dir", SEED, "--database-url", database)
    assert down.exit_code == 0, down.stderr
    assert tables(db) == {"schema_migrations"}
    assert tracking_ids(db) == []

    again = run_cli("up", "--dir", SEED, "--database-url", database)
    assert again.exit_code == 0, again.stderr
    assert tables(db) == SEED_TABLES | {"schema_migrations"}


def test_seed_passes_check():
    result = run_cli("check", "--strict", "--dir", SEED)
    assert result.exit_code == 0, result.stdout
    assert "0 error(s), 0 warning(s)" in result.stdout

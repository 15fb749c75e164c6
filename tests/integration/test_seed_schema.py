"""The project's own migrations: apply, roll back, apply again."""
from tests.conftest import ROOT, tables, tracking_ids
from tests.integration.helpers import check, run

SEED = ROOT / "migrations"
SEED_TABLES = {"users", "api_keys", "user_preferences", "billing_info", "usage_tracking",
               "webhooks", "webhook_deliveries"}


def test_seed_up_down_up(database, db):
    first = run("up", SEED, database)
    assert first.exit_code == 0, first.stderr
    assert tables(db) == SEED_TABLES | {"schema_migrations"}
    assert tracking_ids(db) == ["001", "002", "003"]

    down = run("down", SEED, database, "--all", "--yes")
    assert down.exit_code == 0, down.stderr
    assert tables(db) == {"schema_migrations"}
    assert tracking_ids(db) == []

    again = run("up", SEED, database)
    assert again.exit_code == 0, again.stderr
    assert tables(db) == SEED_TABLES | {"schema_migrations"}


def test_seed_passes_check():
    result = check(SEED, "--strict")
    assert result.exit_code == 0, result.stdout
    assert "0 error(s), 0 warning(s)" in result.stdout

"""The hint for SQL newer than the server: pure, no database (the matrix proves the samples)."""
from __future__ import annotations

from sqlmigrate import versions


def test_hints_only_for_errors_an_older_server_gives_for_unknown_sql():
    merge = "merge into t using s on t.id = s.id when matched then delete"
    assert versions.newer_server_hint(merge, "42601", 140011) == \
        "MERGE needs PostgreSQL 15 or newer; this server is PostgreSQL 14.11"
    assert versions.newer_server_hint(merge, "23505", 140011) is None  # a unique violation is not about the version
    assert versions.newer_server_hint(merge, "42601", 150000) is None
    assert versions.newer_server_hint("select 1", "42601", 140011) is None
    # the newest major the statement needs: upgrading to 15 would not do
    assert versions.newer_server_hint(merge + " returning *", "42601", 140000).startswith(
        "MERGE ... RETURNING needs PostgreSQL 17")
    assert versions.newer_server_hint(merge + " returning *", "42601", 160004).startswith(
        "MERGE ... RETURNING needs PostgreSQL 17")

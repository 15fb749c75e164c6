"""sqlmigrate: plain-SQL migrations for PostgreSQL.

The library API lives in `sqlmigrate.api`; `from sqlmigrate import migrate`
brings a database to the latest migration in one call.
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    # lazy, so that `sqlmigrate --help` imports neither psycopg nor sqlparse
    if name in ("migrate", "rollback", "status", "migrate_many"):
        from sqlmigrate import api

        return getattr(api, name)
    raise AttributeError(name)

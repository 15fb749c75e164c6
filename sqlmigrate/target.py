"""The database a command works on: made once from the settings and passed down.

Imports no driver: `check` and `--help` must start without psycopg.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlmigrate.config import Settings, mask_url
from sqlmigrate.model import TrackingTable


@dataclass(frozen=True)
class Target:
    """Connection settings, tracking table and display name of one database.

    `server_options` are the settings the user gave for the migration SQL
    (lock_timeout, statement_timeout), which hold for every migration.
    """

    url: str
    table: TrackingTable
    server_options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Target:
        return cls(settings.database_url, TrackingTable.parse(settings.table),
                   tuple(settings.server_options().items()))

    @property
    def display(self) -> str:
        """The URL with its password masked: the only form that is ever printed."""
        return mask_url(self.url)

    def lock_name(self, schema: str) -> str:
        """What the advisory lock key hashes (with the database name): one lock per
        tracking table, so runs on other tables of the same database never wait."""
        return f"sqlmigrate:{schema}.{self.table.name}"

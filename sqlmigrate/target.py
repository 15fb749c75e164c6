"""The database a command works on: made once from the settings and passed down.

Imports no driver: `check` and `--help` must start without psycopg.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlmigrate.config import Settings, mask_url
from sqlmigrate.model import TrackingTable


@dataclass(frozen=True)
class Target:
    """Connection settings, tracking table and display name of one database,
    or of one schema of it (`schema`, SPEC 10: schema-per-tenant).

    `server_options` are the settings that hold for every migration: those the
    user gave for the migration SQL (lock_timeout, statement_timeout), and a
    tenant's search_path.
    """

    url: str
    table: TrackingTable
    server_options: tuple[tuple[str, str], ...] = ()
    schema: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> Target:
        """The target of `settings`, or of `url` with the other settings (one of many)."""
        return cls(settings.database_url if url is None else url, TrackingTable.parse(settings.table),
                   tuple(settings.server_options().items()))

    def in_schema(self, schema: str) -> Target:
        """The tenant `schema` of this database as a target of its own: its
        search_path is that schema alone, so the migration SQL and the tracking
        table (named without a schema) are in it. The session checks that the
        server resolved it to that schema (fleet)."""
        return dataclasses.replace(self, schema=schema, server_options=(*self.server_options, ("search_path", schema)))

    @property
    def display(self) -> str:
        """The URL with its password masked, and the tenant's schema: the only form
        that is ever printed."""
        shown = mask_url(self.url)
        return f"{shown} (schema {self.schema})" if self.schema is not None else shown

    def lock_name(self, schema: str) -> str:
        """What the advisory lock key hashes (with the database name): one lock per
        tracking table, so runs on other tables of the same database never wait."""
        return f"sqlmigrate:{schema}.{self.table.name}"

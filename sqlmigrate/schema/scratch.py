"""The scratch database of `test`, `drift` and `plan`: made on the target's server, always dropped.

Needs a connection (psycopg, db.py); never writes to the target database itself.
"""
from __future__ import annotations

import contextlib
import dataclasses
import uuid
from typing import NoReturn

import psycopg
from psycopg import sql

from sqlmigrate import config, db
from sqlmigrate.errors import DatabaseUnavailable
from sqlmigrate.target import Target

SCRATCH_PREFIX = "sqlmigrate_scratch_"


class ScratchDatabase:
    """A database of its own on the target's server, for `test`, `drift` and `plan`.

    Created from template0 with the target's encoding and locale, named
    sqlmigrate_scratch_<random> (CREATE DATABASE fails rather than reuse an
    existing name), and dropped on exit whatever happened, Ctrl-C included.
    Nothing is written to the target database itself.
    """

    def __init__(self, url: str, options: dict[str, str] | None = None) -> None:
        self.target_url = url
        self.options = options or {}
        self.name = ""
        self.created: list[str] = []  # every scratch database this one made (recreate makes another)
        self._admin: psycopg.Connection | None = None
        self._sessions: list[psycopg.Connection] = []

    def __enter__(self) -> "ScratchDatabase":
        self._admin = db.connect(self.target_url)
        try:
            self._refuse_standby()
            self._create()
        except BaseException:
            with contextlib.suppress(Exception):  # the error that stopped the CREATE is the one to report
                self.__exit__()  # a Ctrl-C that landed as the CREATE completed leaves a database to drop
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._drop()
        finally:
            if self._admin is not None:
                self._admin.close()

    @property
    def url(self) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.target_url) if self.target_url else {}
        params["dbname"] = self.name
        return psycopg.conninfo.make_conninfo("", **params)

    def connect(self) -> psycopg.Connection:
        """A connection to the scratch database (closed by `recreate` and on exit)."""
        conn = db.connect(self.url, options=self.options)
        self._sessions.append(conn)
        return conn

    def session(self, target: Target) -> db.Session:
        """A session on the scratch database with the target's tracking table,
        created (with its schema, if named) here."""
        conn = self.connect()
        session = db.Session(dataclasses.replace(target, url=self.url), conn)
        tracking = session.tracking
        if tracking.is_schema_given:
            try:
                conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(tracking.schema or "")))
            except psycopg.Error as exc:
                raise db.database_error(exc, "creating the tracking table's schema in the scratch database") from exc
        tracking.create()
        return session

    def recreate(self) -> None:
        """Drop the scratch database and start again with an empty one."""
        self._drop()
        self._create()

    def _create(self) -> None:
        assert self._admin is not None
        admin = self._admin
        try:
            row = admin.execute(
                "select pg_encoding_to_char(encoding), datcollate, datctype from pg_database "
                "where datname = current_database()").fetchone()
        except psycopg.Error as exc:
            raise db.database_error(exc, "reading the target database's encoding") from exc
        assert row is not None
        encoding, collate, ctype = row
        locale = sql.SQL("encoding {} lc_collate {} lc_ctype {}").format(
            sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype))
        locale = sql.SQL(" ").join([locale, self._icu_options()])
        for _ in range(3):
            name = SCRATCH_PREFIX + uuid.uuid4().hex[:16]
            # named before the CREATE is sent: a Ctrl-C may cancel it too late, once the
            # database exists, and _drop (drop if exists) must still know its name
            self.name = name
            try:
                admin.execute(sql.SQL("create database {} template template0 {}").format(
                    sql.Identifier(name), locale))
            except psycopg.Error as exc:
                self.name = ""  # not created, or another's: never dropped by this run
                if isinstance(exc, psycopg.errors.DuplicateDatabase):
                    continue  # never reuse a database this run did not create
                self._refuse_create(exc)
            self.created.append(name)
            return
        raise DatabaseUnavailable("could not find a free name for a scratch database")

    def _refuse_standby(self) -> None:
        """A server in recovery is read-only: say so before trying CREATE DATABASE (SPEC 7)."""
        assert self._admin is not None
        try:
            row = self._admin.execute("select pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            raise db.database_error(exc, "checking the server for a scratch database") from exc
        if row and row[0]:
            raise DatabaseUnavailable(
                f"{db.describe_database(self._admin)} is a read-only standby, where no scratch database can be "
                "created: give --scratch-url, a server (and database to connect to) where one may be")

    def _refuse_create(self, exc: psycopg.Error) -> NoReturn:
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            raise DatabaseUnavailable(
                f"cannot create a scratch database on the server of {config.mask_url(self.target_url)}: "
                f"{_first_line(exc)}",
                details=("test, drift and plan build the schema in a database of their own, on the target's "
                         "server unless --scratch-url names another: the role needs the CREATEDB right there "
                         "(ALTER ROLE ... CREATEDB), or give --scratch-url with a server where it has it",),
            ) from exc
        raise db.database_error(exc, "creating a scratch database") from exc

    def _icu_options(self) -> sql.Composable:
        assert self._admin is not None
        version = self._admin.info.server_version
        if version < 150000:
            return sql.SQL("")
        column = "datlocale" if version >= 170000 else "daticulocale"
        try:
            row = self._admin.execute(
                sql.SQL("select datlocprovider, {} from pg_database where datname = current_database()").format(
                    sql.Identifier(column))).fetchone()
        except psycopg.Error as exc:
            raise db.database_error(exc, "reading the target database's locale") from exc
        if row is None or row[0] == "c":
            return sql.SQL("")
        if row[0] == "i":
            return sql.SQL("locale_provider icu icu_locale {}").format(sql.Literal(row[1]))
        return sql.SQL("locale_provider builtin builtin_locale {}").format(sql.Literal(row[1]))

    def _drop(self) -> None:
        """Drop the scratch database; a second Ctrl-C during the drop does not stop it."""
        if not self.name:
            return
        for conn in self._sessions:
            with contextlib.suppress(Exception):
                conn.close()
        self._sessions.clear()
        try:
            self._drop_once()
        except KeyboardInterrupt:
            self._drop_once()
            raise
        self.name = ""

    def _drop_once(self) -> None:
        admin = self._admin
        if admin is None or admin.closed or admin.broken:
            admin = self._admin = db.connect(self.target_url)
        force = sql.SQL(" with (force)") if admin.info.server_version >= 130000 else sql.SQL("")
        try:
            admin.execute(sql.SQL("drop database if exists {}{}").format(sql.Identifier(self.name), force))
        except psycopg.Error as exc:
            raise db.database_error(exc, f"dropping the scratch database {self.name}") from exc


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


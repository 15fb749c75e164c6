"""Schemas as data: snapshot records, their diff and text forms, the catalog
reader, scratch databases and the round trip of `test`.

The pure names are imported here; those that need a connection (and so
psycopg) only when first used, so that the diff and text forms load without it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sqlmigrate.schema.diff import Difference, diff, normalise_body
from sqlmigrate.schema.records import KINDS, MEMBER_KINDS, Attributes, Key, Snapshot
from sqlmigrate.schema.text import format_snapshot

if TYPE_CHECKING:
    from sqlmigrate.schema.catalog import snapshot
    from sqlmigrate.schema.roundtrip import RoundTrip
    from sqlmigrate.schema.scratch import SCRATCH_PREFIX, ScratchDatabase

_NEEDS_A_CONNECTION = {
    "snapshot": "catalog",
    "ScratchDatabase": "scratch",
    "SCRATCH_PREFIX": "scratch",
    "RoundTrip": "roundtrip",
}


def __getattr__(name: str) -> Any:
    module = _NEEDS_A_CONNECTION.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["KINDS", "MEMBER_KINDS", "Attributes", "Key", "Snapshot", "Difference", "diff", "normalise_body",
           "format_snapshot", "snapshot", "ScratchDatabase", "SCRATCH_PREFIX", "RoundTrip"]

"""A migration file's bytes and text, as far as they are known without lexing.

SPEC 2's file checksum, the byte order mark, the UTF-8 test, PostgreSQL's
folding of unquoted names, and the line and column of an offset. Apart from
sqlfile (the lexer) so that what only reads and hashes files (`status`,
`verify`, `up`'s parent process while a child validates) never imports sqlparse.
"""
from __future__ import annotations

import hashlib

BOM = b"\xef\xbb\xbf"


def normalise_bytes(raw: bytes) -> bytes:
    """SPEC 2: a leading BOM removed and CRLF turned into LF."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    return raw.replace(b"\r\n", b"\n") if b"\r" in raw else raw  # no copy of a file without CR


def checksum(raw: bytes) -> str:
    """Lowercase hex SHA-256 of the normalised bytes (SPEC 2)."""
    return hashlib.sha256(normalise_bytes(raw)).hexdigest()


def same_checksum(raw: bytes, other: bytes) -> bool:
    """Whether two files have the same checksum, told without hashing either."""
    return normalise_bytes(raw) == normalise_bytes(other)


def without_bom(raw: bytes) -> bytes:
    return raw[len(BOM):] if raw.startswith(BOM) else raw


def check_utf8(data: bytes) -> None:
    """Raises UnicodeDecodeError unless `data` is UTF-8; ASCII, the usual case, is not decoded."""
    if not data.isascii():
        data.decode("utf-8")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(word: str) -> str:
    """An unquoted name or keyword as PostgreSQL reads it in a UTF-8 database:
    A-Z lower-cased, every other letter kept (`Äpfel` and `äpfel` are two tables)."""
    return word.lower() if word.isascii() else word.translate(_ASCII_LOWER)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of `offset` in `text`."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1

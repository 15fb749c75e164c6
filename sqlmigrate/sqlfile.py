"""Migration file bytes -> SqlFile: checksums, directives, statements with line/col.

The only user of sqlparse. One pass of its lexer per file, with PostgreSQL's
quoting rules put in front of its generic ones; everything downstream works on
the statements built here.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlparse import keywords as sqlparse_keywords
from sqlparse import tokens as T
from sqlparse.lexer import Lexer

from sqlmigrate.model import Directive, LexProblem, SqlFile, Statement

BOM = b"\xef\xbb\xbf"
MAX_WORDS = 4000  # words kept per statement; rules only look at the head

KNOWN_DIRECTIVES = ("no-transaction", "irreversible", "empty", "ignore")
_DIRECTIVE = re.compile(r"--\s*sqlmigrate\s*:\s*(.*?)\s*$", re.IGNORECASE)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$")
_COPY_END = re.compile(r"^\\\.[ \t]*(?:\r?\n|$)", re.MULTILINE)

_UnterminatedE = T.Error.UnterminatedE
_CommentClose = T.Comment.Multiline.Close

# PostgreSQL's own quoting, tried before sqlparse's generic rules (which take
# "\'" as an escape in every string and "# " as a comment, both MySQL-isms).
_POSTGRES_REGEX = [
    (r"--[^\r\n]*(?:\r\n|\r|\n)?", T.Comment.Single),
    (r"[eE]'(?:[^'\\]|\\[\s\S]|'')*'", T.String.Single),
    (r"[eE]'", _UnterminatedE),
    (r"'(?:[^']|'')*'", T.String.Single),
    (r'"(?:[^"]|"")*"', T.String.Symbol),
    (r"\*/", _CommentClose),
]


def _build_lexer() -> Lexer:
    lexer = Lexer()
    lexer.clear()
    generic = [(rx, tt) for rx, tt in sqlparse_keywords.SQL_REGEX if "# " not in rx]
    lexer.set_SQL_REGEX(_POSTGRES_REGEX + generic)
    for name in (
        "KEYWORDS_COMMON", "KEYWORDS_ORACLE", "KEYWORDS_MYSQL", "KEYWORDS_PLPGSQL",
        "KEYWORDS_HQL", "KEYWORDS_MSACCESS", "KEYWORDS_SNOWFLAKE", "KEYWORDS_BIGQUERY", "KEYWORDS",
    ):
        table = getattr(sqlparse_keywords, name, None)
        if table is not None:
            lexer.add_keywords(table)
    return lexer


_LEXER: Lexer | None = None


def _lexer() -> Lexer:
    global _LEXER
    if _LEXER is None:
        _LEXER = _build_lexer()
    return _LEXER


def normalise_bytes(raw: bytes) -> bytes:
    """SPEC 2: a leading BOM removed and CRLF turned into LF."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    return raw.replace(b"\r\n", b"\n")


def checksum(raw: bytes) -> str:
    """Lowercase hex SHA-256 of the normalised bytes (SPEC 2)."""
    return hashlib.sha256(normalise_bytes(raw)).hexdigest()


def decode(raw: bytes) -> str:
    """File bytes -> text without BOM. Raises UnicodeDecodeError."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    return raw.decode("utf-8")


class _Lines:
    """Offset -> (line, col), 1-based, counted in characters."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        find = text.find
        pos = find("\n")
        while pos >= 0:
            self._starts.append(pos + 1)
            pos = find("\n", pos + 1)

    def at(self, offset: int) -> tuple[int, int]:
        import bisect

        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


def _is_space_or_comment(ttype) -> bool:
    return ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment


def _word(ttype, value: str) -> str:
    """A token as the rules and the content checksum see it."""
    if ttype in T.Keyword or ttype in T.Name:
        if ttype in T.Keyword and (" " in value or "\n" in value or "\t" in value):
            return " ".join(value.lower().split())
        return value.lower()
    return value


class _Builder:
    """Groups the lexer's tokens into statements, tracking what sqlparse does not."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.lines = _Lines(text)
        self.statements: list[Statement] = []
        self.directives: list[Directive] = []
        self.misplaced: list[Directive] = []
        self.problems: list[LexProblem] = []
        self.content = hashlib.sha256()
        # state of the statement being built
        self.start: int | None = None
        self.end = 0
        self.words: list[str] = []
        self.truncated = False
        self.atomic_depth = 0
        self.comment_depth = 0

    # -- token handling ----------------------------------------------------

    def run(self) -> None:
        pos = 0
        text = self.text
        while True:
            pos = self._lex_from(pos)
            if pos >= len(text):
                break
        self._finish_statement(len(text))

    def _lex_from(self, base: int) -> int:
        """Lex text[base:]; returns where lexing stopped (a COPY data block)."""
        text = self.text[base:] if base else self.text
        offset = base
        for ttype, value in _lexer().get_tokens(text):
            here = offset
            offset += len(value)
            if self.comment_depth:
                self._inside_nested_comment(ttype, value)
                continue
            if ttype in T.Comment:
                self._comment(ttype, value, here)
                continue
            if ttype in T.Whitespace or ttype in T.Newline:
                continue
            if ttype in T.Error:
                self._error_token(ttype, value, here)
            self._significant(ttype, value, here, offset)
            if ttype is T.Punctuation and value == ";" and not self.atomic_depth:
                stopped = self._finish_statement(offset)
                if stopped is not None:
                    return stopped
        return len(self.text)

    def _comment(self, ttype, value: str, here: int) -> None:
        if ttype is _CommentClose:
            line, col = self.lines.at(here)
            self.problems.append(LexProblem("syntax", "'*/' outside a comment", line, col))
            return
        if ttype in T.Comment.Multiline:
            opened = value.count("/*") - value.count("*/")
            if opened > 0:  # PostgreSQL nests block comments; sqlparse does not
                self.comment_depth = opened
                self._nested_start = here
            elif not value.endswith("*/"):
                self._unterminated(here, "block comment")
            return
        match = _DIRECTIVE.match(value.rstrip("\r\n"))
        if match is None:
            return
        line, col = self.lines.at(here)
        words = match.group(1).replace(",", " ").split()
        directive = Directive(
            word=words[0].lower() if words else "",
            args=tuple(w.lower() for w in words[1:]),
            line=line,
            col=col,
        )
        if self.start is None and not self.statements:
            self.directives.append(directive)
            self.content.update(_directive_text(directive).encode())
            self.content.update(b" ")
        else:
            self.misplaced.append(directive)

    def _inside_nested_comment(self, ttype, value: str) -> None:
        if ttype is _CommentClose:
            self.comment_depth -= 1
        else:
            self.comment_depth += value.count("/*") - value.count("*/")
        if self.comment_depth <= 0:
            self.comment_depth = 0

    def _error_token(self, ttype, value: str, here: int) -> None:
        if ttype is _UnterminatedE or value == "'":
            self._unterminated(here, "string")
        elif value == '"':
            self._unterminated(here, "quoted identifier")
        elif value == "$" and _DOLLAR_TAG.match(self.text, here):
            # sqlparse resolves every terminated dollar quote up front; a tag
            # left over here never finds its closing tag
            self._unterminated(here, "dollar-quoted body")

    def _unterminated(self, here: int, what: str) -> None:
        if any(p.rule == "unterminated" for p in self.problems):
            return  # everything after the first one is noise
        line, col = self.lines.at(here)
        self.problems.append(
            LexProblem("unterminated", f"{what} starting here never ends", line, col)
        )

    def _significant(self, ttype, value: str, here: int, end: int) -> None:
        if self.start is None:
            self.start = here
            self.words = []
            self.truncated = False
        self.end = end
        word = _word(ttype, value)
        self.content.update(word.encode())
        self.content.update(b" ")
        if len(self.words) < MAX_WORDS:
            self.words.append(word)
            self._track_atomic(word)
        else:
            self.truncated = True

    def _track_atomic(self, word: str) -> None:
        # SQL-standard bodies (BEGIN ATOMIC ... END) hold ';' that do not end
        # the CREATE FUNCTION/PROCEDURE; CASE ... END nests inside them
        if self.atomic_depth:
            if word == "case":
                self.atomic_depth += 1
            elif word == "end" or word.startswith("end "):
                self.atomic_depth -= 1
        elif word == "atomic" and len(self.words) >= 2 and self.words[-2] == "begin":
            if self.words[0] in ("create", "create or replace"):
                self.atomic_depth = 1

    def _finish_statement(self, stop: int) -> int | None:
        """Close the statement ending at `stop`; returns where to resume lexing
        when a COPY data block follows, else None."""
        if self.start is None:
            return None
        start = self.start
        end = stop if self.words and self.words[-1] == ";" else self.end
        words = tuple(self.words)
        line, col = self.lines.at(start)
        copy_data = None
        resume = None
        if _is_copy_from_stdin(words):
            data_start = self.text.find("\n", end)
            data_start = len(self.text) if data_start < 0 else data_start + 1
            match = _COPY_END.search(self.text, data_start)
            if match is None:
                self._unterminated(start, "COPY data (no '\\.' line)")
                resume = len(self.text)
                copy_data = self.text[data_start:]
            else:
                copy_data = self.text[data_start:match.start()]
                resume = match.end()
            self.content.update(copy_data.encode())
            self.content.update(b" ")
        self.statements.append(
            Statement(
                text=self.text[start:end],
                offset=start,
                line=line,
                col=col,
                words=words,
                is_truncated=self.truncated,
                copy_data=copy_data,
            )
        )
        self.start = None
        self.words = []
        self.atomic_depth = 0
        return resume

    def finish_checks(self) -> None:
        if self.comment_depth:
            self._unterminated(getattr(self, "_nested_start", 0), "block comment")


def _is_copy_from_stdin(words: tuple[str, ...]) -> bool:
    if not words or words[0] != "copy":
        return False
    for before, after in zip(words, words[1:]):
        if before == "from" and after == "stdin":
            return True
    return False


def _directive_text(directive: Directive) -> str:
    if directive.args:
        return f"-- sqlmigrate: {directive.word} {', '.join(directive.args)}"
    return f"-- sqlmigrate: {directive.word}"


def parse_text(path: Path, text: str, file_checksum: str | None = None) -> SqlFile:
    """Lex `text` (already decoded, BOM removed) into a SqlFile."""
    if file_checksum is None:
        file_checksum = checksum(text.encode("utf-8"))
    builder = _Builder(path, text)
    builder.run()
    builder.finish_checks()
    return SqlFile(
        path=path,
        checksum=file_checksum,
        text=text,
        statements=tuple(builder.statements),
        directives=tuple(builder.directives),
        misplaced_directives=tuple(builder.misplaced),
        problems=tuple(builder.problems),
        content_checksum=builder.content.hexdigest(),
    )


def content_checksum(path: Path, text: str) -> str:
    """SPEC 2's content checksum: the file's tokens, comments and spacing aside."""
    return parse_text(path, text).content_checksum


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of `offset` in `text`."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1

"""Migration file bytes -> SqlFile: checksums, directives, statements with line/col.

The only user of sqlparse. One pass of its lexer per file, with PostgreSQL's
lexical rules put in front of its generic ones; everything downstream works on
the statements built here. Imports only model and sqltext.
"""
from __future__ import annotations

import bisect
import hashlib
import re
from array import array
from collections import defaultdict
from pathlib import Path

from sqlparse import keywords as sqlparse_keywords
from sqlparse import tokens as T
from sqlparse.lexer import Lexer

from sqlmigrate.model import Directive, LexProblem, SqlFile, Statement
from sqlmigrate.sqltext import checksum, fold, without_bom

MAX_WORDS = 4000  # words kept per statement; rules only look at the head

_DIRECTIVE = re.compile(r"--\s*sqlmigrate\s*:\s*(.*?)\s*$", re.IGNORECASE)
_COPY_END = re.compile(r"^\\\.[ \t]*(?:\r?\n|$)", re.MULTILINE)
_COMMENT_DELIMITER = re.compile(r"/\*|\*/")

# An opener whose end never comes: the rest of the file belongs to it.
_Unterminated = T.Error.Unterminated
_CommentClose = T.Comment.Multiline.Close

# One character of a PostgreSQL operator ('--' and '/*' start comments, never
# operators), and one of the characters SQL's own operators are made of.
_OP_STEP = r"(?:[~!@#^&|`?%*<>=+]|-(?!-)|/(?!\*))"
_SQL_OP_STEP = r"(?:[*<>=+]|-(?!-)|/(?!\*))"

_MULTIWORD_STARTS = (
    "NOT|IF|ORDER|GROUP|PRIMARY|CREATE|END|DOUBLE|UNION|NULLS|ASC|DESC|LEFT|RIGHT|FULL|INNER|"
    "OUTER|CROSS|NATURAL|STRAIGHT|JOIN|LATERAL|HANDLER|GO|LIKE|ILIKE|RLIKE|REGEXP"
)


def _by_first_letter(words: str) -> str:
    """The alternation `words` ("NOT|NULLS|IF") grouped by first letter
    ("N(?:OT|ULLS)|I(?:F)"): the same words, which the regex engine rules out
    faster, one first letter at a time."""
    groups: dict[str, list[str]] = {}
    for word in words.split("|"):
        groups.setdefault(word[0], []).append(word[1:])
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())


# The characters of an unquoted name as PostgreSQL reads them (scan.l's
# ident_start and ident_cont): ASCII letters, "_" and every character beyond
# ASCII (a "€", an accent on its own, a no-break space), then digits and "$"
# too. Python's \w and \s know other sets: a "€e'...'" read with them would
# start an E'' string where the server reads the name "€e" and a plain string.
_IDENT_START = r"[A-Za-z_\x80-\U0010ffff]"
_TAG_CHAR = r"[A-Za-z_0-9\x80-\U0010ffff]"
_IDENT_CHAR = r"[A-Za-z_0-9$\x80-\U0010ffff]"
# PostgreSQL's whitespace ("space" in scan.l): ASCII only (\v from PostgreSQL 16)
_SPACE = r"[ \t\n\r\f\v]"

# The body of an E'' string: backslash escapes and doubled quotes. What may
# lie between two quotes that make one literal (scan.l's
# whitespace_with_newline): spaces and "--" comments, with a line break.
_E_BODY = r"'[^'\\]*(?:(?:\\[\s\S]|'')[^'\\]*)*'"
_QUOTE_CONTINUE = r"(?:[ \t\f]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*"

# A dollar quote's delimiter as PostgreSQL reads it (scan.l's dolq_start and
# dolq_cont): "$", then optionally a tag of ASCII letters, "_" and any character
# beyond ASCII, digits after the first, then "$". sqlparse's own resolver takes
# only Latin letters in a tag, so it would cut `$ф$ ...; COMMIT; ... $ф$` at
# its semicolons while the server runs one literal: a COMMIT hidden from
# `check` by the one, and run by the other.
_DOLLAR_TAG = rf"\$(?:{_IDENT_START}{_TAG_CHAR}*)?\$"
_DOLLAR_DELIMITER = re.compile(rf"(?=({_DOLLAR_TAG}))")
# a "$" right after a name's character is part of that name; after a quoted
# name it opens a literal (a typed one: "text"$$a$$)
_MAY_OPEN_DOLLAR = re.compile(rf"(?<!{_IDENT_CHAR})")
_COMMENT_OPEN = re.compile(r"/\*(?!\+)")
_HINT_OPEN = re.compile(r"/\*\+")
_COMMENT_CLOSE = re.compile(r"\*/")


class _Spans:
    """Where the dollar-quoted bodies and block comments of a text open and
    close, found in one pass over it; an opener is paired with its closer only
    when the lexer reaches it, as a "$$" or "/*" inside a string opens nothing.

    The design of sqlparse's find_delimited_spans (same token types, the same
    pairing), with PostgreSQL's dollar-quote tags."""

    __slots__ = ("openers", "_closers")

    def __init__(self, text: str) -> None:
        #: offset of an opener -> (offset after it, its closer, its token type)
        self.openers: dict[int, tuple[int, str, object]] = {}
        #: closer -> (starts, ends), ascending
        self._closers: dict[str, tuple[list[int], list[int]]] = {}
        if "$" in text:
            for found in _DOLLAR_DELIMITER.finditer(text):
                start, tag = found.start(), found.group(1)
                self._add_closer(tag, start, start + len(tag))
                if _MAY_OPEN_DOLLAR.match(text, start):
                    self.openers[start] = (start + len(tag), tag, T.Literal)
        if "/*" in text:
            for regex, ttype in ((_COMMENT_OPEN, T.Comment.Multiline), (_HINT_OPEN, T.Comment.Multiline.Hint)):
                for found in regex.finditer(text):
                    self.openers[found.start()] = (found.end(), "*/", ttype)
            for found in _COMMENT_CLOSE.finditer(text):
                self._add_closer("*/", found.start(), found.end())

    def _add_closer(self, closer: str, start: int, end: int) -> None:
        starts, ends = self._closers.setdefault(closer, ([], []))
        starts.append(start)
        ends.append(end)

    def resolve(self, pos: int) -> tuple[int, object] | None:
        """(offset after the span, its token type) of the span opening at
        `pos`; None when it never closes."""
        after_opener, closer, ttype = self.openers[pos]
        starts, ends = self._closers.get(closer, ((), ()))
        index = bisect.bisect_left(starts, after_opener)
        return (ends[index], ttype) if index < len(starts) else None


# PostgreSQL's own lexical rules, tried before sqlparse's generic ones (which
# take "\'" as an escape in every string, "# " as a comment, "-1" as one number
# and "[1,2]" as a name: MySQL and SQLite habits that PostgreSQL does not share).
# _Spans resolves terminated dollar quotes and block comments before any of
# these, so an opener that reaches the regexes never ends.
_POSTGRES_REGEX = [
    # Words and punctuation, the commonest tokens, come first, as every rule
    # tried costs time; where they match, none of the rules after them would (a
    # letter or one of ;(),[] begins none of those but E'...', left to them).
    #
    # a plain word (a name as PostgreSQL cuts it), looked up as a keyword at
    # once: sqlparse's generic list would try some 40 patterns first. Words that
    # may begin one of its multi-word keywords (NOT NULL, IF EXISTS, ORDER BY,
    # ...) are left to it, unless name characters follow ("end€" is one name);
    # the cheap test of the first letter spares other tokens that longer one.
    (rf"(?![eE]')(?={_IDENT_START})(?!(?:{_by_first_letter(_MULTIWORD_STARTS)})(?!{_IDENT_CHAR})){_IDENT_START}"
     rf"{_IDENT_CHAR}*", sqlparse_keywords.PROCESS_AS_KEYWORD),
    (r"[;(),\[\]]", T.Punctuation),
    (rf"{_SPACE}+", T.Whitespace),
    (r"--[^\r\n]*(?:\r\n|\r|\n)?", T.Comment.Single),
    # a closing quote is never followed by another one: that would be a doubled quote
    # an E'' string goes on, with its escapes, in a quote after whitespace that
    # holds a line break (scan.l's quotecontinue): E'a'<newline>'\'...' is one
    # literal, its second "\'" an escaped quote
    (rf"[eE]{_E_BODY}(?:{_QUOTE_CONTINUE}{_E_BODY})*(?!')", T.String.Single),
    (r"'[^']*(?:''[^']*)*'(?!')", T.String.Single),
    (r'"[^"]*(?:""[^"]*)*"(?!")', T.String.Symbol),
    (rf"[eE]'|'|\"|/\*|{_DOLLAR_TAG}", _Unterminated),
    (r"\*/(?!\*)", _CommentClose),
    (r"(?:0[xob][0-9a-f_]+|(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:e[+-]?\d+)?)(?![\w$])",
     T.Number),
    # operators as PostgreSQL cuts them, so that "a>=-1" reads like "a >= - 1": a
    # trailing + or - starts the next token unless the operator has a character
    # SQL's own operators lack
    (rf"(?=(?:{_OP_STEP})*?[~!@#^&|`?%]){_OP_STEP}+", T.Operator),
    (rf"{_SQL_OP_STEP}*(?:[*<>=]|/(?!\*))|[+\-]", T.Operator),
]


def _generic_regex() -> list:
    """sqlparse's rules minus those that contradict PostgreSQL."""
    dropped = (T.Keyword.TZCast,)  # swallows the zone's string literal into a keyword
    return [
        (rx, tt) for rx, tt in sqlparse_keywords.SQL_REGEX
        if "# " not in rx and tt not in dropped
    ]


def _build_lexer(*, with_rules: bool = True) -> Lexer:
    """sqlparse's Lexer with our rules and every keyword table; without its own
    compiled rule list when only its keyword lookup is wanted."""
    lexer = Lexer()
    lexer.clear()
    if with_rules:
        lexer.set_SQL_REGEX(_RULES)
    for name in (
        "KEYWORDS_COMMON", "KEYWORDS_ORACLE", "KEYWORDS_MYSQL", "KEYWORDS_PLPGSQL",
        "KEYWORDS_HQL", "KEYWORDS_MSACCESS", "KEYWORDS_SNOWFLAKE", "KEYWORDS_BIGQUERY", "KEYWORDS",
    ):
        table = getattr(sqlparse_keywords, name, None)
        if table is not None:
            lexer.add_keywords(table)
    return lexer


_RULES = _POSTGRES_REGEX + _generic_regex()


# an escape or a [set] (both kept as they are), or a '(' that opens a capturing group
_REFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_OPEN_PAREN = re.compile(r"\\[\s\S]|\[\^?\]?(?:\\[\s\S]|[^\]\\])*\]|\((?!\?)")


def _uncaptured(regex: str) -> str:
    """`regex` with its groups made non-capturing, for the tokenizer's combined
    pattern: that is only asked which rule matched and where, and each group
    costs every match time. A named
    group stays, and a regex that refers to its groups (\\1, (?P=name)) is left
    as it is. Text work only: compiling each rule to check it cost more than
    the combined pattern's compile, at every start of the tool."""
    if _REFERENCE.search(regex):
        return regex
    return _OPEN_PAREN.sub(lambda match: "(?:" if match.group() == "(" else match.group(), regex)


class _Tokenizer:
    """sqlparse's Lexer.get_tokens, minus whitespace, with where each token starts.

    Same rules and keyword tables as the lexer it wraps, and its way of
    resolving dollar quotes and block comments (_Spans, with PostgreSQL's
    dollar-quote tags). The driving loop differs: the ordered rule list is
    compiled into one alternation (Python takes the first alternative that
    matches, as sqlparse's loop takes the first rule), with the whitespace
    before a token skipped in the same match and the rules' own groups made
    non-capturing. One regex call per token instead of one per rule tried: a
    third of the time. Where a rule would not survive being combined (one that
    refers to its own groups), sqlparse's own loop runs instead, and with it
    sqlparse's narrower dollar-quote tags.
    """

    def __init__(self) -> None:
        self._actions: dict[str | None, object] = {}
        branches = []
        for index, (regex, action) in enumerate(_RULES):
            self._actions[f"r{index}"] = action
            branches.append(f"(?P<r{index}>{_uncaptured(regex)})")
        self._keyword_types: dict[str, object] = {}  # sqlparse looks each word up in nine tables
        self._match = None
        if not any(_REFERENCE.search(rx) for rx, _ in _RULES):
            self._match = re.compile(rf"{_SPACE}*(?:" + "|".join(branches) + ")?", re.IGNORECASE | re.UNICODE).match
        self._lexer = _build_lexer(with_rules=self._match is None)

    def tokens(self, text: str):
        """(type, value, start) of each token of `text` but whitespace."""
        if self._match is None:
            yield from self._sqlparse_tokens(text)
            return
        spans = _Spans(text)
        openers = spans.openers
        match, length = self._match, len(text)
        pos = 0
        while True:
            found = match(text, pos)
            assert found is not None  # every part of the pattern is optional: it always matches
            name = found.lastgroup
            start = found.start(name) if name else found.end()
            if start >= length:
                return
            if start in openers:
                resolved = spans.resolve(start)
                if resolved is not None:
                    pos, ttype = resolved
                    yield ttype, text[start:pos], start
                    continue
            if name is None:  # no rule matches here: sqlparse's one-character error token
                pos = start + 1
                yield T.Error, text[start], start
                continue
            pos = found.end()
            value = found.group(name)
            yield self.type_of(name, value), value, start

    def type_of(self, rule: str, value: str):
        """The type of `value` matched by `rule`, a group name of the combined
        pattern: the rule's own, or for a word, what the keyword tables say."""
        action = self._actions[rule]
        if action is not sqlparse_keywords.PROCESS_AS_KEYWORD:
            return action
        ttype = self._keyword_types.get(value)
        if ttype is None:
            if len(self._keyword_types) > 50_000:  # a file of generated names: keep memory flat
                self._keyword_types.clear()
            ttype = self._keyword_types[value] = self._lexer.is_keyword(value)[0]
        return ttype

    def _sqlparse_tokens(self, text: str):
        pos = 0
        for ttype, value in self._lexer.get_tokens(text):
            start = pos
            pos += len(value)
            if ttype not in T.Whitespace and ttype not in T.Newline:
                yield ttype, value, start


_TOKENIZER: _Tokenizer | None = None


def _tokenizer() -> _Tokenizer:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = _Tokenizer()
    return _TOKENIZER


class _Lines:
    """Offset -> (line, col), 1-based, counted in characters."""

    def __init__(self, text: str) -> None:
        self._starts = array("q", [0])  # 8 bytes a line, not a 36-byte int object
        find = text.find
        pos = find("\n")
        while pos >= 0:
            self._starts.append(pos + 1)
            pos = find("\n", pos + 1)

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


_SKIP, _COMMENT, _EXACT, _FOLD = range(4)
_KINDS: dict = {}


def _kind(ttype) -> int:
    """What a token type is to the builder; cached, as the lexer yields few types."""
    kind = _KINDS.get(ttype)
    if kind is None:
        if ttype in T.Whitespace or ttype in T.Newline:
            kind = _SKIP
        elif ttype in T.Comment:
            kind = _COMMENT
        elif ttype in T.Literal or ttype in T.Error:
            kind = _EXACT
        else:
            kind = _FOLD
        _KINDS[ttype] = kind
    return kind


def _word(ttype, value: str, kind: int) -> str:
    """A token as the rules and the content checksum see it (SPEC 2): literals
    and quoted names exactly, everything else folded like PostgreSQL does."""
    if kind == _EXACT:
        if value[0] == "E" and ttype in T.String.Single:
            return "e" + value[1:]  # the E of E'...' is not part of the literal
        return value
    value = fold(value)
    if " " in value or "\n" in value or "\t" in value or "\r" in value:
        return " ".join(value.split())  # multi-word keywords: NOT  NULL
    return value


def _nested_comment_end(text: str, start: int) -> int | None:
    """End of the block comment opening at `start`, nesting as PostgreSQL does
    (sqlparse stops at the first '*/'); None when it never closes."""
    depth = 0
    for match in _COMMENT_DELIMITER.finditer(text, start):
        depth += 1 if match.group() == "/*" else -1
        if depth == 0:
            return match.end()
    return None


def _plain_word(ttype, value: str) -> str:
    """The word of a token that needs no more than _Builder._lex_inline does with
    it; "" for the others: comments, openers that never end, the words BEGIN
    ATOMIC bodies are tracked by (_track_atomic) and, were there any, a ';' word
    not spelt ';' or the reverse (_token tests the spelling)."""
    kind = _kind(ttype)
    if kind == _SKIP or kind == _COMMENT or ttype is _Unterminated:
        return ""
    word = _word(ttype, value, kind)
    if word in ("case", "end", "atomic", "as") or word.startswith("end ") or (word == ";") != (value == ";"):
        return ""
    return word


# rule (a group name of the tokenizer's pattern) -> spelling -> _plain_word of the token
_PLAIN_WORDS: defaultdict[str, dict[str, str]] = defaultdict(dict)
_COUNTED = frozenset({"(", ")", ";"})

_UNTERMINATED_WHAT = {"$": "dollar-quoted body", "/": "block comment", '"': "quoted identifier"}


class _ContentHash:
    """SPEC 2's content checksum, fed token by token: the tokens joined by single
    spaces, hashed without ever holding them all (a 5 MB INSERT has a million)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._separator = b""

    def append(self, token: str) -> None:
        self._hash.update(self._separator)
        self._hash.update(token.encode())
        self._separator = b" "

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


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
        self.content = _ContentHash()
        self.seen_sql = False  # directives are only valid before any SQL
        # state of the statement being built
        self.start: int | None = None
        self.end = 0
        self.words: list[str] = []
        self.first = ""
        self.previous = ""
        self.truncated = False
        self.atomic_depth = 0
        self.as_is_a_name = False  # the last AS of a BEGIN ATOMIC body followed "."
        self.paren_depth = 0

    def run(self) -> None:
        nul = self.text.find("\x00")
        if nul >= 0:
            # PostgreSQL accepts no NUL in SQL text, and libpq would cut the query there
            self._problem("syntax", "a NUL character (0x00): PostgreSQL accepts none in SQL text", nul)
        pos = 0
        while pos < len(self.text):
            pos = self._lex_from(pos)
        if self.paren_depth and self.start is not None and not any(
                problem.rule == "unterminated" for problem in self.problems):  # that one says it already
            # every ';' after it was taken as inside the parentheses, as the server would
            self._problem("syntax", "a '(' in this statement is never closed", self.start)
        if self.atomic_depth and self.start is not None and not any(
                problem.rule == "unterminated" for problem in self.problems):
            # every ';' after BEGIN ATOMIC was taken as inside the body: the
            # server may well have ended it, and run what follows on its own
            self._problem("syntax", "the BEGIN ATOMIC body of this statement has no END that closes it",
                          self.start)
        self._finish_statement(len(self.text))

    def _lex_from(self, base: int) -> int:
        """Lex text[base:]; returns where to go on: the end of the text, or the
        end of a region sqlparse cannot see (COPY data, a nested comment)."""
        text = self.text[base:] if base else self.text
        tokenizer = _tokenizer()
        if tokenizer._match is None:
            return self._lex_tokens(base, text)
        return self._lex_inline(base, text, tokenizer)

    def _lex_tokens(self, base: int, text: str) -> int:
        """_lex_from a token at a time, as the tokenizer yields them."""
        for ttype, value, start in _tokenizer().tokens(text):
            resume = self._token(ttype, value, base + start)
            if resume is not None:
                return resume
        return len(self.text)

    def _lex_inline(self, base: int, text: str, tokenizer: _Tokenizer) -> int:
        """_lex_tokens with the tokenizer's loop (_Tokenizer.tokens) written in,
        for speed: the same tokens and statements without a call per token.

        Most tokens are words, punctuation or literals, and all such a token does
        is join the statement under way, or end it: that is done here, its word
        cached per rule and spelling, with no generator, tuple or call per token.
        Every other token gets _token's full treatment.
        """
        match = tokenizer._match
        assert match is not None  # as _lex_from checked
        spans = _Spans(text)
        openers = spans.openers
        length = len(text)
        plain_words = _PLAIN_WORDS
        pos = 0
        while True:
            found = match(text, pos)
            assert found is not None  # every part of the pattern is optional: it always matches
            name = found.lastgroup
            start = found.start(name) if name else found.end()
            if start >= length:
                return len(self.text)
            if start in openers and (resolved := spans.resolve(start)) is not None:
                pos, ttype = resolved
                value = text[start:pos]
            elif name is None:  # no rule matches here: sqlparse's one-character error token
                pos = start + 1
                ttype, value = T.Error, text[start]
            else:
                pos = found.end()
                value = found.group(name)
                cache = plain_words[name]
                word = cache.get(value)
                if word is None:
                    ttype = tokenizer.type_of(name, value)
                    word = _plain_word(ttype, value)
                    # keywords, names, punctuation: a literal is its own word, and a
                    # cache of the values of a 5 MB INSERT would double its memory
                    if len(value) <= 64 and _kind(ttype) != _EXACT:
                        if len(cache) > 10_000:  # a file of generated names: keep memory flat
                            cache.clear()
                        cache[value] = word
                if word:  # _significant, on a word BEGIN ATOMIC tracking passes over
                    if self.start is None:
                        self._open(base + start, word)
                    words = self.words
                    if len(words) < MAX_WORDS:
                        words.append(word)
                    else:
                        self._past_cap(word)
                    self.end = end = base + pos
                    self.previous = word
                    if word in _COUNTED:  # what _track_atomic and _token do with them
                        if word == "(":
                            self.paren_depth += 1
                        elif word == ")":
                            if self.paren_depth:
                                self.paren_depth -= 1
                        elif not self.atomic_depth and not self.paren_depth:
                            resume = self._finish_statement(end)
                            if resume is not None:
                                return resume
                    continue
                ttype = tokenizer.type_of(name, value)
            resume = self._token(ttype, value, base + start)
            if resume is not None:
                return resume

    def _token(self, ttype, value: str, here: int) -> int | None:
        """Take one token; returns where to resume lexing when it ends what the
        lexer can see (COPY data, a nested comment, an opener that never ends)."""
        kind = _kind(ttype)
        if kind == _SKIP:
            return None
        if kind == _COMMENT:
            return self._comment(ttype, value, here)
        if ttype is _Unterminated:
            what = _UNTERMINATED_WHAT.get(value[0], "string")
            self._unterminated(what, here)
            if what != "block comment":
                self._significant(_word(ttype, self.text[here:], kind), here, len(self.text))
            return len(self.text)
        end = here + len(value)
        self._significant(_word(ttype, value, kind), here, end)
        if value == ";" and not self.atomic_depth and not self.paren_depth:
            return self._finish_statement(end)
        return None

    def _comment(self, ttype, value: str, here: int) -> int | None:
        """Handle a comment; returns where to resume when it runs past sqlparse's token."""
        if ttype is _CommentClose:
            self._problem("syntax", "'*/' outside a comment", here)
            return None
        if ttype in T.Comment.Multiline:
            if "/*" not in value[2:]:
                return None
            end = _nested_comment_end(self.text, here)
            if end is None:
                self._unterminated("block comment", here)
                return len(self.text)
            return end
        match = _DIRECTIVE.match(value.rstrip("\r\n"))
        if match is None:
            return None
        line, col = self.lines.at(here)
        words = match.group(1).replace(",", " ").split()
        directive = Directive(
            word=words[0].lower() if words else "",
            args=tuple(w.lower() for w in words[1:]),
            line=line,
            col=col,
        )
        if self.seen_sql:
            self.misplaced.append(directive)
        else:
            self.directives.append(directive)
            self.content.append(_directive_text(directive))
        return None

    def _problem(self, rule: str, message: str, here: int) -> None:
        line, col = self.lines.at(here)
        self.problems.append(LexProblem(rule, message, line, col))

    def _unterminated(self, what: str, opener: int) -> None:
        """SPEC 3: the finding points at the start of the statement the opener is
        in (its first token that is not a comment), the message at the opener;
        an opener outside any statement (a block comment between two) is both."""
        line, col = self.lines.at(opener)
        at = opener if self.start is None else self.start
        self._problem("unterminated", f"{what} starting at line {line}, column {col} never ends", at)

    def _significant(self, word: str, here: int, end: int) -> None:
        """Add a token to the statement being built. Its words go to the content
        checksum when the statement ends, in one piece; past MAX_WORDS, one by one."""
        self.seen_sql = True
        if self.start is None:
            self._open(here, word)
        self.end = end
        self._track_atomic(word, end)
        self.previous = word
        if len(self.words) < MAX_WORDS:
            self.words.append(word)
        else:
            self._past_cap(word)

    def _past_cap(self, word: str) -> None:
        """A word past MAX_WORDS: the checksum gets those kept, then each one as it comes."""
        if not self.truncated:
            self.content.append(" ".join(self.words))
            self.truncated = True
        self.content.append(word)

    def _open(self, here: int, word: str) -> None:
        """Start a statement with the token at `here`."""
        self.seen_sql = True
        self.start = here
        self.words = []
        self.first = word
        self.truncated = False

    def _track_atomic(self, word: str, end: int) -> None:
        # ';' ends a statement where PostgreSQL's own splitter ends one, never
        # elsewhere: the server splits the file sent to it, and a statement it
        # sees that was not checked here (a COMMIT, say) must not exist.
        # SQL-standard bodies (BEGIN ATOMIC ... END of CREATE FUNCTION/PROCEDURE)
        # hold ';', with CASE ... END nested inside; so do the parenthesised
        # action lists of CREATE RULE.
        if word == "(":
            self.paren_depth += 1
        elif word == ")" and self.paren_depth:
            self.paren_depth -= 1
        if self.atomic_depth:
            # CASE and END are also column labels ("select 1 as case", "t.end",
            # "select 1 case"), which only the server's grammar tells from the
            # keywords. Where unsure, a body is taken to end early: its last END
            # is then refused as a statement of its own, where the opposite
            # mistake would hide the statements after it. So a CASE opens an
            # expression only where no label can be (not after AS or ".", and
            # not followed by what follows a label), and an END closes one
            # unless it certainly is a label (after "." or the keyword AS).
            if word == "case":
                if self.previous not in ("as", ".") and not _LABEL_FOLLOWER.match(self.text, _next_token(self.text, end)):
                    self.atomic_depth += 1
            elif (word == "end" or word.startswith("end ")) and not (
                    self.previous == "." or (self.previous == "as" and not self.as_is_a_name)):
                self.atomic_depth -= 1
            elif word == "as":
                self.as_is_a_name = self.previous == "."  # t.as: a column, not the keyword
        elif (word == "atomic" and self.previous == "begin" and not self.paren_depth  # not "f(begin atomic)"
              and _creates_routine(self.words)):
            self.atomic_depth = 1

    def _finish_statement(self, stop: int) -> int | None:
        """Close the statement ending at `stop`; returns where to resume lexing
        when a COPY data block follows, else None."""
        if self.start is None:
            return None
        start = self.start
        words = tuple(self.words)
        if not self.truncated:
            self.content.append(" ".join(words))
        self.start = None
        self.words = []
        self.atomic_depth = 0
        self.paren_depth = 0
        if words == (";",):
            return None  # an empty statement: nothing to run or check
        end = stop if words[-1] == ";" else self.end
        line, col = self.lines.at(start)
        copy_data = None
        resume = None
        if _is_copy_from_stdin(words):
            data_start = self.text.find("\n", end)
            data_start = len(self.text) if data_start < 0 else data_start + 1
            line_rest = self.text[end:data_start]
            text_after = line_rest.lstrip(" \t\f\v")
            if text_after.strip(" \t\n\r\f\v") and not text_after.startswith("--"):
                # the data begins on the next line: what follows on this one would be
                # neither data nor a statement of its own
                self._problem("syntax", "text after COPY ... FROM STDIN on its line: the data starts on the "
                              "next line, and statements go after its '\\.' line",
                              end + len(line_rest) - len(text_after))
            match = _COPY_END.search(self.text, data_start)
            if match is None:
                where = f" starting at line {self.lines.at(data_start)[0]}" if data_start < len(self.text) else ""
                self._problem("unterminated", f"COPY data{where} has no '\\.' line", start)
                resume = len(self.text)
                copy_data = self.text[data_start:]
            else:
                copy_data = self.text[data_start:match.start()]
                resume = match.end()
            self.content.append(copy_data)
        self.statements.append(
            Statement(
                offset=start,
                end=end,
                line=line,
                col=col,
                words=words,
                is_truncated=self.truncated,
                copy_data=copy_data,
            )
        )
        return resume


# What may follow a column label (a select list's item, a RETURNING list's):
# never what follows the keyword CASE.
_LABEL_FOLLOWER = re.compile(
    rf"(?:[,;)\]]|\Z|(?:from|into|where|group|order|having|window|limit|offset|fetch|for|union|intersect"
    rf"|except|returning|on)(?!{_IDENT_CHAR}))", re.IGNORECASE)
_SPACES = re.compile(rf"{_SPACE}*")
_LINE_COMMENT = re.compile(r"--[^\n\r]*")  # PostgreSQL ends one at "\r" too
def _next_token(text: str, pos: int) -> int:
    """Where the next token after `pos` starts, past whitespace and comments."""
    while True:
        pos = _SPACES.match(text, pos).end()  # type: ignore[union-attr]  # it matches "" at worst
        if text.startswith("--", pos):
            pos = _LINE_COMMENT.match(text, pos).end()  # type: ignore[union-attr]  # "--" is there
        elif text.startswith("/*", pos):
            pos = _nested_comment_end(text, pos) or len(text)
        else:
            return pos


def _creates_routine(words: list[str]) -> bool:
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE, however its words are spaced
    ("create /* c */ or replace" is three words, not sqlparse's one)."""
    if words[:1] == ["create or replace"]:
        rest = words[1:2]
    elif words[:3] == ["create", "or", "replace"]:
        rest = words[3:4]
    elif words[:1] == ["create"]:
        rest = words[1:2]
    else:
        return False
    return rest in (["function"], ["procedure"])


def _is_copy_from_stdin(words: tuple[str, ...]) -> bool:
    """COPY ... FROM STDIN: its own FROM STDIN, not one in a query in parentheses."""
    if not words or words[0] != "copy":
        return False
    depth = 0
    for before, after in zip(words, words[1:]):
        if before == "(":
            depth += 1
        elif before == ")":
            depth -= 1
        elif before == "from" and after == "stdin" and depth == 0:
            return True
    return False


def _directive_text(directive: Directive) -> str:
    """A directive in normalised spelling, for the content checksum (SPEC 2).
    The rules of one `ignore` are a set: their order and repeats do not count."""
    args = directive.args
    if directive.word == "ignore":
        args = tuple(sorted(set(args)))
    if args:
        return f"-- sqlmigrate: {directive.word} {', '.join(args)}"
    return f"-- sqlmigrate: {directive.word}"


def parse(path: Path, data: bytes, file_checksum: str | None = None) -> SqlFile:
    """Lex a file's bytes (UTF-8; a leading BOM is dropped) into a SqlFile.

    The decoded text lives only while it is lexed: the SqlFile keeps the bytes.
    Raises UnicodeDecodeError.
    """
    data = without_bom(data)
    if file_checksum is None:
        file_checksum = checksum(data)
    builder = _Builder(path, data.decode("utf-8"))
    builder.run()
    return SqlFile(
        path=path,
        checksum=file_checksum,
        data=data,
        statements=tuple(builder.statements),
        directives=tuple(builder.directives),
        misplaced_directives=tuple(builder.misplaced),
        problems=tuple(builder.problems),
        content_checksum=builder.content.hexdigest(),
    )


def parse_text(path: Path, text: str, file_checksum: str | None = None) -> SqlFile:
    """`parse` for text already decoded (a down.sql stored in the tracking table)."""
    return parse(path, text.encode("utf-8"), file_checksum)


def content_checksum(path: Path, text: str) -> str:
    """SPEC 2's content checksum: the file's tokens, comments and spacing aside."""
    return parse_text(path, text).content_checksum

r"""The filter and sort language for runs, compiled to SQL for both SQLite and PostgreSQL.

Why one compiler: the CLI, REST API and Python API take the same text, and it must run
unchanged on a personal SQLite file and on the team PostgreSQL server. One parser, one SQL
generator in the subset both engines share; their few differences are fields of
:class:`Dialect`. Every user value and name is a bound ``?`` parameter (the PostgreSQL backend
rewrites ``?`` to ``%s``, so SQL text never holds user text, ``?`` or ``%``). Mistakes raise a
one-line :class:`QueryError` naming the 1-based position; length, nesting and term count are
capped, so hostile input never reaches a RecursionError or an engine limit.

Filter grammar (keywords case-insensitive; ``and`` binds tighter than ``or``)::

    expr  := conj ("or" conj)*      conj := unary ("and" unary)*
    unary := "not" unary | "(" expr ")" | field op value | field ["not"] "like" string
           | field ["not"] "in" "(" value ("," value)* ")"
    op    := = | == | != | <> | < | <= | > | >=
    value := number | 'string' | "string" | true | false | bare version (1.26.4, 2.0rc1)
    field := status | name | experiment | notebook | user | host | id | parent | nested_in
           | started_at | ended_at | duration | (params|metrics|tags|env).NAME

NAME is ``[A-Za-z0-9_-]+`` or quoted (``params.`my key```, ``params."a.b"``). In strings a
doubled quote or a backslash escapes the quote and ``\\`` is one backslash; other backslashes
stay, so ``like '50\%'`` matches a literal percent sign.

Meaning: params compare ``num`` for numbers (``1`` matches 1 and 1.0; true/false are 1/0) and
``text`` for strings; metrics take numbers only, and NaN matches nothing; tags and text fields
compare as text, byte-wise (a number reads as ``1``, ``1.5``); ``env.PKG`` compares version text
with ``=``/``like`` and version order with ``<``; times take epoch seconds or ISO-8601 (UTC
unless stated). ``!=`` and ``not in`` mean "has the key, with another value"; ``like`` ignores
case. ``not`` is plain negation: ``not params.x = 1`` includes runs without ``x``.

Sort: comma-separated ``KEY``, ``-KEY`` or ``KEY asc|desc``; NULLs (missing, NaN) come last
both ways, and ``r.id`` always ends the list so that pages are stable.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple, Union

from ..errors import QueryError, one_line


@dataclass(frozen=True)
class Dialect:
    """Everything that differs between the engines (``NULLS LAST`` does not: SQLite 3.30+).

    ``like``: case-insensitive LIKE (SQLite's LIKE already ignores ASCII case). ``binary``: makes
    text order byte-wise, so text ``<`` and sorts agree (PostgreSQL would follow its locale).
    """

    name: str
    like: str
    binary: str
    narrow: bool = False  # see narrow(): SQLite, whose planner cannot tell a rare filter


SQLITE = Dialect("sqlite", "LIKE", "", narrow=True)
POSTGRES = Dialect("postgresql", "ILIKE", ' COLLATE "C"')
DIALECTS = {d.name: d for d in (SQLITE, POSTGRES)}

MAX_LENGTH = 100_000  # characters of filter or sort text
MAX_TERMS = 500  # compared values: SQLite refuses expression trees deeper than 1000
MAX_DEPTH = 20  # nested "(" and "not": SQLite 3.40's parser stack (100) overflows near 27
MAX_SORT_KEYS = 20

#: Top-level fields: SQL expression and how values compare (text, time or number).
_FIELDS: dict[str, tuple[str, str]] = {
    **{
        f: (f"r.{f}", "text")
        for f in ("status", "name", "experiment", "host", "id", "parent", "nested_in")
    },
    "notebook": ("r.notebook_path", "text"),
    "user": ("r.user_name", "text"),
    "started_at": ("r.started_at", "time"),
    "ended_at": ("r.ended_at", "time"),
    "duration": ("(r.ended_at - r.started_at)", "number"),
}
#: Keyed fields: the row of one run with that key (the trailing ``?`` is the key).
_FROM = {
    "params": "params p WHERE p.run_id = r.id AND p.key = ?",
    "metrics": "latest_metrics lm WHERE lm.run_id = r.id AND lm.key = ?",
    "tags": "tags t WHERE t.run_id = r.id AND t.key = ?",
    "env": "package_versions pv WHERE pv.set_hash = r.packages_hash AND pv.name = ?",
}
#: A metric as a number: ``value``, falling back to ``special`` so that an infinity compares and
#: sorts as one even if a writer left ``value`` NULL. NaN stays NULL, so it never matches.
_SPECIAL = "CASE lm.special WHEN 'inf' THEN ? WHEN '-inf' THEN ? END"
_METRIC = f"COALESCE(lm.value, {_SPECIAL})"
_METRIC_PARAMS = [math.inf, -math.inf]
#: A param as a number for true/false literals, whether bools were stored with num 1/0 or NULL.
_PARAM_BOOL = "COALESCE(p.num, CASE p.value WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
_SQL_OP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_OP_ALIASES = {"==": "=", "<>": "!="}
_ORDERING = {"<", "<=", ">", ">="}
_KEYWORDS = {"and", "or", "not", "like", "in", "true", "false", "asc", "desc"}

_SPACE = re.compile(r"\s*")
_TOKEN = re.compile(  # a number running into letters or dots is a bare version: 1.26.4, 2.0rc1
    r"(?P<num>-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?P<ver>[\w.][\w.+!-]*)?"
    r"|(?P<word>[A-Za-z_]\w*)|(?P<op>==|!=|<>|<=|>=|=|<|>)|[(),-]",
    re.ASCII,
)
_NAME = re.compile(r"[\w-]+", re.ASCII)
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")  # neither engine can bind these


class Token(NamedTuple):
    """A token, also a value literal once parsed (its kind then is "num", "str" or "bool")."""

    kind: str  # word field num str op ( ) , - end; after parsing, bool (value 1.0 or 0.0)
    text: str  # as written
    pos: int  # 0-based
    value: Any  # lowercased word, float (dates become epoch seconds), unescaped string,
    #             normalized operator, or (prefix, name) of a field


class Field(NamedTuple):
    kind: str  # "column" or a key of _FROM
    name: str  # column, key, or canonical package name
    pos: int
    text: str


class Cmp(NamedTuple):
    """``field op value(s)``; op is = != < <= > >= like, not like, in or not in."""

    field: Field
    op: str
    values: tuple[Token, ...]


class Bool(NamedTuple):
    """``and`` / ``or`` of several items, or ``not`` of one."""

    op: str
    items: tuple[Node, ...]


Node = Union[Bool, Cmp]  # noqa: UP007 - evaluated at run time, and Python 3.10 is supported


def canonical_package(name: str) -> str:
    """PEP 503 normal form (``Scikit_Learn`` -> ``scikit-learn``), as package rows store it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_key(version: str) -> str:
    """A text key whose byte order follows version order (``1.9 < 1.10``, ``2.4 < 2.4.6``).

    Digit runs become ``.`` + 10-digit zero-padded numbers, letter runs ``"`` + letters, ``dev``
    is ``!``, ``post`` is ``+``, and ``#`` ends the key. Byte order ``! < " < # < + < .`` gives
    ``1.0.dev1 < 1.0rc1 < 1.0 < 1.0.post1 < 1.0.1``. Trailing zeros of the release are dropped
    (``2 == 2.0.0``); a leading ``v`` and a ``+local`` part are ignored (``2.1.0+cu118`` orders
    as ``2.1.0``). Approximate: other pre-release words order alphabetically (``a < b < c < rc``,
    right for the common ones), epochs (``1!2.0``) are not understood, and numbers over 10
    digits order right only against numbers of equal length.
    """
    v = version.strip().split("+", 1)[0].lower()
    v = v[1:] if v[:1] == "v" and v[1:2].isdigit() else v
    segs = re.findall(r"[0-9]+|[a-z]+", v)
    release = next((k for k, seg in enumerate(segs) if not seg.isdigit()), len(segs))
    while release > 1 and not segs[release - 1].strip("0"):
        release -= 1
        del segs[release]
    parts = []
    for seg in segs:
        if seg.isdigit():
            parts.append("." + seg.lstrip("0").zfill(10))
        else:
            parts.append({"dev": "!", "post": "+"}.get(seg, '"' + seg))
    return "".join(parts) + "#"


def _error(what: str, pos: int, message: str) -> QueryError:
    return QueryError(f"bad {what} at position {pos + 1}: {message}")


def _desc(tok: Token) -> str:
    return "the end" if tok.kind == "end" else f"'{one_line(tok.text, 40)}'"


def _quoted(text: str, i: int, what: str) -> tuple[str, int]:
    """Unescape the quoted string starting at ``text[i]``; returns it and the index after it."""
    q, buf, j, n = text[i], [], i + 1, len(text)
    while j < n:
        ch = text[j]
        if (ch == "\\" and j + 1 < n and text[j + 1] in (q, "\\")) or text[j : j + 2] == q * 2:
            buf.append(text[j + 1])
            j += 2
        elif ch == q:
            return "".join(buf), j + 1
        else:
            buf.append(ch)
            j += 1
    raise _error(what, i, f"unterminated string (no closing {q})")


def _tokenize(text: str, what: str) -> list[Token]:
    """Split ``text`` into tokens, checking the size and characters both engines accept."""
    if len(text) > MAX_LENGTH:
        raise _error(what, MAX_LENGTH, f"{what} too long (more than {MAX_LENGTH} characters)")
    if bad := _BAD_CHARS.search(text):
        raise _error(what, bad.start(), f"unexpected character U+{ord(bad.group()):04X}")
    toks: list[Token] = []
    i = _SPACE.match(text).end()  # type: ignore[union-attr]
    while i < len(text):
        ch, m = text[i], _TOKEN.match(text, i)
        j = m.end() if m else i
        if ch in "'\"`":
            value, j = _quoted(text, i, what)
            toks.append(Token("str", text[i:j], i, value))
        elif m is None:
            shown = f"'{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"
            raise _error(what, i, f"unexpected character {shown}")
        elif m["ver"] and ch == "-":
            raise _error(what, i, f"bad number '{one_line(m[0], 40)}'")
        elif m["ver"]:
            toks.append(Token("str", m[0], i, m[0]))
        elif m["num"] and not math.isfinite(number := float(m[0])):
            raise _error(what, i, "number out of range")
        elif m["num"]:
            toks.append(Token("num", m[0], i, number))
        elif (word := m[0].lower()) in _FROM and text.startswith(".", j):
            if text[j + 1 : j + 2] in ("'", '"', "`"):
                name, k = _quoted(text, j + 1, what)
            elif nm := _NAME.match(text, j + 1):
                name, k = nm[0], nm.end()
            else:
                raise _error(what, j + 1, f"expected a name after '{word}.'")
            if not name:
                raise _error(what, j + 1, f"empty name after '{word}.'")
            toks.append(Token("field", text[i:k], i, (word, name)))
            j = k
        else:
            kind = "word" if m["word"] else "op" if m["op"] else m[0]
            toks.append(Token(kind, m[0], i, _OP_ALIASES.get(word, word)))
        i = _SPACE.match(text, j).end()  # type: ignore[union-attr]
    return [*toks, Token("end", "", len(text), None)]


def _field(tok: Token, what: str) -> Field:
    if tok.kind == "field":
        prefix, name = tok.value
        name = canonical_package(name) if prefix == "env" else name
        return Field(prefix, name, tok.pos, one_line(tok.text, 60))
    if tok.kind == "word" and tok.value in _FIELDS:
        return Field("column", tok.value, tok.pos, tok.value)
    if tok.kind == "word" and tok.value not in _KEYWORDS:
        raise _error(what, tok.pos, f"unknown field {_desc(tok)} (expected {', '.join(_FIELDS)}"
                     ", params.NAME, metrics.NAME, tags.NAME or env.NAME)")
    raise _error(what, tok.pos, f"expected a field, got {_desc(tok)}")


def _epoch(text: str) -> float | None:
    """Seconds since the epoch of an ISO-8601 date or datetime (UTC unless it says)."""
    t = text.strip()
    t = t[:-1] + "+00:00" if t[-1:] in ("Z", "z") else t  # Python 3.10 rejects a bare Z
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def _check(f: Field, op: str, values: list[Token]) -> tuple[Token, ...]:
    """Reject comparisons the storage cannot answer; turn date strings into epoch seconds."""
    kind, like, out = _FIELDS[f.name][1] if f.kind == "column" else f.kind, "like" in op, []
    for v in values:
        message = None
        if kind == "metrics" and (v.kind == "str" or like):
            message = "metrics compare with numbers"
        elif like and kind in ("time", "number"):
            message = f"{f.text} compares with numbers or dates, not like"
        elif like and v.kind != "str":
            message = "like needs a quoted pattern"
        elif kind == "number" and v.kind != "num":
            message = f"{f.text} compares with numbers (seconds)"
        elif kind == "env" and v.kind == "bool":
            message = "expected a version"
        elif kind == "time" and v.kind != "num":
            epoch = _epoch(v.value) if v.kind == "str" else None
            if epoch is None:
                message = f"expected an ISO-8601 date or a number for {f.text}"
            v = Token("num", v.text, v.pos, epoch)
        if message:
            raise _error("filter", v.pos, message)
        out.append(v)
    return tuple(out)


class _Parser:
    """Recursive descent over the tokens; depth and term count capped (see the module doc)."""

    def __init__(self, text: str) -> None:
        self.toks, self.i, self.terms = _tokenize(text, "filter"), 0, 0

    def next(self) -> Token:
        tok = self.toks[self.i]
        self.i += tok.kind != "end"
        return tok

    def take(self, *kinds: str) -> Token | None:
        """Consume the next token if its kind, or its keyword, is one of ``kinds``."""
        tok = self.toks[self.i]
        return self.next() if tok.kind in kinds or (tok.kind == "word" and tok.value in kinds) \
            else None

    def fail(self, tok: Token, message: str) -> QueryError:
        return _error("filter", tok.pos, message)

    def chain(self, depth: int, word: str) -> Node:
        """``conj (or conj)*`` when ``word`` is "or", ``unary (and unary)*`` when "and"."""
        items = [self.chain(depth, "and") if word == "or" else self.unary(depth)]
        while self.take(word):
            items.append(self.chain(depth, "and") if word == "or" else self.unary(depth))
        return items[0] if len(items) == 1 else Bool(word, tuple(items))

    def unary(self, depth: int) -> Node:
        tok = self.toks[self.i]
        if depth > MAX_DEPTH:
            raise self.fail(tok, f"nested more than {MAX_DEPTH} levels deep")
        if self.take("not"):
            return Bool("not", (self.unary(depth + 1),))
        if self.take("("):
            node = self.chain(depth + 1, "or")
            if not self.take(")"):
                got = self.toks[self.i]
                raise self.fail(got, f"expected ')' to close the '(' at position {tok.pos + 1}"
                                f", got {_desc(got)}")
            return node
        if tok.kind == "end":
            raise self.fail(tok, "expected a comparison (like params.alpha > 0.1)")
        field = _field(self.next(), "filter")
        optok = self.next()
        if optok.kind == "op" or (optok.kind == "word" and optok.value in ("like", "in")):
            op = optok.value
        elif optok.kind == "word" and optok.value == "not" and (after := self.take("like", "in")):
            op = "not " + after.value
        else:
            raise self.fail(optok, f"expected an operator (= != < <= > >= like in) after "
                            f"'{field.text}', got {_desc(optok)}")
        if "in" in op.split():
            if not self.take("("):
                raise self.fail(self.toks[self.i], f"expected '(' after '{op}'")
            values = [self.value("(")]
            while self.take(","):
                values.append(self.value(","))
            if not self.take(")"):
                raise self.fail(self.toks[self.i], f"expected ',' or ')' in the list, got "
                                f"{_desc(self.toks[self.i])}")
        else:
            values = [self.value(optok.text)]
        self.terms += len(values)
        if self.terms > MAX_TERMS:
            raise self.fail(optok, f"too many comparisons (more than {MAX_TERMS})")
        return Cmp(field, op, _check(field, op, values))

    def value(self, after: str) -> Token:
        tok = self.next()
        if tok.kind in ("num", "str"):
            return tok
        if tok.kind == "word" and tok.value in ("true", "false"):
            return Token("bool", tok.text, tok.pos, float(tok.value == "true"))
        raise self.fail(tok, f"expected a value after '{after}', got {_desc(tok)}")


def parse(text: str) -> Node:
    """Parse a filter into a tree of :class:`Bool` and :class:`Cmp` (raises QueryError)."""
    parser = _Parser(text)
    node = parser.chain(0, "or")
    tok = parser.next()
    if tok.kind == ")":
        raise parser.fail(tok, "unexpected ')' (no matching '(')")
    if tok.kind != "end":
        raise parser.fail(tok, f"expected 'and', 'or' or the end, got {_desc(tok)}")
    return node


def _as_text(v: Token) -> str:
    """How a literal reads against text: ``1`` (not ``1.0``), ``1.5``, ``true``."""
    if v.kind == "bool":
        return "true" if v.value else "false"
    if v.kind == "num":
        x = float(v.value)
        return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)
    return str(v.value)


def _test(expr: str, eparams: list, op: str, vals: list, d: Dialect, out: list,
          text: bool = False, nullable: bool = False) -> str:
    """``expr OP ?``, appending ``eparams`` (the ``?`` inside ``expr``) then the values.

    ``nullable``: ``!=`` and ``not in`` also hold when ``expr`` is NULL: a param stored as a
    string has no number, yet it does differ from ``1``. Such an ``expr`` never holds ``?``.
    """
    out.extend(eparams)
    if "in" in op.split():
        out.extend(vals)
        sql = f"{expr} {'NOT IN' if op == 'not in' else 'IN'} ({', '.join('?' * len(vals))})"
    elif "like" in op:
        pattern = str(vals[0])
        tail = len(pattern) - len(pattern.rstrip("\\"))
        out.append(pattern + "\\" * (tail % 2))  # a lone trailing escape is an error in PG
        sql = f"{expr} {'NOT ' if op == 'not like' else ''}{d.like} ? ESCAPE '\\'"
    else:
        out.append(vals[0])
        sql = f"{expr}{d.binary if text and op in _ORDERING else ''} {_SQL_OP[op]} ?"
    return f"({expr} IS NULL OR {sql})" if nullable and op in ("!=", "not in") else sql


def _metric_test(op: str, vals: list, d: Dialect, out: list) -> str:
    """``COALESCE(lm.value, special) OP ?`` written so that an index on ``(key, value)`` serves it.

    Why: an expression hides ``lm.value`` from the planner, so ``metrics.mse > 3990`` (one run
    in 200) listed newest first tested every run's metric in turn (a page 48 ms and its count
    41 ms on PostgreSQL at 100,000 runs; 320 ms for a value no run has); compared bare,
    PostgreSQL reads the few matching rows from ``latest_key_value`` (2.6 ms, 2 ms, 0.3 ms).
    Same truth value: the second branch holds only the rows whose ``value`` is NULL, as
    COALESCE would.
    """
    direct = _test("lm.value", [], op, vals, d, out)
    fallback = _test(_SPECIAL, _METRIC_PARAMS, op, vals, d, out)
    return f"({direct} OR lm.value IS NULL AND {fallback})"


def _compile_cmp(c: Cmp, d: Dialect, out: list) -> str:
    f, op, lits = c.field, c.op, c.values
    if f.kind == "column":
        expr, kind = _FIELDS[f.name]
        if kind == "text":
            return _test(expr, [], op, [_as_text(v) for v in lits], d, out, text=True)
        return _test(expr, [], op, [v.value for v in lits], d, out)
    out.append(f.name)
    if f.kind == "params":  # numbers compare p.num, strings p.text, true/false as 1/0
        parts = []
        for kind, expr in (("num", "p.num"), ("bool", _PARAM_BOOL), ("str", "p.text")):
            if vals := [v.value for v in lits if v.kind == kind]:
                parts.append(_test(expr, [], op, vals, d, out, kind == "str", kind != "str"))
        cond = parts[0] if len(parts) == 1 else \
            "(" + (" AND " if op == "not in" else " OR ").join(parts) + ")"
    elif f.kind == "metrics":
        cond = _metric_test(op, [float(v.value) for v in lits], d, out)
    elif f.kind == "tags":
        cond = _test("t.value", [], op, [_as_text(v) for v in lits], d, out, text=True)
    else:  # env: a number literal keeps its spelling (1.10 is not 1.1)
        vals = [v.value if v.kind == "str" else v.text for v in lits]
        if op in _ORDERING:
            cond = _test("pv.version_key", [], op, [version_key(vals[0])], d, out, text=True)
        else:
            cond = _test("pv.version", [], op, vals, d, out, text=True)
    return f"EXISTS (SELECT 1 FROM {_FROM[f.kind]} AND {cond})"


def _compile(node: Node, d: Dialect, out: list) -> str:
    if isinstance(node, Cmp):
        return _compile_cmp(node, d, out)
    if node.op == "not":
        return f"NOT ({_compile(node.items[0], d, out)})"
    return "(" + f" {node.op.upper()} ".join(_compile(item, d, out) for item in node.items) + ")"


def compile_filter(text: str | None, dialect: Dialect) -> tuple[str, list]:
    """A WHERE fragment over ``runs r`` and its parameters; ``("1=1", [])`` for no filter."""
    if text is None or not text.strip():
        return "1=1", []
    params: list = []
    return _compile(parse(text), dialect, params), params


def _sort_exprs(f: Field, d: Dialect, out: list) -> list[str]:
    """What to ORDER BY for one key; params sort numbers first, then strings by text."""
    if f.kind == "column":
        expr, kind = _FIELDS[f.name]
        return [expr + (d.binary if kind == "text" else "")]
    src = _FROM[f.kind]
    if f.kind == "params":
        out += [f.name, f.name]
        return [f"(SELECT p.num FROM {src})", f"(SELECT p.text FROM {src}){d.binary}"]
    if f.kind == "metrics":
        out += [*_METRIC_PARAMS, f.name]
        return [f"(SELECT {_METRIC} FROM {src})"]
    out.append(f.name)
    column = "t.value" if f.kind == "tags" else "pv.version_key"
    return [f"(SELECT {column} FROM {src}){d.binary}"]


def compile_sort(sort: str | None, dialect: Dialect) -> tuple[str, list]:
    """The ORDER BY body (no keyword) and its parameters; NULLs last, ``r.id`` last of all."""
    if sort is None or not sort.strip():
        return "r.started_at DESC, r.id", []
    toks, i = _tokenize(sort, "sort"), 0
    terms: list[str] = []
    params: list = []
    for keys in range(1, MAX_SORT_KEYS + 2):
        desc = toks[i].kind == "-"
        i += desc
        field = _field(toks[i], "sort")
        i += 1
        if toks[i].kind == "word" and toks[i].value in ("asc", "desc"):
            if desc:
                raise _error("sort", toks[i].pos, "use either '-KEY' or 'KEY asc|desc', not both")
            desc = toks[i].value == "desc"
            i += 1
        if keys > MAX_SORT_KEYS:
            raise _error("sort", field.pos, f"too many sort keys (more than {MAX_SORT_KEYS})")
        way = "DESC" if desc else "ASC"
        terms += [f"{e} {way} NULLS LAST" for e in _sort_exprs(field, dialect, params)]
        if toks[i].kind == "end":
            break
        if toks[i].kind != ",":
            raise _error("sort", toks[i].pos, f"expected ',' or the end, got {_desc(toks[i])}")
        i += 1
    return ", ".join([*terms, "r.id"]), params


class SortDriver(NamedTuple):
    """A listing sorted by one metric or param, read in the order of its ``(key, value)`` /
    ``(key, num)`` index.

    Why: sorting 100,000 runs by a correlated subquery computes every run's metric and sorts
    them all before the first page is known (~400 ms); walking the metric's index in order
    and testing the filter row by row stops after the page (a few ms). ``cond`` repeats the
    filter's top-level comparisons of the same metric on the index row (``s.value < ?``), so
    that a range filter on the sort metric skips straight to the matching part of the index.
    """

    key: str
    desc: bool
    cond: str
    params: list
    table: str  # latest_metrics or params
    column: str  # value or num: the indexed number the page is read in order of


def sort_driver(filter: str | None, sort: str | None) -> SortDriver | None:
    """The :class:`SortDriver` for a sort by exactly one metric or param, else None."""
    if sort is None or not sort.strip():
        return None
    toks = _tokenize(sort, "sort")
    desc = toks[0].kind == "-"
    rest = toks[1:] if desc else toks
    if not rest or rest[0].kind != "field" or rest[0].value[0] not in ("metrics", "params"):
        return None
    kind = rest[0].value[0]
    tail = rest[1:]
    if tail and tail[0].kind == "word" and tail[0].value in ("asc", "desc") and not desc:
        desc, tail = tail[0].value == "desc", tail[1:]
    if [t.kind for t in tail] != ["end"]:
        return None  # several keys (or a mistake, which compile_sort reports)
    key = rest[0].value[1]
    conds, params = [], []
    if filter and filter.strip():
        node = parse(filter)
        items = node.items if isinstance(node, Bool) and node.op == "and" else (node,)
        for item in items:
            if (
                isinstance(item, Cmp)
                and item.field.kind == kind
                and item.field.name == key
                and item.op in _SQL_OP
                and item.op != "!="
                and item.values[0].kind == "num"
            ):
                column = "value" if kind == "metrics" else "num"
                conds.append(f" AND s.{column} {_SQL_OP[item.op]} ?")
                params.append(float(item.values[0].value))
    if kind == "metrics":
        return SortDriver(key, desc, "".join(conds), params, "latest_metrics", "value")
    return SortDriver(key, desc, "".join(conds), params, "params", "num")


#: A top-level comparison whose own index holds at most this many runs narrows a listing to
#: them (see :func:`narrow`).
NARROW_MAX = 2000
_NARROW_OPS = {"=", "<", "<=", ">", ">="}


def _candidates(c: Cmp) -> tuple[str, list] | None:
    """``SELECT run_id ...`` of every run the comparison can hold for, read from its index
    (``params_key_text``, ``params_key_num``, ``latest_key_value``, ``tags_key_value``), or
    None. A superset: a metric's rows with ``value`` NULL come along (an infinity kept in
    ``special`` only may match; NaN never does, and the filter itself is still applied)."""
    f, v = c.field, c.values[0]
    if c.op not in _NARROW_OPS or len(c.values) != 1 or f.kind == "column" or f.kind == "env":
        return None
    if f.kind == "params" and v.kind == "str" and c.op == "=":
        return "SELECT run_id FROM params WHERE key = ? AND text = ?", [f.name, v.value]
    if f.kind == "params" and v.kind == "num":
        return f"SELECT run_id FROM params WHERE key = ? AND num {c.op} ?", [f.name, v.value]
    if f.kind == "metrics":
        return (f"SELECT run_id FROM latest_metrics WHERE key = ? AND value {c.op} ? UNION ALL"
                " SELECT run_id FROM latest_metrics WHERE key = ? AND value IS NULL",
                [f.name, float(v.value), f.name])
    if f.kind == "tags" and c.op == "=":
        return "SELECT run_id FROM tags WHERE key = ? AND value = ?", [f.name, _as_text(v)]
    return None


def narrow(filter: str | None, dialect: Dialect, where: str, wparams: list,
           scalar: Any) -> tuple[str, list]:
    """``where`` and its parameters, with ``AND r.id IN (...)`` added when one top-level
    comparison of ``filter`` finds at most :data:`NARROW_MAX` runs in its own index.

    Why: SQLite tests a filter run by run, in the order of the page (newest first) or of the
    primary key (the count), and knows no statistics that would tell it to start from the
    filter's index instead: a filter matching 54 runs of 100,000 read all of them (~100 ms
    for the page, as much for the count). Reading the comparison's index first (at most
    ``NARROW_MAX`` entries, ``scalar(sql, params) -> int`` counts them) tells whether the
    matches are few; if so the listing looks at those runs only. The filter is unchanged
    (``IN`` holds a superset of that comparison's runs), so are the results. PostgreSQL's
    planner makes this choice itself.
    """
    if not dialect.narrow or filter is None or not filter.strip():
        return where, wparams
    node = parse(filter)
    items = node.items if isinstance(node, Bool) and node.op == "and" else (node,)
    best: tuple[int, str, list] | None = None
    for item in items:
        found = _candidates(item) if isinstance(item, Cmp) else None
        if found is None:
            continue
        sql, params = found
        n = scalar(f"SELECT count(*) FROM ({sql} LIMIT {NARROW_MAX + 1}) n", params)
        if n <= NARROW_MAX and (best is None or n < best[0]):
            best = (n, sql, params)
    if best is None:
        return where, wparams
    return f"r.id IN ({best[1]}) AND {where}", [*best[2], *wparams]

"""What a statement is, from its first bytes: write / commit / rollback / read / begin / use / other. Pure.

Only the leading keyword counts (after blanks and comments); the table of an INSERT or REPLACE
is read for the lost-write check. Statements are never stored: only their class and table.
"""
import re
from typing import NamedTuple, Optional

WRITE, COMMIT, ROLLBACK, READ, BEGIN, USE, OTHER = "write", "commit", "rollback", "read", "begin", "use", "other"

_WRITES = {b"INSERT": WRITE, b"REPLACE": WRITE, b"UPDATE": WRITE, b"DELETE": WRITE, b"LOAD": WRITE,
           b"COMMIT": COMMIT, b"ROLLBACK": ROLLBACK, b"SELECT": READ, b"SHOW": READ, b"WITH": READ,
           b"DESCRIBE": READ, b"DESC": READ, b"EXPLAIN": READ, b"BEGIN": BEGIN, b"START": BEGIN,
           b"USE": USE}
_LEAD = re.compile(rb"(?:\s+|/\*.*?\*/|(?:--\s|#)[^\n]*(?:\n|$))*", re.S)
_WORD = re.compile(rb"[A-Za-z]+")
_NAME = rb"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_INSERT = re.compile(rb"(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?"
                     rb"(" + _NAME + rb"(?:\s*\.\s*" + _NAME + rb")?)", re.I)
_USE = re.compile(rb"USE\s+(" + _NAME + rb")", re.I)
_NAMES = re.compile(_NAME)
_ROLLBACK_TO = re.compile(rb"ROLLBACK\s+(?:WORK\s+)?TO\b", re.I)
_LETTER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class Statement(NamedTuple):
    kind: str
    insert_table: Optional[str] = None  # "db.table" or "table" of an INSERT/REPLACE
    schema: Optional[str] = None  # of a USE


def classify(text: bytes) -> Statement:
    """The class of one statement (the first bytes of it are enough).

    >>> classify(b"  /* app */ insert into `t1` (a) values (1)")
    Statement(kind='write', insert_table='t1', schema=None)
    >>> classify(b"INSERT IGNORE INTO testdb.writes VALUES (NULL)").insert_table
    'testdb.writes'
    >>> classify(b"-- hi\\nCOMMIT").kind, classify(b"select 1").kind, classify(b"SET autocommit=0").kind
    ('commit', 'read', 'other')
    >>> classify(b"ROLLBACK TO SAVEPOINT a").kind, classify(b"use `test``db`").schema
    ('other', 'test`db')
    """
    if text[:1] and text[0] in _LETTER:  # the common case: no blank or comment before the keyword
        start = 0
    else:
        lead = _LEAD.match(text)
        start = lead.end() if lead else 0
    word = _WORD.match(text, start)
    if word is None:
        return Statement(OTHER)
    key = word.group(0).upper()
    kind = _WRITES.get(key, OTHER)
    if kind == ROLLBACK and _ROLLBACK_TO.match(text, start, start + 64):
        return Statement(OTHER)  # to a savepoint: the transaction goes on
    if kind == WRITE and key in (b"INSERT", b"REPLACE"):
        m = _INSERT.match(text, start)
        return Statement(WRITE, _unquote(m.group(1)) if m else None)
    if kind == USE:
        m = _USE.match(text, start)
        return Statement(USE, schema=_unquote(m.group(1)) if m else None)
    return Statement(kind)


def _unquote(name: bytes) -> str:
    if b"`" not in name:
        if b"." not in name:
            return name.decode("utf-8", "replace")
        return ".".join(part.strip().decode("utf-8", "replace") for part in name.split(b"."))  # db . t -> db.t
    parts = _NAMES.findall(name)
    out = []
    for part in parts:
        if part.startswith(b"`"):
            part = part[1:-1].replace(b"``", b"`")
        out.append(part.decode("utf-8", "replace"))
    return ".".join(out)

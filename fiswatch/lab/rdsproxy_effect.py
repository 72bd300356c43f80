"""What a statement does to an RDS Proxy client session: tracked, pinned, or a new schema (docs/rdsproxy.md).

Tracked variables are replayed on a new server session; a pinned session keeps its server session
(the lab's assumption, after AWS's list of what pins a session: SET of a variable the proxy does not
track, user variables, temporary tables, prepared statements, LOCK TABLES and GET_LOCK).
"""
import re
from typing import Any

TRACKED = frozenset(("autocommit", "sql_mode", "time_zone", "character_set_client", "character_set_connection",
                     "character_set_results", "collation_connection", "transaction_isolation", "tx_isolation",
                     "session_track_schema", "sql_select_limit", "net_read_timeout", "net_write_timeout",
                     "wait_timeout", "interactive_timeout", "names", "character set"))
_COMMENTS = re.compile(r"^(\s|/\*.*?\*/|--[^\n]*\n|#[^\n]*\n)*", re.S)
_ASSIGN = re.compile(r"(@@session\.|@@local\.|@@|\bsession\s+|\blocal\s+)?(@?[A-Za-z_][A-Za-z0-9_$]*)\s*:?=")
_PINS = (
    (re.compile(r"^create\s+temporary\s+table", re.I), "temporary table"),
    (re.compile(r"^lock\s+tables?\b", re.I), "LOCK TABLES"),
    (re.compile(r"^prepare\b", re.I), "prepared statement (PREPARE)"),
    (re.compile(r"\bget_lock\s*\(", re.I), "user lock (GET_LOCK)"),
    (re.compile(r"@[A-Za-z_][A-Za-z0-9_$]*\s*:=", re.I), "user variable"),
)


def statement_effect(sql: str) -> Any:
    """What a query does to the session: ("track", key, sql), ("pin", reason), ("use", schema) or None.

    >>> statement_effect("SET AUTOCOMMIT = 0")[:2]
    ('track', 'autocommit')
    >>> statement_effect("/* x */ set names utf8mb4")[:2]
    ('track', 'names')
    >>> statement_effect("SET @a = 1")
    ('pin', 'SET of @a')
    >>> statement_effect("SET SESSION max_heap_table_size = 1 << 20")
    ('pin', 'SET of max_heap_table_size')
    >>> statement_effect("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE") is None
    True
    >>> statement_effect("create temporary table t (i int)")
    ('pin', 'temporary table')
    >>> statement_effect("USE `testdb`")
    ('use', 'testdb')
    """
    text = _COMMENTS.sub("", sql, count=1)
    head = text[:40].lower()
    if head.startswith("use ") or head.startswith("use\t"):
        return ("use", text[4:].strip().strip(";").strip().strip("`"))
    if re.match(r"set\s", head):
        rest = text[4:].strip()
        low = rest.lower()
        if low.startswith("transaction") or low.startswith("session transaction"):
            return None  # the next transaction only
        for key in ("names", "character set", "charset"):
            if low.startswith(key + " ") or low.startswith(key + "\t"):
                return ("track", "names" if key != "character set" else key, text)
        names = [(m.group(2) or "").lower() for m in _ASSIGN.finditer(rest)]
        untracked = [n for n in names if n not in TRACKED]
        if names and not untracked:
            return ("track", ",".join(sorted(set(names))), text)
        return ("pin", "SET of %s" % (untracked[0] if untracked else rest[:30]))
    for pattern, reason in _PINS:
        if pattern.search(text[:4096]):
            return ("pin", reason)
    return None

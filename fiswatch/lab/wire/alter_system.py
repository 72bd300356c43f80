"""Aurora MySQL's fault-injection statements, answered by the lab's Aurora instance proxies.

Aurora takes `ALTER SYSTEM ...` statements that MySQL does not have (AUG "Testing Amazon Aurora MySQL
using fault injection queries"). Each Aurora instance's query rewriter (lab/aurora.py) hands this
module every COM_QUERY text it does not rewrite itself; `AlterSystem.answer` returns None for anything
that is not `ALTER SYSTEM`, else the statement the server runs instead:

  ALTER SYSTEM CRASH [INSTANCE | DISPATCHER | NODE];
        the instance that got it crashes and restarts in place (lab/crash.py, started in a thread of
        the daemon); the issuing session waits on `DO SLEEP(10)` until the crash resets it (2013).
        Sent to a reader, the reader crashes (AWS: "force a crash of an Aurora instance"). When a
        failover, crash or reboot already runs: ERROR 1105 saying so (the lab's choice).
  ALTER SYSTEM SIMULATE n PERCENT READ REPLICA FAILURE [TO ALL | TO "reader"] FOR INTERVAL q SECOND|MINUTE
        sent to the writer: replication to the readers fails for the interval (lab/replica_failure.py),
        the client gets OK; a refusal (sent to a reader, a bad percent or interval, another outage
        running) is ERROR 1105 saying why.
  ALTER SYSTEM SIMULATE ... DISK FAILURE / DISK CONGESTION ..., or a SIMULATE the lab cannot read
        ERROR 1105: not supported by the lab yet (the statement is recognised, nothing is simulated).
  any other ALTER SYSTEM text
        ERROR 1064 (42000), the parse error Aurora would give.

The lab's RDS MySQL instances have no rewriter: MariaDB itself answers `ALTER SYSTEM CRASH` with 1064,
as RDS MySQL does (it has no ALTER SYSTEM). Errors are produced by the server from a SIGNAL statement,
so the client gets a real ERR packet with the code and text below.
"""
import re
from typing import Callable, Optional, Tuple

CRASH = re.compile(r"^\s*ALTER\s+SYSTEM\s+CRASH(?:\s+(INSTANCE|DISPATCHER|NODE))?\s*;?\s*$", re.I)
SIMULATE = re.compile(r"^\s*ALTER\s+SYSTEM\s+SIMULATE\b", re.I)
ALTER_SYSTEM = re.compile(r"^\s*ALTER\s+SYSTEM\b", re.I)
HOLD = "DO SLEEP(10)"  # the issuing session waits here until the crash resets it
STARTED = "DO 0"  # a simulation started: OK
ER_UNKNOWN_ERROR = 1105
ER_PARSE_ERROR = 1064
SIMULATE_TEXT = ("this ALTER SYSTEM SIMULATE is not supported by the fiswatch lab yet (only READ REPLICA FAILURE "
                 "and ALTER SYSTEM CRASH); nothing was simulated")


def parse(text: str) -> Optional[Tuple[str, str]]:
    """('crash', kind) | ('simulate', '') | ('bad', '') for ALTER SYSTEM texts, None for any other text.

    >>> parse("alter system crash dispatcher;")
    ('crash', 'dispatcher')
    >>> parse("ALTER SYSTEM CRASH")
    ('crash', 'instance')
    >>> parse("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE FOR INTERVAL 3 SECOND")
    ('simulate', '')
    >>> parse("ALTER SYSTEM CRASH EVERYTHING")
    ('bad', '')
    >>> parse("ALTER TABLE t ADD c INT") is None
    True
    """
    match = CRASH.match(text)
    if match:
        return "crash", (match.group(1) or "instance").lower()
    if SIMULATE.match(text):
        return "simulate", ""
    if ALTER_SYSTEM.match(text):
        return "bad", ""
    return None


def error_statement(code: int, message: str, state: str = "HY000") -> str:
    """A statement the server answers with ERROR `code` (`state`): `message`.

    >>> error_statement(1105, "it's down")
    "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO=1105, MESSAGE_TEXT='it''s down'"
    """
    return "SIGNAL SQLSTATE '%s' SET MYSQL_ERRNO=%d, MESSAGE_TEXT='%s'" % (
        state, code, message.replace("\\", "/").replace("'", "''")[:500])


def parse_error_text(text: str) -> str:
    near = re.sub(r"^\s*ALTER\s+", "", text, flags=re.I).strip()[:80]
    return ("You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version "
            "for the right syntax to use near '%s' at line 1" % near)


class AlterSystem:
    """The ALTER SYSTEM answers of one Aurora instance. `crash(instance, kind)` starts its crash and returns
    '' or the one line why it cannot (lab/crash.py `sql_crash`)."""

    def __init__(self, instance: str, crash: Callable[[str, str], str],
                 simulate: Optional[Callable[[str, str], Optional[str]]] = None) -> None:
        self.instance = instance
        self.crash = crash
        self.simulate = simulate  # READ REPLICA FAILURE (lab/replica_failure.py): None, '' started, or why not

    def answer(self, raw: bytes) -> Optional[str]:
        if not raw[:32].lstrip().upper().startswith(b"ALTER"):
            return None  # the common case, without decoding
        text = raw.decode("utf-8", "replace")
        parsed = parse(text)
        if parsed is None:
            return None
        what, kind = parsed
        if what == "crash":
            refused = self.crash(self.instance, kind)
            return error_statement(ER_UNKNOWN_ERROR, refused) if refused else HOLD
        if what == "simulate":
            refused = self.simulate(self.instance, text) if self.simulate is not None else None
            if refused is not None:
                return error_statement(ER_UNKNOWN_ERROR, refused) if refused else STARTED
            return error_statement(ER_UNKNOWN_ERROR, SIMULATE_TEXT)
        return error_statement(ER_PARSE_ERROR, parse_error_text(text), state="42000")


__all__ = ["AlterSystem", "parse", "error_statement", "HOLD", "SIMULATE_TEXT"]

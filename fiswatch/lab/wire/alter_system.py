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
  ALTER SYSTEM SIMULATE n PERCENT DISK FAILURE [IN DISK i | NODE i] FOR INTERVAL q SECOND|MINUTE
        OK; for the interval n % of the statements this instance gets fail with ERROR 1030 (DiskFailure).
  ALTER SYSTEM SIMULATE n PERCENT DISK CONGESTION BETWEEN lo AND hi MILLISECONDS [IN DISK i | NODE i]
        FOR INTERVAL q SECOND|MINUTE
        OK; for the interval n % of the statements this instance gets are held in its proxy for a random
        lo..hi ms before the server sees them (DiskCongestion; the proxy asks `take_delay`).
  a SIMULATE the lab cannot read
        ERROR 1105: not supported by the lab (the statement is recognised, nothing is simulated).
  any other ALTER SYSTEM text
        ERROR 1064 (42000), the parse error Aurora would give.

The lab's RDS MySQL instances have no rewriter: MariaDB itself answers `ALTER SYSTEM CRASH` with 1064,
as RDS MySQL does (it has no ALTER SYSTEM). Errors are produced by the server from a SIGNAL statement,
so the client gets a real ERR packet with the code and text below.
"""
import random
import re
import time
from typing import Callable, Optional, Tuple

CRASH = re.compile(r"^\s*ALTER\s+SYSTEM\s+CRASH(?:\s+(INSTANCE|DISPATCHER|NODE))?\s*;?\s*$", re.I)
SIMULATE = re.compile(r"^\s*ALTER\s+SYSTEM\s+SIMULATE\b", re.I)
ALTER_SYSTEM = re.compile(r"^\s*ALTER\s+SYSTEM\b", re.I)
HOLD = "DO SLEEP(10)"  # the issuing session waits here until the crash resets it
STARTED = "DO 0"  # a simulation started: OK
ER_UNKNOWN_ERROR = 1105
ER_PARSE_ERROR = 1064
SIMULATE_TEXT = ("this ALTER SYSTEM SIMULATE is not supported by the fiswatch lab (only READ REPLICA FAILURE, "
                 "DISK FAILURE, DISK CONGESTION and ALTER SYSTEM CRASH); nothing was simulated")


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


DISK_FAILURE = re.compile(r"^\s*ALTER\s+SYSTEM\s+SIMULATE\s+(\d+(?:\.\d+)?)\s+PERCENT\s+DISK\s+FAILURE"
                          r"(?:\s+IN\s+(?:DISK|NODE)\s+\d+)?\s+FOR\s+INTERVAL\s+(\d+)\s+(SECOND|MINUTE)S?\s*;?\s*$",
                          re.I)
ER_GET_ERRNO = 1030
DISK_ERROR = 'Got error 5 "Input/output error" from storage engine InnoDB (the lab\'s simulated DISK FAILURE)'
DISK_MAX_TEXT = 4000  # longer statements are not held (framing.KEEP): they pass
MAX_SECONDS = 600.0


class DiskFailure:
    """`ALTER SYSTEM SIMULATE n PERCENT DISK FAILURE [IN DISK i | NODE i] FOR INTERVAL q SECOND|MINUTE` on one
    instance: for the interval, n % of its COM_QUERY statements (up to DISK_MAX_TEXT bytes) fail with ERROR 1030
    (the lab's assumption: AWS says only that part of the storage is marked as failing). Lives on the proxies'
    event loop: `until` is read and written there only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, dice: Callable[[], float] = random.random) -> None:
        self.clock, self.dice = clock, dice
        self.percent, self.until = 0.0, 0.0

    def request(self, text: str) -> Optional[str]:
        """None: not this statement; '': started; else why not (ERROR 1105).

        >>> disk = DiskFailure(clock=lambda: 0.0)
        >>> disk.request("ALTER SYSTEM SIMULATE 30 PERCENT DISK FAILURE IN DISK 2 FOR INTERVAL 1 MINUTE")
        ''
        >>> disk.percent, disk.until, disk.wants(100), disk.wants(9999)
        (30.0, 60.0, True, False)
        >>> DiskFailure().request("ALTER SYSTEM SIMULATE 300 PERCENT DISK FAILURE FOR INTERVAL 1 SECOND")
        'DISK FAILURE: PERCENT must be above 0 and at most 100, got 300'
        """
        match = DISK_FAILURE.match(text)
        if not match:
            return None
        percent, count, unit = float(match.group(1)), float(match.group(2)), match.group(3).upper()
        seconds = count * (60.0 if unit == "MINUTE" else 1.0)
        if not 0.0 < percent <= 100.0:
            return "DISK FAILURE: PERCENT must be above 0 and at most 100, got %g" % percent
        if not 0.0 < seconds <= MAX_SECONDS:
            return "DISK FAILURE: the lab simulates 1 second to 10 minutes, got %g s" % seconds
        self.percent, self.until = percent, self.clock() + seconds
        return ""

    def wants(self, length: int) -> bool:
        return length <= DISK_MAX_TEXT and self.clock() < self.until

    def fail(self) -> Optional[str]:
        """While failing: the statement to send instead (an ERROR 1030) for n % of statements, else None."""
        if self.clock() < self.until and self.dice() * 100.0 < self.percent:
            return error_statement(ER_GET_ERRNO, DISK_ERROR)
        return None


DISK_CONGESTION = re.compile(r"^\s*ALTER\s+SYSTEM\s+SIMULATE\s+(\d+(?:\.\d+)?)\s+PERCENT\s+DISK\s+CONGESTION"
                             r"\s+BETWEEN\s+(\d+)\s+AND\s+(\d+)\s+MILLISECONDS"
                             r"(?:\s+IN\s+(?:DISK|NODE)\s+\d+)?\s+FOR\s+INTERVAL\s+(\d+)\s+(SECOND|MINUTE)S?\s*;?\s*$",
                             re.I)
MAX_CONGESTION_MS = 10000


class DiskCongestion:
    """`ALTER SYSTEM SIMULATE n PERCENT DISK CONGESTION BETWEEN lo AND hi MILLISECONDS [IN DISK i | NODE i]
    FOR INTERVAL q SECOND|MINUTE` on one instance: for the interval, n % of its COM_QUERY statements (up to
    DISK_MAX_TEXT bytes) are held lo..hi ms (uniform) before the server gets them (the lab's assumption:
    AWS says only that the disk is congested). Lives on the proxies' event loop, as DiskFailure.

    >>> slow = DiskCongestion(clock=lambda: 0.0, dice=lambda: 0.5)
    >>> slow.request("ALTER SYSTEM SIMULATE 60 PERCENT DISK CONGESTION BETWEEN 100 AND 300 MILLISECONDS "
    ...              "FOR INTERVAL 2 SECOND")
    ''
    >>> slow.wants(10), slow.delay()
    (True, 0.2)
    >>> DiskCongestion().request("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION BETWEEN 9 AND 3 MILLISECONDS "
    ...                          "FOR INTERVAL 1 SECOND")
    'DISK CONGESTION: BETWEEN 9 AND 3: the minimum is above the maximum'
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, dice: Callable[[], float] = random.random) -> None:
        self.clock, self.dice = clock, dice
        self.percent, self.until, self.low, self.high = 0.0, 0.0, 0.0, 0.0

    def request(self, text: str) -> Optional[str]:
        """None: not this statement; '': started; else why not (ERROR 1105)."""
        match = DISK_CONGESTION.match(text)
        if not match:
            return None
        percent, low, high = float(match.group(1)), int(match.group(2)), int(match.group(3))
        seconds = float(match.group(4)) * (60.0 if match.group(5).upper() == "MINUTE" else 1.0)
        if not 0.0 < percent <= 100.0:
            return "DISK CONGESTION: PERCENT must be above 0 and at most 100, got %g" % percent
        if low > high:
            return "DISK CONGESTION: BETWEEN %d AND %d: the minimum is above the maximum" % (low, high)
        if high > MAX_CONGESTION_MS:
            return "DISK CONGESTION: the lab delays at most %d ms, got %d" % (MAX_CONGESTION_MS, high)
        if not 0.0 < seconds <= MAX_SECONDS:
            return "DISK CONGESTION: the lab simulates 1 second to 10 minutes, got %g s" % seconds
        self.percent, self.low, self.high = percent, low / 1000.0, high / 1000.0
        self.until = self.clock() + seconds
        return ""

    def wants(self, length: int) -> bool:
        return length <= DISK_MAX_TEXT and self.clock() < self.until

    def delay(self) -> float:
        """Seconds to hold the statement at hand: 0.0 unless congested and picked (n % of statements)."""
        if self.clock() < self.until and self.dice() * 100.0 < self.percent:
            return self.low + (self.high - self.low) * self.dice()
        return 0.0


class AlterSystem:
    """The ALTER SYSTEM answers of one Aurora instance. `crash(instance, kind)` starts its crash and returns
    '' or the one line why it cannot (lab/crash.py `sql_crash`)."""

    def __init__(self, instance: str, crash: Callable[[str, str], str],
                 simulate: Optional[Callable[[str, str], Optional[str]]] = None) -> None:
        self.instance = instance
        self.crash = crash
        self.simulate = simulate  # READ REPLICA FAILURE (lab/replica_failure.py): None, '' started, or why not
        self.disk = DiskFailure()
        self.congestion = DiskCongestion()

    def busy(self, length: int) -> bool:
        """Hold every query of this length whole (a simulated disk failure or congestion runs)."""
        return self.disk.wants(length) or self.congestion.wants(length)

    def delay(self) -> float:
        """Seconds the statement just rewritten waits in the proxy (DISK CONGESTION), usually 0.0."""
        return self.congestion.delay()

    def answer(self, raw: bytes) -> Optional[str]:
        if not raw[:32].lstrip().upper().startswith(b"ALTER"):
            return self.disk.fail()  # None (the common case) unless a simulated disk failure hits it
        text = raw.decode("utf-8", "replace")
        parsed = parse(text)
        if parsed is None:
            return None
        what, kind = parsed
        if what == "crash":
            refused = self.crash(self.instance, kind)
            return error_statement(ER_UNKNOWN_ERROR, refused) if refused else HOLD
        if what == "simulate":
            answer = self.disk.request(text)
            if answer is None:
                answer = self.congestion.request(text)
            if answer is None and self.simulate is not None:
                answer = self.simulate(self.instance, text)
            if answer is not None:
                return error_statement(ER_UNKNOWN_ERROR, answer) if answer else STARTED
            return error_statement(ER_UNKNOWN_ERROR, SIMULATE_TEXT)
        return error_statement(ER_PARSE_ERROR, parse_error_text(text), state="42000")


__all__ = ["AlterSystem", "DiskFailure", "DiskCongestion", "parse", "error_statement", "HOLD", "SIMULATE_TEXT"]

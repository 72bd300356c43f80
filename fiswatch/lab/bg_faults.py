"""`lab switchover --fault NAME`: what users hit in a Blue/Green switchover (docs/lab.md, Blue/Green faults).

  rollback               AWS rolls the switchover back while IN_PROGRESS (its timeout expired, or a guardrail
                         failed), before green is promoted: blue writable again, green still replicates
  frozen-metadata        mysql.rds_topology stops at SWITCHOVER_IN_PROGRESS on the old (blue) side and its rows
                         are removed on the new (green) one once green is promoted (the JDBC wrapper's
                         BlueGreenStatusProvider; aws-advanced-jdbc-wrapper #1920, #2096)
  monitors-refused[=S]   new logins on both sides refused (3032) for S seconds (default 10) from IN_PROGRESS, while
                         the metadata moves on: a monitor that lost its connection misses the statuses (#1920)
  no-metadata            mysql.rds_topology never provisioned (#2042): the table is dropped on both sides before
                         the switchover, which then runs on DNS alone
  green-ids-kept         green's Aurora SERVER_IDs keep their `-green-` names after the switchover (#1059, #1097)
  no-grant-on-green      SELECT on mysql.rds_topology revoked from the lab's user on green (the grant is needed on
                         each side): SELECT gives 1142 and the existence query finds no table there

Parsed and checked before anything starts (`parse`); the behaviours are asked of a `Fault` by lab/switchover.py.
"""
from dataclasses import dataclass
from typing import List

from fiswatch.lab import bg_answers as A
from fiswatch.lab import layout as L
from fiswatch.lab.mariadb import sql

NAMES = ("rollback", "frozen-metadata", "monitors-refused", "no-metadata", "green-ids-kept", "no-grant-on-green")
REFUSED_DEFAULT = 10.0
REFUSED_MAX = 600.0


class FaultError(ValueError):
    """A `--fault` value that names no fault; one line."""


@dataclass(frozen=True)
class Fault:
    """One fault switch (name "" = none) and its seconds (monitors-refused)."""

    name: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return "%s=%g" % (self.name, self.seconds) if self.name == "monitors-refused" else self.name

    def statuses_after(self, status: str) -> bool:
        """Whether `status` is still written on the writers (frozen-metadata: not after IN_PROGRESS,
        no-metadata: never)."""
        if self.name == "no-metadata":
            return False
        return not (self.name == "frozen-metadata" and status not in A.STATUSES[:3])


def parse(text: str) -> Fault:
    """The fault a `--fault` value names (FaultError: one line listing the known ones).

    >>> parse("monitors-refused=4.5")
    Fault(name='monitors-refused', seconds=4.5)
    >>> parse("monitors-refused").seconds
    10.0
    >>> parse("")
    Fault(name='', seconds=0.0)
    >>> parse("slow-dns")
    Traceback (most recent call last):
    ...
    fiswatch.lab.bg_faults.FaultError: unknown switchover fault 'slow-dns': use one of rollback, frozen-metadata, \
monitors-refused[=SECONDS], no-metadata, green-ids-kept, no-grant-on-green
    >>> parse("monitors-refused=0")
    Traceback (most recent call last):
    ...
    fiswatch.lab.bg_faults.FaultError: --fault monitors-refused=SECONDS: seconds must be a number in (0, 600], got '0'
    """
    if not text:
        return Fault()
    name, eq, value = text.partition("=")
    if name not in NAMES or (eq and name != "monitors-refused"):
        raise FaultError("unknown switchover fault %r: use one of %s" % (text, ", ".join(
            n + "[=SECONDS]" if n == "monitors-refused" else n for n in NAMES)))
    if name != "monitors-refused":
        return Fault(name)
    if not eq:
        return Fault(name, REFUSED_DEFAULT)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= REFUSED_MAX:
        raise FaultError("--fault monitors-refused=SECONDS: seconds must be a number in (0, %g], got %r"
                         % (REFUSED_MAX, value))
    return Fault(name, seconds)


def prepare(fault: Fault, layout: L.Layout, writers: List[L.InstanceSpec], green_writers: List[L.InstanceSpec]) \
        -> str:
    """Before SWITCHOVER_INITIATED: the deployment as the fault has it; returns what changed ("" nothing)."""
    if fault.name == "no-metadata":
        for spec in writers:  # replicated to green, which is a replica of blue until the promotion
            sql(layout.server_socket(spec), ["DROP TABLE IF EXISTS %s" % A.RDS_TOPOLOGY])
        for spec in green_writers:  # green caught up: the table is gone there too
            pos = sql(layout.server_socket(writers[green_writers.index(spec)]), ["SELECT @@gtid_binlog_pos"])[0][0]
            sql(layout.server_socket(spec), [("SELECT MASTER_GTID_WAIT(%s, 30)", (pos,))])
        return "mysql.rds_topology dropped on both sides (metadata never provisioned)"
    if fault.name == "no-grant-on-green":
        for spec in green_writers:  # on green only: not binlogged
            sql(layout.server_socket(spec), ["SET sql_log_bin=0", "REVOKE SELECT ON %s FROM '%s'@'%%'"
                                             % (A.RDS_TOPOLOGY, L.CLIENT_USER), "SET sql_log_bin=1"])
        return "SELECT on mysql.rds_topology revoked from %s on green" % L.CLIENT_USER
    return ""


def on_promoted(fault: Fault, layout: L.Layout, green_writers: List[L.InstanceSpec]) -> str:
    """Green just promoted: frozen-metadata removes green's rows (blue's stay at IN_PROGRESS)."""
    if fault.name != "frozen-metadata":
        return ""
    for spec in green_writers:
        sql(layout.server_socket(spec), ["DELETE FROM %s" % A.RDS_TOPOLOGY])
    return "mysql.rds_topology: blue frozen at SWITCHOVER_IN_PROGRESS, green's rows removed"

"""Pointing a lab server at another as its GTID replica (start-up, failovers, settling after them)."""
from typing import Any, List, Optional

from fiswatch.lab import layout as L
from fiswatch.lab.mariadb import MariaDBError, sql


def replicate(layout: L.Layout, replica: L.InstanceSpec, source: L.InstanceSpec, password: str,
              gtid_pos: Optional[str] = None) -> None:
    """Make `replica` a read-only GTID replica of `source` (server to server, not via proxies)."""
    host, port = layout.server_address(source)
    statements: List[Any] = ["SET GLOBAL read_only=1", "STOP SLAVE", "RESET SLAVE ALL"]
    if gtid_pos is not None:
        statements.append(("SET GLOBAL gtid_slave_pos=%s", (gtid_pos,)))
    statements += [
        ("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
         "MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos", (host, port, L.REPL_USER, password)),
        "START SLAVE",
    ]
    sql(layout.server_socket(replica), statements)


def wait_caught_up(layout: L.Layout, replica: L.InstanceSpec, source: L.InstanceSpec, timeout: float) -> str:
    """Wait until the replica has applied the source's binlog position; returns it."""
    pos = sql(layout.server_socket(source), ["SELECT @@gtid_binlog_pos"])[0][0]
    rows = sql(layout.server_socket(replica), [("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))])
    if rows[0][0] != 0:
        raise MariaDBError("%s did not catch up with %s within %.0fs" % (replica.name, source.name, timeout))
    return pos

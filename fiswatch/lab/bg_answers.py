"""What the lab's Blue/Green deployment answers a client: `mysql.rds_topology` and green's Aurora topology.

The AWS Advanced Python Wrapper's `bg` plugin (aws-advanced-python-wrapper 3.x, `blue_green_plugin.py`,
dialects `aurora-mysql` and `rds-mysql`) sends, on the writers of both sides:

  SELECT 1 AS tmp FROM information_schema.tables WHERE table_schema = 'mysql' AND table_name = 'rds_topology'
  SELECT version, endpoint, port, role, status FROM mysql.rds_topology     (the JDBC wrapper: SELECT *)

Both are answered natively: the lab creates `mysql.rds_topology` as a real table (id = @@server_id,
version '1.0', roles BLUE_GREEN_DEPLOYMENT_SOURCE/_TARGET) on blue's writers, replicated to green while
green replicates from blue, written on each side's writer once green is promoted; SELECT is granted
to the client user on both sides. One row per side: Aurora's cluster endpoint, RDS's writer instance
endpoint (docs/lab.md, Blue/Green).

Green's Aurora instances answer the Aurora dialect's questions (lab/aurora.py) from a topology table of
their own (`fiswatch_lab.bg_host_status`, written on green's writer) and their SERVER_ID from a table
local to each server (`fiswatch_lab.bg_self`), so a switchover renames them in the servers.
"""
from typing import Callable, Dict, List, Sequence, Tuple

from fiswatch.lab.aurora import SCHEMA, TOPOLOGY_TABLE, QueryRewriter
from fiswatch.lab.aurora import rewrites as aurora_rewrites

RDS_TOPOLOGY = "mysql.rds_topology"
GREEN_TOPOLOGY = SCHEMA + ".bg_host_status"
SELF_TABLE = SCHEMA + ".bg_self"
SOURCE, TARGET = "BLUE_GREEN_DEPLOYMENT_SOURCE", "BLUE_GREEN_DEPLOYMENT_TARGET"
VERSION = "1.0"
STATUSES = ("AVAILABLE", "SWITCHOVER_INITIATED", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_IN_POST_PROCESSING",
            "SWITCHOVER_COMPLETED")
EXISTS_QUERY = ("SELECT 1 AS tmp FROM information_schema.tables WHERE table_schema = 'mysql' "
                "AND table_name = 'rds_topology'")
STATUS_QUERY = "SELECT version, endpoint, port, role, status FROM mysql.rds_topology"
_SELF = "(SELECT server_id FROM %s)" % SELF_TABLE
_PLACEHOLDER = "bg-self-id"


def topology_statements(rows: Sequence[Tuple[int, str, int, str]], client_user: str) -> List[object]:
    """On blue's writer (replicated to green): the table, one AVAILABLE row per side, the grant.

    `rows`: (id, endpoint, port, role)."""
    out: List[object] = [
        "CREATE TABLE IF NOT EXISTS %s (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, endpoint VARCHAR(255) NOT NULL, "
        "port INT NOT NULL, role VARCHAR(64) NOT NULL, status VARCHAR(64) NOT NULL, version VARCHAR(8) NOT NULL)"
        % RDS_TOPOLOGY,
        "DELETE FROM %s" % RDS_TOPOLOGY,
        "GRANT SELECT ON %s TO '%s'@'%%'" % (RDS_TOPOLOGY, client_user),
    ]
    for row in rows:
        out.append(("INSERT INTO " + RDS_TOPOLOGY + " (id, endpoint, port, role, status, version) "
                    "VALUES (%s, %s, %s, %s, 'AVAILABLE', %s)", tuple(row) + (VERSION,)))
    return out


def status_statements(status: str) -> List[object]:
    """Both rows move to `status` (as in the one published trace, both rows share each status)."""
    if status not in STATUSES:
        raise ValueError("unknown Blue/Green status %r" % status)
    out: List[object] = [("UPDATE " + RDS_TOPOLOGY + " SET status = %s", (status,))]
    if status == "SWITCHOVER_COMPLETED":
        out.append(("DELETE FROM " + RDS_TOPOLOGY + " WHERE role = %s", (SOURCE,)))
    return out


def green_topology_statements(instance_ids: Sequence[str], writer_id: str, client_user: str) -> List[object]:
    """On green's Aurora writer (replicated to green's reader only): green's own topology rows."""
    from fiswatch.lab.topology import create_statements

    out: List[object] = []
    for statement in create_statements(instance_ids, writer_id, client_user):
        if isinstance(statement, tuple):
            out.append((str(statement[0]).replace(TOPOLOGY_TABLE, GREEN_TOPOLOGY),) + tuple(statement[1:]))
        else:
            out.append(str(statement).replace(TOPOLOGY_TABLE, GREEN_TOPOLOGY))
    return out


def self_statements(instance_id: str) -> List[object]:
    """On each green server, not binlogged: the SERVER_ID it answers with."""
    return ["SET sql_log_bin=0", "CREATE DATABASE IF NOT EXISTS %s" % SCHEMA,
            "CREATE TABLE IF NOT EXISTS %s (one TINYINT NOT NULL PRIMARY KEY DEFAULT 1, server_id VARCHAR(100) "
            "NOT NULL)" % SELF_TABLE,
            ("REPLACE INTO " + SELF_TABLE + " (one, server_id) VALUES (1, %s)", (instance_id,)), "SET sql_log_bin=1"]


def rename_statements(renames: Dict[str, str]) -> List[object]:
    """On green's writer after the switchover: topology ids renamed (old id -> new id)."""
    return [("UPDATE " + GREEN_TOPOLOGY + " SET SERVER_ID = %s, SESSION_ID = IF(SESSION_ID = 'MASTER_SESSION_ID', "
             "SESSION_ID, CONCAT('fiswatch-lab-replica-session-', %s)) WHERE SERVER_ID = %s", (new, new, old))
            for old, new in renames.items()]


def green_rewrites() -> Dict[str, str]:
    """The Aurora answers (lab/aurora.py) read from green's tables.

    >>> "bg_self" in green_rewrites()["SELECT @@aurora_server_id, @@aurora_server_id"]
    True
    """
    quoted = "'%s'" % _PLACEHOLDER
    return {q: a.replace(TOPOLOGY_TABLE, GREEN_TOPOLOGY).replace(quoted, _SELF)
            for q, a in aurora_rewrites(_PLACEHOLDER).items()}


def green_rewriter_factory() -> Callable[[], QueryRewriter]:
    table = green_rewrites()
    return lambda: QueryRewriter(table)

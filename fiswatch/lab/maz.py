"""The lab's Multi-AZ DB cluster: one writer, two readable standbys, semi-synchronous replication.

Started by `lab up --multi-az-cluster` beside the Aurora cluster and the RDS instance. What
RDS documents (RDS User Guide, multi-az-db-clusters-concepts) and the lab does:

- three MariaDB servers; the writer has `rpl_semi_sync_master_enabled=ON`, every instance
  `rpl_semi_sync_slave_enabled=ON`, so a commit returns once one reader acknowledged it (or
  after `rpl_semi_sync_master_timeout`, when the writer falls back to asynchronous);
- readers are `read_only` and readable; `report_host` is each instance's address;
- `mysql.rds_topology (id, endpoint, port)` lists the three instances (id = @@server_id),
  replicated from the writer so every instance answers the same rows;
- each reader's `SHOW REPLICA STATUS` answer (maz_answers.py) names the server it replicates from.

Everything here runs as root over the servers' unix sockets.
"""
from typing import Any, Dict, List, Mapping, Optional, Tuple

from fiswatch.lab import layout as L
from fiswatch.lab import maz_answers as A
from fiswatch.lab.mariadb import sql

def topology_rows(layout: L.Layout) -> List[Tuple[int, str, int]]:
    return [(spec.index, str(spec.dns_name), layout.port) for spec in L.MAZ_INSTANCES]


def prepare(layout: L.Layout) -> None:
    """Before replication starts: the local status table on every instance."""
    for spec in L.MAZ_INSTANCES:
        sql(layout.server_socket(spec), A.create_status_statements(L.CLIENT_USER))


def writer_statements(layout: L.Layout) -> List[Any]:
    """On the first writer, after the users exist: the topology table, semi-sync on."""
    return A.topology_statements(topology_rows(layout), L.CLIENT_USER) + [
        "SET GLOBAL rpl_semi_sync_master_enabled=ON"]


def record_source(layout: L.Layout, replica: L.InstanceSpec, source: L.InstanceSpec) -> None:
    """What the reader's SHOW REPLICA STATUS says from now on: it replicates from `source`."""
    host, port = layout.server_address(source)
    sql(layout.server_socket(replica), A.set_source_statements(host, port, L.REPL_USER, source.index))


def make_writer(layout: L.Layout, spec: L.InstanceSpec) -> None:
    """`spec` takes writes: no replica row, semi-sync source on, read_only off (in that order)."""
    sql(layout.server_socket(spec), A.clear_source_statements() + [
        "SET GLOBAL rpl_semi_sync_master_enabled=ON", "SET GLOBAL read_only=0"])


def make_reader_settings(layout: L.Layout, spec: L.InstanceSpec) -> None:
    """A demoted writer stops waiting for acknowledgements (it has no semi-sync replica)."""
    sql(layout.server_socket(spec), ["SET GLOBAL rpl_semi_sync_master_enabled=OFF"])


def gtid_seq(pos: Optional[str]) -> int:
    """The highest sequence number in a MariaDB GTID position ('0-7-123,1-8-5' -> 123)."""
    best = 0
    for part in (pos or "").split(","):
        bits = part.strip().split("-")
        if len(bits) == 3 and bits[2].isdigit():
            best = max(best, int(bits[2]))
    return best


def applied_position(layout: L.Layout, spec: L.InstanceSpec, timeout: float = 3.0) -> Optional[str]:
    """What `spec` has applied (gtid_current_pos), None when it does not answer."""
    try:
        return str(sql(layout.server_socket(spec), ["SELECT @@gtid_current_pos"], timeout=timeout)[0][0])
    except Exception:  # noqa: BLE001
        return None


def slave_status(layout: L.Layout, spec: L.InstanceSpec, timeout: float = 3.0) -> Optional[Dict[str, Any]]:
    """The instance's SHOW SLAVE STATUS row by column name ({}: no row, a writer); None when it does not answer."""
    from fiswatch.lab.mariadb import root_connect

    try:
        conn = root_connect(layout.server_socket(spec), timeout=timeout)
    except Exception:  # noqa: BLE001 - down or restarting: not answering
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
            names = [d[0] for d in cur.description or ()]
    except Exception:  # noqa: BLE001 - killed mid-query: not answering
        return None
    finally:
        conn.close()
    return dict(zip(names, row)) if row is not None else {}


def applied_all(st: Mapping[str, Any]) -> bool:
    """Has the replica applied everything its IO thread received (whether its SQL thread runs or not)?"""
    if not st:
        return True
    return (st.get("Relay_Master_Log_File") == st.get("Master_Log_File")
            and int(st.get("Exec_Master_Log_Pos") or 0) >= int(st.get("Read_Master_Log_Pos") or 0))


def relay_drained(layout: L.Layout, spec: L.InstanceSpec) -> Optional[bool]:
    """Has the reader applied everything it received? None when it does not answer."""
    st = slave_status(layout, spec)
    if st is None:
        return None
    if not st:
        return True
    return st.get("Slave_SQL_Running") == "Yes" and applied_all(st)


def replica_source_ids(layout: L.Layout) -> Dict[str, Optional[int]]:
    """Per instance: Source_Server_Id of its SHOW REPLICA STATUS answer as the lab keeps it (None: no row)."""
    out: Dict[str, Optional[int]] = {}
    for spec in L.MAZ_INSTANCES:
        try:
            rows = sql(layout.server_socket(spec), ["SELECT source_server_id FROM %s" % A.STATUS_TABLE], timeout=3)
        except Exception:  # noqa: BLE001
            out[spec.name] = None
            continue
        out[spec.name] = int(rows[0][0]) if rows else None
    return out

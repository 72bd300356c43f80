"""A failover that stops midway (Ctrl-C, SIGTERM, the demo quitting, an error, a killed
process) is finished or rolled back, so the lab never stays half failed over.

The decision is taken from the servers, not from how far the interrupted code believes it got:

- the new writer already takes writes (`read_only=0` on it): the promotion happened and clients
  may have written there, so the failover is **finished**: topology, roles and DNS name the new
  writer at once (no waiting for the profile's timings), the old writer rejoins as a read-only
  replica of the new one (after a crash: restarted and re-copied) and its proxy passes again;
- otherwise nothing was promoted and the old writer has every acknowledged write, so the failover
  is **rolled back**: the old writer is restarted if a crash failover killed it, takes writes, its
  proxy passes again, the other instance replicates from it again, and DNS names it.

Both paths are idempotent: running one twice, or after the failover's own steps, does no harm.
"""
from typing import Any, Callable, Dict, Tuple

from fiswatch.lab import aurora
from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.replication import replicate
from fiswatch.lab.mariadb import root_connect, sql
from fiswatch.lab.topology import promote_statements

Say = Callable[[str], None]


def _running(ctl: str) -> Dict[str, bool]:
    return {i["name"]: bool(i["running"]) for i in request(ctl, "state")["instances"]}


def writable(layout: L.Layout, spec: L.InstanceSpec) -> bool:
    """Does this server take writes now (read_only=0)? False when it does not answer."""
    try:
        return int(sql(layout.server_socket(spec), ["SELECT @@read_only"], timeout=3)[0][0]) == 0
    except Exception:  # noqa: BLE001
        return False


def replicating_from(layout: L.Layout, replica: L.InstanceSpec, source: L.InstanceSpec) -> bool:
    """Is `replica` read-only and replicating from `source` with both threads running?"""
    try:
        conn = root_connect(layout.server_socket(replica), timeout=3)
    except Exception:  # noqa: BLE001
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
            names = [d[0] for d in cur.description or ()]
            cur.execute("SELECT @@read_only")
            read_only = int(cur.fetchone()[0])
    finally:
        conn.close()
    if row is None:
        return False
    status = dict(zip(names, row))
    return (read_only == 1 and int(status.get("Master_Port") or 0) == layout.server_address(source)[1]
            and status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes")


def end_client_sessions(layout: L.Layout, spec: L.InstanceSpec) -> int:
    """Close the client sessions still open on a demoted writer, as the instance's restart does.

    A fenced client may have left a transaction open (its INSERT arrived, its COMMIT never
    will); `SET GLOBAL read_only=1` would wait for it forever. The clients do not notice:
    their side of the proxy stays fenced, silent.
    """
    socket_path = layout.server_socket(spec)
    rows = sql(socket_path, [("SELECT id FROM information_schema.processlist WHERE user = %s", (L.CLIENT_USER,))])
    closed = 0
    for (thread_id,) in rows:
        try:
            sql(socket_path, ["KILL %d" % int(thread_id)])
            closed += 1
        except Exception:  # noqa: BLE001 - already gone
            pass
    return closed


COPIED_TABLES = ("%s.%s" % (L.DATABASE, L.TABLE), aurora.TOPOLOGY_TABLE)


def resync_from(layout: L.Layout, old: L.InstanceSpec, new: L.InstanceSpec) -> str:
    """After a crash the old writer may hold writes the new one never got: copy the tables
    from a consistent snapshot of the new writer and return the GTID position to replicate from."""
    src = root_connect(layout.server_socket(new))
    copies = []
    try:
        with src.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = dict((k.lower(), v) for k, v in cur.fetchall())
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (status["binlog_snapshot_file"],
                                                           int(status["binlog_snapshot_position"])))
            pos = cur.fetchone()[0] or ""
            for table in COPIED_TABLES:
                schema, name = table.split(".")
                cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
                            "AND table_name = %s", (schema, name))
                if cur.fetchone()[0]:
                    cur.execute("SELECT * FROM %s" % table)
                    copies.append((table, list(cur.fetchall())))
            cur.execute("COMMIT")
    finally:
        src.close()
    dst = root_connect(layout.server_socket(old))
    try:
        with dst.cursor() as cur:
            cur.execute("SET sql_log_bin=0")
            for table, rows in copies:
                cur.execute("DELETE FROM %s" % table)
                if rows:
                    marks = ", ".join(["%s"] * len(rows[0]))
                    for start in range(0, len(rows), 1000):
                        cur.executemany("INSERT INTO %s VALUES (%s)" % (table, marks), rows[start:start + 1000])
    finally:
        dst.close()
    return pos


def point_dns(ctl: str, layout: L.Layout, target: str, writer: L.InstanceSpec, other: L.InstanceSpec) -> None:
    """The endpoint answers the writer (no blank, no flap); for Aurora the reader endpoint the other."""
    if target == "aurora":
        request(ctl, "dns_set", name=L.ENDPOINT_NAMES["aurora"], kind="CNAME", values=[writer.dns_name], ttl=5)
        request(ctl, "dns_set", name=L.ENDPOINT_NAMES["aurora-ro"], kind="CNAME", values=[other.dns_name], ttl=5)
    else:
        request(ctl, "dns_set", name=L.ENDPOINT_NAMES["rds"], kind="A", values=[layout.proxy_address(writer)[0]],
                ttl=5)


def roles_for(target: str) -> Tuple[str, str]:
    return ("writer", "reader") if target == "aurora" else ("primary", "standby")


def finish(layout: L.Layout, ctl: str, target: str, old: L.InstanceSpec, new: L.InstanceSpec, crash: bool,
           password: str) -> str:
    """Complete a failover whose new writer already takes writes; returns what it did."""
    up_role, down_role = roles_for(target)
    if target == "aurora":
        sql(layout.server_socket(new), promote_statements(aurora.server_id(new.index)))
    request(ctl, "roles", roles={new.name: up_role, old.name: down_role})
    if target == "aurora":
        request(ctl, "heartbeat")
    point_dns(ctl, layout, target, new, old)
    if replicating_from(layout, old, new):
        how = "already replicating"
    elif crash or not _running(ctl).get(old.name, False):
        if not _running(ctl).get(old.name, False):
            request(ctl, "start", instance=old.name, read_only=True)
        replicate(layout, old, new, password, gtid_pos=resync_from(layout, old, new))
        how = "restarted and re-copied from %s" % new.name
    else:
        end_client_sessions(layout, old)
        pos = sql(layout.server_socket(old), ["SELECT @@gtid_current_pos"])[0][0]
        replicate(layout, old, new, password, gtid_pos=pos)
        how = "demoted"
    request(ctl, "proxy", instance=old.name, mode="pass")
    return "%s is the %s (it had taken writes), %s rejoined as a read-only %s (%s); DNS names %s" % (
        new.name, up_role, old.name, down_role, how, new.name)


def roll_back(layout: L.Layout, ctl: str, target: str, old: L.InstanceSpec, new: L.InstanceSpec,
              password: str) -> str:
    """Undo a failover that promoted nothing; returns what it did."""
    up_role, down_role = roles_for(target)
    restarted = ""
    if not _running(ctl).get(old.name, False):
        request(ctl, "start", instance=old.name, read_only=False)
        restarted = " (restarted after its crash)"
    sql(layout.server_socket(old), ["SET GLOBAL read_only=0"])
    if not replicating_from(layout, new, old):
        replicate(layout, new, old, password)  # continues from its own gtid_slave_pos
    request(ctl, "roles", roles={old.name: up_role, new.name: down_role})
    point_dns(ctl, layout, target, old, new)
    request(ctl, "proxy", instance=old.name, mode="pass")
    if target == "aurora":
        request(ctl, "heartbeat")
    return "%s is the %s again%s, %s replicates from it; DNS names %s" % (
        old.name, up_role, restarted, new.name, old.name)


def recover(layout: L.Layout, ctl: str, target: str, old: L.InstanceSpec, new: L.InstanceSpec, crash: bool,
            password: str) -> Tuple[str, str]:
    """('finished' | 'rolled back', what was done)."""
    if writable(layout, new):
        return "finished", finish(layout, ctl, target, old, new, crash, password)
    return "rolled back", roll_back(layout, ctl, target, old, new, password)


def state_record(target: str, state: str, step: str, detail: str, **extra: Any) -> Dict[str, Any]:
    """What the daemon keeps about a failover for `lab status` (scalars only)."""
    import time

    out: Dict[str, Any] = {"target": target, "state": state, "step": step, "detail": detail, "ts": time.time()}
    out.update(extra)
    return out

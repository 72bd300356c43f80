"""A green environment again after a lab switchover, for the next one (the switchover benchmark's).

After `lab switchover` green serves writes under the blue names and blue is read-only (`-old1`). AWS
would have you create a new Blue/Green deployment from the new production; the lab's layout keeps
green's instances fixed, so this puts the lab back where `lab up --blue-green` left it, on the same
servers, without restarting any:

1. each blue writer catches up with green's writes (a GTID replica of green from the position green was
   promoted at, until it has applied green's; the switchover's status rows, written on both sides,
   apply idempotently), then leaves replication and is writable again;
2. each green writer is a read-only GTID replica of blue again, from its own position;
3. `mysql.rds_topology` (both AVAILABLE rows, written on blue, replicated to green), green's Aurora
   SERVER_IDs and topology rows as at start;
4. DNS: blue names answer blue's addresses, the `-old1` names NXDOMAIN, green's names published again.

Cheaper than `lab down` + `up --blue-green` (seconds instead of a cluster start), and every switchover
then starts from the same state. The daemon's roles never changed (the switchover does not move them).
"""
import os
from typing import Any

from fiswatch.lab import bg_answers as A
from fiswatch.lab import bluegreen as B
from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.files import read_credentials
from fiswatch.lab.mariadb import sql
from fiswatch.lab.replication import replicate, wait_caught_up
from fiswatch.lab.switchover import old1

CATCH_UP = 30.0
GREEN_ONLY = A.GREEN_TOPOLOGY.split(".")[0] + ".bg\\_%"  # green's own Aurora tables: not on blue


def gtid_pos(layout: L.Layout, spec: L.InstanceSpec) -> str:
    return str(sql(layout.server_socket(spec), ["SELECT @@gtid_binlog_pos"])[0][0])


def reset_green(lab_dir: str) -> None:
    """Back to AVAILABLE with green replicating from blue (the module's steps); MariaDBError or
    LabError when a step fails."""
    lab_dir = os.path.abspath(lab_dir)
    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
    layout = L.Layout.from_dict(state["layout"])
    password = read_credentials(state["credentials_file"], lab_dir).replication_password
    roles = {i["name"]: i["role"] for i in state["instances"]}
    sides = B.sides(layout, roles)
    for _, blue, green in sides:
        # from where green left blue; blue's own status rows written after that are green's too, so
        # green's versions of them apply idempotently;
        # green's own tables stay green's
        since = str(sql(layout.server_socket(green), ["SELECT @@gtid_slave_pos"])[0][0])
        sql(layout.server_socket(blue), ["STOP SLAVE", "SET GLOBAL slave_exec_mode='IDEMPOTENT'",
                                         "SET GLOBAL replicate_wild_ignore_table='%s'" % GREEN_ONLY])
        replicate(layout, blue, green, password, gtid_pos=since)
        wait_caught_up(layout, blue, green, timeout=CATCH_UP)
        sql(layout.server_socket(blue), ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL slave_exec_mode='STRICT'",
                                         "SET GLOBAL replicate_wild_ignore_table=''",
                                         "SET GLOBAL read_only=0"])
        # from blue's position now: green's own heartbeat rows since then are not in blue's binlog
        replicate(layout, green, blue, password, gtid_pos=gtid_pos(layout, blue))
    for shape, blue, green in sides:
        sql(layout.server_socket(blue), A.topology_statements(B.topology_rows(layout, shape, blue, green),
                                                              L.CLIENT_USER))
        wait_caught_up(layout, green, blue, timeout=CATCH_UP)
    green_writer, green_reader, _ = L.GREEN_INSTANCES
    for spec in (green_writer, green_reader):
        sql(layout.server_socket(spec), A.self_statements(spec.name))
    sql(layout.server_socket(green_writer), A.green_topology_statements(
        [green_writer.name, green_reader.name], green_writer.name, L.CLIENT_USER))
    wait_caught_up(layout, green_reader, green_writer, timeout=CATCH_UP)
    restore_dns(layout, sides)


def restore_dns(layout: L.Layout, sides: Any) -> None:
    ctl, names = layout.control_socket, layout.endpoint_names
    for spec in layout.cluster("aurora"):
        request(ctl, "dns_set", name=str(spec.dns_name), kind="A", values=[layout.proxy_address(spec)[0]])
        request(ctl, "dns_blank", name=old1(str(spec.dns_name)), style="nxdomain")
    request(ctl, "dns_set", name=names["rds"], kind="A", values=[layout.proxy_address(sides[1][1])[0]])
    for name in (old1(names["aurora"]), old1(names["rds"])):
        request(ctl, "dns_blank", name=name, style="nxdomain")
    green_writer, green_reader, _ = L.GREEN_INSTANCES
    for spec in L.GREEN_INSTANCES:
        request(ctl, "dns_set", name=str(spec.dns_name), kind="A", values=[layout.proxy_address(spec)[0]])
    request(ctl, "dns_set", name=L.GREEN_ENDPOINT_NAMES["aurora-green"], kind="CNAME",
            values=[str(green_writer.dns_name)])
    request(ctl, "dns_set", name=L.GREEN_ENDPOINT_NAMES["aurora-green-ro"], kind="CNAME",
            values=[str(green_reader.dns_name)])


__all__ = ["reset_green"]

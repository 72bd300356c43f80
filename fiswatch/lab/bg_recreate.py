"""A fresh green environment in a running `lab up --blue-green` lab, after a switchover consumed it.

A lab's green is used up by one switchover (green promoted, names renamed, metadata emptied); starting a
new lab costs ~10 s. `recreate_green` puts the deployment back as `lab up --blue-green` left it, on the
same servers: blue catches up with what green took while it served (GTID), blue writable again, green a
read-only replica of blue, mysql.rds_topology AVAILABLE on both sides with its grant, green's Aurora
SERVER_IDs green again, every blue and green name answering as at start (one DNS update), proxies open.
Used by the fault tests (tests/test_lab_bluegreen_faults.py), under the lab's failover lock.
"""
import os
from typing import Any, Dict, List

from fiswatch.lab import bg_answers as A
from fiswatch.lab import bluegreen as B
from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.files import password_of
from fiswatch.lab.mariadb import sql
from fiswatch.lab.replication import replicate, wait_caught_up
from fiswatch.lab.settle import state_record
from fiswatch.lab.switchover import SwitchoverError, old1
from fiswatch.lab.lablock import try_lock

CATCH_UP = 30.0
# blue taking green's writes: not green's own tables (its Aurora topology and its heartbeat), and rows the
# switchover deleted on both sides already (mysql.rds_topology) are no error
CATCH_UP_FILTERS = ["SET GLOBAL replicate_wild_ignore_table='%s.bg%%'" % A.SCHEMA,
                    "SET GLOBAL slave_exec_mode='IDEMPOTENT'"]


def recreate_green(lab_dir: str) -> str:
    """Green as at `lab up --blue-green`; one line saying what was done (SwitchoverError when it cannot)."""
    lab_dir = os.path.abspath(lab_dir)
    lock_fd = try_lock(lab_dir)
    if lock_fd is None:
        raise SwitchoverError("a failover, crash or switchover runs in %s: wait for it to finish" % lab_dir,
                              usage=True) from None
    try:
        return _recreate(lab_dir)
    finally:
        os.close(lock_fd)


def _recreate(lab_dir: str) -> str:
    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
    layout = L.Layout.from_dict(state["layout"])
    if not layout.blue_green:
        raise SwitchoverError("no green environment in this lab: start it with `fiswatch lab up --blue-green`",
                              usage=True)
    password = password_of(os.path.join(lab_dir, L.CREDENTIALS_FILE), lab_dir)
    sides = B.sides(layout, {i["name"]: i["role"] for i in state["instances"]})
    for spec in layout.instances:
        if spec.cluster in ("aurora", "rds", "aurora-green", "rds-green"):
            request(layout.control_socket, "proxy", instance=spec.name, mode="pass")
    done = []
    for shape, blue, green in sides:
        if sql(layout.server_socket(green), ["SELECT @@read_only"])[0][0] == 0:  # promoted: blue takes its writes
            sql(layout.server_socket(green), ["SET GLOBAL read_only=1"])
            # from where green left blue (blue's own writes since, its heartbeats, green never had)
            left = sql(layout.server_socket(green), ["SELECT @@gtid_slave_pos"])[0][0]
            sql(layout.server_socket(blue), ["STOP SLAVE"] + CATCH_UP_FILTERS)
            replicate(layout, blue, green, password, gtid_pos=left)
            wait_caught_up(layout, blue, green, CATCH_UP)
            done.append("%s took %s's writes" % (blue.name, green.name))
        sql(layout.server_socket(blue), ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL replicate_wild_ignore_table=''",
                                         "SET GLOBAL slave_exec_mode='STRICT'", "SET GLOBAL read_only=0"])
        pos = sql(layout.server_socket(blue), ["SELECT @@gtid_binlog_pos"])[0][0]  # green has all of it
        replicate(layout, green, blue, password, gtid_pos=pos)
        sql(layout.server_socket(blue), A.topology_statements(B.topology_rows(layout, shape, blue, green),
                                                              L.CLIENT_USER))
        wait_caught_up(layout, green, blue, CATCH_UP)
    green_writer, green_reader, _ = L.GREEN_INSTANCES
    for spec in (green_writer, green_reader):
        sql(layout.server_socket(spec), A.self_statements(spec.name))
    sql(layout.server_socket(green_writer), A.rename_statements({B.blue_of(g.name): g.name
                                                                 for g in (green_writer, green_reader)}))
    request(layout.control_socket, "dns_batch", changes=start_dns(layout, sides))
    done.append("blue writable, green replicating, mysql.rds_topology AVAILABLE, names as at start")
    text = "green recreated: " + "; ".join(done)
    request(layout.control_socket, "failover_state", state=state_record("switchover", "recreated", "recreated", text))
    return text


def start_dns(layout: L.Layout, sides: List[Any]) -> List[Dict[str, Any]]:
    """Every record a switchover changes, as `lab up --blue-green` published it (-old1 names: NXDOMAIN)."""
    changes: List[Dict[str, Any]] = []
    for spec in layout.cluster("aurora"):
        changes.append({"name": str(spec.dns_name), "kind": "A", "values": [layout.proxy_address(spec)[0]]})
        changes.append({"name": old1(str(spec.dns_name)), "kind": "A", "values": ["0.0.0.0"]})
        changes.append({"name": old1(str(spec.dns_name)), "blank": "nxdomain"})
    names = layout.endpoint_names
    changes.append({"name": names["rds"], "kind": "A", "values": [layout.proxy_address(sides[1][1])[0]]})
    for name in (old1(names["aurora"]), old1(names["rds"])):
        changes += [{"name": name, "kind": "A", "values": ["0.0.0.0"]}, {"name": name, "blank": "nxdomain"}]
    green_writer, green_reader, _ = L.GREEN_INSTANCES
    for spec in L.GREEN_INSTANCES:
        changes.append({"name": str(spec.dns_name), "kind": "A", "values": [layout.proxy_address(spec)[0]]})
    changes.append({"name": L.GREEN_ENDPOINT_NAMES["aurora-green"], "kind": "CNAME",
                    "values": [str(green_writer.dns_name)]})
    changes.append({"name": L.GREEN_ENDPOINT_NAMES["aurora-green-ro"], "kind": "CNAME",
                    "values": [str(green_reader.dns_name)]})
    return changes

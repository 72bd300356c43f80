"""`lab up --blue-green`: a Blue/Green deployment's green environment beside the lab's blue one.

Green copies of the Aurora cluster (writer + reader) and of the RDS instance (layout.GREEN_INSTANCES),
each a MariaDB server behind its own proxy and address, with green names (NAME-green-c0ffee...):

- green's Aurora writer and green's RDS instance are GTID replicas of blue's writer / primary, green's
  Aurora reader a replica of green's writer; all read-only (users, data and grants arrive by replication);
- `mysql.rds_topology` (lab/bg_answers.py) is written on blue's writers and replicates to green, one
  AVAILABLE row per side; green's Aurora topology lives in its own table, refreshed every second by an
  event on green's writer (MariaDB's event scheduler), so green's instances answer with green's ids;
- DNS: green's instance names (A), green's cluster and reader endpoints (CNAME), green's RDS endpoint.

The switchover is lab/switchover.py. Everything here runs in the daemon at start, as root over the
servers' unix sockets.
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

from fiswatch.lab import bg_answers as A
from fiswatch.lab import layout as L
from fiswatch.lab.mariadb import sql
from fiswatch.lab.replication import replicate, wait_caught_up

HEARTBEAT_EVENT = A.SCHEMA + ".bg_heartbeat"


def green_of(blue: str) -> str:
    """The green instance (name) of a blue one, as AWS names it.

    >>> green_of("fiswatch-lab-instance-1")
    'fiswatch-lab-instance-1-green-c0ffee'
    """
    return blue + L.GREEN


def blue_of(green: str) -> str:
    """The blue name of a green one.

    >>> blue_of("fiswatch-lab-mysql-green-c0ffee")
    'fiswatch-lab-mysql'
    """
    return green[:-len(L.GREEN)] if green.endswith(L.GREEN) else green


def sides(layout: L.Layout, roles: Dict[str, str]) -> List[Tuple[str, L.InstanceSpec, L.InstanceSpec]]:
    """(shape, blue writer, green writer) for aurora and rds, from the current roles."""
    out = []
    for shape, up in (("aurora", "writer"), ("rds", "primary")):
        blue = next(s for s in layout.cluster(shape) if roles.get(s.name) == up)
        out.append((shape, blue, L.GREEN_INSTANCES[0 if shape == "aurora" else 2]))
    return out


def topology_rows(layout: L.Layout, shape: str, blue: L.InstanceSpec, green: L.InstanceSpec) -> List[tuple]:
    """One row per side: Aurora's cluster endpoint, RDS's writer instance endpoint."""
    names = layout.endpoint_names
    return [(blue.index, names[shape], layout.port, A.SOURCE),
            (green.index, names[shape + "-green"], layout.port, A.TARGET)]


def setup(lab: Any, password: str) -> None:
    """In the daemon, after the blue clusters are set up: green replicates, topology, DNS."""
    layout = lab.layout
    green_writer, green_reader, green_rds = L.GREEN_INSTANCES
    for shape, blue, green in sides(layout, lab.roles):
        sql(layout.server_socket(blue), A.topology_statements(topology_rows(layout, shape, blue, green),
                                                              L.CLIENT_USER))
        replicate(layout, green, blue, password)
    for spec in (green_writer, green_reader):
        sql(layout.server_socket(spec), A.self_statements(spec.name))
    wait_caught_up(layout, green_writer, lab.role_holder("aurora", "writer"), timeout=30)
    sql(layout.server_socket(green_writer), A.green_topology_statements(
        [green_writer.name, green_reader.name], green_writer.name, L.CLIENT_USER) + heartbeat_statements())
    replicate(layout, green_reader, green_writer, password)
    wait_caught_up(layout, green_reader, green_writer, timeout=30)
    wait_caught_up(layout, green_rds, lab.role_holder("rds", "primary"), timeout=30)
    publish_green_dns(lab)


def heartbeat_statements() -> List[object]:
    """Green's topology rows stay fresh (the wrapper ignores rows older than 300 s): an event, every second."""
    return ["SET GLOBAL event_scheduler=ON",
            "CREATE EVENT IF NOT EXISTS %s ON SCHEDULE EVERY 1 SECOND DO UPDATE %s SET LAST_UPDATE_TIMESTAMP = "
            "NOW(6)" % (HEARTBEAT_EVENT, A.GREEN_TOPOLOGY)]


def publish_green_dns(lab: Any) -> None:
    layout, zone = lab.layout, lab.zone
    green_writer, green_reader, green_rds = L.GREEN_INSTANCES
    for spec in L.GREEN_INSTANCES:
        zone.set(str(spec.dns_name), "A", (layout.proxy_address(spec)[0],), ttl=5)
    zone.set(L.GREEN_ENDPOINT_NAMES["aurora-green"], "CNAME", (str(green_writer.dns_name),), ttl=5)
    zone.set(L.GREEN_ENDPOINT_NAMES["aurora-green-ro"], "CNAME", (str(green_reader.dns_name),), ttl=5)


def rewriter(spec: L.InstanceSpec) -> Optional[Callable[[], Any]]:
    """The query rewriter of a green instance's proxy (Aurora's answers from green's tables)."""
    return A.green_rewriter_factory() if spec.cluster == "aurora-green" else None

"""What makes the lab's Aurora instances answer a topology-aware client as Aurora does.

The AWS Advanced Python Wrapper's Aurora MySQL dialect (aws-advanced-python-wrapper 3.x,
`database_dialect.AuroraMysqlDialect`) asks the database five questions that MariaDB cannot
answer as Aurora does. Each Aurora instance's proxy rewrites exactly these five query texts
(COM_QUERY packets, framed by wire/framing.py; any other byte passes unchanged) into queries the real server answers
from state the lab keeps in it (fiswatch/lab/topology.py):

  SHOW VARIABLES LIKE 'aurora_version'           -> one row: aurora_version, '3.08.2-lab-<server version>'
  the topology query on information_schema.replica_host_status
                                                 -> the same query on fiswatch_lab.replica_host_status
  SELECT @@aurora_server_id, @@aurora_server_id  -> the instance's SERVER_ID, twice
  SELECT @@innodb_read_only                      -> SELECT @@read_only (1 on a reader, 0 on the writer)
  the writer check (SERVER_ID = @@aurora_server_id)
                                                 -> the same on fiswatch_lab.replica_host_status with the
                                                    instance's own SERVER_ID

A SERVER_ID is the instance's name ('fiswatch-lab-instance-1'), as on Aurora; `host_pattern()`
turns it into the instance's endpoint name (lab/layout.py), as `cluster_instance_host_pattern`
does on the client side. The server's own @@server_id stays the instance's index (a number,
as MySQL requires): Blue/Green's rds_topology `id` is that number.
"""
from typing import Any, Callable, Dict, Optional

from fiswatch.lab.wire import framing as F

SCHEMA = "fiswatch_lab"
TOPOLOGY_TABLE = SCHEMA + ".replica_host_status"
AURORA_VERSION = "3.08.2"

# The exact texts aws-advanced-python-wrapper 3.1.0 sends (trailing space included).
VERSION_QUERY = "SHOW VARIABLES LIKE 'aurora_version'"
TOPOLOGY_QUERY = ("SELECT SERVER_ID, CASE WHEN SESSION_ID = 'MASTER_SESSION_ID' THEN TRUE ELSE FALSE END, "
                  "CPU, REPLICA_LAG_IN_MILLISECONDS, LAST_UPDATE_TIMESTAMP "
                  "FROM information_schema.replica_host_status "
                  "WHERE time_to_sec(timediff(now(), LAST_UPDATE_TIMESTAMP)) <= 300 "
                  "OR SESSION_ID = 'MASTER_SESSION_ID' ")
HOST_ID_QUERY = "SELECT @@aurora_server_id, @@aurora_server_id"
IS_READER_QUERY = "SELECT @@innodb_read_only"
WRITER_ID_QUERY = ("SELECT SERVER_ID FROM information_schema.replica_host_status "
                   "WHERE SESSION_ID = 'MASTER_SESSION_ID' AND SERVER_ID = @@aurora_server_id")
WRAPPER_QUERIES = (VERSION_QUERY, TOPOLOGY_QUERY, HOST_ID_QUERY, IS_READER_QUERY, WRITER_ID_QUERY)

def server_id(index: int) -> str:
    """The SERVER_ID of the instance with this index: its name (what `?` in the host pattern becomes).

    >>> server_id(2)
    'fiswatch-lab-instance-2'
    """
    from fiswatch.lab.layout import ALL_INSTANCES

    return next(s.name for s in ALL_INSTANCES if s.index == int(index))


def host_pattern(base: str, port: int) -> str:
    """`cluster_instance_host_pattern` for a lab: `?` is replaced by SERVER_ID, e.g.
    ?.c0ffee0c0ffe.lab-1.rds.amazonaws.com:3306 (`base` no longer matters: names, not addresses)."""
    from fiswatch.lab.layout import instance_host_pattern

    return instance_host_pattern(port)


def rewrites(instance_id: str) -> Dict[str, str]:
    """Query text -> the text sent to the server instead, for the instance `instance_id`."""
    quoted = "'%s'" % instance_id.replace("'", "")
    schema = "information_schema.replica_host_status"
    return {
        VERSION_QUERY: "SELECT 'aurora_version' AS Variable_name, CONCAT('%s-lab-', VERSION()) AS Value"
                       % AURORA_VERSION,
        TOPOLOGY_QUERY: TOPOLOGY_QUERY.replace(schema, TOPOLOGY_TABLE),
        HOST_ID_QUERY: "SELECT %s AS `@@aurora_server_id`, %s AS `@@aurora_server_id`" % (quoted, quoted),
        IS_READER_QUERY: "SELECT @@read_only AS `@@innodb_read_only`",
        WRITER_ID_QUERY: WRITER_ID_QUERY.replace(schema, TOPOLOGY_TABLE).replace("@@aurora_server_id", quoted),
    }


class QueryRewriter:
    """The client-to-server rewriting behaviour of one proxied session (wire/session.py).

    The session frames the client's packets (wire/framing.py) and asks `wants` of every packet
    that starts a command once the session is authenticated; a packet wanted is held whole and
    forwarded as `rewrite` returns it: rewritten only when it is a COM_QUERY whose text, without
    surrounding blanks, is one of the table's keys. Every other byte is forwarded as received,
    without waiting for the rest of its packet. A TLS or compressed session is never framed.
    """

    def __init__(self, table: Dict[str, str], fallback: Optional[Callable[[bytes], Optional[str]]] = None,
                 busy: Optional[Callable[[int], bool]] = None, pause: Optional[Callable[[], float]] = None) -> None:
        self._table = {k.strip().encode("utf-8"): v.encode("utf-8") for k, v in table.items()}
        self._fallback = fallback  # text -> a replacement for texts not in the table (ALTER SYSTEM) or None
        self._busy = busy  # length -> hold every query this long (a simulated disk failure: lab/wire/alter_system.py)
        self._longest = max(len(k) for k in self._table) + 16 if self._table else 0
        self._pause = pause  # () -> seconds to hold the statement at hand (a simulated disk congestion)
        self.rewritten = 0
        self.held = 0.0  # seconds the proxy holds what it forwards next (wire/session.py take_delay)

    def wants(self, length: int, first: int) -> bool:
        return first == F.COM_QUERY and (length <= self._longest or (self._busy is not None and self._busy(length)))

    def rewrite(self, packet: F.Packet) -> bytes:
        if self._pause is not None:
            self.held += self._pause()
        new = self._table.get(packet.head[1:].strip())
        if new is None and self._fallback is not None:
            answer = self._fallback(packet.head[1:])
            new = answer.encode("utf-8") if answer is not None else None
        if new is None:
            return F.packet_bytes(packet.seq, packet.head)
        self.rewritten += 1
        return F.packet_bytes(packet.seq, bytes((F.COM_QUERY,)) + new)


def rewriter_factory(instance_id: str, alter_system: Any = None) -> Callable[[], QueryRewriter]:
    """A callable making one QueryRewriter per connection for the instance's proxy (`alter_system`:
    lab/wire/alter_system.py's AlterSystem, answering Aurora's fault-injection statements)."""
    table = rewrites(instance_id)
    if alter_system is None:
        return lambda: QueryRewriter(table)
    return lambda: QueryRewriter(table, alter_system.answer, alter_system.busy, alter_system.delay)

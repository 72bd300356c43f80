"""The Aurora cluster's topology, kept in the servers themselves.

Aurora tells a client which instance is the writer in information_schema.replica_host_status.
The lab keeps the same columns in `fiswatch_lab.replica_host_status`, written on the writer
(as root, over its unix socket) and carried to the reader by the lab's real replication, so
each server answers with what it knows: a reader that has not heard of a promotion still names
the old writer, a fenced writer answers nothing. The instance proxies rewrite the wrapper's
queries onto this table (fiswatch/lab/aurora.py).

- `create_statements()`: the schema, the table, one row per instance (run once on the writer).
- `promote_statements()`: run on the new writer in the same breath as `read_only=0`.
- `Heartbeat`: refreshes LAST_UPDATE_TIMESTAMP on the writer every second (Aurora's rows are
  fresh; the wrapper ignores rows older than 300 s); paused while a failover fences the writer,
  so nothing is written to a writer that is about to be replaced.
"""
import threading
import time
from typing import Callable, List, Optional, Sequence

from fiswatch.lab.aurora import SCHEMA, TOPOLOGY_TABLE

READER_SESSION = "fiswatch-lab-replica-session-"  # + SERVER_ID; Aurora shows a session id per reader
HEARTBEAT_SQL = "UPDATE %s SET LAST_UPDATE_TIMESTAMP = NOW(6)" % TOPOLOGY_TABLE


def create_statements(instance_ids: Sequence[str], writer_id: str, client_user: str) -> List[object]:
    statements: List[object] = [
        "CREATE DATABASE IF NOT EXISTS %s" % SCHEMA,
        "CREATE TABLE IF NOT EXISTS %s (SERVER_ID VARCHAR(100) NOT NULL PRIMARY KEY, "
        "SESSION_ID VARCHAR(100) NOT NULL, CPU DOUBLE NOT NULL DEFAULT 0, "
        "REPLICA_LAG_IN_MILLISECONDS DOUBLE NOT NULL DEFAULT 0, LAST_UPDATE_TIMESTAMP DATETIME(6) NOT NULL)"
        % TOPOLOGY_TABLE,
        "GRANT SELECT ON %s.* TO '%s'@'%%'" % (SCHEMA, client_user),
        "DELETE FROM %s" % TOPOLOGY_TABLE,
    ]
    for instance_id in instance_ids:
        statements.append(("INSERT INTO " + TOPOLOGY_TABLE + " (SERVER_ID, SESSION_ID, LAST_UPDATE_TIMESTAMP) "
                           "VALUES (%s, %s, NOW(6))", (instance_id, READER_SESSION + instance_id)))
    return statements + promote_statements(writer_id)


def promote_statements(writer_id: str) -> List[object]:
    """Make `writer_id` the one row with SESSION_ID = 'MASTER_SESSION_ID'; every row fresh."""
    return [("UPDATE " + TOPOLOGY_TABLE + " SET SESSION_ID = IF(SERVER_ID = %s, 'MASTER_SESSION_ID', "
             "CONCAT(%s, SERVER_ID)), REPLICA_LAG_IN_MILLISECONDS = 0, LAST_UPDATE_TIMESTAMP = NOW(6)",
             (writer_id, READER_SESSION))]


def read(socket_path: str) -> List[tuple]:
    """(SERVER_ID, is_writer, LAST_UPDATE_TIMESTAMP) rows as one server sees them (root, for tests/status)."""
    from fiswatch.lab.mariadb import sql

    return [(r[0], bool(r[1]), r[2]) for r in sql(socket_path, [
        "SELECT SERVER_ID, SESSION_ID = 'MASTER_SESSION_ID', LAST_UPDATE_TIMESTAMP FROM %s ORDER BY SERVER_ID"
        % TOPOLOGY_TABLE])]


class Heartbeat:
    """A thread that runs HEARTBEAT_SQL on the writer's socket every `interval` seconds."""

    def __init__(self, writer_socket: Callable[[], Optional[str]], log: Callable[[str], None],
                 interval: float = 1.0) -> None:
        self._writer_socket = writer_socket
        self._log = log
        self._interval = interval
        self._lock = threading.Lock()  # held while a beat runs
        self._paused_until = 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False

    def start(self) -> "Heartbeat":
        self._thread = threading.Thread(target=self._run, name="lab-topology-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def pause(self, seconds: float) -> None:
        """No beat from now for `seconds` (a lease: a failover that dies cannot stop it for good)."""
        with self._lock:  # waits for a beat in flight
            self._paused_until = time.monotonic() + max(0.0, seconds)

    def resume(self) -> None:
        with self._lock:
            self._paused_until = 0.0
        self.beat()

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def beat(self) -> None:
        from fiswatch.lab.mariadb import sql

        with self._lock:
            if self.paused:
                return
            path = self._writer_socket()
            if path is None:
                return
            try:
                sql(path, [HEARTBEAT_SQL], timeout=2.0)
            except Exception as exc:  # noqa: BLE001 - a stopped writer: say it once, keep trying
                if not self._failing:
                    self._log("lab: topology heartbeat failed: %s" % exc)
                self._failing = True
            else:
                if self._failing:
                    self._log("lab: topology heartbeat works again")
                self._failing = False

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()

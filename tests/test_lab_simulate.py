"""Aurora's ALTER SYSTEM SIMULATE statements against the real lab (issue 22 item 3): READ REPLICA FAILURE
stops replication and shows the lag in the topology, DISK FAILURE fails statements for its interval."""
import os

import pytest

from conftest import wait_for
from test_lab_crash import _connect, _one, _writer

pytestmark = pytest.mark.lab

from fiswatch.lab import layout as L  # noqa: E402


def test_read_replica_failure_stops_replication_and_the_topology_shows_the_lag(lab):
    import pymysql

    from fiswatch.lab import aurora

    writer, reader = _writer(lab), next(i for i in lab.instances if i.cluster == "aurora" and i.role == "reader")
    r = _connect(lab, reader.address)
    with pytest.raises(pymysql.err.OperationalError) as refused:  # sent to a reader: one line why not
        _one(r, "ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE FOR INTERVAL 3 SECOND")
    assert refused.value.args[0] == 1105 and "from the writer" in refused.value.args[1]
    w = _connect(lab, writer.address)
    with pytest.raises(pymysql.err.OperationalError) as bad:
        _one(w, "ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO 'no-such' FOR INTERVAL 3 SECOND")
    assert bad.value.args[0] == 1105 and "no reader 'no-such'" in bad.value.args[1]
    with w.cursor() as cur:
        cur.execute("ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO ALL FOR INTERVAL 4 SECOND")
        cur.execute("INSERT INTO %s (value) VALUES (424242)" % L.TABLE)
        marker = cur.lastrowid

    def lag_of(conn):
        with conn.cursor() as cur:
            cur.execute(aurora.TOPOLOGY_QUERY)
            return {row[0]: float(row[3]) for row in cur.fetchall()}[reader.server_id]

    wait_for(lambda: lag_of(w) >= 1000, timeout=10, message="the reader's lag growing in the writer's topology")
    assert _one(r, "SELECT COUNT(*) FROM %s WHERE id = %d" % (L.TABLE, marker))[0] == 0  # not replicated yet
    wait_for(lambda: _one(r, "SELECT COUNT(*) FROM %s WHERE id = %d" % (L.TABLE, marker))[0] == 1, timeout=30,
             message="the reader catching up after the interval")
    wait_for(lambda: lag_of(w) == 0, timeout=10, message="the lag back to 0")
    r.close()
    w.close()
    wait_for(lambda: _lock_free(lab), timeout=10, message="the simulation's end releasing the failover lock")


def _lock_free(info):
    from fiswatch.lab.crash import CrashError, take_lock

    try:
        os.close(take_lock(info.dir))
        return True
    except CrashError:
        return False


def test_disk_failure_fails_statements_for_the_interval(lab):
    import pymysql

    reader = next(i for i in lab.instances if i.cluster == "aurora" and i.role == "reader")
    conn, other = _connect(lab, reader.address), _connect(lab, reader.address)
    with conn.cursor() as cur:
        cur.execute("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE IN DISK 1 FOR INTERVAL 3 SECOND")  # OK
    with pytest.raises(pymysql.err.OperationalError) as failed:  # every session of the instance
        _one(other, "SELECT COUNT(*) FROM %s" % L.TABLE)
    assert failed.value.args[0] == 1030 and "simulated DISK FAILURE" in failed.value.args[1]

    def works():
        try:
            return _one(conn, "SELECT 1")[0] == 1
        except pymysql.err.OperationalError:
            return False

    wait_for(works, timeout=30, message="statements working again after the interval")
    conn.close()
    other.close()



def test_disk_congestion_slows_the_instances_statements_for_the_interval_only(lab):
    import statistics
    import time

    reader = next(i for i in lab.instances if i.cluster == "aurora" and i.role == "reader")
    conn, other = _connect(lab, reader.address), _connect(lab, reader.address)

    def took():
        started = time.monotonic()
        assert _one(other, "SELECT 1")[0] == 1  # delayed, never failed
        return time.monotonic() - started

    with conn.cursor() as cur:  # OK; every statement of every session of the instance held 300..400 ms
        cur.execute("ALTER SYSTEM SIMULATE 100 PERCENT DISK CONGESTION BETWEEN 300 AND 400 MILLISECONDS "
                    "IN DISK 1 FOR INTERVAL 3 SECOND")
    during = [took() for _ in range(2)]
    assert max(during) >= 0.3, during
    wait_for(lambda: statistics.median([took() for _ in range(5)]) < 0.2, timeout=30,
             message="statements fast again after the interval")
    conn.close()
    other.close()

"""The lost-write check of `lab exec` (lab/wire/lost.py) on each lab database: Aurora's writer and RDS's
primary (it once looked for an RDS "writer" and said "cannot reach the rds writer" for every RDS insert)."""
import pymysql
import pytest

from _lab_fixture import lab  # noqa: F401

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("cluster, role", [("aurora", "writer"), ("rds", "primary")])
def test_acknowledged_inserts_are_found_on_the_current_writer_and_a_missing_one_is_lost(lab, cluster, role):  # noqa: F811
    from fiswatch.lab.wire import lost

    ep = lab.endpoint(cluster)
    writer = lab.instance(cluster, role)
    conn = pymysql.connect(host=writer.address, port=writer.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=10)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS wire_lost (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO wire_lost (v) VALUES (1), (2)")
        first = cur.lastrowid
        cur.execute("SELECT MAX(id) FROM wire_lost")
        top = cur.fetchone()[0]
    conn.close()
    table = "%s/%s.wire_lost" % (cluster, ep.database)
    found = lost.check(lab.dir, {table: [[first, 2]]}, {})
    assert "error" not in found, found
    assert found["checked"] == 2 and found["lost"] == []
    gone = lost.check(lab.dir, {table: [[top + 1000, 1]]}, {})
    assert gone["lost"] == [(table, top + 1000)]

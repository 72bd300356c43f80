"""RDS topology: pure line helpers, target lookup, and the watcher against moto and Stubber."""
import datetime

import pytest

from _aws_fixture import CLUSTER_ID, MYSQL_ID, READER, WRITER, StubSession, make_cluster, make_mysql, session
from conftest import wait_for
from fiswatch import events as E
from fiswatch.aws.topology import (LINE_WIDTH, TopologyWatcher, cluster_lines, describe_lines, find_target, fit,
                                   instance_lines, match_host)
from fiswatch.model import Endpoint


def _instance(ident, az, status="available", multi_az=False, secondary=None, cluster=None):
    inst = {"DBInstanceIdentifier": ident, "AvailabilityZone": az, "DBInstanceStatus": status,
            "MultiAZ": multi_az, "Engine": "mysql", "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:" + ident,
            "Endpoint": {"Address": ident + ".abc.us-east-1.rds.amazonaws.com", "Port": 3306},
            "InstanceCreateTime": datetime.datetime(2024, 1, 1)}
    if secondary:
        inst["SecondaryAvailabilityZone"] = secondary
    if cluster:
        inst["DBClusterIdentifier"] = cluster
    return inst


def _cluster(writer="w-1", reader="r-1", status="available"):
    return {"DBClusterIdentifier": "fisworkshop", "Status": status,
            "Endpoint": "fisworkshop.cluster-abc.us-east-1.rds.amazonaws.com",
            "ReaderEndpoint": "fisworkshop.cluster-ro-abc.us-east-1.rds.amazonaws.com",
            "DBClusterArn": "arn:aws:rds:us-east-1:123456789012:cluster:fisworkshop",
            "DBClusterMembers": [{"DBInstanceIdentifier": reader, "IsClusterWriter": False},
                                 {"DBInstanceIdentifier": writer, "IsClusterWriter": True}]}


def test_cluster_lines_writer_first_with_azs():
    lines = cluster_lines(_cluster(), {"w-1": _instance("w-1", "us-east-1a"),
                                       "r-1": _instance("r-1", "us-east-1b", status="rebooting")})
    assert lines == ("cluster fisworkshop available", "writer w-1 us-east-1a available",
                     "reader r-1 us-east-1b rebooting")


def test_long_identifiers_fit_the_column():
    long_w, long_r = "fisworkshop-aurora-instance-writer-1", "fisworkshop-aurora-instance-reader-1"
    lines = cluster_lines(_cluster(long_w, long_r, status="failing-over"),
                          {long_w: _instance(long_w, "us-east-1a", status="available"),
                           long_r: _instance(long_r, "us-east-1b", status="configuring-enhanced-monitoring")})
    assert all(len(line) <= LINE_WIDTH for line in lines), lines
    assert lines[1].startswith("writer fis") and "us-east-1a" in lines[1]
    assert lines[0].endswith("failing-over")


def test_many_readers_are_summarised():
    cluster = _cluster()
    cluster["DBClusterMembers"] += [{"DBInstanceIdentifier": "r-%d" % i, "IsClusterWriter": False}
                                    for i in range(2, 5)]
    lines = cluster_lines(cluster, {})
    assert len(lines) == 4 and lines[-1] == "+3 more readers"


def test_instance_lines_multi_az_with_secondary():
    lines = instance_lines(_instance(MYSQL_ID, "us-east-1a", multi_az=True, secondary="us-east-1b"))
    assert lines == ("instance fisworkshop-mysql available", "primary us-east-1a standby us-east-1b")
    single = instance_lines(_instance("db1", "us-east-1c"))
    assert single[1] == "single-AZ us-east-1c (no standby)"


def test_match_host_finds_cluster_reader_or_instance():
    clusters = [_cluster()]
    instances = [_instance(MYSQL_ID, "us-east-1a")]
    assert match_host("FISWORKSHOP.cluster-abc.us-east-1.rds.amazonaws.com.", clusters, instances) == \
        ("cluster", "fisworkshop")
    assert match_host("fisworkshop.cluster-ro-abc.us-east-1.rds.amazonaws.com", clusters, instances) == \
        ("cluster", "fisworkshop")
    assert match_host(MYSQL_ID + ".abc.us-east-1.rds.amazonaws.com", clusters, instances) == ("instance", MYSQL_ID)
    assert match_host("10.0.0.1", clusters, instances) is None


def test_reboot_with_failover_swaps_azs_stubbed():
    """moto's reboot ignores ForceFailover and has no SecondaryAvailabilityZone: Stubber plays RDS."""
    stub = StubSession()
    rds = stub.stub("rds")
    params = {"DBInstanceIdentifier": MYSQL_ID}
    answers = [_instance(MYSQL_ID, "us-east-1a", multi_az=True, secondary="us-east-1b"),
               _instance(MYSQL_ID, "us-east-1a", status="rebooting", multi_az=True, secondary="us-east-1b"),
               _instance(MYSQL_ID, "us-east-1b", multi_az=True, secondary="us-east-1a")]
    for answer in answers:
        rds.add_response("describe_db_instances", {"DBInstances": [answer]}, params)
    events = []
    ep = Endpoint("rds", MYSQL_ID + ".abc.us-east-1.rds.amazonaws.com", instance_id=MYSQL_ID)
    watcher = TopologyWatcher([ep], stub, events.append)
    for _ in answers:
        watcher.poll_once()
    stub.assert_no_pending()
    assert [e.get("lines") for e in events] == [
        ("instance fisworkshop-mysql available", "primary us-east-1a standby us-east-1b"),
        ("instance fisworkshop-mysql rebooting", "primary us-east-1a standby us-east-1b"),
        ("instance fisworkshop-mysql available", "primary us-east-1b standby us-east-1a")]
    assert events[-1].get("previous") == events[1].get("lines")
    assert watcher.lines("rds") == tuple(events[-1].get("lines"))


def test_throttling_gives_one_warning_then_recovers_stubbed():
    stub = StubSession()
    rds = stub.stub("rds")
    params = {"DBInstanceIdentifier": MYSQL_ID}
    for _ in range(3):
        rds.add_client_error("describe_db_instances", "Throttling", "Rate exceeded", http_status_code=400,
                             expected_params=params)
    rds.add_response("describe_db_instances", {"DBInstances": [_instance(MYSQL_ID, "us-east-1a")]}, params)
    events = []
    watcher = TopologyWatcher([Endpoint("rds", "h", instance_id=MYSQL_ID)], stub, events.append)
    for _ in range(4):
        watcher.poll_once()
    kinds = [e.event for e in events]
    assert kinds == [E.WARNING, E.INFO, E.TOPOLOGY], kinds
    assert "Throttling" in events[0].get("message") and "rds" in events[0].get("message")
    assert events[2].get("previous") == ("topology unavailable",)


@pytest.fixture
def moto_rds():
    from moto import mock_aws

    with mock_aws():
        sess = session()
        cluster = make_cluster(sess)
        make_mysql(sess)
        yield sess, cluster


@pytest.mark.slow
def test_find_target_by_host_and_by_secret_ids(moto_rds):
    sess, cluster = moto_rds
    rds = sess.client("rds")
    assert find_target(rds, Endpoint("aurora", cluster["Endpoint"])) == ("cluster", CLUSTER_ID)
    mysql_host = rds.describe_db_instances(DBInstanceIdentifier=MYSQL_ID)["DBInstances"][0]["Endpoint"]["Address"]
    assert find_target(rds, Endpoint("rds", mysql_host)) == ("instance", MYSQL_ID)
    assert find_target(rds, Endpoint("aurora", "10.1.1.1", cluster_id="other")) == ("cluster", "other")
    assert find_target(rds, Endpoint("x", "10.1.1.1"), cluster_ids={"x": "c2"}) == ("cluster", "c2")
    from fiswatch.aws.session import AwsError

    with pytest.raises(AwsError) as info:
        find_target(rds, Endpoint("aurora", "10.1.1.1"))
    assert "--cluster-id" in str(info.value) and "10.1.1.1" in str(info.value)


@pytest.mark.slow
def test_watcher_thread_sees_aurora_failover(moto_rds):
    sess, cluster = moto_rds
    events = []
    watcher = TopologyWatcher([Endpoint("aurora", cluster["Endpoint"])], sess, events.append, interval=0.1)
    watcher.start()
    try:
        wait_for(lambda: watcher.lines("aurora"), timeout=30, message="first topology")
        assert watcher.lines("aurora")[1] == fit("writer", WRITER, "us-east-1a available")
        sess.client("rds").failover_db_cluster(DBClusterIdentifier=CLUSTER_ID, TargetDBInstanceIdentifier=READER)
        moved = wait_for(lambda: [e for e in events if e.event == E.TOPOLOGY and e.get("previous")],
                         timeout=30, message="topology change event")
    finally:
        watcher.stop()
    assert moved[0].get("endpoint") == "aurora"
    assert moved[0].get("lines")[1] == fit("writer", READER, "us-east-1b available")
    assert moved[0].get("previous")[1] == fit("writer", WRITER, "us-east-1a available")
    assert not watcher._thread.is_alive()


def test_watcher_warns_once_when_cluster_vanishes(moto_rds):
    sess, _ = moto_rds
    events = []
    watcher = TopologyWatcher([Endpoint("aurora", "10.0.0.1")], sess, events.append,
                              cluster_ids={"aurora": "no-such-cluster"})
    for _ in range(5):
        watcher.poll_once()
    warnings = [e for e in events if e.event == E.WARNING]
    assert len(warnings) == 1
    assert "DBClusterNotFoundFault" in warnings[0].get("message")
    assert watcher.lines("aurora") == ("topology unavailable",)


def test_describe_lines_for_cluster_uses_member_instances(moto_rds):
    sess, _ = moto_rds
    lines = describe_lines(sess.client("rds"), ("cluster", CLUSTER_ID))
    assert lines == ("cluster %s available" % CLUSTER_ID, fit("writer", WRITER, "us-east-1a available"),
                     fit("reader", READER, "us-east-1b available"))
    assert lines[1] == "writer fis~rora-1 us-east-1a available"

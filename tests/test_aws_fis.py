"""FIS templates and experiments: exact workshop templates, idempotence, run tags, watcher."""
import datetime

import pytest

from _aws_fixture import CLUSTER_ID, MYSQL_ID, StubSession, fis_moto_server, make_world, session
from conftest import wait_for
from fiswatch import events as E
from fiswatch.aws import fis
from fiswatch.aws.session import AwsError

CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:fisworkshop"
DB_ARN = "arn:aws:rds:us-east-1:123456789012:db:fisworkshop-mysql"
ROLE_ARN = "arn:aws:iam::123456789012:role/FisWorkshopServiceRole"
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)


def test_aurora_template_is_the_workshops():
    request = fis.template_request(fis.TEMPLATES["aurora"], CLUSTER_ARN, ROLE_ARN)
    assert request == {
        "description": "FailoverAuroraCluster",
        "roleArn": ROLE_ARN,
        "targets": {"FisWorkshopAuroraCluster": {"resourceType": "aws:rds:cluster", "resourceArns": [CLUSTER_ARN],
                                                 "selectionMode": "ALL"}},
        "actions": {"FisWorkshopFailoverAuroraCluster": {"actionId": "aws:rds:failover-db-cluster",
                                                         "description": "Failover Aurora Cluster",
                                                         "targets": {"Clusters": "FisWorkshopAuroraCluster"}}},
        "stopConditions": [{"source": "none"}],
        "tags": {"Name": "FisWorkshopAurora1"},
    }


def test_rds_template_is_the_workshops():
    request = fis.template_request(fis.TEMPLATES["rds"], DB_ARN, ROLE_ARN)
    assert request["description"] == "RebootRDSInstance"
    assert request["targets"] == {"FisWorkshopRDSDB": {"resourceType": "aws:rds:db", "resourceArns": [DB_ARN],
                                                       "selectionMode": "ALL"}}
    assert request["actions"] == {"RDSInstanceReboot": {"actionId": "aws:rds:reboot-db-instances",
                                                        "targets": {"DBInstances": "FisWorkshopRDSDB"},
                                                        "parameters": {"forceFailover": "true"}}}
    assert request["tags"] == {"Name": "FisWorkshopRds1"}


def test_run_numbers():
    assert fis.run_number([], "FisWorkshopRds1") == 1
    assert fis.run_number(["FisWorkshopRds1Run2", "FisWorkshopRds1Run10", "FisWorkshopRds1RunX",
                           "FisWorkshopAurora1Run40"], "FisWorkshopRds1") == 11


def _role():
    return {"Role": {"Path": "/", "RoleName": "FisWorkshopServiceRole", "RoleId": "AROAEXAMPLEEXAMPLE1", "Arn": ROLE_ARN,
                     "CreateDate": T0}}


def test_ensure_template_creates_exactly_once_stubbed():
    stub = StubSession()
    f, rds, iam = stub.stub("fis"), stub.stub("rds"), stub.stub("iam")
    f.add_response("list_experiment_templates", {"experimentTemplates": []}, {})
    rds.add_response("describe_db_clusters", {"DBClusters": [{"DBClusterIdentifier": CLUSTER_ID,
                                                              "DBClusterArn": CLUSTER_ARN}]},
                     {"DBClusterIdentifier": CLUSTER_ID})
    iam.add_response("get_role", _role(), {"RoleName": "FisWorkshopServiceRole"})
    expected = dict(fis.template_request(fis.TEMPLATES["aurora"], CLUSTER_ARN, ROLE_ARN))
    f.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT1"}}, expected)
    assert fis.ensure_template(stub, "aurora", cluster_id=CLUSTER_ID) == ("EXT1", True)
    # second time: found by its Name tag, nothing created
    f.add_response("list_experiment_templates", {"experimentTemplates": [
        {"id": "EXTother", "tags": {"Name": "Something"}},
        {"id": "EXT1", "tags": {"Name": "FisWorkshopAurora1"}, "creationTime": T0}]}, {})
    assert fis.ensure_template(stub, "aurora", cluster_id=CLUSTER_ID) == ("EXT1", False)
    stub.assert_no_pending()


def test_ensure_template_role_by_arn_and_missing_role_stubbed():
    stub = StubSession()
    f, rds, iam = stub.stub("fis"), stub.stub("rds"), stub.stub("iam")
    f.add_response("list_experiment_templates", {"experimentTemplates": []}, {})
    rds.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceIdentifier": MYSQL_ID,
                                                                "DBInstanceArn": DB_ARN}]},
                     {"DBInstanceIdentifier": MYSQL_ID})
    iam.add_client_error("get_role", "NoSuchEntity", "The role cannot be found", 404,
                         expected_params={"RoleName": "FisWorkshopServiceRole"})
    with pytest.raises(AwsError) as info:
        fis.ensure_template(stub, "rds", instance_id=MYSQL_ID)
    assert "FisWorkshopServiceRole" in str(info.value) and "--role-arn" in str(info.value)

    other_role = "arn:aws:iam::123456789012:role/Mine"
    f.add_response("list_experiment_templates", {"experimentTemplates": []}, {})
    rds.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceIdentifier": MYSQL_ID,
                                                                "DBInstanceArn": DB_ARN}]},
                     {"DBInstanceIdentifier": MYSQL_ID})
    expected = dict(fis.template_request(fis.TEMPLATES["rds"], DB_ARN, other_role))
    f.add_response("create_experiment_template", {"experimentTemplate": {"id": "EXT2"}}, expected)
    assert fis.ensure_template(stub, "rds", instance_id=MYSQL_ID, role_arn=other_role) == ("EXT2", True)
    stub.assert_no_pending()


def test_start_numbers_runs_on_stubbed():
    stub = StubSession()
    f = stub.stub("fis")
    f.add_response("list_experiment_templates", {"experimentTemplates": [
        {"id": "EXT2", "tags": {"Name": "FisWorkshopRds1"}}]}, {})
    f.add_response("list_experiments", {"experiments": [
        {"id": "EXPa", "experimentTemplateId": "EXT2", "tags": {"Name": "FisWorkshopRds1Run1"}, "creationTime": T0},
        {"id": "EXPb", "experimentTemplateId": "EXT2", "tags": {"Name": "FisWorkshopRds1Run3"}, "creationTime": T0}]},
        {"experimentTemplateId": "EXT2"})
    f.add_response("start_experiment", {"experiment": {"id": "EXPc"}},
                   {"experimentTemplateId": "EXT2", "tags": {"Name": "FisWorkshopRds1Run4"}})
    assert fis.start_experiment(stub, "rds") == "EXPc"
    stub.assert_no_pending()


def test_start_without_template_says_create_first_stubbed():
    stub = StubSession()
    stub.stub("fis").add_response("list_experiment_templates", {"experimentTemplates": []}, {})
    with pytest.raises(AwsError) as info:
        fis.start_experiment(stub, "aurora")
    assert str(info.value) == ("no FIS template tagged Name=FisWorkshopAurora1: run `fiswatch experiment "
                               "create aurora` first")


def _poll_responses(f, state, reason=""):
    f.add_response("list_experiment_templates", {"experimentTemplates": [
        {"id": "EXT1", "tags": {"Name": "FisWorkshopAurora1"}}]}, {})
    f.add_response("list_experiments", {"experiments": [
        {"id": "EXP1", "experimentTemplateId": "EXT1", "tags": {"Name": "FisWorkshopAurora1Run1"},
         "creationTime": T0}]}, {"experimentTemplateId": "EXT1"})
    f.add_response("get_experiment", {"experiment": {"id": "EXP1", "state": {"status": state, "reason": reason}}},
                   {"id": "EXP1"})


def test_experiment_watcher_reports_failure_once_stubbed():
    """An experiment that fails (e.g. the role lacks rds:FailoverDBCluster): moto never fails one."""
    stub = StubSession()
    f = stub.stub("fis")
    events = []
    watcher = fis.ExperimentWatcher(stub, "aurora", events.append)
    for state in ("initiating", "running", "failed", "failed"):
        _poll_responses(f, state, "Not authorized to perform rds:FailoverDBCluster" if state == "failed" else "")
        watcher.poll_once()
    stub.assert_no_pending()
    states = [e.get("state") for e in events if e.event == E.EXPERIMENT]
    assert states == ["initiating", "running", "failed"]
    warnings = [e for e in events if e.event == E.WARNING]
    assert len(warnings) == 1 and "rds:FailoverDBCluster" in warnings[0].get("message")
    assert watcher.status_line() == ("FIS aurora: FisWorkshopAurora1Run1 failed (Not authorized to perform "
                                     "rds:FailoverDBCluster)")


def test_experiment_watcher_access_denied_is_one_warning_stubbed():
    stub = StubSession()
    f = stub.stub("fis")
    events = []
    watcher = fis.ExperimentWatcher(stub, "rds", events.append)
    for _ in range(3):
        f.add_client_error("list_experiment_templates", "AccessDeniedException", "no fis:ListExperimentTemplates",
                           403, expected_params={})
        watcher.poll_once()
    assert [e.event for e in events] == [E.WARNING]
    assert "IAM permissions" in events[0].get("message")
    assert watcher.status_line().startswith("FIS rds: AWS ListExperimentTemplates failed: AccessDeniedException")


@pytest.fixture
def moto_world():
    from moto import mock_aws

    with mock_aws():
        yield make_world(session())


@pytest.fixture
def fis_world():
    """The same world on a moto server with FIS (another Python's where this moto has none)."""
    with fis_moto_server():
        yield make_world(session())


@pytest.mark.slow
def test_ensure_template_finds_cluster_through_secret_host(fis_world):
    template_id, created = fis.ensure_template(fis_world, "aurora")
    assert created
    template = fis_world.client("fis").get_experiment_template(id=template_id)["experimentTemplate"]
    assert template["targets"]["FisWorkshopAuroraCluster"]["resourceArns"] == [CLUSTER_ARN]
    assert template["roleArn"] == ROLE_ARN and template["tags"] == {"Name": "FisWorkshopAurora1"}
    assert fis.ensure_template(fis_world, "aurora") == (template_id, False)
    assert len(fis_world.client("fis").list_experiment_templates()["experimentTemplates"]) == 1


@pytest.mark.slow
def test_rds_target_needs_an_instance(moto_world):
    # no FisMysqlSecret in this world and no --instance-id: one line naming the flag
    with pytest.raises(AwsError) as info:
        fis.resource_arn(moto_world, fis.TEMPLATES["rds"])
    assert "--instance-id" in str(info.value) and "FisMysqlSecret" in str(info.value)
    assert fis.resource_arn(moto_world, fis.TEMPLATES["rds"], instance_id=MYSQL_ID) == DB_ARN


def test_experiment_watcher_starts_and_follows_a_run(fis_world):
    fis.ensure_template(fis_world, "aurora", cluster_id=CLUSTER_ID)
    events = []
    watcher = fis.ExperimentWatcher(fis_world, "aurora", events.append, interval=0.1)
    watcher.start()
    try:
        wait_for(lambda: "ready, no run yet" in watcher.status_line(), timeout=30, message="template seen")
        watcher.start_run()
        wait_for(lambda: any(e.event == E.EXPERIMENT and e.get("state") == "completed" for e in events),
                 timeout=30, message="experiment completed")
    finally:
        watcher.stop()
    states = [e.get("state") for e in events if e.event == E.EXPERIMENT]
    assert states[-1] == "completed" and "running" in states
    assert watcher.status_line() == "FIS aurora: FisWorkshopAurora1Run1 completed"
    assert any(e.event == E.INFO and "started experiment" in e.get("message") for e in events)

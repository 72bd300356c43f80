"""What moto does not do, checked with botocore's Stubber against the real service models.

moto (5.1/5.2) ignores GetMetricData's NextToken/MaxDatapoints (it never pages), does not
evaluate SEARCH or other metric math (it looks an expression up as a query id), does not
validate dashboard bodies beyond JSON (no DashboardValidationMessages), ignores ListMetrics'
RecentlyActive, and never throttles. Those paths are checked here.
"""
import datetime
import io
import json

import pytest

import fiswatch.aws.cloudwatch
import fiswatch.aws.fleet_cli
import fiswatch.aws.fleet_dashboard
import fiswatch.aws.fleet_data
import fiswatch.aws.fleet_model
import fiswatch.aws.fleet_view
from _aws_fixture import StubSession
from fiswatch.aws.fleet_cli import Poller
from fiswatch.aws.fleet_dashboard import dashboard_body, put_dashboard
from fiswatch.aws.fleet_data import FleetSource, experiment_start, metric_queries
from fiswatch.aws.fleet_model import SeriesKey

NOW = 1795660000.0
ANY = __import__("botocore.stub", fromlist=["ANY"]).ANY


def _metric(host, endpoint="aurora", backend="pymysql", run="r1"):
    return {"Namespace": "fisworkshop", "MetricName": "state",
            "Dimensions": [{"Name": "endpoint", "Value": endpoint}, {"Name": "backend", "Value": backend},
                           {"Name": "host", "Value": host}, {"Name": "run", "Value": run}]}


def _at(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def test_list_pages_and_500_query_batches_and_next_token():
    stub = StubSession()
    cw = stub.client("cloudwatch")
    s = stub.stub("cloudwatch")
    first = [_metric("h%03d" % i) for i in range(200)] + [{"Namespace": "fisworkshop", "MetricName": "state",
                                                            "Dimensions": [{"Name": "host", "Value": "old"}]}]
    second = [_metric("h%03d" % i) for i in range(200, 300)]
    s.add_response("list_metrics", {"Metrics": first, "NextToken": "page2"},
                   {"Namespace": "fisworkshop", "MetricName": "state", "RecentlyActive": "PT3H"})
    s.add_response("list_metrics", {"Metrics": second},
                   {"Namespace": "fisworkshop", "MetricName": "state", "RecentlyActive": "PT3H", "NextToken": "page2"})
    # 300 series x 2 metrics = 600 queries: a call of 500 (answered in two pages) and a call of 100
    base = {"StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"}
    s.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0_0", "Timestamps": [_at(NOW - 2)], "Values": [0.0], "StatusCode": "PartialData"}],
        "NextToken": "more"}, dict(base, MetricDataQueries=ANY))
    s.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0_0", "Timestamps": [_at(NOW - 1)], "Values": [1.0], "StatusCode": "Complete"},
        {"Id": "q0_1", "Timestamps": [_at(NOW - 2), _at(NOW - 1)], "Values": [3.0, 4.0], "StatusCode": "Complete"}]},
        dict(base, MetricDataQueries=ANY, NextToken="more"))
    s.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q299_0", "Timestamps": [_at(NOW - 1)], "Values": [0.0], "StatusCode": "Complete"}]},
        dict(base, MetricDataQueries=ANY))
    source = FleetSource(cw, minutes=5)
    fleet = source.fetch(now=NOW)
    stub.assert_no_pending()
    assert source.calls == {"ListMetrics": 2, "GetMetricData": 3, "metrics_requested": 1100}
    assert len(fleet.hosts) == 2  # only two series have samples in the window
    h000 = fleet.hosts[0].cells[0]
    assert (fleet.hosts[0].host, h000.state, h000.stalled) == ("h000", "STALLED", True)
    assert h000.last_write == NOW - 1 - 4.0


def test_metric_queries_respect_the_api_shapes():
    queries = metric_queries([SeriesKey("aurora", "pymysql", "alice", "r1")])
    assert [q["Id"] for q in queries] == ["q0_0", "q0_1"]
    assert [q["MetricStat"]["Metric"]["MetricName"] for q in queries] == ["state", "write_gap"]
    assert all(q["MetricStat"]["Period"] == 1 for q in queries)


def test_throttling_backs_off_and_says_so_in_one_line():
    stub = StubSession()
    s = stub.stub("cloudwatch")
    for _ in range(2):
        s.add_client_error("list_metrics", service_error_code="Throttling", service_message="Rate exceeded",
                           http_status_code=400)
    s.add_client_error("list_metrics", service_error_code="AccessDenied", service_message="not allowed",
                       http_status_code=403)
    poller = Poller(FleetSource(stub.client("cloudwatch"), minutes=5), refresh=10)
    fleet, problem = poller.once()
    assert fleet is None and poller.delay == 20 and "throttling" in problem and "next read in 20s" in problem
    fleet, problem = poller.once()
    assert poller.delay == 40 and "\n" not in problem
    fleet, problem = poller.once()
    assert poller.delay == 10 and "AccessDenied" in problem and "IAM" in problem


def test_the_first_read_failing_is_one_line_and_exit_1(monkeypatch):
    stub = StubSession()
    stub.stub("cloudwatch").add_client_error("list_metrics", service_error_code="AccessDenied",
                                             service_message="User is not authorized to perform cloudwatch:ListMetrics")
    monkeypatch.setattr("fiswatch.aws.session.make_session", lambda profile, region: stub)
    monkeypatch.setattr("fiswatch.aws.session.client", lambda session, service: session.client(service))
    out, err = io.StringIO(), io.StringIO()
    args = fiswatch.aws.fleet_cli.add_fleet_parser(__import__("argparse").ArgumentParser().add_subparsers()) \
        .parse_args(["--json", "--once"])
    assert fiswatch.aws.fleet_cli.run_fleet(args, out, err) == 1
    assert out.getvalue() == ""
    assert len(err.getvalue().splitlines()) == 1 and "cloudwatch:ListMetrics" in err.getvalue()


def test_dashboard_body_uses_search_and_validation_messages_are_reported():
    body = dashboard_body("eu-west-1", ["aurora/mysql-connector", "aurora/pymysql"])
    text = json.dumps(body)
    assert json.loads(text) == body
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert all(w["properties"]["region"] == "eu-west-1" for w in metric_widgets)
    stalled = next(w for w in metric_widgets if w["properties"]["title"] == "Stalled probes")
    expression = stalled["properties"]["metrics"][0][0]["expression"]
    assert expression == ("SUM(SEARCH('{fisworkshop,backend,endpoint,host,run} MetricName=\"stalled\" "
                          "endpoint=\"aurora\" backend=\"mysql-connector\"', 'Maximum', 10))")
    assert [m[0]["label"] for m in stalled["properties"]["metrics"]] == ["aurora/mysql-connector", "aurora/pymysql"]
    stub = StubSession()
    s = stub.stub("cloudwatch")
    s.add_client_error("get_dashboard", service_error_code="ResourceNotFound", http_status_code=404)
    s.add_response("put_dashboard", {"DashboardValidationMessages": [
        {"DataPath": "/widgets/1/properties/metrics/0", "Message": "Should NOT have more than 500 items"}]},
        {"DashboardName": "room", "DashboardBody": text})
    created, messages = put_dashboard(stub.client("cloudwatch"), "room", body)
    assert created and messages == ["/widgets/1/properties/metrics/0: Should NOT have more than 500 items"]
    s.add_client_error("get_dashboard", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(Exception) as caught:
        put_dashboard(stub.client("cloudwatch"), "room", body)
    assert "AccessDenied" in str(caught.value)


def test_since_fis_finds_the_newest_experiment():
    stub = StubSession()
    s = stub.stub("fis")
    s.add_response("list_experiments", {"experiments": [
        {"id": "EXPold", "creationTime": _at(NOW - 20000), "tags": {"Name": "FisWorkshopAurora1Run1"}},
        {"id": "EXPa", "creationTime": _at(NOW - 600), "tags": {"Name": "FisWorkshopAurora1Run2"}}],
        "nextToken": "n"}, {})
    s.add_response("list_experiments", {"experiments": [
        {"id": "EXPb", "creationTime": _at(NOW - 300), "tags": {"Name": "FisWorkshopRds1Run1"}}]}, {"nextToken": "n"})
    found = experiment_start(stub, lambda session, service: session.client(service), now=NOW)
    assert found == (NOW - 300, "FIS EXPb FisWorkshopRds1Run1")


def test_old_samples_are_folded_and_memory_stays_flat():
    stub = StubSession()
    s = stub.stub("cloudwatch")
    listing = {"Namespace": "fisworkshop", "MetricName": "state", "RecentlyActive": "PT3H"}
    s.add_response("list_metrics", {"Metrics": [_metric("alice")]}, listing)
    stamps = [NOW - 200 + i for i in range(201)]
    states = [1.0 if NOW - 150 <= t < NOW - 140 else 0.0 for t in stamps]
    gaps = [t - (NOW - 150) if NOW - 150 <= t < NOW - 140 else 0.05 for t in stamps]
    s.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0_0", "Timestamps": [_at(t) for t in stamps], "Values": states, "StatusCode": "Complete"},
        {"Id": "q0_1", "Timestamps": [_at(t) for t in stamps], "Values": gaps, "StatusCode": "Complete"}]})
    s.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0_0", "Timestamps": [_at(NOW + 5)], "Values": [0.0], "StatusCode": "Complete"},
        {"Id": "q0_1", "Timestamps": [_at(NOW + 5)], "Values": [0.05], "StatusCode": "Complete"}]})
    source = FleetSource(stub.client("cloudwatch"), minutes=5)
    first = source.fetch(now=NOW)
    cell = first.hosts[0].cells[0]
    assert cell.stalled and not cell.never_recovered and cell.longest_gap == pytest.approx(9.0)
    assert all(len(samples) <= 62 for samples in source._series[SeriesKey("aurora", "pymysql", "alice", "r1")]
               .values())  # the last OVERLAP seconds, plus nothing older than the newest kept
    second = source.fetch(now=NOW + 10)
    cell = second.hosts[0].cells[0]
    assert cell.stalled and cell.longest_gap == pytest.approx(9.0) and cell.state == "OK"
    assert second.since == first.since == NOW - 300  # without --since: fixed at the first read
    stub.assert_no_pending()

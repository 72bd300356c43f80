"""CloudWatch: metric data from Views, publishing through moto, failures shown once."""
import time

import pytest

from _aws_fixture import free_port, session
from conftest import wait_for
from fiswatch import events as E
from fiswatch.aws.cloudwatch import QUEUE_LIMIT, CloudWatchPublisher, batches, host_identity, view_metrics
from fiswatch.model import BackendInfo, ProbeView, Snapshot, State, View


def _pv(endpoint, backend, ops, state=State.OK, errors=0, iterations=0, latency_total=0.0, stalled_for=0.0,
        latency=()):
    snap = Snapshot(probe="%s/%s" % (endpoint, backend), endpoint=endpoint, backend=backend, state=state,
                    errors=errors, iterations=iterations, latency_total=latency_total, latency=latency)
    return ProbeView(snapshot=snap, info=BackendInfo(backend, backend, "1"), state=state, stalled_for=stalled_for,
                     ops_per_s=ops, history=(), longest_stall=stalled_for)


def _view(ts, *probes):
    return View(ts=ts, probes=tuple(probes))


def _by(data, name, endpoint=None, backend=None):
    for d in data:
        dims = {x["Name"]: x["Value"] for x in d.get("Dimensions", [])}
        if d["MetricName"] == name and dims.get("endpoint") == endpoint and dims.get("backend") == backend:
            return d
    raise AssertionError("no %s %s/%s in %r" % (name, endpoint, backend, [d["MetricName"] for d in data]))


def test_workshop_and_probe_metrics():
    first = _view(1000.0, _pv("aurora", "pymysql", 15, iterations=100, latency_total=1.0,
                              latency=(("INSERT", 0.001), ("COMMIT", 0.001), ("SELECT", 0.002))),
                  _pv("aurora", "mysql-connector", 5, iterations=50, errors=2, latency_total=0.5),
                  _pv("rds", "pymysql", 7, iterations=70))
    data, counters = view_metrics(first, {}, "i-0123456789abcdef0")
    assert _by(data, "aurora_interactions_per_second")["Value"] == 20.0
    assert "Dimensions" not in _by(data, "aurora_interactions_per_second")
    assert _by(data, "rds_interactions_per_second")["Value"] == 7.0
    assert all(d["StorageResolution"] == 1 for d in data)
    probe = _by(data, "interactions", "aurora", "pymysql")
    assert probe["Value"] == 15.0 and probe["Unit"] == "Count"
    assert {"Name": "host", "Value": "i-0123456789abcdef0"} in probe["Dimensions"]
    assert _by(data, "latency", "aurora", "pymysql")["Value"] == pytest.approx(4.0)
    assert _by(data, "errors", "aurora", "mysql-connector")["Value"] == 0.0  # no baseline yet

    second = _view(1001.0, _pv("aurora", "pymysql", 10, iterations=110, latency_total=1.05),
                   _pv("aurora", "mysql-connector", 0, state=State.STALLED, iterations=50, errors=5,
                       latency_total=0.5, stalled_for=2.5),
                   _pv("rds", "pymysql", 0, iterations=70))
    data, _ = view_metrics(second, counters, "host-a")
    assert _by(data, "errors", "aurora", "mysql-connector")["Value"] == 3.0
    assert _by(data, "stalled", "aurora", "mysql-connector")["Value"] == 1.0
    assert _by(data, "stalled", "aurora", "pymysql")["Value"] == 0.0
    assert _by(data, "latency", "aurora", "pymysql")["Value"] == pytest.approx(5.0)  # 50 ms / 10 rounds
    assert _by(data, "latency", "aurora", "mysql-connector")["Value"] == pytest.approx(2500.0)
    assert not [d for d in data if d["MetricName"] == "latency" and
                {"Name": "endpoint", "Value": "rds"} in d["Dimensions"]]  # no round, no latency
    assert _by(data, "aurora_interactions_per_second")["Value"] == 10.0


def test_batches_respect_the_api_limit():
    chunks = batches(list(range(2500)))
    assert [len(c) for c in chunks] == [1000, 1000, 500]


def test_host_identity_from_asset_tag(tmp_path):
    tag = tmp_path / "board_asset_tag"
    tag.write_text("i-0abc1234def567890\n")
    assert host_identity(str(tag)) == "i-0abc1234def567890"
    tag.write_text("Default string\n")
    assert host_identity(str(tag)) not in ("", "Default string")
    assert host_identity(str(tmp_path / "missing")) == __import__("socket").gethostname()


@pytest.mark.slow
def test_publisher_puts_metrics_into_moto():
    from moto import mock_aws

    with mock_aws():
        sess = session()
        events = []
        pub = CloudWatchPublisher(sess, events.append, host_id="test-host")
        pub.start()
        for i in range(3):
            pub.submit(_view(time.time() + i, _pv("aurora", "pymysql", 12, iterations=12 * (i + 1)),
                             _pv("rds", "pymysql", 9, iterations=9 * (i + 1))))
        cw = sess.client("cloudwatch")
        wait_for(lambda: pub.published >= 3 * 8, timeout=30, message="published")
        pub.stop()
        names = {m["MetricName"] for m in cw.list_metrics(Namespace="fisworkshop")["Metrics"]}
        assert {"aurora_interactions_per_second", "rds_interactions_per_second", "interactions", "errors",
                "stalled"} <= names
        dims = [m["Dimensions"] for m in cw.list_metrics(Namespace="fisworkshop", MetricName="interactions")
                ["Metrics"]]
        assert {"Name": "host", "Value": "test-host"} in dims[0]
        assert {"Name": "run", "Value": pub.run} in dims[0]
        assert [e.get("message") for e in events] == ["CloudWatch: publishing as host test-host, run %s" % pub.run]
        assert {"state", "write_gap"} <= names


def test_unreachable_cloudwatch_warns_once_and_never_blocks(monkeypatch):
    port = free_port()  # nothing listens there: connection refused on loopback
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:%d" % port)
    events = []
    pub = CloudWatchPublisher(session(), events.append, host_id="h")
    pub.start()
    for i in range(2000):
        pub.submit(_view(1000.0 + i, _pv("aurora", "pymysql", 1, iterations=i)))
    assert len(pub._queue) <= QUEUE_LIMIT  # bounded: the oldest seconds were dropped, submit never waited
    wait_for(lambda: pub.dropped > 0, timeout=60, message="a failed put")
    for i in range(3):
        pub.submit(_view(5000.0 + i, _pv("aurora", "pymysql", 1)))
    wait_for(lambda: not pub._queue, timeout=60, message="queue drained")
    pub.stop(timeout=30)
    warnings = [e for e in events if e.event == E.WARNING]
    assert len(warnings) == 1, [e.as_dict() for e in events]
    assert "CloudWatch" in warnings[0].get("message") and "cannot reach" in warnings[0].get("message")
    assert len(pub._queue) == 0 and pub.published == 0


def test_state_write_gap_and_run_for_the_fleet_workshop_metrics_unchanged():
    from fiswatch.aws.cloudwatch import STATE_CODES, cloudwatch_host, new_run_id
    from fiswatch.aws.session import AwsError

    ok = Snapshot(probe="aurora/pymysql", endpoint="aurora", backend="pymysql", state=State.OK, iterations=5,
                  last_ok=1000.2)
    stuck = Snapshot(probe="aurora/mysql-connector", endpoint="aurora", backend="mysql-connector", iterations=0)
    view = _view(1001.0, ProbeView(ok, BackendInfo("pymysql", "PyMySQL", "1"), State.OK, 0.0, 5, (), 0.0),
                 ProbeView(stuck, BackendInfo("mysql-connector", "m", "1"), State.STALLED, 3.0, 0, (), 3.0))
    data, counters = view_metrics(view, {}, "alice", "20261126T030000-abcd")
    assert _by(data, "state", "aurora", "pymysql")["Value"] == STATE_CODES[State.OK] == 0
    assert _by(data, "state", "aurora", "mysql-connector")["Value"] == 1
    assert _by(data, "write_gap", "aurora", "pymysql")["Value"] == pytest.approx(0.8)
    assert _by(data, "write_gap", "aurora", "mysql-connector")["Value"] == 0.0  # first second seen, no write yet
    assert _by(data, "write_gap", "aurora", "pymysql")["Unit"] == "Seconds"
    assert [d["Name"] for d in _by(data, "state", "aurora", "pymysql")["Dimensions"]] == \
        ["endpoint", "backend", "host", "run"]
    later = _view(1011.0, ProbeView(stuck, BackendInfo("mysql-connector", "m", "1"), State.STALLED, 13.0, 0, (),
                                    13.0))
    data, _ = view_metrics(later, counters, "alice", "20261126T030000-abcd")
    assert _by(data, "write_gap", "aurora", "mysql-connector")["Value"] == 10.0  # since its first second
    workshop = _by(data, "aurora_interactions_per_second")
    assert workshop == {"MetricName": "aurora_interactions_per_second", "Value": 0.0, "Unit": "Count",
                        "Timestamp": workshop["Timestamp"], "StorageResolution": 1}

    assert cloudwatch_host(None, {}) is None
    assert cloudwatch_host(None, {"FISWATCH_CLOUDWATCH_HOST": " bob "}) == "bob"
    assert cloudwatch_host("alice", {"FISWATCH_CLOUDWATCH_HOST": "bob"}) == "alice"
    with pytest.raises(AwsError) as caught:
        cloudwatch_host("tab\there", {})
    assert "--cloudwatch-host" in str(caught.value)
    assert host_identity("/nonexistent", {"FISWATCH_CLOUDWATCH_HOST": "carol"}) == "carol"
    assert new_run_id(0.0).startswith("19700101T000000-") and len(new_run_id()) == 20


def test_an_xml_error_body_is_shown_as_its_code_and_message(monkeypatch):
    """A real HTTP endpoint on loopback answering 403 with AWS's XML error (as STS/IAM-style services
    and proxies do): the warning names the code and message, never the raw XML."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/'
            b'2010-08-01/"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security '
            b'token included in the request is invalid.</Message></Error><RequestId>1</RequestId></ErrorResponse>')

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(403)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:%d" % server.server_address[1])
        events = []
        pub = CloudWatchPublisher(session(), events.append, host_id="h")
        pub.start()
        pub.submit(_view(1000.0, _pv("aurora", "pymysql", 1, iterations=1)))
        wait_for(lambda: pub.dropped > 0, timeout=60, message="a refused put")
        pub.stop(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    message = [e for e in events if e.event == "warning"][0].get("message")
    assert "InvalidClientTokenId" in message and "The security token included in the request is invalid." in message
    assert "<" not in message and "xml" not in message.lower(), message

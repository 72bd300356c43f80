"""The aws-wrapper backend: the AWS Advanced Python Wrapper beside the plain drivers.

On Python >= 3.10 the real wrapper (installed by the `test` extra) runs against the real
lab, whose Aurora proxies answer its topology queries: a wrapper probe reaches the
promoted instance before the cluster name's DNS changes, keeps its connection, and a
COMMIT the failover interrupted is recorded in doubt and resolved by verify. On 3.9 the
column says why it cannot run, and the run and the demo go on without it.
"""
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from conftest import ROOT, wait_for
from fiswatch import events as E
from fiswatch.backends.aws_wrapper import AwsWrapperBackend, connect_host
from fiswatch.backends.base import BackendOptionError
from fiswatch.backends.registry import make_backend, parse_backend_spec
from fiswatch.model import Endpoint

HAVE_WRAPPER = sys.version_info >= (3, 10)  # the test extra installs it there


# -- options -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_defaults_fail_over_fast_and_the_header_shows_them():
    backend = AwsWrapperBackend()
    assert backend.settings["plugins"] == "failover_v2"
    assert backend.settings["enable_connect_failover"] is True
    assert backend.settings["use_pure"] is True
    info = backend.info()
    assert dict(info.timeouts) == {"connect": 1.0, "socket": 1.0, "failover": 60}
    if HAVE_WRAPPER:
        assert info.available and info.version.startswith("3.") and "failover_v2" in info.notes
    else:
        assert not info.available and "needs Python >= 3.10" in info.reason
        assert "pip install 'fiswatch[aws-wrapper]'" in info.reason


@pytest.mark.slow
def test_every_property_settable_and_bad_ones_are_one_line():
    spec = parse_backend_spec("aws-wrapper:socket_timeout=2,failover_timeout_sec=30,topology_refresh_ms=5000")
    backend = make_backend(spec)
    props = backend.properties()
    assert props["socket_timeout"] == 2.0 and props["failover_timeout_sec"] == 30
    assert props["topology_refresh_ms"] == 5000
    for bad, words in (("socket_timeout=soon", "socket_timeout"), ("failover_timeout_sec=0.5", "at least 1"), ("failover_timeout_sec=0", "too small"),
                       ("idp_password=hunter2", "secret"), ("password=hunter2", "from the endpoint"), ("host=x", "comes from the endpoint"),
                       ("plugins=", "must not be empty")):
        with pytest.raises(BackendOptionError) as err:
            make_backend(parse_backend_spec("aws-wrapper:" + bad))
        assert words in str(err.value) and "\n" not in str(err.value)
        assert "hunter2" not in str(err.value)
    if HAVE_WRAPPER:  # the installed wrapper says which names exist
        with pytest.raises(BackendOptionError) as err:
            make_backend(parse_backend_spec("aws-wrapper:sokcet_timeout=1"))
        assert "sokcet_timeout" in str(err.value)


def test_per_endpoint_copies_pick_dialect_pattern_and_own_topology_cache():
    aurora = Endpoint("aurora", "db.cluster-abc.us-east-1.rds.amazonaws.com", cluster_id="db")
    rds = Endpoint("rds", "db-mysql.abc.us-east-1.rds.amazonaws.com", instance_id="db-mysql")
    shared = AwsWrapperBackend()
    a, r = shared.for_endpoint(aurora), shared.for_endpoint(rds)
    assert a.properties()["wrapper_dialect"] == "aurora-mysql" and "wrapper_dialect" not in r.properties()
    assert a.properties()["cluster_id"] != r.properties()["cluster_id"]
    assert "cluster_instance_host_pattern" not in a.properties()  # AWS: the wrapper derives it from the name
    assert a.info().follows_topology is HAVE_WRAPPER and not r.info().follows_topology
    given = AwsWrapperBackend({"cluster_instance_host_pattern": "?.abc.example:3306"}).for_endpoint(aurora)
    assert given.properties()["cluster_instance_host_pattern"] == "?.abc.example:3306"
    # a lab's Aurora endpoint carries the lab's pattern: the backend reads no lab file itself
    lab_aurora = Endpoint("aurora", "fiswatch-lab.cluster-c0ffee.lab.rds.local", cluster_id="fiswatch-lab",
                          source="lab:/nonexistent", host_pattern="127.0.10.?:3306")
    assert shared.for_endpoint(lab_aurora).properties()["cluster_instance_host_pattern"] == "127.0.10.?:3306"
    # two labs one after the other in one process (a test worker): the wrapper's topology cache and monitor
    # are the process's, by cluster_id; shared, lab B's writer was taken for a reader from lab A's topology
    other_lab = replace(lab_aurora, source="lab:/elsewhere")
    assert (shared.for_endpoint(lab_aurora).properties()["cluster_id"]
            != shared.for_endpoint(other_lab).properties()["cluster_id"])
    assert (shared.for_endpoint(lab_aurora).properties()["cluster_id"]
            == AwsWrapperBackend().for_endpoint(lab_aurora).properties()["cluster_id"])  # one lab, one topology
    # AWS: connect by the cluster endpoint's name, so the wrapper can derive the instances' names
    assert connect_host("10.1.2.3", aurora.host, False) == aurora.host
    assert connect_host("127.0.0.1", "db.example.com", False) == "127.0.0.1"


def test_endpoint_prefix_limits_a_backend_to_endpoints():
    spec = parse_backend_spec("aurora/aws-wrapper:socket_timeout=2")
    assert spec.endpoints == ("aurora",) and spec.label == "aws-wrapper:socket_timeout=2"
    assert parse_backend_spec("a+b/pymysql").endpoints == ("a", "b")
    with pytest.raises(BackendOptionError):
        parse_backend_spec("/pymysql")


def test_failover_exceptions_are_handled_failovers_others_are_errors():
    backend = AwsWrapperBackend()

    class FailoverSuccessError(Exception):
        pass

    class TransactionResolutionUnknownError(Exception):
        pass

    assert backend.handled_failover(FailoverSuccessError("x")) == "failover"
    assert backend.handled_failover(TransactionResolutionUnknownError("x")) == "in-doubt"
    assert backend.handled_failover(OSError("x")) is None
    assert backend.classify(TransactionResolutionUnknownError("x")).kind == "failover-in-doubt"
    if HAVE_WRAPPER:  # the real classes, by their names
        from aws_advanced_python_wrapper.errors import (FailoverFailedError, FailoverSuccessError as Real,
                                                        TransactionResolutionUnknownError as RealUnknown)
        assert backend.handled_failover(Real()) == "failover"
        assert backend.handled_failover(RealUnknown()) == "in-doubt"
        assert backend.handled_failover(FailoverFailedError()) is None
        assert backend.classify(FailoverFailedError()).kind == "failover-failed"


# -- runs on a plain server, and without the wrapper ---------------------------------------------------------
def _watch(args, env_extra=None, timeout=90):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env_extra or {}))
    out = subprocess.run([sys.executable, "-m", "fiswatch"] + args, env=env, capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    return out, [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_watch_with_the_wrapper_column_runs_on_every_python(mariadb):
    """3.9: the column is UNAVAILABLE and says why, the other column writes; 3.10+: both write."""
    url = "db=mysql://%s@127.0.0.1:%d/%s" % (mariadb.user, mariadb.port, mariadb.database)
    out, events = _watch(["watch", "--json", "--duration", "4", "--endpoint", url, "--backend", "pymysql",
                          "--backend", "aws-wrapper"], {"FISWATCH_PASSWORD_DB": mariadb.password})
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "[Failover]" not in out.stderr
    start = events[0]
    wrapper = next(p for p in start["probes"] if p["backend"] == "aws-wrapper")
    final = events[-1]["probes"]
    assert final["db/pymysql"]["ops"] > 3
    if HAVE_WRAPPER:  # against a plain MySQL server: no topology, it writes like mysql-connector
        assert wrapper["available"] and final["db/aws-wrapper"]["ops"] > 3
    else:
        assert not wrapper["available"] and final["db/aws-wrapper"]["state"] == "UNAVAILABLE"


@pytest.mark.slow
def test_missing_package_says_the_pip_command_and_backends_lists_why():
    code = ("import sys; sys.modules['aws_advanced_python_wrapper'] = None\n"
            "from fiswatch.backends.aws_wrapper import AwsWrapperBackend\n"
            "info = AwsWrapperBackend().info(); print(info.available, info.reason)")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                         text=True, timeout=60)
    if HAVE_WRAPPER:
        assert out.stdout.startswith("False aws-advanced-python-wrapper not installed: "
                                     "pip install 'fiswatch[aws-wrapper]'"), out
    else:
        assert out.stdout.startswith("False needs Python >= 3.10"), out
    listed, _ = _watch(["backends"])
    assert listed.returncode == 0 and "aws-wrapper" in listed.stdout
    assert ("failover_v2" if HAVE_WRAPPER else "needs Python >= 3.10") in listed.stdout


@pytest.mark.lab
def test_demo_adds_the_wrapper_where_it_runs_and_works_without_it(lab):
    out, events = _watch(["demo", "--dir", lab.dir, "--no-failover", "--json", "--duration", "4"])
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert events[0]["event"] == E.RUN_START and events[-1]["event"] == E.SUMMARY
    probes = {p["probe"]: p for p in events[0]["probes"]}
    assert {"aurora/mysql-connector", "aurora/pymysql", "rds/mysql-connector", "rds/pymysql"} <= set(probes)
    assert "rds/aws-wrapper" not in probes
    final = events[-1]["probes"]
    assert final["aurora/pymysql"]["ops"] > 3 and final["rds/pymysql"]["ops"] > 3
    if HAVE_WRAPPER:
        assert probes["aurora/aws-wrapper"]["available"] and final["aurora/aws-wrapper"]["ops"] > 3
    else:
        assert "aurora/aws-wrapper" not in probes
        assert any("aws-wrapper column is left out: needs Python >= 3.10" in (e.get("message") or "")
                   for e in events if e["event"] == E.INFO)


# -- the lab: a failover the wrapper handles itself ----------------------------------------------------------
class GatedWrapper(AwsWrapperBackend):
    """The real wrapper; once armed, one COMMIT waits until the lab has fenced the writer.

    Only the moment is arranged: the INSERT went to the writer, the COMMIT then meets the
    fence (a real socket that stops answering), the wrapper's socket_timeout expires and it
    fails over by itself.
    """

    armed = threading.Event()
    waiting = threading.Event()  # a COMMIT is held at the gate (its INSERT is on the writer)
    fenced = threading.Event()

    def for_endpoint(self, endpoint):
        return GatedWrapper(self.user_options, endpoint=endpoint)

    def connect(self, *args, **kwargs):
        return GatedConnection(super().connect(*args, **kwargs))


class GatedConnection:
    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def commit(self):
        if GatedWrapper.armed.is_set():
            GatedWrapper.armed.clear()
            GatedWrapper.waiting.set()
            assert GatedWrapper.fenced.wait(60)
        return self._conn.commit()


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_WRAPPER, reason="the wrapper needs Python >= 3.10 (3.9: see the tests above)")
def test_wrapper_fails_over_to_the_promoted_instance_before_dns_and_verify_resolves_its_commit(lab, tmp_path):
    from fiswatch.report.autoverify import verify_record
    from fiswatch.lab.api import failover, lab_status
    from fiswatch.lab.failover import Profile
    from fiswatch.output.record import RecordWriter
    from fiswatch.engine.probe import Probe

    info = lab_status(lab.dir)
    assert info.cluster_instance_host_pattern
    assert info.endpoint("aurora").host_pattern == info.cluster_instance_host_pattern
    assert info.endpoint("rds").host_pattern is None
    old, new = info.instance("aurora", "writer"), info.instance("aurora", "reader")
    aurora = info.endpoint("aurora")
    record_path = str(tmp_path / "run.jsonl")
    record = RecordWriter(record_path)
    events, lock = [], threading.Lock()

    def emit(event):
        with lock:
            events.append(event)
            record.write(event)

    def of(kind, **match):
        with lock:
            return [e for e in events if e.event == kind and all(e.get(k) == v for k, v in match.items())]

    plain = Probe(aurora, parse_backend_spec("aws-wrapper"), AwsWrapperBackend().for_endpoint(aurora), emit,
                  interval=0.02, nameserver=tuple(info.nameserver))
    gated_spec = parse_backend_spec("aws-wrapper:socket_timeout=1")
    gated = Probe(aurora, gated_spec, GatedWrapper(gated_spec.option_dict()).for_endpoint(aurora), emit,
                  interval=0.02, nameserver=tuple(info.nameserver))
    probes = (plain, gated)
    steps = []

    def step(event):
        steps.append(event)
        emit(event)
        if event.get("step") == "blackhole":
            GatedWrapper.fenced.set()

    try:
        for p in probes:
            p.start()
        wait_for(lambda: all(p.snapshot.iterations > 5 for p in probes), 60, message="both wrapper probes writing")
        assert plain.snapshot.address == old.address
        GatedWrapper.armed.set()
        assert GatedWrapper.waiting.wait(30)
        # promotion 1 s after the fence, the cluster name's DNS 24 s later (with 12 s the wrapper, beside two
        # busy loops on both cores, had not yet failed over when the failover ended)
        failover(lab.dir, "aurora", emit=step,
                 timings=Profile("test", promote_at=1.0, flip_at=25.0, empty_for=0.0, flap_for=0.0, rejoin_at=25.5))
        flip = next(s.ts for s in steps if s.get("step") == "dns_flip")
        promote = next(s.ts for s in steps if s.get("step") == "promote")
        for p in probes:
            moved = wait_for(lambda: of("failover", probe=p.id), 60, message="the wrapper's failover event")
            assert moved and moved[0].get("from") == old.address and moved[0].get("to") == new.address, moved
            assert moved[0].ts < flip
            written = [w for w in of("write", probe=p.id) if w.get("address") == new.address]
            assert written and written[0].ts < flip, "no write to the promoted instance before the DNS change"
            assert written[0].ts >= promote - 0.5
            assert p.snapshot.reconnects == 0 and p.snapshot.failovers == 1  # kept its connection
            assert len(of("connect", probe=p.id)) == 1
        # the COMMIT the failover interrupted: in doubt, with its id and value
        doubt = of("write_in_doubt", probe=gated.id)
        assert len(doubt) == 1, [(e.event, e.fields) for e in events if e.get("probe") == gated.id
                                 and e.event != E.WRITE]
        assert doubt[0].get("id") and doubt[0].get("value") is not None
        assert of("failover", probe=gated.id)[0].get("write_in_doubt") is True
    finally:
        for p in probes:
            p.stop()
        for p in probes:
            p.join(10)
        for gate in (GatedWrapper.armed, GatedWrapper.waiting, GatedWrapper.fenced):
            gate.clear()
    with lock:
        record.close()
    try:
        result, verdicts = verify_record(record_path, [aurora], tuple(info.nameserver))
    finally:  # the session's lab goes back to its first writer: later tests take roles from the fixture
        if lab_status(lab.dir).instance("aurora", "writer").name != old.name:
            failover(lab.dir, "aurora", profile="quick")
    item = next(i for i in result.endpoints if i.endpoint == "aurora")
    assert item.ok and not item.lost, verdicts
    # every write in doubt resolved, one way or the other (the other probe's, if the fence hit its COMMIT too)
    resolved = {ref.id for ref in item.in_doubt_committed + item.in_doubt_not_committed}
    assert doubt[0].get("id") in resolved and not item.in_doubt_unknown
    assert len(resolved) == len(of("write_in_doubt"))

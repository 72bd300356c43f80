"""Issue 24 leftovers against a real lab with the Multi-AZ DB cluster: the readers' real lag in
their SHOW REPLICA STATUS answer and in a read probe (item 1), the wrapper's own dialect
detection against `maz` (item 2), and a `lab failover maz` process SIGKILLed midway (item 3)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from _lab_fixture import private_lab
from conftest import ROOT, EventLog, wait_for

pytestmark = pytest.mark.lab

from fiswatch.lab import layout as L  # noqa: E402


@pytest.fixture(scope="module")
def zlab(tmp_path_factory):
    """A lab with the Multi-AZ DB cluster (one Aurora reader: the default)."""
    with private_lab(tmp_path_factory, "mazlag", multi_az_cluster=True) as info:
        yield info


def _maz(info):
    from fiswatch.lab.api import lab_status

    insts = [i for i in lab_status(info.dir).instances if i.cluster == "maz"]
    writer = next(i for i in insts if i.role == "writer")
    return writer, [i for i in insts if i is not writer]


def _root(info, name, statements):
    from fiswatch.lab.mariadb import sql

    return sql(L.Layout(dir=info.dir).server_socket(L.spec_by_name(name)), statements)


def _connect(info, address):
    import pymysql

    ep = info.endpoint("maz")
    return pymysql.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=3, read_timeout=10)


def _seconds_behind(info, inst):
    """Seconds_Behind_Source as the instance answers the lab's client user over the wire (None: NULL or no row)."""
    conn = _connect(info, inst.address)
    try:
        cur = conn.cursor()
        cur.execute("SHOW REPLICA STATUS")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        conn.close()
    return rows[0][names.index("Seconds_Behind_Source")] if rows else "no row"


def _write(info, writer, value):
    conn = _connect(info, writer.address)
    try:
        conn.cursor().execute("INSERT INTO test (value) VALUES (%s)", (value,))
    finally:
        conn.close()


# --- item 1: the lag is the reader's real lag --------------------------------------------------------------
def test_seconds_behind_source_grows_on_a_reader_that_stopped_applying(zlab):
    writer, (lagging, other) = _maz(zlab)
    assert _seconds_behind(zlab, writer) == "no row"
    wait_for(lambda: _seconds_behind(zlab, lagging) == 0, 30, message="caught up at first")
    _root(zlab, lagging.name, ["STOP SLAVE SQL_THREAD"])
    try:
        _write(zlab, writer, 1)  # received by its IO thread, not applied
        wait_for(lambda: (_seconds_behind(zlab, lagging) or 0) >= 3, 60, message="lag >= 3 s")
        assert _seconds_behind(zlab, lagging) >= 3  # and it does not drop back while nothing is applied
        assert (_seconds_behind(zlab, other) or 0) <= 1  # the other reader applied it
    finally:
        _root(zlab, lagging.name, ["START SLAVE SQL_THREAD"])
    wait_for(lambda: _seconds_behind(zlab, lagging) == 0, 30, message="lag back to 0 once it applies")


def test_a_read_probe_on_a_maz_reader_shows_its_lag_in_seconds(zlab):
    from fiswatch.backends.registry import resolve_specs
    from fiswatch.config.reads import LAB_PREFIX, with_reads
    from fiswatch.engine.runner import Output, RunOptions, Runner
    from fiswatch.ui.columns import read_candidates

    writer, (lagging, _) = _maz(zlab)
    short = lagging.name[len(LAB_PREFIX):]
    log = EventLog()
    endpoints = with_reads([zlab.endpoint("maz")], [short], zlab)
    runner = Runner(endpoints, resolve_specs(["pymysql"]),
                    RunOptions(interval=0.05, stall_after=5.0, nameserver=tuple(zlab.nameserver)),
                    outputs=[Output(log, "test")]).start()
    try:
        reader = next(p for p in runner.probes if p.endpoint.reads)
        wait_for(lambda: reader.snapshot.iterations > 5 and reader.snapshot.lag_s == 0, 60,
                 message="the read probe reads with lag 0")
        _root(zlab, lagging.name, ["STOP SLAVE SQL_THREAD"])
        try:
            wait_for(lambda: (reader.snapshot.lag_s or 0) >= 2, 60, message="the probe sees the lag grow")
            view = next(v for v in runner.view.probes if v.snapshot.reads)
            assert any(" lag %ds" % view.snapshot.lag_s in text for text in read_candidates(view))
        finally:
            _root(zlab, lagging.name, ["START SLAVE SQL_THREAD"])
        wait_for(lambda: reader.snapshot.lag_s == 0, 30, message="the probe sees it caught up")
    finally:
        runner.stop()
        runner.flush_outputs(5.0)


# --- item 2: the wrapper's own dialect detection -----------------------------------------------------------
DETECT = r"""
import logging, os, sys
import mysql.connector
from aws_advanced_python_wrapper import AwsWrapperConnection
lines = []
class Keep(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())
log = logging.getLogger("aws_advanced_python_wrapper")
log.setLevel(logging.DEBUG)
log.addHandler(Keep())
host, port, user, db, pattern = sys.argv[1:6]
conn = AwsWrapperConnection.connect(mysql.connector.connect, host=host, port=int(port), user=user,
                                    password=os.environ["FISWATCH_PASSWORD_MAZ"], database=db, use_pure=True,
                                    plugins="failover_v2", cluster_instance_host_pattern=pattern,
                                    connect_timeout=5)
cur = conn.cursor()
cur.execute("SELECT @@server_id")
print("server_id", cur.fetchone()[0])
conn.close()
for line in lines:
    if "Dialect" in line:
        print("log", line)
sys.stdout.flush()
os._exit(0)  # the wrapper's topology monitor threads would keep the process alive (AWS-shaped names)
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the AWS wrapper needs Python >= 3.10 (3.9: the tests above)")
def test_the_wrapper_picks_multi_az_mysql_against_maz_without_a_dialect(zlab):
    ep = zlab.endpoint("maz")
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    env.pop("FISWATCH_PASSWORD_MAZ", None)
    argv = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", zlab.dir, "--", sys.executable, "-c", DETECT,
            ep.host, str(ep.port), ep.user, ep.database, "?." + L.DOMAIN]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    writer, _ = _maz(zlab)
    assert "server_id %s" % writer.server_id in done.stdout
    dialect_lines = [line for line in done.stdout.splitlines() if line.startswith("log")]
    assert dialect_lines and "MultiAzClusterMysqlDialect" in dialect_lines[-1], done.stdout
    assert not any("AuroraMysqlDialect" in line for line in dialect_lines), done.stdout


# --- item 3: `lab failover maz` SIGKILLed midway ------------------------------------------------------------
STEPS = ("start", "blackhole", "lag", "applied", "promote", "repoint", "dns_flip", "rejoin")


def _consistent(info):
    """One writer taking writes, every proxy passing, both readers replicating from it and naming it."""
    from fiswatch.lab.api import lab_status
    from fiswatch.lab.settle import replicating_from

    writer, readers = _maz(info)
    insts = [i for i in lab_status(info.dir).instances if i.cluster == "maz"]
    assert [i.role for i in insts].count("writer") == 1 and all(i.proxy_mode == "pass" for i in insts)
    layout = L.Layout(dir=info.dir)
    for reader in readers:
        wait_for(lambda: replicating_from(layout, L.spec_by_name(reader.name), L.spec_by_name(writer.name)), 30,
                 message="%s follows %s" % (reader.name, writer.name))
        conn = _connect(info, reader.address)
        try:
            cur = conn.cursor()
            cur.execute("SHOW REPLICA STATUS")
            assert int(cur.fetchall()[0][39]) == int(writer.server_id)
        finally:
            conn.close()
    _write(info, writer, 7)
    return writer


@pytest.mark.parametrize("kill_at, options, outcome", [
    ("blackhole", ["--lag", "4"], "rolled back"),
    ("lag", ["--lag", "4"], "rolled back"),
    ("promote", ["--profile", "planned"], "finished"),
])
def test_a_maz_failover_killed_midway_is_named_and_recovered_by_the_next(zlab, kill_at, options, outcome):
    old, _ = _maz(zlab)
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    base = [sys.executable, "-u", "-m", "fiswatch", "lab"]
    proc = subprocess.Popen(base + ["failover", "maz", "--dir", zlab.dir, "--json"] + options, cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if json.loads(line).get("step") == kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    status = subprocess.run(base + ["status", "--dir", zlab.dir], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    # the process may have recorded the next step before the kill landed (blackhole and lag follow at once)
    found = re.search(r"last maz STOPPED HALFWAY at step (\w+) \(its process %d is gone\)" % proc.pid, status.stdout)
    assert found and found.group(1) in STEPS[STEPS.index(kill_at):STEPS.index(kill_at) + 3], status.stdout
    step = found.group(1)
    assert "`fiswatch lab failover maz`" in status.stdout
    # an Aurora failover refuses with one line instead of tripping over the maz record
    refused = subprocess.run(base + ["failover", "aurora", "--dir", zlab.dir], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "fiswatch lab failover maz" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    t0 = time.monotonic()
    nxt = subprocess.run(base + ["failover", "maz", "--dir", zlab.dir], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    assert nxt.returncode == 0, nxt.stderr
    assert "%s at step %s (its process %d ended midway)" % (outcome, step, proc.pid) in nxt.stdout, nxt.stdout
    assert "maz failover complete" in nxt.stdout
    writer = _consistent(zlab)
    if outcome == "rolled back":  # rolled back to the old writer, then the new failover moved it
        assert writer.name != old.name
    print("killed at %s (recorded %s): %s, then a full failover in %.1fs" % (kill_at, step, outcome, time.monotonic() - t0))


def test_wrapper_dialect_detect_leaves_the_choice_to_the_wrapper():
    from fiswatch.backends.aws_wrapper import AwsWrapperBackend
    from fiswatch.model import Endpoint

    ep = Endpoint("maz", L.MAZ_ENDPOINT_NAMES["maz"])
    assert AwsWrapperBackend({}).for_endpoint(ep).properties()["wrapper_dialect"] == "aurora-mysql"  # auto
    assert "wrapper_dialect" not in AwsWrapperBackend({"wrapper_dialect": "detect"}).for_endpoint(ep).properties()

"""The lab's names are shaped as AWS's, only the lab's DNS answers them, and the old names still work.

The sentinel: a DNS server on a loopback address that records every query it gets and fails it
(SERVFAIL). A program started in a private mount namespace where /etc/resolv.conf names the
sentinel (lab/exec_ns.py, the machine's own file is never touched) would reach it with any query
for the lab's names sent to "the machine's resolver"; the demo, `watch --lab` and `lab exec` run
there and the sentinel must see nothing at all.
"""
import json
import os
import re
import select
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
from conftest import ROOT

from _lab_fixture import answer_of, resolver_for

from fiswatch import events as E
from fiswatch.lab import layout as L

pytestmark = pytest.mark.lab

HAVE_WRAPPER = sys.version_info >= (3, 10)  # the test extra installs it there
NAME = re.compile(r"^[a-z0-9-]+\.(cluster-|cluster-ro-)?c0ffee0c0ffe\.lab-1\.rds\.amazonaws\.com$")


def all_names():
    """Every name the lab's layout gives: (kind, name)."""
    out = [("cluster", L.ENDPOINT_NAMES["aurora"]), ("reader", L.ENDPOINT_NAMES["aurora-ro"]),
           ("instance", L.ENDPOINT_NAMES["rds"]), ("cluster", L.MAZ_ENDPOINT_NAMES["maz"]),
           ("reader", L.MAZ_ENDPOINT_NAMES["maz-ro"])]
    return out + [("instance", s.dns_name) for s in L.ALL_INSTANCES if s.dns_name]


def test_names_are_shaped_as_aws_names():
    assert re.fullmatch(r"[a-z0-9]{12}", L.CLUSTER_ID) and L.REGION == "lab-1"
    names = all_names()
    assert len(names) == len({n for _, n in names}) == 12
    for kind, name in names:
        assert NAME.match(name), name
        assert (".cluster-ro-" in name) == (kind == "reader") and (".cluster-c" in name) == (kind == "cluster")
    assert L.ENDPOINT_NAMES["aurora"] == "fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com"
    assert L.INSTANCES[0].dns_name == "fiswatch-lab-instance-1.c0ffee0c0ffe.lab-1.rds.amazonaws.com"
    assert L.ENDPOINT_NAMES["rds"] == "fiswatch-lab-mysql.c0ffee0c0ffe.lab-1.rds.amazonaws.com"
    aliases = L.alias_names()
    assert sorted(aliases.values()) == sorted([n for _, n in names] + [L.RDS_PROXY_NAME])  # the proxy: lab up --proxy
    assert aliases["fiswatch-lab.cluster-c0ffee.lab.rds.local"] == L.ENDPOINT_NAMES["aurora"]
    assert all(old.endswith("c0ffee.lab.rds.local") and old != new for old, new in aliases.items())
    # SERVER_ID = the instance's name; the host pattern turns it back into the instance's endpoint
    from fiswatch.lab import aurora

    for spec in L.ALL_INSTANCES:
        if spec.cluster == "aurora":
            assert aurora.server_id(spec.index) == L.topology_id(spec) == spec.name
            assert L.instance_host_pattern(3306).replace("?", spec.name) == spec.dns_name + ":3306"


@pytest.mark.skipif(not HAVE_WRAPPER, reason="the wrapper needs Python >= 3.10 (3.9: the shapes above)")
def test_the_wrappers_own_rds_utils_take_the_lab_names():
    from aws_advanced_python_wrapper.utils.rds_url_type import RdsUrlType
    from aws_advanced_python_wrapper.utils.rds_utils import RdsUtils

    utils = RdsUtils()
    want = {"cluster": RdsUrlType.RDS_WRITER_CLUSTER, "reader": RdsUrlType.RDS_READER_CLUSTER,
            "instance": RdsUrlType.RDS_INSTANCE}
    for kind, name in all_names():
        assert utils.identify_rds_type(name) == want[kind], name
        assert utils.is_rds_dns(name) and utils.get_rds_region(name) == "lab-1", name
        assert utils.get_rds_instance_host_pattern(name) == "?." + L.DOMAIN
        assert utils.is_not_green_or_old_instance(name), name  # blue names (the `bg` plugin's view)
    # what the wrapper derives from the cluster name is the lab's own pattern; green/old names as the bg plugin
    assert utils.get_rds_instance_host_pattern(L.ENDPOINT_NAMES["aurora"]) + ":3306" == L.instance_host_pattern(3306)
    assert utils.get_rds_cluster_host_url(L.ENDPOINT_NAMES["aurora-ro"]) == L.ENDPOINT_NAMES["aurora"]
    green = L.INSTANCES[0].dns_name.replace("-instance-1.", "-instance-1-green-abc123.")
    assert utils.is_green_instance(green) and utils.remove_green_instance_prefix(green) == L.INSTANCES[0].dns_name
    old = L.INSTANCES[0].dns_name.replace("-instance-1.", "-instance-1-old1.")
    assert not utils.is_not_old_instance(old) and utils.identify_rds_type(old) == RdsUrlType.RDS_INSTANCE
    assert utils.identify_rds_type("fiswatch-lab.cluster-c0ffee.lab.rds.local") == RdsUrlType.OTHER  # why new names


def test_lab_dns_answers_new_names_and_old_aliases(lab):
    from fiswatch.lab.api import lab_status

    info = lab_status(lab.dir)
    writer, reader = info.instance("aurora", "writer"), info.instance("aurora", "reader")
    assert info.endpoint("aurora").host == L.ENDPOINT_NAMES["aurora"] and info.reader_endpoint == \
        L.ENDPOINT_NAMES["aurora-ro"]
    assert answer_of(info, writer.dns_name)[:3] == ("ok", [writer.address], [])
    old = L.old_name(L.ENDPOINT_NAMES["aurora"])
    assert answer_of(info, old)[:3] == ("ok", [writer.address], [L.ENDPOINT_NAMES["aurora"], writer.dns_name])
    assert answer_of(info, L.old_name(reader.dns_name))[:3] == ("ok", [reader.address], [reader.dns_name])
    primary = info.instance("rds", "primary")
    assert answer_of(info, L.old_name(L.ENDPOINT_NAMES["rds"]))[:3] == ("ok", [primary.address],
                                                                         [L.ENDPOINT_NAMES["rds"]])
    assert answer_of(info, L.old_name(L.ENDPOINT_NAMES["aurora-ro"]))[1] == [reader.address]
    # no alias for what this lab does not run (a Multi-AZ DB cluster, extra readers)
    assert answer_of(info, L.old_name(L.MAZ_ENDPOINT_NAMES["maz"]))[0] == "nxdomain"
    # names outside the lab's zones: refused, never forwarded anywhere
    import dns.resolver

    with pytest.raises(dns.resolver.NoNameservers):
        resolver_for(info).resolve("db.cluster-abc.us-east-1.rds.amazonaws.com", "A")
    # the instances' topology ids are their names; @@server_id is their index, as the rds_topology id will be
    import pymysql

    for inst in (writer, reader):
        assert inst.server_id == inst.name
        conn = pymysql.connect(host=inst.address, port=inst.port, user=info.endpoint("aurora").user,
                               password=info.endpoint("aurora").password.reveal(), connect_timeout=5,
                               read_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@aurora_server_id, @@aurora_server_id")
                assert cur.fetchall() == ((inst.name, inst.name),)
                cur.execute("SELECT @@server_id")
                assert cur.fetchall() == ((L.spec_by_name(inst.name).index,),)
        finally:
            conn.close()


def test_lab_status_shows_the_new_names(lab):
    result = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", lab.dir, "--json"],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    text = json.dumps(data)
    assert L.ENDPOINT_NAMES["aurora"] in text and L.INSTANCES[0].dns_name in text
    assert data["cluster_instance_host_pattern"] == "?.c0ffee0c0ffe.lab-1.rds.amazonaws.com:%d" % lab.endpoint(
        "aurora").port
    assert {e["name"]: e["host"] for e in data["endpoints"]} == {"aurora": L.ENDPOINT_NAMES["aurora"],
                                                                 "rds": L.ENDPOINT_NAMES["rds"]}
    assert data["reader_endpoint"] == L.ENDPOINT_NAMES["aurora-ro"]
    for inst in data["instances"]:  # the old names only as the certificates' extra names
        assert inst["dns_name"] is None or NAME.match(inst["dns_name"]), inst
        assert [n for n in inst["certificate_names"] if n.endswith(".lab.rds.local")] == [
            L.old_name(n) for n in inst["certificate_names"] if NAME.match(n)]
    plain = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", lab.dir],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert plain.returncode == 0 and L.ENDPOINT_NAMES["aurora"] in plain.stdout, plain.stderr
    assert "SERVER_ID fiswatch-lab-instance-1" in plain.stdout


HOOKED = textwrap.dedent("""\
    import json, socket, sys
    from fiswatch.lab import resolver_hook
    resolver_hook.install((sys.argv[1], int(sys.argv[2])))
    out = {}
    for name in sys.argv[3:]:
        try:
            out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 3306, type=socket.SOCK_STREAM)})
        except socket.gaierror as exc:
            out[name] = "gaierror %d" % exc.errno
    out["byname"] = socket.gethostbyname(sys.argv[3])
    out["ex"] = socket.gethostbyname_ex(sys.argv[3])[2]
    out["localhost"] = socket.getaddrinfo("localhost", 1, socket.AF_INET)[0][4][0]
    print(json.dumps(out))
""")


def test_the_resolver_hook_answers_lab_names_from_the_lab_dns(lab):
    writer = lab.instance("aurora", "writer")
    missing = "nothing-here." + L.DOMAIN
    names = [lab.endpoint("aurora").host, L.old_name(lab.endpoint("aurora").host), missing]
    result = subprocess.run([sys.executable, "-c", HOOKED, lab.nameserver[0], str(lab.nameserver[1])] + names,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out[names[0]] == out[names[1]] == [writer.address]
    assert out[missing] == "gaierror %d" % socket.EAI_NONAME
    assert out["byname"] == writer.address and out["ex"] == [writer.address]
    assert out["localhost"] == "127.0.0.1"  # other names: the functions it replaced


# --- the sentinel ------------------------------------------------------------------------------------------


class Sentinel:
    """A DNS server on port 53 of a loopback address: records every query's name and answers SERVFAIL."""

    def __init__(self):
        import random

        rng = random.Random()
        self.queries = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for _ in range(50):
            self.ip = "127.%d.%d.53" % (rng.randint(20, 250), rng.randint(1, 250))
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.udp.bind((self.ip, 53))
                self.tcp.bind((self.ip, 53))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise RuntimeError("no free loopback address for the sentinel resolver")
        self.tcp.listen(8)
        self.thread = threading.Thread(target=self._serve, name="sentinel-dns", daemon=True)
        self.thread.start()

    def _fail(self, wire):
        import dns.message
        import dns.rcode

        try:
            query = dns.message.from_wire(wire)
        except Exception:
            with self._lock:
                self.queries.append("(garbage)")
            return None
        with self._lock:
            self.queries.extend(q.name.to_text() for q in query.question)
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL)
        return reply.to_wire()

    def _serve(self):
        while not self._stop.is_set():
            ready, _, _ = select.select([self.udp, self.tcp], [], [], 0.2)
            if self.udp in ready:
                data, addr = self.udp.recvfrom(4096)
                reply = self._fail(data)
                if reply:
                    self.udp.sendto(reply, addr)
            if self.tcp in ready:
                conn, _ = self.tcp.accept()
                with conn:
                    conn.settimeout(2)
                    try:
                        size = int.from_bytes(conn.recv(2), "big")
                        reply = self._fail(conn.recv(size))
                        if reply:
                            conn.sendall(len(reply).to_bytes(2, "big") + reply)
                    except OSError:
                        pass

    def seen(self):
        with self._lock:
            return list(self.queries)

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.udp.close()
        self.tcp.close()


# A private mount namespace (util-linux `unshare`, mounts private) whose /etc/resolv.conf names the
# sentinel, with the same files `lab exec` binds (nsswitch `hosts: files dns`, no nscd socket). The
# files stay in the test's tmp dir while it runs: `lab exec` inside binds its own over them (a bind
# over an unlinked file is refused).
BIND = 'for pair in "$@"; do case "$pair" in --) shift; break;; esac; ' \
       'mount --bind "${pair%%=*}" "${pair#*=}" || exit 97; shift; done; exec "$@"'


LOOKUPS = textwrap.dedent("""\
    import socket, sys, time
    for n in range(60):
        for name in sys.argv[1:]:
            try:
                print("addr", name, socket.getaddrinfo(name, 3306, type=socket.SOCK_STREAM)[0][4][0], flush=True)
            except socket.gaierror as exc:
                print("addr", name, "none", exc.errno, flush=True)
        time.sleep(0.3)
""")


@pytest.fixture
def sentinel():
    s = Sentinel()
    try:
        yield s
    finally:
        s.close()


def _in_sentinel_ns(sentinel, argv, tmp_path, timeout=180):
    from fiswatch.lab.exec import resolver_files

    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    pairs = []
    for n, (target, text) in enumerate(sorted(resolver_files(sentinel.ip, "the sentinel").items())):
        source = tmp_path / ("sentinel-%d-%s" % (n, os.path.basename(target)))
        source.write_text(text)
        pairs.append("%s=%s" % (source, target))
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp), AWS_EC2_METADATA_DISABLED="true")
    unshare = ["unshare", "--mount", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    return subprocess.run(unshare + ["sh", "-c", BIND, "sh"] + pairs + ["--"] + list(argv), capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_the_sentinel_sees_what_the_machines_resolver_would(sentinel, tmp_path):
    """The control: a lookup in the sentinel's namespace reaches the sentinel (else zero proves nothing)."""
    result = _in_sentinel_ns(sentinel, [sys.executable, "-c", LOOKUPS.replace("range(60)", "range(1)"),
                                        "control.sentinel-check.test"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "none" in result.stdout
    assert "control.sentinel-check.test." in sentinel.seen()


@pytest.mark.slow
def test_no_lab_name_reaches_the_machines_resolver(lab, sentinel, tmp_path):
    """The demo (all its clients, the AWS wrapper failing over by instance name), `watch --lab`
    connecting by name, and `lab exec` looking names up: the sentinel sees no query at all."""
    from fiswatch.lab.api import failover, lab_status

    info = lab_status(lab.dir)
    old, new = info.instance("aurora", "writer"), info.instance("aurora", "reader")
    program = tmp_path / "lookups.py"
    program.write_text(LOOKUPS)
    names = [info.endpoint("aurora").host, L.old_name(info.endpoint("aurora").host), new.dns_name]
    record = tmp_path / "run.jsonl"
    demo = [sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--json", "--duration", "22",
            "--aurora-after", "7", "--rds-after", "1000", "--no-verify", "--record", str(record),
            "--exec", " ".join([sys.executable, str(program)] + names)]
    try:
        result = _in_sentinel_ns(sentinel, demo, tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert any(e["event"] == E.LAB and e.get("step") == "dns_flip" for e in events)
        messages = [e.get("message", "") for e in events if e["event"] == E.INFO]
        seen = [m.split()[3] for m in messages if m.startswith("exec: addr ") and m.split()[2] == names[1]]
        assert old.address in seen and new.address in seen, messages[-10:]  # the old name, through the flip
        if HAVE_WRAPPER:  # it moved to the promoted instance by its topology name, looked up in the lab's DNS
            moved = [e for e in events if e["event"] == E.FAILOVER and "aws-wrapper" in e.get("probe", "")]
            assert moved and moved[0].get("to") == new.address, [
                e for e in events if "aws-wrapper" in e.get("probe", "") and e["event"] not in (E.WRITE, E.TICK)]
        assert sentinel.seen() == []
    finally:
        if lab_status(lab.dir).instance("aurora", "writer").name != old.name:
            failover(lab.dir, "aurora", profile="quick")
    watch = [sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--json", "--duration", "4",
             "--connect-by-name", "--no-verify"]
    result = _in_sentinel_ns(sentinel, watch, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    connects = [e for e in (json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
                if e["event"] == E.CONNECT]  # by name (--connect-by-name): the drivers looked the names up
    assert {c["endpoint"] for c in connects} == {"aurora", "rds"}, result.stdout[-2000:]
    import mysql.connector

    by_c = {c["probe"] for c in connects if c["probe"].endswith("/mysql-connector")}
    if getattr(mysql.connector, "HAVE_CEXT", False):  # libmysqlclient would ask the machine's resolver: refused
        assert not by_c and "a C driver library looks names up with the machine's resolver" in result.stdout
    else:  # the pure-Python driver looks the names up through fiswatch's hook
        assert by_c == {"aurora/mysql-connector", "rds/mysql-connector"}, connects
    exec_argv = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab.dir, "--", sys.executable, "-c",
                 LOOKUPS.replace("range(60)", "range(1)")] + names
    result = _in_sentinel_ns(sentinel, exec_argv, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    writer = lab_status(lab.dir).instance("aurora", "writer")
    assert "addr %s %s" % (names[1], writer.address) in result.stdout
    assert sentinel.seen() == []

"""TLS as on AWS, against the real lab: certificates for every endpoint name, verified connections
through Aurora and RDS failovers, the wrapper ahead of DNS inside TLS, `--require-tls` (3159),
an expired certificate, and `openssl s_client` (a check outside Python's TLS stack)."""
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab


def _s_client(address, name, ca):
    """openssl s_client -starttls mysql: (return code, output)."""
    out = subprocess.run(["openssl", "s_client", "-starttls", "mysql", "-connect", "%s:%d" % address,
                          "-verify_hostname", name, "-CAfile", ca, "-verify_return_error", "-brief"],
                         input="", capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


def test_openssl_verifies_every_name_against_the_lab_ca(lab):
    from fiswatch.lab.api import lab_status

    assert shutil.which("openssl"), "openssl is missing: scripts/setup.sh installs it"
    info = lab_status(lab.dir)
    assert info.ca_file and os.path.exists(info.ca_file)
    for inst in info.instances:
        assert inst.certificate_names
        for name in inst.certificate_names:
            code, text = _s_client((inst.address, inst.port), name, info.ca_file)
            assert code == 0 and "Verification: OK" in text, (inst.name, name, text)
    rds = info.instance("rds", "primary")
    code, text = _s_client((rds.address, rds.port), info.endpoint("aurora").host, info.ca_file)
    assert code != 0 and "hostname mismatch" in text.lower(), text


def test_status_json_and_lab_exec_environment_name_the_ca_bundle(lab):
    from fiswatch.lab.api import lab_status
    from fiswatch.lab.exec import child_environment

    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", lab.dir, "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["tls"] == {"policy": "offered", "ca_file": os.path.join(lab.dir, "tls", "ca.pem"), "expired": False}
    assert "PRIVATE KEY" not in out.stdout and "ca-key" not in out.stdout
    text = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "status", "--dir", lab.dir],
                          capture_output=True, text=True, env=env, timeout=60).stdout
    assert "CA bundle %s" % status["tls"]["ca_file"] in text
    child = child_environment({}, lab_status(lab.dir), "127.0.0.53", {})
    assert child["FISWATCH_LAB_CA"] == status["tls"]["ca_file"]


def test_every_backend_verified_by_name_through_aurora_and_rds_failovers(lab, tmp_path):
    """VERIFY_IDENTITY everywhere: writes through both failovers, 0 lost, TLS recorded on every connect;
    the wrapper is on the promoted instance, over verified TLS, before the cluster name's DNS changes."""
    from fiswatch.backends.registry import make_backend, parse_backend_spec
    from fiswatch.config.tls import TlsOptions
    from fiswatch.engine.probe import Probe
    from fiswatch.lab.api import failover, lab_status
    from fiswatch.lab.failover import Profile
    from fiswatch.output.record import RecordWriter
    from fiswatch.report.autoverify import verify_record

    info = lab_status(lab.dir)
    tls = TlsOptions("VERIFY_IDENTITY")
    old = {c: info.instance(c, r) for c, r in (("aurora", "writer"), ("rds", "primary"))}
    new = {c: info.instance(c, r) for c, r in (("aurora", "reader"), ("rds", "standby"))}
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

    labels = ["pymysql", "mysql-connector:read_timeout=1"]
    if sys.version_info >= (3, 10):
        labels.append("aws-wrapper")
    probes = []
    for name in ("aurora", "rds"):
        ep = info.endpoint(name)
        for label in labels:
            if label == "aws-wrapper" and name != "aurora":
                continue
            spec = parse_backend_spec(label)
            backend = make_backend(spec, tls).for_endpoint(ep)
            assert backend.tls.ca == info.ca_file  # the lab's CA, taken by itself
            probes.append(Probe(ep, spec, backend, emit, interval=0.02, nameserver=tuple(info.nameserver)))
    steps = []
    try:
        for p in probes:
            p.start()
        wait_for(lambda: all(p.snapshot.iterations > 3 for p in probes), 60, message="every probe writing over TLS")
        for p in probes:
            assert p.snapshot.tls in ("TLSv1.2", "TLSv1.3"), (p.id, p.snapshot.tls)
        failover(lab.dir, "aurora", emit=steps.append,
                 timings=Profile("test", promote_at=1.0, flip_at=8.0, empty_for=0.0, flap_for=0.0, rejoin_at=8.5))
        failover(lab.dir, "rds", emit=steps.append, profile="quick")
        done = steps[-1].ts
        for p in probes:
            wait_for(lambda: any(w.ts > done for w in of("write", probe=p.id)), 60,
                     message="%s writing after both failovers" % p.id)
            where = new[p.endpoint.name].address
            assert [w for w in of("write", probe=p.id) if w.get("address") == where], p.id
            connects = of("connect", probe=p.id)
            assert connects and all(c.get("tls", "").startswith("TLSv1") and c.get("cipher") for c in connects)
        if sys.version_info >= (3, 10):
            flip = next(s.ts for s in steps if s.get("step") == "dns_flip" and s.get("target") == "aurora")
            wrapper = next(p for p in probes if p.id == "aurora/aws-wrapper")
            moved = of("failover", probe=wrapper.id)
            assert moved and moved[0].get("to") == new["aurora"].address and moved[0].ts < flip, moved
            assert moved[0].get("tls", "").startswith("TLSv1")
            assert [w for w in of("write", probe=wrapper.id)
                    if w.get("address") == new["aurora"].address and w.ts < flip]
        assert not [e for e in of("error") if e.get("kind") == "tls"]
    finally:
        for p in probes:
            p.stop()
        for p in probes:
            p.join(10)
    with lock:
        record.close()
    try:
        result, verdicts = verify_record(record_path, [info.endpoint("aurora"), info.endpoint("rds")],
                                         tuple(info.nameserver))
    finally:  # later tests take the roles from the fixture: fail back
        now = lab_status(lab.dir)
        for cluster, role in (("aurora", "writer"), ("rds", "primary")):
            if now.instance(cluster, role).name != old[cluster].name:
                failover(lab.dir, cluster, profile="quick")
    for item in result.endpoints:
        assert item.ok and not item.lost, verdicts


def test_require_tls_refuses_plaintext_with_3159_and_an_expired_certificate_is_the_tls_kind(tmp_path):
    from _lab_fixture import pick_lab_addresses

    from fiswatch.backends.registry import make_backend, parse_backend_spec
    from fiswatch.config.tls import TlsOptions
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_up

    lab_dir = str(tmp_path / "lab")
    base, port, dns_port = pick_lab_addresses()
    try:
        info = lab_up(lab_dir, base=base, port=port, dns_port=dns_port, tls="required", tls_expired=True)
        assert info.tls == "required" and info.tls_expired
        ep = info.endpoint("aurora")
        writer = info.instance("aurora", "writer")
        password = ep.password.reveal()

        def attempt(label, mode):
            backend = make_backend(parse_backend_spec(label), TlsOptions(mode)).for_endpoint(ep)
            try:
                conn = backend.connect(writer.address, writer.port, ep.user, password, ep.database,
                                       server_hostname=ep.host)
            except Exception as exc:
                return backend, None, backend.classify(exc)
            return backend, conn, None

        for label in ("pymysql", "mysql-connector"):
            _, conn, error = attempt(label, "DISABLED")
            assert conn is None and error.code == 3159 and error.kind == "tls", error
            assert "require_secure_transport=ON" in error.message
            _, conn, error = attempt(label, "VERIFY_IDENTITY")
            assert conn is None and error.kind == "tls" and "expired" in error.message.lower(), error
            backend, conn, error = attempt(label, "REQUIRED")  # no certificate check: an expired one passes
            assert error is None, error
            assert backend.tls_facts(conn)[0].startswith("TLSv1")
            conn.close()
    finally:
        try:
            lab_down(lab_dir)
        except LabNotRunning:
            pass
        shutil.rmtree(lab_dir, ignore_errors=True)


def test_an_unknown_ca_is_the_tls_kind_on_screen_in_the_events_and_counted_by_the_report(lab, tmp_path):
    from fiswatch.lab.tlsca import make_lab_pki

    other = make_lab_pki(str(tmp_path / "other"), {})
    record = str(tmp_path / "run.jsonl")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--ssl-ca", other,
                          "--backend", "pymysql", "--json", "--duration", "3", "--record", record, "--no-verify"],
                         capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    errors = [json.loads(l) for l in out.stdout.splitlines() if '"event":"error"' in l.replace(" ", "")]
    assert errors and all(e["kind"] == "tls" and "certificate verify failed" in e["message"].lower()
                          for e in errors), errors[:2]
    report = subprocess.run([sys.executable, "-m", "fiswatch", "report", record], capture_output=True, text=True,
                            env=env, timeout=60)
    assert "tls x" in report.stdout, report.stdout


def test_demo_runs_over_tls_by_default(lab):
    """The lab offers TLS and the drivers take it by themselves: every demo column is on TLS, unverified
    unless asked; with --ssl-mode VERIFY_IDENTITY the same demo verifies by name."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    for extra in ([], ["--ssl-mode", "VERIFY_IDENTITY"]):
        out = subprocess.run([sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--no-failover", "--json",
                              "--duration", "4"] + extra, capture_output=True, text=True, env=env, timeout=180,
                             stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        events = [json.loads(l) for l in out.stdout.splitlines()]
        connects = [e for e in events if e["event"] == "connect"]
        probes = {p["probe"] for p in events[0]["probes"] if p["available"]}
        assert probes and {c["probe"] for c in connects} == probes
        assert all(c["tls"].startswith("TLSv1") and c["cipher"] for c in connects), connects
        assert not [e for e in events if e["event"] == "error"]


def test_the_stock_mysql_client_in_lab_exec_verifies_by_name_with_the_ca_it_is_given(lab, tmp_path):
    """`lab exec` hands the CA over as FISWATCH_LAB_CA; the mysql client verifies the cluster name,
    and refuses the proxy's IP address (no certificate names an address, as on AWS)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp))
    script = ('mysql --ssl-verify-server-cert --ssl-ca="$FISWATCH_LAB_CA" -h "$1" -u "$FISWATCH_LAB_USER" '
              '"$FISWATCH_LAB_DATABASE" -e status')
    writer = lab.instance("aurora", "writer")
    results = {}
    for host in (lab.endpoint("aurora").host, writer.address):
        results[host] = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab.dir, "--",
                                        "sh", "-c", script, "sh", host], capture_output=True, text=True, env=env,
                                       timeout=120)
    by_name = results[lab.endpoint("aurora").host]
    assert by_name.returncode == 0, by_name.stderr
    assert "Cipher in use is TLS" in by_name.stdout
    by_address = results[writer.address]
    assert by_address.returncode != 0 and "2026" in by_address.stderr, by_address.stderr

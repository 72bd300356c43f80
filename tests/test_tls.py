"""TLS without the lab: the CA and certificates, the proxy's TLS termination in front of the machine's
real MariaDB, each backend's --ssl-mode mapping, the `tls` error kind, and bad input.

The proxy runs on 127.0.0.1 (an ephemeral port) and forwards to the machine's server on 3306; the
clients check the certificate against names the test chose, never resolving anything.
"""
import datetime
import os
import stat
import subprocess
import sys

import pytest

from conftest import ROOT

NAME = "db-1.c0ffee.lab.rds.local"
CLUSTER = "db.cluster-c0ffee.lab.rds.local"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from fiswatch.lab import tlsca

    d = str(tmp_path_factory.mktemp("tls"))
    ca_file = tlsca.make_lab_pki(d, {"good": (NAME, CLUSTER)})
    ca = tlsca.ensure_ca(d)
    tlsca.issue(d, "expired", (NAME, CLUSTER), ca, expired=True)
    other = str(tmp_path_factory.mktemp("other-ca"))
    other_ca = tlsca.make_lab_pki(other, {})
    return {"dir": d, "ca": ca_file, "other_ca": other_ca}


def _proxy(pki, instance, policy):
    from fiswatch.lab.proxy import FaultProxy
    from fiswatch.lab.tls import session_factory
    from fiswatch.lab import tlsca

    return FaultProxy("127.0.0.1", 0, "127.0.0.1", 3306, name="tls-" + policy, tls=session_factory(
        tlsca.cert_file(pki["dir"], instance), tlsca.key_file(pki["dir"], instance), policy)).start()


def _connect(backend_name, proxy, mariadb, mode=None, ca=None, name=NAME, options=()):
    """(connection or None, ErrorInfo or None) through one backend with one TLS setting."""
    from fiswatch.backends.registry import make_backend
    from fiswatch.config.tls import TlsOptions
    from fiswatch.model import BackendSpec

    backend = make_backend(BackendSpec(backend_name, tuple(options)), TlsOptions(mode, ca))
    host, port = proxy.address
    try:
        return backend, backend.connect(host, port, mariadb.user, mariadb.password, mariadb.database,
                                        server_hostname=name), None
    except Exception as exc:
        return backend, None, backend.classify(exc)


def test_the_ca_key_is_private_and_certificates_name_what_clients_use(pki):
    from cryptography import x509

    mode = stat.S_IMODE(os.stat(os.path.join(pki["dir"], "ca-key.pem")).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(pki["dir"], "good-key.pem")).st_mode) == 0o600
    with open(os.path.join(pki["dir"], "good.pem"), "rb") as fh:
        cert = x509.load_pem_x509_certificates(fh.read())[0] if hasattr(x509, "load_pem_x509_certificates") \
            else x509.load_pem_x509_certificate(fh.read())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == [NAME, CLUSTER]
    with open(os.path.join(pki["dir"], "expired.pem"), "rb") as fh:
        expired = x509.load_pem_x509_certificate(fh.read())
    end = getattr(expired, "not_valid_after_utc", None) or expired.not_valid_after.replace(
        tzinfo=datetime.timezone.utc)
    assert end < datetime.datetime.now(datetime.timezone.utc)


def test_the_ca_is_kept_and_a_broken_key_is_one_line_without_key_material(tmp_path):
    from fiswatch.lab import tlsca

    d = str(tmp_path)
    first = tlsca.ensure_ca(d)[0].serial_number
    assert tlsca.ensure_ca(d)[0].serial_number == first  # kept across `lab up`
    key = os.path.join(d, "ca-key.pem")
    with open(key, "rb") as fh:
        secret = fh.read()
    with open(key, "wb") as fh:
        fh.write(secret[:200])  # cut: no longer a key
    with pytest.raises(tlsca.PkiError) as err:
        tlsca.ensure_ca(d)
    text = str(err.value)
    assert "\n" not in text and key in text and "remove" in text
    assert secret[40:80].decode() not in text
    os.unlink(key)
    os.mkdir(key)  # unreadable even for root
    with pytest.raises(tlsca.PkiError, match="cannot be read"):
        tlsca.ensure_ca(d)


@pytest.mark.parametrize("backend_name,options", [("pymysql", ()), ("mysql-connector", (("use_pure", "true"),))])
def test_verified_by_name_through_the_terminating_proxy(pki, mariadb, backend_name, options):
    proxy = _proxy(pki, "good", "offered")
    try:
        backend, conn, error = _connect(backend_name, proxy, mariadb, "VERIFY_IDENTITY", pki["ca"], options=options)
        assert error is None, error
        version, cipher = backend.tls_facts(conn)
        assert version in ("TLSv1.2", "TLSv1.3") and cipher
        cur = conn.cursor()
        cur.execute("SELECT @@port")  # the server behind, in plaintext, answers through TLS
        assert cur.fetchall()[0][0] == 3306
        conn.close()
        # the cluster name is on the certificate too
        _, conn, error = _connect(backend_name, proxy, mariadb, "VERIFY_IDENTITY", pki["ca"], name=CLUSTER,
                                  options=options)
        assert error is None, error
        conn.close()
        # TLS offered, not required: a plaintext client still gets in
        backend, conn, error = _connect(backend_name, proxy, mariadb, "DISABLED", options=options)
        assert error is None, error
        assert backend.tls_facts(conn) == ("plain", "")
        conn.close()
    finally:
        proxy.stop()


@pytest.mark.parametrize("backend_name,options", [("pymysql", ()), ("mysql-connector", (("use_pure", "true"),))])
def test_tls_failures_are_the_tls_kind_with_the_drivers_words(pki, mariadb, backend_name, options):
    offered, required = _proxy(pki, "good", "offered"), _proxy(pki, "good", "required")
    expired = _proxy(pki, "expired", "offered")
    try:
        cases = {
            "wrong name": (offered, "VERIFY_IDENTITY", pki["ca"], "other.c0ffee.lab.rds.local", "mismatch"),
            "unknown CA": (offered, "VERIFY_CA", pki["other_ca"], NAME, "certificate verify failed"),
            "expired": (expired, "VERIFY_CA", pki["ca"], NAME, "expired"),
            "server requires TLS": (required, "DISABLED", None, NAME, "require_secure_transport"),
        }
        for what, (proxy, mode, ca, name, words) in cases.items():
            _, conn, error = _connect(backend_name, proxy, mariadb, mode, ca, name=name, options=options)
            assert conn is None, what
            assert error.kind == "tls", (what, error)
            assert words.lower() in error.message.lower(), (what, error)
        assert _connect(backend_name, required, mariadb, "DISABLED", options=options)[2].code == 3159
        # a client that prefers TLS gets in where TLS is required
        backend, conn, error = _connect(backend_name, required, mariadb, "REQUIRED", options=options)
        assert error is None and backend.tls_facts(conn)[0].startswith("TLS")
        conn.close()
    finally:
        for p in (offered, required, expired):
            p.stop()


def test_required_refuses_a_server_without_tls(mariadb):
    """Straight to the machine's server without TLS termination: whatever it offers, DISABLED connects
    plaintext, and a REQUIRED client is either on TLS or refused with the tls kind (never plaintext)."""
    from fiswatch.backends.registry import make_backend
    from fiswatch.config.tls import TlsOptions
    from fiswatch.model import BackendSpec

    for name in ("pymysql", "mysql-connector"):
        backend = make_backend(BackendSpec(name), TlsOptions("REQUIRED"))
        try:
            conn = backend.connect(mariadb.host, mariadb.port, mariadb.user, mariadb.password, mariadb.database)
        except Exception as exc:
            assert backend.classify(exc).kind == "tls"
        else:
            assert backend.tls_facts(conn)[0] != "plain"
            conn.close()


def test_garbage_after_the_ssl_request_closes_quietly(pki, mariadb):
    """A client that asks for TLS and then sends garbage: the proxy closes it, and still serves others."""
    import socket

    from conftest import wait_for

    proxy = _proxy(pki, "good", "offered")
    try:
        sock = socket.create_connection(proxy.address, timeout=5)
        head = sock.recv(4)
        sock.recv(int.from_bytes(head[:3], "little"))
        ssl_request = (0x800 | 0x200 | 0x8000).to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") + b"\x21" + \
            b"\x00" * 23
        sock.sendall(len(ssl_request).to_bytes(3, "little") + b"\x01" + ssl_request + b"\x16\x03\x01garbage" * 20)
        data = b"x"
        while data:
            data = sock.recv(4096)  # ends with EOF (a TLS alert first, perhaps)
        sock.close()
        wait_for(lambda: proxy.connection_count() == 0, 10, message="the proxy forgot the garbage connection")
        _, conn, error = _connect("pymysql", proxy, mariadb, "VERIFY_IDENTITY", pki["ca"])
        assert error is None, error
        conn.close()
    finally:
        proxy.stop()


def test_backend_options_and_the_lab_ca_taken_by_itself(pki, tmp_path):
    from fiswatch.backends.base import BackendOptionError
    from fiswatch.backends.registry import make_backend, parse_backend_spec
    from fiswatch.config.tls import TlsOptions
    from fiswatch.model import Endpoint

    lab_ep = Endpoint("aurora", "db.cluster-c0ffee.lab.rds.local", source="lab:/x", ca_file=pki["ca"])
    backend = make_backend(parse_backend_spec("pymysql"), TlsOptions("VERIFY_IDENTITY"))
    assert backend.for_endpoint(lab_ep).tls.ca == pki["ca"]
    # per backend wins over the global option
    backend = make_backend(parse_backend_spec("pymysql:ssl_mode=DISABLED"), TlsOptions("VERIFY_IDENTITY"))
    assert backend.tls.mode == "DISABLED"
    # a CA alone means VERIFY_CA, as for the mysql client
    backend = make_backend(parse_backend_spec("mysql-connector:ssl_ca=%s" % pki["ca"]))
    assert backend.for_endpoint(Endpoint("x", "127.0.0.1")).tls.mode == "VERIFY_CA"
    aws = Endpoint("aurora", "db.cluster-abc.us-east-1.rds.amazonaws.com")
    with pytest.raises(BackendOptionError, match="global-bundle.pem"):
        make_backend(parse_backend_spec("pymysql"), TlsOptions("VERIFY_CA")).for_endpoint(aws)
    old_lab = Endpoint("aurora", "db.cluster-c0ffee.lab.rds.local", source="lab:/x")
    with pytest.raises(BackendOptionError, match="lab"):
        make_backend(parse_backend_spec("pymysql"), TlsOptions("VERIFY_IDENTITY")).for_endpoint(old_lab)


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, FISWATCH_PASSWORD_AURORA="x")
    return subprocess.run([sys.executable, "-m", "fiswatch"] + list(args), capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_bad_tls_input_is_one_line_and_exit_2(tmp_path, pki):
    notpem = tmp_path / "ca.der"
    notpem.write_bytes(b"\x30\x82\x01\x0a")
    keyonly = tmp_path / "key.pem"
    with open(os.path.join(pki["dir"], "good-key.pem")) as fh:
        key_text = fh.read()
    keyonly.write_text(key_text)
    aws = "aurora=mysql://admin@db.cluster-abc.us-east-1.rds.amazonaws.com/testdb"
    local = "aurora=mysql://admin@127.0.0.1:1/testdb"
    cases = [
        (["watch", "--endpoint", local, "--ssl-ca", str(tmp_path / "missing.pem")], "does not exist"),
        (["watch", "--endpoint", local, "--ssl-ca", str(tmp_path)], "is a directory"),
        (["watch", "--endpoint", local, "--ssl-ca", str(notpem)], "not PEM"),
        (["watch", "--endpoint", local, "--ssl-ca", str(keyonly)], "holds no certificate"),
        (["watch", "--endpoint", local, "--ssl-mode", "yes"], "not an ssl mode"),
        (["watch", "--endpoint", aws, "--ssl-mode", "VERIFY_IDENTITY"], "global-bundle.pem"),
        (["watch", "--endpoint", local, "--backend", "pymysql:ssl_ca=%s" % keyonly], "holds no certificate"),
        (["create-db", "--endpoint", aws, "--ssl-mode", "VERIFY_CA"], "global-bundle.pem"),
    ]
    for args, words in cases:
        out = _run(*(args + ["--plain", "--duration", "1"] if args[0] == "watch" else args))
        assert out.returncode == 2, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, out.stderr)
        assert "Traceback" not in out.stderr
        assert key_text.splitlines()[1][:30] not in out.stderr + out.stdout


def test_lab_up_with_an_unusable_ca_key_is_exit_2_before_anything_starts(tmp_path):
    from _lab_fixture import pick_lab_addresses

    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "ca-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    (tls / "ca.pem").write_text("x")
    base, port, dns_port = pick_lab_addresses()
    out = _run("lab", "up", "--dir", str(tmp_path), "--base", base, "--dns-port", str(dns_port))
    assert out.returncode == 2, out.stderr
    lines = [l for l in out.stderr.splitlines() if not l.startswith("starting the lab")]
    assert len(lines) == 1 and "ca-key.pem" in lines[0] and "not a key" not in out.stderr
    assert not (tmp_path / "lab.lock").exists() or not (tmp_path / "control.sock").exists()

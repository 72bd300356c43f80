"""TLS on the lab's RDS Proxy endpoint (lab/rdsproxy_tls.py): PyMySQL verifying the lab CA and the proxy's
name, the name of an instance refused, plaintext refused under `required` (3159), and `openssl s_client`
against a lab started with --proxy. Real servers, real TLS."""
import os
import shutil
import ssl
import subprocess
import sys

import pytest

from conftest import wait_for

sys.path.insert(0, os.path.dirname(__file__))
from test_lab_rdsproxy import plab  # noqa: E402,F401


class NamedContext(ssl.SSLContext):
    """A client context that checks the certificate against `name` while PyMySQL connects to an address
    (no DNS query: the lab's names are not in the system resolver)."""

    name = ""

    def wrap_socket(self, sock, *args, **kw):  # type: ignore[override]
        kw["server_hostname"] = self.name
        return super().wrap_socket(sock, *args, **kw)


def _context(ca, name):
    ctx = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = True
    ctx.name = name
    return ctx


@pytest.fixture(params=["offered", "required"])
def tls_proxy(request, mariadb, tmp_path):
    """An RdsProxy with the lab's TLS (a fresh lab CA, a certificate for the proxy's name) before the test server."""
    from fiswatch.lab import layout as L
    from fiswatch.lab.loop import ProxyLoop
    from fiswatch.lab.rdsproxy import RdsProxy
    from fiswatch.lab.rdsproxy_backend import Instance
    from fiswatch.lab.tls import session_factory
    from fiswatch.lab.tlsca import cert_file, key_file, make_lab_pki

    tls_dir = str(tmp_path / "tls")
    ca = make_lab_pki(tls_dir, {L.RDS_PROXY_ENDPOINT: (L.RDS_PROXY_NAME,), "other": ("other.lab.rds.local",)})
    tls = session_factory(cert_file(tls_dir, L.RDS_PROXY_ENDPOINT), key_file(tls_dir, L.RDS_PROXY_ENDPOINT),
                          request.param)
    loop = ProxyLoop("test-rdsproxy-tls")
    proxy = RdsProxy(("127.0.0.1", 0), [Instance("test", (mariadb.host, mariadb.port))],
                     {mariadb.user: mariadb.password}, loop, borrow_timeout=5, tls=tls).start()
    proxy.ca, proxy.policy = ca, request.param
    wait_for(lambda: proxy.stats()["writer"] == "test", 30, message="the proxy finds the test server writable")
    yield proxy
    proxy.stop()
    loop.stop()


def _connect(proxy, mariadb, **kw):
    import pymysql

    return pymysql.connect(host=proxy.listen[0], port=proxy.listen[1], user=mariadb.user, password=mariadb.password,
                           database=mariadb.database, connect_timeout=10, read_timeout=30, **kw)


def _one(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


def test_pymysql_verifies_the_lab_ca_and_the_proxys_name(tls_proxy, mariadb):
    import pymysql

    from fiswatch.lab import layout as L

    conn = _connect(tls_proxy, mariadb, ssl=_context(tls_proxy.ca, L.RDS_PROXY_NAME), autocommit=True)
    assert _one(conn, "SELECT 1") == (1,)
    assert conn._sock.version() in ("TLSv1.2", "TLSv1.3")  # the client's own socket: TLS end to end
    assert _one(conn, "SELECT REPEAT('x', 300000)")[0] == "x" * 300000  # a result of many packets, inside TLS
    with conn.cursor() as cur:
        cur.execute("INSERT INTO test (value) VALUES (77)")
        assert cur.lastrowid > 0
    conn.close()
    with pytest.raises(pymysql.err.OperationalError) as wrong:  # the certificate names the proxy, not this
        _connect(tls_proxy, mariadb, ssl=_context(tls_proxy.ca, "fiswatch-lab.cluster-c0ffee.lab.rds.local"))
    assert wrong.value.args[0] == 2003 and "hostname" in str(wrong.value).lower(), wrong.value.args
    if tls_proxy.policy == "required":  # plaintext refused as an instance with require_secure_transport refuses it
        with pytest.raises(pymysql.err.OperationalError) as plain:
            _connect(tls_proxy, mariadb, ssl_disabled=True)  # PyMySQL 2 would otherwise prefer TLS
        assert plain.value.args[0] == 3159, plain.value.args
    else:
        assert _one(_connect(tls_proxy, mariadb, ssl_disabled=True), "SELECT 2") == (2,)  # offered: plaintext served
    wait_for(lambda: tls_proxy.stats()["open"] == 0, 30, message="every client session ended")


@pytest.mark.lab
def test_a_lab_with_proxy_serves_tls_by_the_proxys_name(plab):
    from fiswatch.lab import layout as L
    from fiswatch.lab.api import lab_status

    assert shutil.which("openssl"), "openssl is missing: scripts/setup.sh installs it"
    info = lab_status(plab.dir)
    proxy = info.endpoint(L.RDS_PROXY_ENDPOINT)
    address = next(i.address for i in info.instances if i.cluster == "aurora")
    address = ".".join(address.split(".")[:3] + [str(L.RDS_PROXY_OCTET)])

    def s_client(name):
        out = subprocess.run(["openssl", "s_client", "-starttls", "mysql", "-connect", "%s:%d" % (address, proxy.port),
                              "-verify_hostname", name, "-CAfile", info.ca_file, "-verify_return_error", "-brief"],
                             input="", capture_output=True, text=True, timeout=30)
        return out.returncode, out.stdout + out.stderr

    assert proxy.host == L.RDS_PROXY_NAME
    code, text = s_client(L.RDS_PROXY_NAME)
    assert code == 0 and "Verification: OK" in text, text
    code, text = s_client(info.endpoint("aurora").host)
    assert code != 0 and "hostname mismatch" in text.lower(), text
    import pymysql

    conn = pymysql.connect(host=address, port=proxy.port, user=proxy.user, password=proxy.password.reveal(),
                           database=proxy.database, ssl=_context(info.ca_file, L.RDS_PROXY_NAME), connect_timeout=10)
    assert _one(conn, "SELECT @@read_only") == (0,)  # the writer, through the proxy, over verified TLS
    conn.close()

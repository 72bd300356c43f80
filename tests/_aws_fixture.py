"""AWS test helpers: moto as a library and as a loopback server, and botocore Stubber.

Everything stays on 127.0.0.1: conftest sets fake credentials, a region and
AWS_EC2_METADATA_DISABLED=true; the server is bound to 127.0.0.1 on a free port and
reached through AWS_ENDPOINT_URL, which botocore honours for every service.
"""
import contextlib
import json
import os
import socket
from typing import Any, Dict, Iterator, Optional

import pytest

REGION = "us-east-1"
CLUSTER_ID = "fisworkshop"
WRITER, READER = "fisworkshop-aurora-1", "fisworkshop-aurora-2"
MYSQL_ID = "fisworkshop-mysql"


def moto_has_fis() -> bool:
    try:
        import moto.fis  # noqa: F401
    except ImportError:
        return False
    return True


def external_moto_python() -> Optional[str]:
    """A Python 3.10+ whose moto has FIS, to serve FIS tests run on an older Python.

    moto releases that still run on Python 3.9 (<= 5.1.x) have no FIS backend. The suite
    then runs moto's server from FISWATCH_MOTO_PYTHON or the repository's .venv (the
    default Python's virtualenv that scripts/setup.sh creates), on 127.0.0.1.
    """
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.environ.get("FISWATCH_MOTO_PYTHON"), os.path.join(root, ".venv", "bin", "python")):
        if candidate and os.path.exists(candidate):
            probe = subprocess.run([candidate, "-c", "import moto.fis, moto.server"], capture_output=True, timeout=60)
            if probe.returncode == 0:
                return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A ThreadedMotoServer on 127.0.0.1; yields its URL and sets AWS_ENDPOINT_URL to it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = "http://127.0.0.1:%d" % port
    _reset(url)  # moto's backends live in this process and outlive one server
    try:
        with endpoint_url(url):
            yield url
    finally:
        _reset(url)
        server.stop()


@contextlib.contextmanager
def endpoint_url(url: str) -> Iterator[str]:
    """AWS_ENDPOINT_URL set to `url` for the duration, then restored."""
    old = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        if old is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = old


@contextlib.contextmanager
def fis_moto_server() -> Iterator[str]:
    """A moto server with FIS on 127.0.0.1: in-process where moto has FIS, else another Python's."""
    if moto_has_fis():
        with moto_server() as url:
            yield url
        return
    python = external_moto_python()
    if python is None:
        pytest.fail("moto on this Python has no FIS backend and no Python with moto>=5.2 was found: run "
                    "scripts/setup.sh (it creates .venv) or set FISWATCH_MOTO_PYTHON")
    with moto_process(python) as url:
        yield url


@contextlib.contextmanager
def moto_process(python: Optional[str] = None) -> Iterator[str]:
    """moto's server in a process of its own (`python -m moto.server`) on 127.0.0.1; yields its
    URL and sets AWS_ENDPOINT_URL to it. Unlike moto_server(), its answers do not wait for this
    process's GIL: a test that also runs a busy FaultProxy thread here (test_fleet_moto.py) or a
    machine loaded by parallel suites would otherwise see botocore's 3 s read timeout expire."""
    import subprocess
    import sys
    import time
    import urllib.request

    python = python or sys.executable
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    proc = subprocess.Popen([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("the moto server of %s did not start on %s" % (python, url))
                time.sleep(0.1)
        with endpoint_url(url):
            yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _reset(url: str) -> None:
    import urllib.request

    request = urllib.request.Request(url + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def session() -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION)


def make_world(sess: Any) -> Any:
    """The workshop's account: an Aurora cluster, a Multi-AZ MySQL, the FIS role, the Aurora secret."""
    cluster = make_cluster(sess)
    make_mysql(sess)
    make_role(sess)
    put_secret(sess, "FisAuroraSecret", username="admin", password="pw", host=cluster["Endpoint"], port=3306,
               dbname="testdb", engine="aurora-mysql")
    return sess


def make_cluster(sess: Any) -> Dict[str, Any]:
    """An Aurora cluster with a writer in us-east-1a and a reader in us-east-1b."""
    rds = sess.client("rds")
    rds.create_db_cluster(DBClusterIdentifier=CLUSTER_ID, Engine="aurora-mysql", MasterUsername="admin",
                          MasterUserPassword="not-a-real-password", DatabaseName="testdb")
    for ident, az in ((WRITER, "us-east-1a"), (READER, "us-east-1b")):
        rds.create_db_instance(DBInstanceIdentifier=ident, DBInstanceClass="db.r5.large", Engine="aurora-mysql",
                               DBClusterIdentifier=CLUSTER_ID, AvailabilityZone=az)
    return rds.describe_db_clusters(DBClusterIdentifier=CLUSTER_ID)["DBClusters"][0]


def make_mysql(sess: Any) -> Dict[str, Any]:
    rds = sess.client("rds")
    return rds.create_db_instance(DBInstanceIdentifier=MYSQL_ID, DBInstanceClass="db.t3.small", Engine="mysql",
                                  MultiAZ=True, AvailabilityZone="us-east-1a", MasterUsername="admin",
                                  MasterUserPassword="not-a-real-password", AllocatedStorage=20)["DBInstance"]


def put_secret(sess: Any, name: str, **fields: Any) -> None:
    sess.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(fields))


def make_role(sess: Any, name: str = "FisWorkshopServiceRole") -> str:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                               "Principal": {"Service": "fis.amazonaws.com"}}]})
    return sess.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=doc)["Role"]["Arn"]


class StubSession:
    """Hands out real botocore clients that a Stubber checks against the service models.

    Only `client()` and `region_name` are used by fiswatch.aws; every request still goes
    through botocore's parameter validation, and Stubber checks the expected parameters.
    """

    def __init__(self, region: str = REGION) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=region)
        self.region_name = region
        self.clients: Dict[str, Any] = {}
        self.stubbers: Dict[str, Any] = {}

    def stub(self, service: str) -> Any:
        from botocore.stub import Stubber

        if service not in self.stubbers:
            self.clients[service] = self._session.client(service)
            self.stubbers[service] = Stubber(self.clients[service])
            self.stubbers[service].activate()
        return self.stubbers[service]

    def client(self, service: str, config: Optional[Any] = None) -> Any:
        self.stub(service)
        return self.clients[service]

    def assert_no_pending(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()

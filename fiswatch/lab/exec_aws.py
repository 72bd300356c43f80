"""The workshop's AWS side on loopback for `fiswatch lab exec --aws` (moto's server mode).

A child process (`python -m fiswatch.lab.exec_aws`) runs moto's ThreadedMotoServer on
127.0.0.1 (a free port), creates the workshop's secrets `FisAuroraSecret` and
`FisMysqlSecret` in RDS JSON form from the lab's credentials, prints `ready URL`, and stops
when its stdin closes (so it never outlives `lab exec`, even one killed with SIGKILL).
The lab's password reaches it on stdin, never in argv.
"""
import json
import os
import subprocess
import sys
from typing import Any, Dict, Mapping, Optional

SECRETS = (("FisAuroraSecret", "aurora"), ("FisMysqlSecret", "rds"))
FAKE_KEY, FAKE_SECRET = "fiswatch-lab", "fiswatch-lab-not-a-secret"
DEFAULT_REGION = "us-east-1"
READY_TIMEOUT = 60.0


def require_moto() -> None:
    """ExecError unless moto's server mode is installed."""
    import importlib.util

    from fiswatch.lab.exec_error import ExecError

    try:
        found = all(importlib.util.find_spec(m) is not None for m in ("moto", "flask", "werkzeug"))
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ExecError("--aws needs moto's server mode, which is not installed: pip install 'fiswatch[lab-aws]' "
                        "(or run without --aws)")


def secret_values(credentials: Mapping[str, Any]) -> Dict[str, str]:
    """Secret name -> SecretString, in the RDS-generated JSON shape, from the lab's credentials.json."""
    out = {}
    for name, key in SECRETS:
        entry = credentials[key]
        value = {k: entry[k] for k in ("username", "password", "engine", "host", "port", "dbname") if k in entry}
        for ident in ("dbClusterIdentifier", "dbInstanceIdentifier"):
            if ident in entry:
                value[ident] = entry[ident]
        out[name] = json.dumps(value, sort_keys=True)
    return out


def aws_environment(url: str, caller: Mapping[str, str]) -> Dict[str, str]:
    """AWS_* for COMMAND: the local endpoint, fake keys, a region; the caller's other AWS_* are dropped."""
    region = caller.get("AWS_REGION") or caller.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


class LocalAws:
    """The moto server child: start() -> AWS_* environment, stop()."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None

    def start(self, credentials_file: str, caller: Mapping[str, str]) -> Dict[str, str]:
        import select
        import time

        from fiswatch.lab.exec_error import ExecError

        from fiswatch.lab.files import LabFileError, read_credentials, read_json

        lab_dir = os.path.dirname(credentials_file)
        try:
            read_credentials(credentials_file, lab_dir)  # checked: secret_values indexes it
            secrets = secret_values(read_json(credentials_file, ""))
        except LabFileError as exc:
            raise ExecError(str(exc))
        region = aws_environment("", caller)["AWS_REGION"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(aws_environment("", caller))
        env.pop("AWS_ENDPOINT_URL")
        self.proc = subprocess.Popen([sys.executable, "-m", "fiswatch.lab.exec_aws"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                     start_new_session=True)  # Ctrl-C is for COMMAND, not for it
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"region": region, "secrets": secrets}) + "\n").encode())
        self.proc.stdin.flush()
        line, deadline = b"", time.monotonic() + READY_TIMEOUT
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                break
            line += chunk
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("ready "):
            self.stop()
            raise ExecError("the local AWS endpoint (moto) did not start: %s" % (text or "no answer"))
        return aws_environment(text.split(" ", 1)[1], caller)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # its cue to stop
            proc.wait(20)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def serve() -> int:
    """The child: serve until stdin closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    request = json.loads(sys.stdin.readline())
    try:
        import boto3
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = "http://%s:%d" % (host, port)
        client = boto3.client("secretsmanager", endpoint_url=url, region_name=request["region"])
        for name, value in request["secrets"].items():
            client.create_secret(Name=name, SecretString=value)
    except Exception as exc:  # noqa: BLE001 - one line for the parent
        sys.stdout.write("error %s: %s\n" % (type(exc).__name__, exc))
        sys.stdout.flush()
        return 1
    sys.stdout.write("ready %s\n" % url)
    sys.stdout.flush()
    sys.stdin.read()  # until lab exec closes it or ends
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve())

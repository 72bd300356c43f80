"""The lab's public API: up, status, down, failover (used by the CLI, `watch --lab`, `demo`)."""
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from fiswatch.lab import layout as L
from fiswatch.lab.layout import default_lab_dir

DEFAULT_DIR = default_lab_dir  # a function: the directory depends on the environment at call time


class LabError(Exception):
    """Something the user must fix; str() is one line."""


class LabInterrupted(LabError):
    """Ctrl-C/SIGTERM stopped a failover; str() says whether it was finished or rolled back."""


class LabNotRunning(LabError):
    """No lab runs in the given directory."""

    def __init__(self, lab_dir: str) -> None:
        super().__init__("no lab runs in %s: start one with `fiswatch lab up --dir %s`" % (lab_dir, lab_dir))
        self.dir = lab_dir


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    cluster: str  # aurora | rds
    role: str  # writer | reader | primary | standby
    address: str  # the proxy address clients reach it at
    port: int
    dns_name: Optional[str] = None  # None for RDS nodes
    proxy_mode: str = "pass"
    running: bool = True
    server_id: Optional[str] = None  # Aurora's SERVER_ID (replica_host_status), None for RDS nodes


@dataclass(frozen=True)
class LabInfo:
    dir: str
    nameserver: Tuple[str, int]
    endpoints: Tuple[Any, ...]  # fiswatch.model.Endpoint: 'aurora' and 'rds'
    instances: Tuple[InstanceInfo, ...]
    credentials_file: str
    reader_endpoint: str = ""
    log_file: str = ""
    pid: int = 0
    # `cluster_instance_host_pattern` for a topology-aware client (aws-advanced-python-wrapper):
    # `?` replaced by an instance's SERVER_ID gives the host:port of its proxy, e.g. 127.0.10.?:3306
    cluster_instance_host_pattern: str = ""
    last_failover: Optional[Tuple[Tuple[str, Any], ...]] = None  # see failover_status()
    shapes: Tuple[str, ...] = ("aurora", "rds")  # + 'maz' with --multi-az-cluster
    readers: int = 1  # Aurora readers
    maz_reader_endpoint: str = ""  # the Multi-AZ cluster's reader endpoint (cluster-ro-), if it runs

    def failover_status(self) -> Optional[dict]:
        """The last failover: target, state (running|completed|rolled back|finished|failed), step, detail, ..."""
        return dict(self.last_failover) if self.last_failover else None

    def endpoint(self, name: str) -> Any:
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        raise KeyError(name)

    def instance(self, cluster: str, role: str) -> InstanceInfo:
        for inst in self.instances:
            if inst.cluster == cluster and inst.role == role:
                return inst
        raise KeyError((cluster, role))

    def to_dict(self) -> dict:
        """JSON-ready, without the password."""
        return {
            "dir": self.dir, "pid": self.pid,
            "nameserver": {"address": self.nameserver[0], "port": self.nameserver[1]},
            "endpoints": [{"name": ep.name, "host": ep.host, "port": ep.port, "user": ep.user,
                           "database": ep.database, "table": ep.table, "url": ep.url()} for ep in self.endpoints],
            "reader_endpoint": self.reader_endpoint, "shapes": list(self.shapes), "readers": self.readers,
            "maz_reader_endpoint": self.maz_reader_endpoint,
            "instances": [{"name": i.name, "cluster": i.cluster, "role": i.role, "address": i.address,
                           "port": i.port, "dns_name": i.dns_name, "proxy_mode": i.proxy_mode,
                           "running": i.running, "server_id": i.server_id} for i in self.instances],
            "credentials_file": self.credentials_file, "log_file": self.log_file,
            "cluster_instance_host_pattern": self.cluster_instance_host_pattern,
            "last_failover": self.failover_status(),
        }


def _control_path(lab_dir: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(lab_dir)), L.CONTROL_SOCKET)


def _state(lab_dir: str) -> dict:
    from fiswatch.lab.control import ControlError, request

    try:
        return request(_control_path(lab_dir), "state", timeout=10)
    except ControlError as exc:
        if exc.unreachable:
            raise LabNotRunning(os.path.abspath(os.path.expanduser(lab_dir)))
        raise LabError(str(exc))


def lab_status(lab_dir: str) -> LabInfo:
    """What runs in `lab_dir`; LabNotRunning if nothing does."""
    from fiswatch.model import Endpoint, Secret

    state = _state(lab_dir)
    try:
        with open(state["credentials_file"]) as fh:
            creds = json.load(fh)
    except (OSError, ValueError) as exc:
        raise LabError("cannot read the lab credentials %s (%s): restart the lab" % (state["credentials_file"], exc))
    source = "lab:" + state["dir"]
    endpoints = []
    shapes = tuple(state.get("shapes") or ("aurora", "rds"))
    for name in shapes:
        c = creds[name]
        endpoints.append(Endpoint(
            name=name, host=c["host"], port=int(c["port"]), user=c["username"], database=c["dbname"],
            table=L.TABLE, password=Secret(c["password"]), source=source,
            cluster_id=c.get("dbClusterIdentifier"), instance_id=c.get("dbInstanceIdentifier")))
    instances = tuple(InstanceInfo(i["name"], i["cluster"], i["role"], i["address"], int(i["port"]), i["dns_name"],
                                   i["proxy_mode"], bool(i["running"]), i.get("server_id"))
                      for i in state["instances"])
    last = state.get("last_failover")
    return LabInfo(dir=state["dir"], nameserver=(state["nameserver"][0], int(state["nameserver"][1])),
                   endpoints=tuple(endpoints), instances=instances, credentials_file=state["credentials_file"],
                   reader_endpoint=state["endpoints"]["aurora-ro"], log_file=state["log_file"], pid=int(state["pid"]),
                   cluster_instance_host_pattern=state.get("cluster_instance_host_pattern", ""),
                   last_failover=tuple(sorted(last.items())) if last else None, shapes=shapes,
                   readers=int(state.get("readers") or 1),
                   maz_reader_endpoint=state["endpoints"].get("maz-ro", ""))


def _lock_holder(lab_dir: str) -> Optional[int]:
    """The pid holding the lab lock, 0 if held but unknown, None if free."""
    path = os.path.join(lab_dir, L.LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def lab_up(lab_dir: str, base: str = "127.0.10", port: int = 3306, dns_port: int = 5300,
           buffer_pool: str = "16M", timeout: float = 120.0, **options: Any) -> LabInfo:
    """Start a lab in the background and return when it is ready (LabError if it cannot)."""
    from fiswatch.lab.daemon import LabStartError, check_free
    from fiswatch.lab.mariadb import MariaDBError, find_binaries

    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    try:
        layout = L.Layout.make(lab_dir, base=base, port=port, dns_port=dns_port, buffer_pool=buffer_pool, **options)
    except (L.LayoutError, TypeError) as exc:
        raise LabError(str(exc))
    try:
        os.makedirs(lab_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise LabError("cannot create the lab dir %s (%s): choose another --dir" % (lab_dir, exc.strerror))
    holder = _lock_holder(lab_dir)
    if holder is not None:
        raise LabError("a lab already runs in %s%s: see `fiswatch lab status --dir %s`, stop it with "
                       "`fiswatch lab down --dir %s`" % (lab_dir, " (pid %d)" % holder if holder else "",
                                                         lab_dir, lab_dir))
    try:
        find_binaries(layout)
        check_free(layout)
    except (MariaDBError, LabStartError) as exc:
        raise LabError(str(exc))
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = open(os.path.join(lab_dir, L.DAEMON_LOG), "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fiswatch.lab.daemon", "--layout", json.dumps(layout.to_dict()),
             "--ready-fd", str(write_fd)],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=env, cwd=lab_dir)
    finally:
        os.close(write_fd)
        log.close()
    message = b""
    deadline = time.monotonic() + timeout
    try:
        while not message.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                break
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            message += chunk
    finally:
        os.close(read_fd)
    text = message.decode("utf-8", "replace").strip()
    if text == "ready":
        return lab_status(lab_dir)
    if not text:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            _wait_gone(proc.pid, 60)
            raise LabError("the lab was not ready after %.0fs and was stopped; see %s" % (timeout, L.DAEMON_LOG))
        proc.wait()
        raise LabError("the lab daemon exited with code %s before it was ready; see %s"
                       % (proc.returncode, os.path.join(lab_dir, L.DAEMON_LOG)))
    proc.wait(60)  # it exits after reporting an error
    raise LabError(text[len("error: "):] if text.startswith("error: ") else text)


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (a zombie still has a pid)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _kill_strays(lab_dir: str) -> int:
    """mariadbd processes left by a daemon that died: found by their pid files in the lab dir."""
    killed = 0
    for spec in L.ALL_INSTANCES:
        datadir = os.path.join(lab_dir, L.datadir_name(spec))
        pid_file = os.path.join(datadir, "mysqld.pid")
        try:
            with open(pid_file) as fh:
                pid = int(fh.read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                cmdline = fh.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            continue
        if "--datadir=" + datadir in cmdline:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 30)
            killed += 1
    return killed


def lab_down(lab_dir: str) -> None:
    """Stop everything of the lab in `lab_dir`; leaves no process, port, socket or lock."""
    from fiswatch.lab.control import ControlError, request

    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    found = False
    pid = None
    try:
        pid = request(_control_path(lab_dir), "ping", timeout=10)["pid"]
        request(_control_path(lab_dir), "shutdown", timeout=10)
        found = True
    except ControlError:
        holder = _lock_holder(lab_dir)
        if holder:
            pid = holder
            found = True
            try:
                os.kill(holder, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if pid and not _wait_gone(pid, 90):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10)
    if _kill_strays(lab_dir):
        found = True
    for name in (L.CONTROL_SOCKET, L.STATE_FILE, L.LOCK_FILE, "failover.lock"):
        path = os.path.join(lab_dir, name)
        if os.path.exists(path) and _lock_holder(lab_dir) is None:
            os.unlink(path)
            found = found or name != "failover.lock"
    if not found:
        raise LabNotRunning(lab_dir)


def failover(lab_dir: str, target: str, emit: Optional[Callable[[Any], None]] = None, profile: str = "fast",
             crash: bool = False, dns_style: str = "empty", echo: Optional[Callable[[str], None]] = None,
             cancel: Any = None, timings: Any = None, maz: Optional[dict] = None) -> None:
    """Run a whole failover synchronously; `emit` gets a `lab` Event per step (docs/events.md).

    Profiles: fast (default; DNS 9 s after promotion), quick (DNS right after promotion), realistic.
    Target `maz` (the Multi-AZ DB cluster, failover_maz.py): profiles aws, planned, quick; `maz` holds its
    options (lag, stale_reader).
    Setting `cancel` (a threading.Event) stops it early; stopped, interrupted or failing midway, the
    failover is finished or rolled back and LabError (LabInterrupted for Ctrl-C) says which."""
    from fiswatch.lab.control import ControlError
    from fiswatch.lab.failover import FailoverError, Interrupted, make_emitter, run_failover
    from fiswatch.lab.mariadb import MariaDBError

    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    state = _state(lab_dir)  # LabNotRunning early
    step = make_emitter(lab_dir, target, crash, emit, echo)
    try:
        if target == "maz":
            from fiswatch.lab.failover_maz import run_maz_failover

            run_maz_failover(lab_dir, state, step, profile=profile, cancel=cancel, **(maz or {}))
            return
        run_failover(lab_dir, target, step, profile=profile, crash=crash, dns_style=dns_style, cancel=cancel,
                     timings=timings)
    except Interrupted as exc:
        raise LabInterrupted(str(exc))
    except (FailoverError, ControlError, MariaDBError) as exc:
        raise LabError(str(exc))
    except Exception as exc:  # pymysql errors and the like: one line, not a traceback
        raise LabError("failover of %s failed: %s: %s" % (target, type(exc).__name__, exc))

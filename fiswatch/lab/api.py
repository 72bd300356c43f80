"""The lab's public API: up, status, down, failover (used by the CLI, `watch --lab`, `demo`)."""
import errno
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
from fiswatch.lab.daemon_stop import stop_daemon, wait_gone
from fiswatch.lab.layout import default_lab_dir

DEFAULT_DIR = default_lab_dir  # a function: the directory depends on the environment at call time


class LabError(Exception):
    """Something the user must fix; str() is one line."""


class LabInterrupted(LabError):
    """Ctrl-C/SIGTERM stopped a failover; str() says whether it was finished or rolled back."""


class LabUsageError(LabError):
    """A bad option or a lab dir that cannot be used: found before anything starts (exit 2)."""


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
    certificate_names: Tuple[str, ...] = ()  # the names its proxy's TLS certificate holds


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
    ca_file: str = ""  # the lab CA a client trusts (docs/lab.md, TLS)
    tls: str = ""  # offered | required
    tls_expired: bool = False
    stale_dns: float = 0.0  # `lab up --stale-dns`: Aurora failovers keep the cluster name stale this long
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
                           "running": i.running, "server_id": i.server_id,
                           "certificate_names": list(i.certificate_names)} for i in self.instances],
            "tls": {"policy": self.tls, "ca_file": self.ca_file, "expired": self.tls_expired},
            "credentials_file": self.credentials_file, "log_file": self.log_file,
            "cluster_instance_host_pattern": self.cluster_instance_host_pattern,
            "last_failover": self.failover_status(), "stale_dns": self.stale_dns,
        }


def _control_path(lab_dir: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(lab_dir)), L.CONTROL_SOCKET)


def _state(lab_dir: str) -> dict:
    from fiswatch.lab.control import ControlError, request

    try:
        return request(_control_path(lab_dir), "state", timeout=10)
    except ControlError as exc:
        if exc.unreachable:
            raise _unreachable(os.path.abspath(os.path.expanduser(lab_dir)), exc.errno)
        raise LabError(str(exc))


def _unreachable(lab_dir: str, error: int) -> LabError:
    """Why the control socket did not answer: another user's lab (permission denied), orphans, or no lab."""
    if error in (errno.EACCES, errno.EPERM):
        from fiswatch.lab.dirs import other_user_message

        return LabError(other_user_message(lab_dir))
    from fiswatch.lab.orphans import find_orphans, orphan_message

    orphans = find_orphans(lab_dir)
    if orphans:
        return LabError(orphan_message(lab_dir, orphans))
    return LabNotRunning(lab_dir)


def lab_status(lab_dir: str) -> LabInfo:
    """What runs in `lab_dir`; LabNotRunning if nothing does, LabError if its files are not the lab's."""
    from fiswatch.lab.files import LabFileError, check_state, read_credentials
    from fiswatch.model import Endpoint, Secret

    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    try:
        state = check_state(_state(lab_dir), "the daemon's state reply (%s)" % _control_path(lab_dir), lab_dir)
        creds = read_credentials(state["credentials_file"], lab_dir)
    except LabFileError as exc:
        raise LabError(str(exc))
    source = "lab:" + state["dir"]
    tls = state.get("tls") or {}
    pattern = state.get("cluster_instance_host_pattern", "")
    endpoints = []
    shapes = tuple(state.get("shapes") or ("aurora", "rds"))
    for name in shapes:
        c = creds.cluster(name)
        endpoints.append(Endpoint(
            name=name, host=c.host, port=c.port, user=c.username, database=c.dbname,
            table=L.TABLE, password=Secret(c.password), source=source,
            cluster_id=c.cluster_id, instance_id=c.instance_id, ca_file=tls.get("ca_file") or None,
            host_pattern=(pattern or None) if name == "aurora" else None))
    if L.RDS_PROXY_ENDPOINT in state["endpoints"]:  # lab up --proxy
        from fiswatch.lab.rdsproxy import proxy_endpoint

        endpoints.append(proxy_endpoint(endpoints[0], state["endpoints"][L.RDS_PROXY_ENDPOINT]))
    instances = tuple(InstanceInfo(i.name, i.cluster, i.role, i.address, i.port, i.dns_name, i.proxy_mode,
                                   i.running, i.server_id, i.certificate_names) for i in state["checked_instances"])
    last = state.get("last_failover")
    return LabInfo(dir=state["dir"], nameserver=(state["nameserver"][0], int(state["nameserver"][1])),
                   endpoints=tuple(endpoints), instances=instances, credentials_file=state["credentials_file"],
                   reader_endpoint=state["endpoints"]["aurora-ro"], log_file=state["log_file"], pid=int(state["pid"]),
                   cluster_instance_host_pattern=pattern,
                   last_failover=tuple(sorted(last.items())) if last else None,
                   ca_file=tls.get("ca_file", ""), tls=tls.get("policy", ""), tls_expired=bool(tls.get("expired")),
                   stale_dns=float((state.get("layout") or {}).get("stale_dns") or 0.0),
                   shapes=shapes, readers=int(state.get("readers") or 1),
                   maz_reader_endpoint=state["endpoints"].get("maz-ro", ""))


def _lock_holder(lab_dir: str) -> Optional[int]:
    from fiswatch.lab.orphans import lock_holder

    return lock_holder(lab_dir)


def lab_up(lab_dir: str, base: str = "127.0.10", port: int = 3306, dns_port: int = 5300,
           buffer_pool: str = "16M", timeout: float = 120.0, on_start: Optional[Callable[[Optional[str]], None]] = None,
           **options: Any) -> LabInfo:
    """Start a lab in the background and return when it is ready (LabError if it cannot).

    Every check runs first (LabUsageError: bad option or a dir that cannot be used, nothing
    created); `on_start(None)` is called just before the daemon starts, `on_start(line)` for
    what it does before (taking down a killed lab's orphaned servers)."""
    from fiswatch.lab.bindcheck import LabStartError, check_free
    from fiswatch.lab.mariadb import MariaDBError, find_binaries

    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    try:
        layout = L.Layout.make(lab_dir, base=base, port=port, dns_port=dns_port, buffer_pool=buffer_pool, **options)
    except (L.LayoutError, TypeError) as exc:
        raise LabUsageError(str(exc))
    holder = _lock_holder(lab_dir) if os.path.isdir(lab_dir) else None
    if holder is not None:
        raise LabError("a lab already runs in %s%s: see `fiswatch lab status --dir %s`, stop it with "
                       "`fiswatch lab down --dir %s`" % (lab_dir, " (pid %d)" % holder if holder else "",
                                                         lab_dir, lab_dir))
    from fiswatch.lab.orphans import find_orphans, take_down

    orphans = find_orphans(lab_dir) if os.path.isdir(lab_dir) else []
    if orphans:
        take_down(orphans, lambda line: _tell(on_start, line))
    try:
        find_binaries(layout)
        check_free(layout)
    except (MariaDBError, LabStartError) as exc:
        raise LabError(str(exc))
    from fiswatch.lab.dirs import DirProblem, usable_dir

    try:
        usable_dir(lab_dir)
    except DirProblem as exc:
        raise LabUsageError(str(exc))
    make_certificates(layout)  # in the dir just checked; an unusable CA key is a usage error
    _tell(on_start, None)
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
            wait_gone(proc.pid, 60)
            raise LabError("the lab was not ready after %.0fs and was stopped; see %s" % (timeout, L.DAEMON_LOG))
        proc.wait()
        raise LabError("the lab daemon exited with code %s before it was ready; see %s"
                       % (proc.returncode, os.path.join(lab_dir, L.DAEMON_LOG)))
    proc.wait(60)  # it exits after reporting an error
    raise LabError(text[len("error: "):] if text.startswith("error: ") else text)


def make_certificates(layout: L.Layout) -> str:
    """The lab CA (kept) and every instance's certificate (new); LabUsageError when the CA is unusable."""
    from fiswatch.lab.tlsca import PkiError, make_lab_pki

    try:
        names = {s.name: L.certificate_names(s) for s in layout.instances}
        names.update({L.RDS_PROXY_ENDPOINT: (L.RDS_PROXY_NAME, L.old_name(L.RDS_PROXY_NAME))} if layout.rds_proxy else {})  # lab/rdsproxy_tls.py
        return make_lab_pki(layout.tls_dir, names, expired=layout.tls_expired)
    except PkiError as exc:
        raise LabUsageError(str(exc))
    except ImportError:
        raise LabError("the lab's certificates need the `cryptography` package: pip install cryptography")


def _tell(on_start: Optional[Callable[[Optional[str]], None]], line: Optional[str]) -> None:
    if on_start is not None:
        on_start(line)


def lab_down(lab_dir: str, say: Optional[Callable[[str], None]] = None) -> None:
    """Stop everything of the lab in `lab_dir`; leaves no process, port, socket or lock.

    `say` gets a line when it waits more than DOWN_QUIET seconds (what for; lab/daemon_stop.py) and when it ends
    servers a killed daemon left behind."""
    from fiswatch.lab.control import ControlError, request
    from fiswatch.lab.orphans import find_orphans, take_down

    tell = say or (lambda line: None)
    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    found = False
    pid = None
    try:
        pid = request(_control_path(lab_dir), "ping", timeout=10)["pid"]
        request(_control_path(lab_dir), "shutdown", timeout=10)
        found = True
    except ControlError as exc:
        if exc.unreachable and exc.errno not in (0, errno.ENOENT, errno.ECONNREFUSED):
            raise _unreachable(lab_dir, exc.errno)
        holder = _lock_holder(lab_dir)
        if holder:
            pid = holder
            found = True
            try:
                os.kill(holder, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if pid:
        stop_daemon(lab_dir, int(pid), tell)
    orphans = find_orphans(lab_dir)
    if orphans:
        take_down(orphans, tell)
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
             cancel: Any = None, timings: Any = None, stale_dns: Optional[float] = None,
             maz: Optional[dict] = None) -> None:
    """Run a whole failover synchronously; `emit` gets a `lab` Event per step (docs/events.md).

    Profiles: fast (default; DNS 9 s after promotion), quick (DNS right after promotion), realistic.
    `stale_dns` (Aurora only): seconds the cluster name keeps naming the old writer after it has
    rejoined read-only (the demoted-writer trap; docs/lab.md); None: the lab's `lab up --stale-dns`,
    0: a clean flip.
    Target `maz` (the Multi-AZ DB cluster, failover_maz.py): profiles aws, planned, quick; `maz` holds its
    options (lag, stale_reader).
    Setting `cancel` (a threading.Event) stops it early; stopped, interrupted or failing midway, the
    failover is finished or rolled back and LabError (LabInterrupted for Ctrl-C) says which."""
    from fiswatch.lab.control import ControlError
    from fiswatch.lab.failover import FailoverError, Interrupted, make_emitter, run_failover
    from fiswatch.lab.files import LabFileError
    from fiswatch.lab.mariadb import MariaDBError

    lab_dir = os.path.abspath(os.path.expanduser(lab_dir))
    if target in ("aurora", "rds"):
        try:
            L.stale_dns_for(target, stale_dns, 0.0)
        except L.LayoutError as exc:
            raise LabError(str(exc))
    state = _state(lab_dir)  # LabNotRunning early
    step = make_emitter(lab_dir, target, crash, emit, echo)
    try:
        if target == "maz":
            from fiswatch.lab.failover_maz import run_maz_failover

            run_maz_failover(lab_dir, state, step, profile=profile, cancel=cancel, **(maz or {}))
            return
        run_failover(lab_dir, target, step, profile=profile, crash=crash, dns_style=dns_style, cancel=cancel,
                     timings=timings, stale_dns=stale_dns)
    except Interrupted as exc:
        raise LabInterrupted(str(exc))
    except (FailoverError, ControlError, MariaDBError, LabFileError) as exc:
        raise LabError(str(exc))
    except Exception as exc:  # noqa: BLE001 - pymysql errors and the like: one line, not a traceback
        raise LabError("failover of %s failed: %s: %s" % (target, type(exc).__name__, exc))

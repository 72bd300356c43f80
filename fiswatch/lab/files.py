"""Every file the lab reads back, checked once, here: credentials.json, the daemon's state
(its `state` reply and lab.json), lab.lock and the servers' pid files.

Each reader returns plain, checked values or raises LabFileError, whose str() has one line
per problem ("FILE: WHAT is wrong: restart the lab ..."). Nothing else in the lab indexes
into these files' JSON unchecked. Pure but for reading the file.
"""
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

MAX_BYTES = 1 << 20  # the lab writes a few KiB; anything bigger is not the lab's
CLUSTERS = ("aurora", "rds")


class LabFileError(ValueError):
    """A lab file is missing, unreadable or of the wrong shape; str() is one line per problem."""

    def __init__(self, path: str, problems: List[str], cure: str) -> None:
        self.path, self.problems = path, list(problems)
        shown = self.problems[:5]
        if len(self.problems) > 5:
            shown.append("... and %d more problems" % (len(self.problems) - 5))
        super().__init__("\n".join("lab file %s: %s: %s" % (path, p, cure) for p in shown))


def restart_cure(lab_dir: str) -> str:
    return "restart the lab (`fiswatch lab down --dir %s`, then `fiswatch lab up --dir %s`)" % (lab_dir, lab_dir)


@dataclass(frozen=True)
class ClusterCredentials:
    username: str
    password: str
    host: str
    port: int
    dbname: str
    cluster_id: Optional[str] = None
    instance_id: Optional[str] = None


@dataclass(frozen=True)
class Credentials:
    aurora: ClusterCredentials
    rds: ClusterCredentials
    replication_password: str

    maz: Optional[ClusterCredentials] = None  # the Multi-AZ DB cluster, when the lab runs one

    def cluster(self, name: str) -> ClusterCredentials:
        """The credentials of `name` (aurora, rds, maz); LookupError for a cluster this lab lacks."""
        found = {"aurora": self.aurora, "rds": self.rds, "maz": self.maz}.get(name)
        if found is None:
            raise LookupError("this lab has no %s cluster" % name)
        return found


def read_json(path: str, cure: str) -> Any:
    """The file's JSON value, or LabFileError (missing, unreadable, too big, binary, not JSON)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise LabFileError(path, ["cannot be read (%s)" % (exc.strerror or exc)], cure)
    if len(data) > MAX_BYTES:
        raise LabFileError(path, ["is larger than %d bytes, not a file the lab wrote" % MAX_BYTES], cure)
    if not data.strip():
        raise LabFileError(path, ["is empty"], cure)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise LabFileError(path, ["is not text (binary data)"], cure)
    except ValueError as exc:
        raise LabFileError(path, ["is not valid JSON (%s)" % str(exc).split(":")[0]], cure)
    except RecursionError:
        raise LabFileError(path, ["is nested too deeply to be the lab's"], cure)


class _Checker:
    """Collects one problem per wrong field while reading a JSON object."""

    def __init__(self) -> None:
        self.problems: List[str] = []

    def obj(self, value: Any, where: str) -> Dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.problems.append("%s is %s, not an object" % (where, _kind(value)))
        return {}

    def text(self, data: Dict[str, Any], key: str, where: str, empty: bool = False,
             optional: bool = False) -> Optional[str]:
        if key not in data:
            if not optional:
                self.problems.append("%s.%s is missing" % (where, key))
            return None
        value = data[key]
        if value is None and optional:
            return None
        if not isinstance(value, str) or (not empty and not value) or "\x00" in value:
            self.problems.append("%s.%s is %s, not a%s string" % (where, key, _kind(value),
                                                                 "" if empty else " non-empty"))
            return None
        return value

    def number(self, data: Dict[str, Any], key: str, where: str, low: int = 0, high: int = 2 ** 31) -> Optional[int]:
        if key not in data:
            self.problems.append("%s.%s is missing" % (where, key))
            return None
        value = data[key]
        if isinstance(value, str) and value.strip().isdigit() and len(value) < 12:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems.append("%s.%s is %s, not a number %d..%d" % (where, key, _kind(data[key]), low, high))
            return None
        return value

    def flag(self, data: Dict[str, Any], key: str, where: str) -> Optional[bool]:
        value = data.get(key)
        if not isinstance(value, bool):
            self.problems.append("%s.%s is %s, not true/false" % (where, key, _kind(value) if key in data
                                                                   else "missing"))
            return None
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number (%s)" % (repr(value)[:20])
    if isinstance(value, str):
        return "an empty string" if not value else "a string (%r)" % value[:20]
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def read_credentials(path: str, lab_dir: str) -> Credentials:
    """The lab's credentials.json, checked (LabFileError otherwise)."""
    cure = restart_cure(lab_dir)
    data = read_json(path, cure)
    c = _Checker()
    top = c.obj(data, "the file")
    if c.problems:
        raise LabFileError(path, c.problems, cure)
    clusters: List[Any] = []  # a cluster's 7 checked fields, None when missing
    for name in CLUSTERS + (("maz",) if "maz" in top else ()):
        if name not in top or not isinstance(top[name], dict):
            if name in top:
                c.obj(top[name], name)
            else:
                c.problems.append("%s is missing" % name)
            clusters.append(None)
            continue
        entry = top[name]
        fields = (c.text(entry, "username", name), c.text(entry, "password", name, empty=True),
                  c.text(entry, "host", name), c.number(entry, "port", name, 1, 65535), c.text(entry, "dbname", name),
                  c.text(entry, "dbClusterIdentifier", name, optional=True),
                  c.text(entry, "dbInstanceIdentifier", name, optional=True))
        clusters.append(fields)
    repl = c.obj(top.get("replication"), "replication") if "replication" in top else None
    repl_password = None
    if repl is None:
        c.problems.append("replication is missing")
    else:
        repl_password = c.text(repl, "password", "replication", empty=True)
    if c.problems:
        raise LabFileError(path, c.problems, cure)
    made = [ClusterCredentials(*fields) for fields in clusters]
    return Credentials(aurora=made[0], rds=made[1], replication_password=repl_password or "",
                       maz=made[2] if len(made) > 2 else None)


@dataclass(frozen=True)
class InstanceState:
    name: str
    cluster: str
    role: str
    address: str
    port: int
    dns_name: Optional[str]
    proxy_mode: str
    running: bool
    server_id: Optional[str]
    certificate_names: Tuple[str, ...] = ()  # the names its TLS certificate holds (lab/tlsca.py)


def check_state(data: Any, where: str, lab_dir: str) -> Dict[str, Any]:
    """The daemon's state (its `state` reply, or lab.json) with every field the lab reads checked.

    Returns the same dict (instances as InstanceState tuples under "checked_instances")."""
    cure = restart_cure(lab_dir)
    c = _Checker()
    top = c.obj(data, "the state")
    if c.problems:
        raise LabFileError(where, c.problems, cure)
    c.text(top, "dir", "state")
    c.number(top, "pid", "state", 1, 2 ** 22)
    ns = top.get("nameserver")
    if not (isinstance(ns, list) and len(ns) == 2 and isinstance(ns[0], str) and isinstance(ns[1], int)
            and not isinstance(ns[1], bool)):
        c.problems.append("state.nameserver is %s, not [address, port]" % _kind(ns))
    endpoints = c.obj(top.get("endpoints"), "state.endpoints")
    c.text(endpoints, "aurora-ro", "state.endpoints")
    c.text(top, "credentials_file", "state")
    c.text(top, "log_file", "state", empty=True)
    c.obj(top.get("layout"), "state.layout")
    c.text(top, "cluster_instance_host_pattern", "state", empty=True, optional=True)
    tls = top.get("tls")
    if tls is not None and not (isinstance(tls, dict) and all(isinstance(tls.get(k, ""), str)
                                                              for k in ("ca_file", "policy"))):
        c.problems.append("state.tls is %s, not {ca_file, policy, expired}" % _kind(tls))
    stale = (top.get("layout") or {}).get("stale_dns", 0.0) if isinstance(top.get("layout"), dict) else 0.0
    if isinstance(stale, bool) or not isinstance(stale, (int, float)):
        c.problems.append("state.layout.stale_dns is %s, not seconds" % _kind(stale))
    last = top.get("last_failover")
    if last is not None and not isinstance(last, dict):
        c.problems.append("state.last_failover is %s, not an object" % _kind(last))
    instances: List[InstanceState] = []
    raw = top.get("instances")
    if not isinstance(raw, list) or not raw:
        c.problems.append("state.instances is %s, not a list of instances" % _kind(raw))
        raw = []
    for n, item in enumerate(raw[:16]):
        at = "state.instances[%d]" % n
        if not isinstance(item, dict):
            c.obj(item, at)
            continue
        i = item
        values: Tuple[Any, ...] = (
            c.text(i, "name", at), c.text(i, "cluster", at), c.text(i, "role", at), c.text(i, "address", at),
            c.number(i, "port", at, 1, 65535), c.text(i, "dns_name", at, optional=True),
            c.text(i, "proxy_mode", at, optional=True), c.flag(i, "running", at),
            c.text(i, "server_id", at, optional=True))
        names = i.get("certificate_names", [])
        if not (isinstance(names, list) and all(isinstance(x, str) for x in names)):
            c.problems.append("%s.certificate_names is %s, not a list of names" % (at, _kind(names)))
            names = []
        if None not in values[:5] and values[7] is not None:
            instances.append(InstanceState(*values[:6], values[6] or "pass", *values[7:],  # type: ignore[misc, call-arg]
                                           certificate_names=tuple(names)))
    if c.problems:
        raise LabFileError(where, c.problems, cure)
    out = dict(top)
    out["checked_instances"] = tuple(instances)
    return out


def read_state_file(path: str, lab_dir: str) -> Dict[str, Any]:
    """lab.json, the state the daemon last wrote (it outlives a killed daemon)."""
    return check_state(read_json(path, restart_cure(lab_dir)), path, lab_dir)


def read_pid(path: str) -> Optional[int]:
    """A pid file's or lock file's pid; None when missing, unreadable or not a pid."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 2 ** 22 else None


def password_of(credentials_file: str, lab_dir: str) -> str:
    """The replication/client password (failover and settle need it)."""
    return read_credentials(credentials_file, lab_dir).replication_password


__all__ = ["LabFileError", "Credentials", "ClusterCredentials", "InstanceState", "read_json", "read_credentials",
           "check_state", "read_state_file", "read_pid", "password_of", "restart_cure"]


"""Where everything of a lab lives: names, addresses, ports, files. Pure and frozen."""
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple

ZONE = "lab.rds.local"
DOMAIN = "c0ffee." + ZONE
CLUSTER = "fiswatch-lab"
CLIENT_USER = "fiswatch"
REPL_USER = "repl"
DATABASE = "testdb"
TABLE = "test"

STATE_FILE = "lab.json"
LOCK_FILE = "lab.lock"
CONTROL_SOCKET = "control.sock"
CREDENTIALS_FILE = "credentials.json"
LOG_FILE = "lab.log"
DAEMON_LOG = "daemon.log"
TEMPLATE_DIR = "template"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


class LayoutError(ValueError):
    """A bad lab option; str() is one line saying what to do."""


@dataclass(frozen=True)
class InstanceSpec:
    name: str  # e.g. fiswatch-lab-instance-1
    cluster: str  # aurora | rds
    index: int  # 1..4: server id, host octet
    initial_role: str  # writer | reader | primary | standby
    dns_name: Optional[str]  # A record for the instance, None for RDS nodes (not addressable)


INSTANCES = (
    InstanceSpec(CLUSTER + "-instance-1", "aurora", 1, "writer", CLUSTER + "-instance-1." + DOMAIN),
    InstanceSpec(CLUSTER + "-instance-2", "aurora", 2, "reader", CLUSTER + "-instance-2." + DOMAIN),
    InstanceSpec(CLUSTER + "-mysql-a", "rds", 3, "primary", None),
    InstanceSpec(CLUSTER + "-mysql-b", "rds", 4, "standby", None),
)

ENDPOINT_NAMES = {
    "aurora": CLUSTER + ".cluster-" + DOMAIN,
    "aurora-ro": CLUSTER + ".cluster-ro-" + DOMAIN,
    "rds": CLUSTER + "-mysql." + DOMAIN,
}


def default_lab_dir() -> str:
    """$XDG_STATE_HOME/fiswatch/lab, or ~/.local/state/fiswatch/lab."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "fiswatch", "lab")


@dataclass(frozen=True)
class Layout:
    """Addresses and paths of one lab. `base` is three octets, e.g. '127.0.10'."""

    dir: str
    base: str = "127.0.10"
    port: int = 3306  # proxies (what clients reach) and servers (replication, private)
    dns_port: int = 5300
    buffer_pool: str = "16M"
    mariadbd: str = "mariadbd"
    install_db: str = "mariadb-install-db"
    extra: Tuple[Tuple[str, Any], ...] = field(default=())
    writer_grace: float = 10.0  # a writer dead this long (not stopped by the lab) is failed over (watchdog.py)

    @classmethod
    def make(cls, lab_dir: str, base: str = "127.0.10", port: int = 3306, dns_port: int = 5300,
             **kw: Any) -> "Layout":
        octets = base.split(".")
        if len(octets) != 3 or octets[0] != "127" or not all(o.isdigit() and 0 <= int(o) <= 255 for o in octets):
            raise LayoutError("--base must be three octets of a loopback address such as 127.0.10, got %r" % base)
        for label, value, top in (("--port", port, 65535 - len(INSTANCES)), ("--dns-port", dns_port, 65535)):
            if not 1 <= int(value) <= top:
                raise LayoutError("%s must be a TCP/UDP port 1..%d, got %r" % (label, top, value))
        grace = kw.get("writer_grace", 10.0)
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 3600:
            raise LayoutError("--writer-grace must be 0 (off) to 3600 seconds, got %r" % (grace,))
        layout = cls(os.path.abspath(os.path.expanduser(lab_dir)), base, int(port), int(dns_port), **kw)
        longest = layout.control_socket if len(layout.control_socket) > len(layout.server_socket(INSTANCES[0])) \
            else layout.server_socket(INSTANCES[0])
        if len(longest) > _MAX_SOCKET_PATH:
            raise LayoutError("lab dir %s is too long for unix sockets (%s); choose a shorter --dir"
                              % (layout.dir, longest))
        return layout

    # --- addresses -----------------------------------------------------------------
    @property
    def dns_address(self) -> Tuple[str, int]:
        return (self.base + ".53", self.dns_port)

    def proxy_address(self, spec: InstanceSpec) -> Tuple[str, int]:
        return ("%s.%d" % (self.base, spec.index), self.port)

    def server_address(self, spec: InstanceSpec) -> Tuple[str, int]:
        """Each server its own port (PORT+index): @@port tells instances apart, as on AWS."""
        return ("%s.%d" % (self.base, 100 + spec.index), self.port + spec.index)

    # --- paths ---------------------------------------------------------------------
    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    @property
    def control_socket(self) -> str:
        return self.path(CONTROL_SOCKET)

    @property
    def state_file(self) -> str:
        return self.path(STATE_FILE)

    @property
    def lock_file(self) -> str:
        return self.path(LOCK_FILE)

    @property
    def credentials_file(self) -> str:
        return self.path(CREDENTIALS_FILE)

    @property
    def log_file(self) -> str:
        return self.path(LOG_FILE)

    def datadir(self, spec: InstanceSpec) -> str:
        return self.path(datadir_name(spec))

    def server_socket(self, spec: InstanceSpec) -> str:
        return os.path.join(self.datadir(spec), "mysqld.sock")

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["extra"] = list(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Layout":
        data = dict(data)
        data["extra"] = tuple(tuple(x) for x in data.get("extra", ()))
        return cls(**data)


def datadir_name(spec: InstanceSpec) -> str:
    """Short on purpose: unix socket paths inside it must stay under 108 bytes."""
    return "db%d" % spec.index


def spec_by_name(name: str) -> InstanceSpec:
    for spec in INSTANCES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def cluster_specs(cluster: str) -> Tuple[InstanceSpec, ...]:
    return tuple(s for s in INSTANCES if s.cluster == cluster)


def write_private(path: str, data: Dict[str, Any]) -> None:
    """Write JSON to `path` atomically with mode 0600."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)

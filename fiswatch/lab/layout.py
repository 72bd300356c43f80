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

# Started only when asked: more Aurora readers (`lab up --readers N`, N-1 of these) and the
# Multi-AZ DB cluster (`lab up --multi-az-cluster`: one writer, two readable standbys).
MAX_READERS = 3
AURORA_EXTRA_READERS = (
    InstanceSpec(CLUSTER + "-instance-3", "aurora", 5, "reader", CLUSTER + "-instance-3." + DOMAIN),
    InstanceSpec(CLUSTER + "-instance-4", "aurora", 6, "reader", CLUSTER + "-instance-4." + DOMAIN),
)
MAZ_CLUSTER = CLUSTER + "-maz"
MAZ_INSTANCES = tuple(
    InstanceSpec("%s-instance-%d" % (MAZ_CLUSTER, n), "maz", 6 + n, "writer" if n == 1 else "reader",
                 "%s-instance-%d.%s" % (MAZ_CLUSTER, n, DOMAIN)) for n in (1, 2, 3))
MAZ_ENDPOINT_NAMES = {
    "maz": MAZ_CLUSTER + ".cluster-" + DOMAIN,
    "maz-ro": MAZ_CLUSTER + ".cluster-ro-" + DOMAIN,
}
ALL_INSTANCES = INSTANCES + AURORA_EXTRA_READERS + MAZ_INSTANCES


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
    readers: int = 1  # Aurora readers (1..MAX_READERS)
    multi_az_cluster: bool = False  # the three-node Multi-AZ DB cluster (maz, maz-ro)

    @classmethod
    def make(cls, lab_dir: str, base: str = "127.0.10", port: int = 3306, dns_port: int = 5300,
             **kw: Any) -> "Layout":
        octets = base.split(".")
        if len(octets) != 3 or octets[0] != "127" or not all(o.isdigit() and 0 <= int(o) <= 255 for o in octets):
            raise LayoutError("--base must be three octets of a loopback address such as 127.0.10, got %r" % base)
        readers = kw.get("readers", 1)
        if isinstance(readers, bool) or not isinstance(readers, int) or not 1 <= readers <= MAX_READERS:
            raise LayoutError("--readers must be a whole number 1..%d (Aurora readers), got %r"
                              % (MAX_READERS, readers))
        top_index = max(s.index for s in ALL_INSTANCES)
        for label, value, top in (("--port", port, 65535 - top_index), ("--dns-port", dns_port, 65535)):
            if not 1 <= int(value) <= top:
                raise LayoutError("%s must be a TCP/UDP port 1..%d, got %r" % (label, top, value))
        layout = cls(os.path.abspath(os.path.expanduser(lab_dir)), base, int(port), int(dns_port), **kw)
        longest = layout.control_socket if len(layout.control_socket) > len(layout.server_socket(INSTANCES[0])) \
            else layout.server_socket(INSTANCES[0])
        if len(longest) > _MAX_SOCKET_PATH:
            raise LayoutError("lab dir %s is too long for unix sockets (%s); choose a shorter --dir"
                              % (layout.dir, longest))
        return layout

    @property
    def instances(self) -> Tuple[InstanceSpec, ...]:
        """The instances this lab runs: the four base ones, extra Aurora readers, the Multi-AZ cluster."""
        return INSTANCES + AURORA_EXTRA_READERS[:self.readers - 1] + (MAZ_INSTANCES if self.multi_az_cluster else ())

    @property
    def clusters(self) -> Tuple[str, ...]:
        return ("aurora", "rds") + (("maz",) if self.multi_az_cluster else ())

    def cluster(self, cluster: str) -> Tuple[InstanceSpec, ...]:
        """This lab's instances of `cluster`, the first writer first."""
        return tuple(s for s in self.instances if s.cluster == cluster)

    @property
    def endpoint_names(self) -> Dict[str, str]:
        names = dict(ENDPOINT_NAMES)
        if self.multi_az_cluster:
            names.update(MAZ_ENDPOINT_NAMES)
        return names

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
    for spec in ALL_INSTANCES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def cluster_specs(cluster: str) -> Tuple[InstanceSpec, ...]:
    """The base instances of a cluster (Aurora: writer and first reader; maz: all three)."""
    return tuple(s for s in INSTANCES + MAZ_INSTANCES if s.cluster == cluster)


def write_private(path: str, data: Dict[str, Any]) -> None:
    """Write JSON to `path` atomically with mode 0600."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)

"""Where everything of a lab lives (names, addresses, ports, files); failover timings are in profiles.py. Pure and frozen."""
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple

# Names shaped as AWS's (NAME.cluster-ID.REGION.rds.amazonaws.com, NAME-instance-1.ID.REGION...), so
# that the AWS wrapper's host patterns and `bg` plugin take them; the region label is plainly the lab's
# (no AWS region is called lab-1) and only the lab's DNS server answers them (docs/lab.md, "Names").
REGION = "lab-1"
CLUSTER_ID = "c0ffee0c0ffe"  # 12 lowercase characters, as the id AWS gives an account's endpoints per region
ZONE = REGION + ".rds.amazonaws.com"
DOMAIN = CLUSTER_ID + "." + ZONE
OLD_ZONE = "lab.rds.local"  # the names before issue 23, still answered (CNAME aliases of the new ones)
OLD_DOMAIN = "c0ffee." + OLD_ZONE
ZONES = (ZONE, OLD_ZONE)
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
TLS_DIR = "tls"  # the lab CA and the instances' certificates (fiswatch/lab/tlsca.py)
TLS_POLICIES = ("offered", "required")  # as on AWS: offered; `lab up --require-tls`: require_secure_transport=ON
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
# `lab up --blue-green`: the green copies of the Aurora cluster and of the RDS instance (lab/bluegreen.py)
GREEN = "-green-c0ffee"  # as AWS names green resources: -green- and 6 of [0-9a-z] (the wrapper's RdsUtils)
GREEN_INSTANCES = (
    InstanceSpec(CLUSTER + "-instance-1" + GREEN, "aurora-green", 11, "reader", CLUSTER + "-instance-1" + GREEN + "." + DOMAIN),
    InstanceSpec(CLUSTER + "-instance-2" + GREEN, "aurora-green", 12, "reader", CLUSTER + "-instance-2" + GREEN + "." + DOMAIN),
    InstanceSpec(CLUSTER + "-mysql" + GREEN, "rds-green", 13, "reader", CLUSTER + "-mysql" + GREEN + "." + DOMAIN),
)
GREEN_ENDPOINT_NAMES = {
    "aurora-green": CLUSTER + GREEN + ".cluster-" + DOMAIN,
    "aurora-green-ro": CLUSTER + GREEN + ".cluster-ro-" + DOMAIN,
    "rds-green": CLUSTER + "-mysql" + GREEN + "." + DOMAIN,
}
ALL_INSTANCES = INSTANCES + AURORA_EXTRA_READERS + MAZ_INSTANCES  # the blue names (green's are not aliased)
EVERY_INSTANCE = ALL_INSTANCES + GREEN_INSTANCES
# `lab up --proxy`: the RDS Proxy in front of Aurora (lab/rdsproxy.py), NAME.proxy-ID. as on AWS
RDS_PROXY_ENDPOINT = "aurora-proxy"
RDS_PROXY_NAME = CLUSTER + ".proxy-" + DOMAIN
RDS_PROXY_OCTET = 50


def old_name(name: str) -> str:
    """The name a lab name had before the AWS-shaped names (a CNAME alias of it in the lab's DNS).

    >>> old_name(ENDPOINT_NAMES["aurora"])
    'fiswatch-lab.cluster-c0ffee.lab.rds.local'
    """
    return name[:-len(DOMAIN)] + OLD_DOMAIN if name.endswith(DOMAIN) else name


def in_lab_zone(host: str) -> bool:
    """A name only the lab's DNS server answers (the new zone or the old one).

    >>> in_lab_zone("X.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com."), in_lab_zone("db.us-east-1.rds.amazonaws.com")
    (True, False)
    """
    host = host.lower().rstrip(".")
    return any(host == z or host.endswith("." + z) for z in ZONES)


def instance_host_pattern(port: int) -> str:
    """`cluster_instance_host_pattern` of the lab: `?` is an instance's SERVER_ID (its name), as on AWS.

    >>> instance_host_pattern(3306)
    '?.c0ffee0c0ffe.lab-1.rds.amazonaws.com:3306'
    """
    return "?.%s:%d" % (DOMAIN, port)


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
    tls: str = "offered"  # what the proxies do about TLS: offered | required
    tls_expired: bool = False  # the instances' certificates expired (`lab up --tls-expired`)
    stale_dns: float = 0.0  # `lab up --stale-dns`: this lab's Aurora failovers keep DNS stale this long
    writer_grace: float = 10.0  # a writer dead this long (not stopped by the lab) is failed over (watchdog.py)
    readers: int = 1  # Aurora readers (1..MAX_READERS)
    multi_az_cluster: bool = False  # the three-node Multi-AZ DB cluster (maz, maz-ro)
    rds_proxy: bool = False  # `lab up --proxy`: the RDS Proxy endpoint aurora-proxy (lab/rdsproxy.py)
    blue_green: bool = False  # `lab up --blue-green`: green copies of aurora and rds (lab/bluegreen.py)


    @classmethod
    def make(cls, lab_dir: str, base: str = "127.0.10", port: int = 3306, dns_port: int = 5300,
             **kw: Any) -> "Layout":
        octets = base.split(".")
        if len(octets) != 3 or octets[0] != "127" or not all(o.isdigit() and 0 <= int(o) <= 255 for o in octets):
            raise LayoutError("--base must be three octets of a loopback address such as 127.0.10, got %r" % base)
        if kw.get("tls", "offered") not in TLS_POLICIES:
            raise LayoutError("TLS policy must be one of %s, got %r" % (", ".join(TLS_POLICIES), kw.get("tls")))
        readers = kw.get("readers", 1)
        if isinstance(readers, bool) or not isinstance(readers, int) or not 1 <= readers <= MAX_READERS:
            raise LayoutError("--readers must be a whole number 1..%d (Aurora readers), got %r"
                              % (MAX_READERS, readers))
        top_index = max(s.index for s in EVERY_INSTANCE)
        for label, value, top in (("--port", port, 65535 - top_index), ("--dns-port", dns_port, 65535)):
            if not 1 <= int(value) <= top:
                raise LayoutError("%s must be a TCP/UDP port 1..%d, got %r" % (label, top, value))
        if "stale_dns" in kw:
            kw["stale_dns"] = check_stale_dns(kw["stale_dns"])
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

    @property
    def instances(self) -> Tuple[InstanceSpec, ...]:
        """The instances this lab runs: the four base ones, extra Aurora readers, the Multi-AZ cluster."""
        return INSTANCES + AURORA_EXTRA_READERS[:self.readers - 1] + (MAZ_INSTANCES if self.multi_az_cluster else ()) \
            + (GREEN_INSTANCES if self.blue_green else ())

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
        if self.rds_proxy:
            names[RDS_PROXY_ENDPOINT] = RDS_PROXY_NAME
        if self.blue_green:
            names.update(GREEN_ENDPOINT_NAMES)
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

    @property
    def tls_dir(self) -> str:
        return self.path(TLS_DIR)

    @property
    def ca_file(self) -> str:
        """The CA bundle a client trusts to verify the lab's certificates."""
        return os.path.join(self.tls_dir, "ca.pem")

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


STALE_DNS_MAX = 600.0
STALE_DNS_TARGETS = ("aurora",)


def check_stale_dns(value: Any) -> float:
    """Seconds the cluster name keeps naming the old writer after it rejoined (0: a clean flip).

    >>> check_stale_dns("8")
    8.0
    >>> check_stale_dns(-1)
    Traceback (most recent call last):
    ...
    fiswatch.lab.layout.LayoutError: --stale-dns: -1 is too small: give a number of seconds from 0 to 600
    """
    from fiswatch.config.checks import ConfigError, check_seconds

    try:
        return check_seconds(value, 0.0, STALE_DNS_MAX)
    except ConfigError as exc:
        raise LayoutError("--stale-dns: %s" % exc) from None


def stale_dns_for(target: str, requested: Optional[float], lab_default: float) -> float:
    """The stale-DNS seconds of one failover: the request, else the lab's default (Aurora only).

    >>> stale_dns_for("aurora", None, 8.0), stale_dns_for("aurora", 0, 8.0), stale_dns_for("rds", None, 8.0)
    (8.0, 0.0, 0.0)
    >>> stale_dns_for("rds", 5, 0.0)
    Traceback (most recent call last):
    ...
    fiswatch.lab.layout.LayoutError: --stale-dns applies to aurora only: an RDS Multi-AZ standby takes no connections, so a stale address meets no demoted writer there
    """
    if requested is None:
        return float(lab_default or 0.0) if target in STALE_DNS_TARGETS else 0.0
    seconds = check_stale_dns(requested)
    if seconds and target not in STALE_DNS_TARGETS:
        raise LayoutError("--stale-dns applies to aurora only: an RDS Multi-AZ standby takes no connections, "
                          "so a stale address meets no demoted writer there")
    return seconds


def datadir_name(spec: InstanceSpec) -> str:
    """Short on purpose: unix socket paths inside it must stay under 108 bytes."""
    return "db%d" % spec.index


def alias_names() -> Dict[str, str]:
    """Old name -> new name, for every name the lab's DNS serves (instances, endpoints)."""
    names = [s.dns_name for s in ALL_INSTANCES if s.dns_name]
    names += list(ENDPOINT_NAMES.values()) + list(MAZ_ENDPOINT_NAMES.values()) + [RDS_PROXY_NAME]
    return {old_name(n): n for n in names}


def topology_id(spec: InstanceSpec) -> Optional[str]:
    """The id a topology-aware client reads for an instance: Aurora's SERVER_ID is the instance's
    name (replica_host_status, as on AWS); a Multi-AZ DB cluster's rds_topology id is @@server_id
    (the index); an RDS Multi-AZ instance's nodes have none.

    >>> [topology_id(s) for s in (INSTANCES[1], INSTANCES[2], MAZ_INSTANCES[0])]
    ['fiswatch-lab-instance-2', None, '7']
    """
    if spec.cluster in ("aurora", "aurora-green"):
        return spec.name
    return str(spec.index) if spec.cluster == "maz" else None


def spec_by_name(name: str) -> InstanceSpec:
    for spec in EVERY_INSTANCE:
        if spec.name == name:
            return spec
    raise KeyError(name)


def certificate_names(spec: InstanceSpec) -> Tuple[str, ...]:
    """The names an instance's certificate holds, first the common name (as RDS issues them).

    The old `.lab.rds.local` names follow, so a verified connection by an old name still verifies.

    >>> certificate_names(INSTANCES[0])[1:3]
    ('fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com', 'fiswatch-lab.cluster-ro-c0ffee0c0ffe.lab-1.rds.amazonaws.com')
    >>> certificate_names(INSTANCES[2])
    ('fiswatch-lab-mysql.c0ffee0c0ffe.lab-1.rds.amazonaws.com', 'fiswatch-lab-mysql.c0ffee.lab.rds.local')
    """
    names: Tuple[str, ...]
    if spec.cluster == "aurora":
        names = (spec.dns_name or spec.name, ENDPOINT_NAMES["aurora"], ENDPOINT_NAMES["aurora-ro"])
    elif spec.cluster == "maz":
        names = (spec.dns_name or spec.name, MAZ_ENDPOINT_NAMES["maz"], MAZ_ENDPOINT_NAMES["maz-ro"])
    elif spec.cluster.endswith("-green"):
        names = (spec.name, str(spec.dns_name)) + tuple(v for k, v in GREEN_ENDPOINT_NAMES.items()  # CN <= 64
                                                      if k.startswith(spec.cluster))
    else:
        names = (ENDPOINT_NAMES["rds"],)
    return names + tuple(old_name(n) for n in names if old_name(n) != n)


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

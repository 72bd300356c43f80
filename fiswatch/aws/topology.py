"""Live RDS topology for each endpoint's column header.

Pure helpers turn describe_db_clusters / describe_db_instances answers into short lines
(at most LINE_WIDTH characters each); TopologyWatcher polls them in a daemon thread and
emits a `topology` event whenever an endpoint's lines change (writer moved to another
AZ, status went to `rebooting`...).

Which cluster or instance an endpoint is: the explicit mapping given to the watcher
(`--cluster-id` / `--instance-id`), else the secret's dbClusterIdentifier /
dbInstanceIdentifier (Endpoint.cluster_id / instance_id), else the cluster or instance
whose endpoint address RDS reports equals the endpoint's host.
"""
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.aws.session import AwsError, client, explain
from fiswatch.model import Endpoint, Event

LINE_WIDTH = 38
MAX_LINES = 4
CLUSTER = "cluster"
INSTANCE = "instance"
Target = Tuple[str, str]  # (CLUSTER | INSTANCE, identifier)


# ---------------------------------------------------------------- pure helpers

def shorten(text: str, width: int) -> str:
    """`text` cut in the middle with `~` so it fits `width` characters.

    The tail is kept longer than the head: instance names differ at the end.

    >>> shorten("fisworkshop-instance-1", 12)
    'fis~stance-1'
    """
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 3
    tail = width - 1 - head
    return text[:head] + "~" + (text[-tail:] if tail else "")


def fit(label: str, ident: str, rest: str, width: int = LINE_WIDTH) -> str:
    """`label ident rest` within `width`, shortening the identifier first.

    >>> fit("writer", "i-1", "us-east-1a available")
    'writer i-1 us-east-1a available'
    >>> len(fit("writer", "fisworkshop-aurora-instance-1", "us-east-1a available"))
    38
    """
    fixed = len(label) + len(rest) + 2
    room = max(3, width - fixed)
    line = "%s %s %s" % (label, shorten(ident, room), rest) if rest else "%s %s" % (label, shorten(ident, room))
    return line[:width].rstrip()


def cluster_lines(cluster: Mapping[str, Any], instances: Mapping[str, Mapping[str, Any]]) -> Tuple[str, ...]:
    """Cluster status, then the writer, then the readers with their AZs and status."""
    lines = [fit("cluster", str(cluster.get("DBClusterIdentifier", "?")), str(cluster.get("Status", "?")))]
    members = list(cluster.get("DBClusterMembers") or [])
    members.sort(key=lambda m: (not m.get("IsClusterWriter"), str(m.get("DBInstanceIdentifier"))))
    if not members:
        lines.append("no instances")
    for member in members:
        ident = str(member.get("DBInstanceIdentifier", "?"))
        info = instances.get(ident, {})
        role = "writer" if member.get("IsClusterWriter") else "reader"
        rest = "%s %s" % (info.get("AvailabilityZone") or "?", info.get("DBInstanceStatus") or "?")
        lines.append(fit(role, ident, rest))
    if len(lines) > MAX_LINES:
        hidden = len(lines) - (MAX_LINES - 1)
        lines = lines[:MAX_LINES - 1] + ["+%d more reader%s" % (hidden, "s" if hidden > 1 else "")]
    return tuple(lines)


def instance_lines(instance: Mapping[str, Any]) -> Tuple[str, ...]:
    """Instance status, then Multi-AZ primary and standby AZs.

    RDS reports the standby's AZ as SecondaryAvailabilityZone on Multi-AZ instances;
    after a reboot with failover the two AZs swap.
    """
    ident = str(instance.get("DBInstanceIdentifier", "?"))
    lines = [fit("instance", ident, str(instance.get("DBInstanceStatus") or "?"))]
    primary = instance.get("AvailabilityZone") or "?"
    if instance.get("MultiAZ"):
        secondary = instance.get("SecondaryAvailabilityZone") or "?"
        lines.append(("primary %s standby %s" % (primary, secondary))[:LINE_WIDTH])
    else:
        lines.append(("single-AZ %s (no standby)" % primary)[:LINE_WIDTH])
    return tuple(lines)


def _host_key(host: str) -> str:
    return host.strip().rstrip(".").lower()


def match_host(host: str, clusters: Iterable[Mapping[str, Any]],
               instances: Iterable[Mapping[str, Any]]) -> Optional[Target]:
    """The cluster (writer, reader or custom endpoint) or instance whose address is `host`."""
    wanted = _host_key(host)
    for cluster in clusters:
        addresses = [cluster.get("Endpoint"), cluster.get("ReaderEndpoint")]
        addresses += list(cluster.get("CustomEndpoints") or [])
        if any(a and _host_key(str(a)) == wanted for a in addresses):
            return (CLUSTER, str(cluster["DBClusterIdentifier"]))
    for instance in instances:
        address = (instance.get("Endpoint") or {}).get("Address")
        if address and _host_key(str(address)) == wanted:
            return (INSTANCE, str(instance["DBInstanceIdentifier"]))
    return None


def explicit_target(endpoint: Endpoint, cluster_ids: Mapping[str, str] = {},
                    instance_ids: Mapping[str, str] = {}) -> Optional[Target]:
    """The target named by flags (the mappings) or by the secret; None if neither names one."""
    if endpoint.name in cluster_ids:
        return (CLUSTER, cluster_ids[endpoint.name])
    if endpoint.name in instance_ids:
        return (INSTANCE, instance_ids[endpoint.name])
    if endpoint.cluster_id:
        return (CLUSTER, endpoint.cluster_id)
    if endpoint.instance_id:
        return (INSTANCE, endpoint.instance_id)
    return None


# ---------------------------------------------------------------- AWS calls

def _all(rds: Any, operation: str, key: str, **kwargs: Any) -> List[Mapping[str, Any]]:
    paginator = rds.get_paginator(operation)
    items: List[Mapping[str, Any]] = []
    for page in paginator.paginate(**kwargs):
        items.extend(page.get(key) or [])
    return items


def find_target(rds: Any, endpoint: Endpoint, cluster_ids: Mapping[str, str] = {},
                instance_ids: Mapping[str, str] = {}) -> Target:
    """The endpoint's cluster or instance (see module doc); AwsError if none matches."""
    target = explicit_target(endpoint, cluster_ids, instance_ids)
    if target is not None:
        return target
    found = match_host(endpoint.host, _all(rds, "describe_db_clusters", "DBClusters"),
                       _all(rds, "describe_db_instances", "DBInstances"))
    if found is None:
        raise AwsError("endpoint %s: no RDS cluster or instance in %s has the address %s: pass --cluster-id "
                       "or --instance-id" % (endpoint.name, rds.meta.region_name, endpoint.host))
    return found


def describe_lines(rds: Any, target: Target) -> Tuple[str, ...]:
    """Fetch the target's state and render it as header lines."""
    kind, ident = target
    if kind == CLUSTER:
        clusters = rds.describe_db_clusters(DBClusterIdentifier=ident).get("DBClusters") or []
        if not clusters:
            raise AwsError("RDS cluster %r not found" % ident)
        members = _all(rds, "describe_db_instances", "DBInstances",
                       Filters=[{"Name": "db-cluster-id", "Values": [ident]}])
        by_id = {str(m.get("DBInstanceIdentifier")): m for m in members}
        return cluster_lines(clusters[0], by_id)
    instances = rds.describe_db_instances(DBInstanceIdentifier=ident).get("DBInstances") or []
    if not instances:
        raise AwsError("RDS instance %r not found" % ident)
    return instance_lines(instances[0])


# ---------------------------------------------------------------- the watcher

class TopologyWatcher:
    """Polls each endpoint's cluster/instance every `interval` seconds in a daemon thread."""

    def __init__(self, endpoints: Sequence[Endpoint], session: Any, emit: Callable[[Event], None],
                 interval: float = 5.0, cluster_ids: Mapping[str, str] = {},
                 instance_ids: Mapping[str, str] = {}) -> None:
        self._endpoints = tuple(endpoints)
        self._session = session
        self._emit = emit
        self._interval = interval
        self._cluster_ids = dict(cluster_ids)
        self._instance_ids = dict(instance_ids)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._rds: Any = None
        self._targets: Dict[str, Target] = {}
        self._lines: Dict[str, Tuple[str, ...]] = {}  # replaced, never mutated
        self._failing: Dict[str, str] = {}

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fiswatch-topology", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def lines(self, endpoint_name: str) -> Tuple[str, ...]:
        """Latest header lines for that endpoint (empty until the first poll)."""
        return self._lines.get(endpoint_name, ())

    def target(self, endpoint_name: str) -> Optional[Target]:
        return self._targets.get(endpoint_name)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self._interval)

    def poll_once(self) -> None:
        """One round over all endpoints; never raises."""
        for endpoint in self._endpoints:
            if self._stop.is_set():
                return
            try:
                if self._rds is None:
                    self._rds = client(self._session, "rds")
                target = self._targets.get(endpoint.name)
                if target is None:
                    target = find_target(self._rds, endpoint, self._cluster_ids, self._instance_ids)
                    self._targets = dict(self._targets, **{endpoint.name: target})
                new = describe_lines(self._rds, target)
            except Exception as exc:  # noqa: BLE001 - a watcher never dies
                self._failed(endpoint.name, explain(exc))
                continue
            self._succeeded(endpoint.name, new)

    def _succeeded(self, name: str, new: Tuple[str, ...]) -> None:
        if name in self._failing:
            self._failing.pop(name)
            self._emit(E.info("topology %s: polling RDS works again" % name))
        previous = self._lines.get(name, ())
        if new != previous:
            self._lines = dict(self._lines, **{name: new})
            self._emit(E.topology(name, lines=list(new), previous=list(previous)))

    def _failed(self, name: str, reason: str) -> None:
        if name not in self._failing:
            self._failing[name] = reason
            self._emit(E.warning("topology %s: %s" % (name, reason)))
        if not self._lines.get(name):
            self._lines = dict(self._lines, **{name: ("topology unavailable",)})

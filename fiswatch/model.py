"""Immutable state shared between threads.

Every object here is a frozen dataclass (or an Enum): a probe thread builds a new
Snapshot after every step and publishes it by swapping one reference; readers never
take a lock that a stuck probe could hold.
"""
import collections.abc
import enum
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple


class State(str, enum.Enum):
    """What a probe is doing, as the screen and the JSON stream name it."""

    CONNECTING = "CONNECTING"
    OK = "OK"
    STALLED = "STALLED"  # derived by the monitor, never published by a probe
    ERROR = "ERROR"
    RECONNECTING = "RECONNECTING"
    UNAVAILABLE = "UNAVAILABLE"  # backend library not installed
    STOPPED = "STOPPED"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class Op(str, enum.Enum):
    """The driver call a probe is inside of."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    INSERT = "INSERT"
    COMMIT = "COMMIT"
    SELECT = "SELECT"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class Secret:
    """A password that never shows itself in repr(), str(), logs or records."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Endpoint:
    """One database to write to: the workshop's `aurora` or `rds`."""

    name: str
    host: str
    port: int = 3306
    user: str = ""
    database: str = "testdb"
    table: str = "test"
    password: Optional[Secret] = field(default=None, repr=False, compare=False)
    source: str = "cli"  # cli | secret:<id> | lab:<dir>
    cluster_id: Optional[str] = None
    instance_id: Optional[str] = None
    ca_file: Optional[str] = None  # the CA bundle its certificates chain to, when known (the lab's own CA)
    # how an instance's SERVER_ID becomes host:port (cluster_instance_host_pattern, e.g. 127.0.10.?:3306):
    # the lab gives its own with its Aurora endpoint; on AWS None (the wrapper derives it from the name)
    host_pattern: Optional[str] = None
    reads: bool = False  # its probes read (SELECT the newest rows) instead of writing (`--read NAME`)
    writer: Optional[str] = None  # reads: the endpoint whose writes they should see (lag, failovers)

    def url(self) -> str:
        """The endpoint as a URL, never with the password."""
        return "mysql://%s@%s:%d/%s" % (self.user, self.host, self.port, self.database)


@dataclass(frozen=True)
class BackendSpec:
    """A backend name plus the options given on the command line."""

    name: str
    options: Tuple[Tuple[str, str], ...] = ()
    endpoints: Tuple[str, ...] = ()  # only these endpoints (`--backend aurora/aws-wrapper`); () = all

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join("%s=%s" % kv for kv in self.options)

    def option_dict(self) -> Dict[str, str]:
        return dict(self.options)


@dataclass(frozen=True)
class BackendInfo:
    """What a column header says about the library behind it."""

    name: str
    library: str
    version: str
    timeouts: Tuple[Tuple[str, Optional[float]], ...] = ()
    available: bool = True
    reason: str = ""  # why unavailable
    notes: str = ""  # e.g. "C extension" / "pure Python"
    follows_topology: bool = False  # fails over to the writer the cluster's topology names, not DNS's

    def timeout(self, key: str) -> Optional[float]:
        return dict(self.timeouts).get(key)

    def timeouts_text(self) -> str:
        """`connect 1s read none write none` - 'none' means wait forever."""
        parts = []
        for key, value in self.timeouts:
            parts.append("%s %s" % (key, "none" if value is None else "%gs" % value))
        return " ".join(parts)


# ErrorInfo.kind of a read-only error (1290/1836) on a server where the probe's writes once
# committed: a writer demoted since, reached through a name that still leads there
DEMOTED_WRITER = "demoted-writer"


@dataclass(frozen=True)
class ErrorInfo:
    """A driver or resolution error reduced to what a human needs."""

    code: Optional[int]
    kind: str  # auth | read-only | demoted-writer | refused | lost | read-timeout | dns | ...
    message: str

    def short(self) -> str:
        if self.code is not None:
            return "%d %s" % (self.code, self.kind)
        return self.kind

    def text(self) -> str:
        return "%s: %s" % (self.short(), self.message) if self.message else self.short()


@dataclass(frozen=True)
class Resolution:
    """One DNS lookup of an endpoint host."""

    name: str
    addresses: Tuple[str, ...] = ()
    cname_chain: Tuple[str, ...] = ()  # names followed, first is the target of `name`
    ttl: Optional[int] = None
    error: Optional[str] = None  # NXDOMAIN | empty | timeout | ...
    source: str = "dns"  # dns | literal | hosts
    ts: float = 0.0

    @property
    def address(self) -> Optional[str]:
        return self.addresses[0] if self.addresses else None

    @property
    def cname(self) -> Optional[str]:
        return self.cname_chain[-1] if self.cname_chain else None


@dataclass(frozen=True)
class Snapshot:
    """Everything one probe knows after its last step. Replaced, never mutated."""

    probe: str  # "<endpoint>/<backend label>"
    endpoint: str
    backend: str
    state: State = State.CONNECTING
    op: Optional[Op] = None  # driver call in flight
    op_started: Optional[float] = None  # time.monotonic() when that call began
    rows: Tuple[Tuple[int, int], ...] = ()
    address: Optional[str] = None
    previous_address: Optional[str] = None
    resolution: Optional[Resolution] = None
    iterations: int = 0  # completed INSERT+COMMIT+SELECT rounds
    errors: int = 0
    reconnects: int = 0
    failovers: int = 0  # failovers the client handled itself, keeping its connection
    latency: Tuple[Tuple[str, float], ...] = ()  # last latency per op, seconds
    latency_total: float = 0.0  # sum of iteration latencies, for per-second means
    last_error: Optional[ErrorInfo] = None
    last_ok: Optional[float] = None  # wall-clock time of the last completed round
    retry_at: Optional[float] = None  # monotonic time of the next reconnect attempt
    pending: Optional[Tuple[Optional[int], int]] = None  # (id, value) of the write whose COMMIT is in flight
    tls: Optional[str] = None  # the connection's TLS version ('TLSv1.3'), 'plain', '?' when the driver hides it
    reads: bool = False  # a read probe (fiswatch.engine.readround): rows are what it read
    server: Optional[str] = None  # read probes: who answered (@@server_id, and @@hostname when it says more)
    lag_s: Optional[float] = None  # read probes: the reader's own lag where the shape has it (int: Seconds_Behind_Source;
    # float: Aurora's REPLICA_LAG_IN_MILLISECONDS / 1000)
    seq: int = 0

    def in_flight_for(self, now: float) -> float:
        """Seconds the current driver call has been running (0 when idle)."""
        if self.op is None or self.op_started is None:
            return 0.0
        return max(0.0, now - self.op_started)


class FrozenMap(collections.abc.Mapping):
    """A read-only mapping that keeps its keys' order: a dict inside a frozen Event.

    Equal to a dict with the same items; hashable when its values are.

    >>> m = FrozenMap({"b": 1, "a": 2})
    >>> list(m), m == {"b": 1, "a": 2}, m["a"]
    (['b', 'a'], True, 2)
    """

    __slots__ = ("_items",)
    _items: Dict[str, Any]

    def __init__(self, items: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_items", dict(items))

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenMap is read-only")

    def __repr__(self) -> str:
        return "FrozenMap(%r)" % (self._items,)

    def __reduce__(self) -> Any:
        return (FrozenMap, (self._items,))


_PLAIN = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """`value` immutable all the way down: dicts become FrozenMaps, lists tuples, sets frozensets.

    >>> freeze({"probes": [{"probe": "a/b"}], "ids": {3}})
    FrozenMap({'probes': (FrozenMap({'probe': 'a/b'}),), 'ids': frozenset({3})})
    """
    kind = type(value)
    if kind in _PLAIN or kind is FrozenMap:  # the common case first: one probe write is all scalars
        return value
    if isinstance(value, (str, bytes, int, float, frozenset)):
        return value
    if isinstance(value, collections.abc.Mapping):
        return FrozenMap({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, set):
        return frozenset(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A frozen value as plain JSON-shaped data again: FrozenMaps become dicts, tuples lists.

    >>> thaw(freeze({"addresses": ["10.0.0.1"], "previous": ()}))
    {'addresses': ['10.0.0.1'], 'previous': []}
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is FrozenMap:
        return {k: thaw(v) for k, v in value.items()}
    if kind is tuple or kind is list:
        return [thaw(v) for v in value]
    if kind is frozenset:
        return set(thaw(v) for v in value)
    return value


@dataclass(frozen=True)
class Event:
    """Something that happened, in the shape every output writes (JSON lines).

    Build one with a constructor of fiswatch.events (one per kind); the fields are frozen all
    the way down when the Event is made (lists become tuples, dicts FrozenMaps), and
    `as_dict()` gives them back as the plain lists and dicts the outputs write.
    """

    event: str  # one of fiswatch.events.KINDS
    ts: float
    fields: Tuple[Tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple((k, freeze(v)) for k, v in self.fields))

    @classmethod
    def make(cls, event: str, ts: Optional[float] = None, **fields: Any) -> "Event":
        return cls(event, time.time() if ts is None else ts, tuple(fields.items()))

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.fields:
            if k == key:
                return v
        return default

    def as_dict(self) -> Dict[str, Any]:
        """A new plain dict (lists and dicts inside, not tuples and FrozenMaps), the caller's to change."""
        out: Dict[str, Any] = {"ts": round(self.ts, 3), "event": self.event}
        out.update((k, thaw(v)) for k, v in self.fields)
        return out


@dataclass(frozen=True)
class ProbeView:
    """A probe as the monitor sees it on one tick: snapshot plus derived facts."""

    snapshot: Snapshot
    info: BackendInfo
    state: State  # STALLED derived here
    stalled_for: float  # seconds the call in flight has run (0 if none)
    ops_per_s: float  # last full second
    history: Tuple[int, ...]  # iterations per second, oldest first
    longest_stall: float
    behind: Optional[int] = None  # read probes: rows the writer's probes committed that this one has not seen

    @property
    def probe(self) -> str:
        return self.snapshot.probe


@dataclass(frozen=True)
class EndpointView:
    """Per-endpoint facts that are not per probe: DNS watch, AWS topology."""

    name: str
    host: str
    resolution: Optional[Resolution] = None
    previous_addresses: Tuple[str, ...] = ()
    topology: Tuple[str, ...] = ()  # short lines for the column header
    down: str = ""  # what is down under the endpoint (the lab's daemon): shown instead of its DNS answer


@dataclass(frozen=True)
class ProgramView:
    """A user's program measured from the lab's wire (`--exec`), one endpoint: what its column shows.

    `kind`: starting (nothing on the wire yet) / writing / silent (no acknowledged write for
    `silent_for` s) / erroring (the last thing the wire saw was an error or a dropped connection)
    / refused (writes refused 1290/1836 on a demoted writer).
    """

    name: str
    endpoint: str
    kind: str = "starting"
    text: str = "no connection seen yet"
    ops_per_s: float = 0.0
    acked: int = 0
    refused: int = 0
    silent_for: float = 0.0
    error: Optional[int] = None  # the last error code the wire saw (2013: connection lost)
    instance: str = ""  # the lab instance its latest connection reached


@dataclass(frozen=True)
class View:
    """One frame's worth of state: what every output renders."""

    ts: float
    probes: Tuple[ProbeView, ...]
    endpoints: Tuple[EndpointView, ...] = ()
    events: Tuple[Event, ...] = ()  # recent, oldest first
    paused: bool = False
    status: Tuple[str, ...] = ()  # extra status lines (lab, experiment)
    keys: Tuple[Tuple[str, str], ...] = ()  # extra key bindings shown in help line
    programs: Tuple[ProgramView, ...] = ()  # programs followed from the wire (--exec)


def freeze_mapping(mapping: Mapping[str, Any]) -> Tuple[Tuple[str, Any], ...]:
    """A mapping as a sorted tuple of pairs, for frozen dataclass fields."""
    return tuple(sorted(mapping.items()))

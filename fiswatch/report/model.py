"""The report's data: frozen dataclasses built by fiswatch.report.build, read by the renderers."""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple


@dataclass(frozen=True)
class Window:
    """A stall window (absolute unix times); `open` = still going when the run ended."""

    start: float
    end: float
    open: bool = False

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Gap:
    """From the last acknowledged write before a fault to the first one after it."""

    start: float
    end: float
    open: bool = False  # no write after it: never recovered
    anchored: bool = True  # a fault of the probe fell inside (False: only long)
    errors: int = 0
    in_doubt: int = 0
    from_start: bool = False  # no write before it: starts at the run start

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class DnsChange:
    """How an endpoint's DNS answer moved during the run."""

    endpoint: str
    initial: Tuple[str, ...] = ()
    flipped_to: Tuple[str, ...] = ()
    flip_at: Optional[float] = None  # first non-empty answer different from `initial`
    empty_at: Optional[float] = None  # first empty / failed answer
    changes: int = 0  # answer changes seen after the first
    flaps: int = 0  # answers back to `initial` after the flip


@dataclass(frozen=True)
class LabFailover:
    """A failover injected by the lab: its steps and the outage window it caused."""

    target: str
    crash: bool
    started: float
    outage_start: Optional[float] = None
    outage_end: Optional[float] = None
    steps: Tuple[Tuple[float, str, str], ...] = ()  # (ts, step, detail)

    @property
    def outage(self) -> Optional[float]:
        if self.outage_start is None or self.outage_end is None:
            return None
        return max(0.0, self.outage_end - self.outage_start)


@dataclass(frozen=True)
class Marker:
    """A moment worth a vertical line on the timeline (lab step, FIS state, DNS flip)."""

    ts: float
    kind: str  # lab | fis | topology | dns
    text: str
    endpoint: str = ""  # the endpoint it concerns ("" = all)
    label: str = ""  # a short name for the picture (the step)


@dataclass(frozen=True)
class ProbeReport:
    probe: str
    endpoint: str
    backend: str
    library: str = ""
    version: str = ""
    available: bool = True
    ops: int = 0
    acknowledged: int = 0
    in_doubt: int = 0
    errors: int = 0
    errors_by_kind: Tuple[Tuple[str, int], ...] = ()  # ("2013 lost", 3), most first
    stalls: Tuple[Window, ...] = ()
    write_gaps: Tuple[Gap, ...] = ()
    address_before: Optional[str] = None
    address_after: Optional[str] = None
    final_state: Optional[str] = None
    latency_ms_mean: Optional[float] = None
    latency_ms_worst: Optional[float] = None  # worst one-second mean
    outage_gap: Optional[Gap] = None  # the gap spanning the lab's injected outage
    beyond_outage: Optional[float] = None  # outage_gap.end - outage_end (None if open)

    @property
    def longest_stall(self) -> Optional[Window]:
        return max(self.stalls, key=lambda w: w.duration) if self.stalls else None

    @property
    def longest_gap(self) -> Optional[Gap]:
        return max(self.write_gaps, key=lambda g: g.duration) if self.write_gaps else None

    @property
    def recovered(self) -> bool:
        """False when the probe ended inside a write gap or a stall."""
        return not any(g.open for g in self.write_gaps) and not any(w.open for w in self.stalls)


@dataclass(frozen=True)
class Report:
    start: float
    end: float
    probes: Tuple[ProbeReport, ...] = ()
    dns: Tuple[DnsChange, ...] = ()
    failovers: Tuple[LabFailover, ...] = ()
    markers: Tuple[Marker, ...] = ()
    notes: Tuple[str, ...] = ()
    complete: bool = False  # the run's `summary` line is there
    verified: Tuple[Tuple[float, str, str], ...] = ()  # (ts, endpoint, verdict) of `verify` events

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def rel(self, ts: Optional[float]) -> Optional[float]:
        return None if ts is None else ts - self.start

    def dns_for(self, endpoint: str) -> Optional[DnsChange]:
        for item in self.dns:
            if item.endpoint == endpoint:
                return item
        return None

    def failover_for(self, endpoint: str) -> Optional[LabFailover]:
        return failover_for(self.failovers, endpoint, [p.endpoint for p in self.probes])


def failover_for(failovers: Sequence[LabFailover], endpoint: str, endpoints: Sequence[str]) -> Optional[LabFailover]:
    mine = [f for f in failovers if f.target == endpoint]
    if not mine and len(set(endpoints)) == 1:
        mine = list(failovers)  # one endpoint in the run: the failover is its own
    return mine[-1] if mine else None

"""The report's data: frozen dataclasses built by fiswatch.report.build, read by the renderers."""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Window:
    """A stall or pause window (absolute unix times); `open` = still going when the probes stopped."""

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
    paused: float = 0.0  # seconds of it the dashboard was paused (p): not counted in `duration`

    @property
    def span(self) -> float:
        """Wall-clock time from start to end, pauses included."""
        return max(0.0, self.end - self.start)

    @property
    def duration(self) -> float:
        """What a user of the driver waited: the span minus the time the run was paused."""
        return max(0.0, self.end - self.start - self.paused)


@dataclass(frozen=True)
class DnsChange:
    """How an endpoint's DNS answer moved during the run.

    A *flip* is a new answer that stays (each failover gives one, a second failover back to
    the first address is a second flip); a *flap* is an answer going back to the one before
    the latest flip while the DNS is still settling (the lab's `dns_flap` step, or within
    FLAP_WINDOW seconds of the last change with no new failover started in between).
    """

    endpoint: str
    initial: Tuple[str, ...] = ()
    flipped_to: Tuple[str, ...] = ()
    flip_at: Optional[float] = None  # first non-empty answer different from `initial`
    empty_at: Optional[float] = None  # first empty / failed answer
    changes: int = 0  # answer changes seen after the first
    flaps: int = 0  # answers back to the pre-flip answer while settling
    flips: Tuple[Tuple[float, Tuple[str, ...], Tuple[str, ...]], ...] = ()  # (ts, from, to), first one included


@dataclass(frozen=True)
class LabFailover:
    """A failover injected by the lab: its steps and the outage window it caused."""

    target: str
    crash: bool
    started: float
    outage_start: Optional[float] = None
    outage_end: Optional[float] = None
    steps: Tuple[Tuple[float, str, str], ...] = ()  # (ts, step, detail)
    kind: str = "failover"  # or an outage without failover: crash, reboot (lab/crash.py, the event's `outage`)

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
class OutagePair:
    """One lab failover of a probe's endpoint and the write gap it caused.

    `number` is the failover's place in Report.failovers (1-based, as the headline shows it).
    `beyond`: seconds the writes resumed after the injected outage ended, time paused after
    the outage not counted; None when the gap never closed or ran into the next failover
    (`into_next`).
    """

    number: int
    failover: LabFailover
    gap: Optional[Gap] = None
    beyond: Optional[float] = None
    into_next: bool = False
    paused_after: float = 0.0  # seconds paused between the outage's end and the gap's end (not in `beyond`)


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
    failovers: int = 0  # failovers the client handled itself (aws-wrapper), keeping its connection
    errors: int = 0
    errors_by_kind: Tuple[Tuple[str, int], ...] = ()  # ("2013 lost", 3), most first
    stalls: Tuple[Window, ...] = ()
    write_gaps: Tuple[Gap, ...] = ()
    address_before: Optional[str] = None
    address_after: Optional[str] = None
    addresses: Tuple[str, ...] = ()  # every address in turn (A, B, A after two failovers), at most 8
    final_state: Optional[str] = None
    latency_ms_mean: Optional[float] = None
    latency_ms_worst: Optional[float] = None  # worst one-second mean
    outages: Tuple["OutagePair", ...] = ()  # one per lab failover of this probe's endpoint, in order
    refused_at: Optional[float] = None  # wire clients: last write refused by a read-only server (1290/1836)
    reads: bool = False  # a read probe (`--read`): `write_gaps` are its read gaps, `acknowledged` its reads
    rolled_back: int = 0  # wire clients: transactions holding writes that ended without an acknowledged COMMIT
    rolled_back_writes: int = 0  # the writes those held: never acknowledged, never lost

    @property
    def rolled_back_text(self) -> str:
        """'N transactions rolled back (M writes not acknowledged)', or '' when none.

        >>> ProbeReport("aurora/program", "aurora", "app", rolled_back=1, rolled_back_writes=2).rolled_back_text
        '1 transaction rolled back (2 writes not acknowledged)'
        """
        if not self.rolled_back:
            return ""
        return "%d transaction%s rolled back (%d write%s not acknowledged)" % (
            self.rolled_back, "" if self.rolled_back == 1 else "s", self.rolled_back_writes,
            "" if self.rolled_back_writes == 1 else "s")

    @property
    def main_outage(self) -> Optional["OutagePair"]:
        """The pairing whose gap is the longest (what the one-line summary quotes)."""
        paired = [o for o in self.outages if o.gap is not None]
        return max(paired, key=lambda o: o.gap.duration) if paired else None  # type: ignore[union-attr]

    @property
    def outage_gap(self) -> Optional[Gap]:
        main = self.main_outage
        return main.gap if main is not None else None

    @property
    def beyond_outage(self) -> Optional[float]:
        main = self.main_outage
        return main.beyond if main is not None else None

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
class VerifyCheck:
    """One `verify` event of the run (after a lab failover, at the end): what it covered and said."""

    ts: float
    endpoint: str
    acknowledged: Optional[int]  # the writes it checked: those recorded before it ran
    lost: int = 0  # lost + changed
    error: Optional[str] = None  # it could not check
    verdict: str = ""  # a few words: "OK, 68 acknowledged, 0 lost"


@dataclass(frozen=True)
class EndpointWrites:
    """An endpoint's acknowledged writes and how many of them a check covered.

    `verified` writes (the first ones, in time order) were covered by `check`, the last check
    that could run; the others, from `unverified_from` to `last_ts`, are NOT VERIFIED
    (`reason`: the error of a later check that could not run, if any).
    """

    endpoint: str
    acknowledged: int = 0
    first_ts: Optional[float] = None
    last_ts: Optional[float] = None
    verified: int = 0
    check: Optional[VerifyCheck] = None
    unverified_from: Optional[float] = None
    reason: Optional[str] = None

    @property
    def unverified(self) -> int:
        return max(0, self.acknowledged - self.verified)


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
    pauses: Tuple[Window, ...] = ()  # the dashboard paused (key p): no probe wrote, by the user's will
    verify_caveats: Tuple[Tuple[str, str], ...] = ()  # (endpoint, warning) of `verify` events
    checks: Tuple[VerifyCheck, ...] = ()  # the `verify` events, in order
    writes: Tuple[EndpointWrites, ...] = ()  # per endpoint: acknowledged, verified, NOT VERIFIED
    record_path: str = ""  # the record's file when known (named in `fiswatch verify FILE`)
    run: Optional[int] = None  # the run read (--run N), None when the record holds one
    runs: int = 1  # runs in the record
    unverified_reasons: Tuple[Tuple[str, str], ...] = ()  # (endpoint, why) from the run's "not verified" warnings
    lab_daemon: Tuple[Tuple[float, str], ...] = ()  # (ts, gone | back) of `lab_daemon` events: not failovers

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
        """The last failover of `endpoint` (see failovers_for for all of them)."""
        mine = failovers_for(self.failovers, endpoint, [p.endpoint for p in self.probes])
        return mine[-1][1] if mine else None

    def failover_number(self, failover: LabFailover) -> int:
        return next((n for n, f in enumerate(self.failovers, 1) if f is failover), 0)


def failover_target(endpoint: str) -> str:
    """The cluster whose failovers an endpoint goes through: the lab's RDS Proxy `aurora-proxy` fronts aurora.

    >>> failover_target("aurora-proxy"), failover_target("rds")
    ('aurora', 'rds')
    """
    return endpoint[:-len("-proxy")] if endpoint.endswith("-proxy") else endpoint


def failovers_for(failovers: Sequence[LabFailover], endpoint: str, endpoints: Sequence[str],
                  since: Optional[float] = None) -> List[Tuple[int, LabFailover]]:
    """(number, failover) of every failover of `endpoint`, in order (numbers are 1-based).

    A failover is the endpoint's when it targets it (`aurora-ro` is `aurora`'s reader name). Only when
    the run has one endpoint, named nothing the lab fails over (`watch --endpoint db=...` against the
    lab), are the run's failovers taken as its own. `since`: when the client was first seen; a
    failover over before that did not happen to it (a program started later).

    >>> fo = [LabFailover("aurora", False, 10.0, 10.0, 14.0), LabFailover("rds", False, 30.0, 30.0, 33.0)]
    >>> [n for n, _ in failovers_for(fo, "aurora", ["aurora"])], [n for n, _ in failovers_for(fo, "db", ["db"])]
    ([1], [1, 2])
    >>> [n for n, _ in failovers_for(fo, "db", ["db"], since=20.0)]
    [2]
    """
    base = failover_target(endpoint[:-3] if endpoint.endswith("-ro") else endpoint)
    mine = [(n, f) for n, f in enumerate(failovers, 1) if f.target == base
            or (f.target == "bluegreen" and base in ("aurora", "rds"))]  # a switchover: both
    if not mine and len(set(endpoints)) == 1 and base not in LAB_TARGETS:
        mine = list(enumerate(failovers, 1))  # one endpoint in the run: the failovers are its own
    if since is not None:
        mine = [(n, f) for n, f in mine if failover_end(f) >= since]
    return mine


LAB_TARGETS = ("aurora", "rds", "maz")  # what `fiswatch lab failover` fails over (lab/layout.py endpoints)


def failover_end(f: LabFailover) -> float:
    """When a failover was over: its outage's end, else its last step (still running: no end)."""
    if f.outage_end is not None:
        return f.outage_end
    steps = [ts for ts, step, _ in f.steps]
    return float("inf") if not any(step == "done" for _, step, _ in f.steps) else max(steps + [f.started])

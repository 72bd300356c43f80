"""The room as frozen state: what `fiswatch fleet` shows, built from CloudWatch samples.

Pure: `build_fleet(series, now, ...)` turns the samples fetched by fleet_data (per series
key, the per-second `state` and `write_gap` values published by `watch --cloudwatch`)
into a `Fleet`: one `HostRow` per host (its latest run), one `ProbeCell` per probe, and
`Totals` per probe column (endpoint/backend) and per backend. No clock, no AWS, no curses.

Definitions (docs/aws-workshop.md, "Instructor"):
- a probe is *silent* when its newest sample is older than `silent_after` seconds;
- its *write gap* is the time without a completed round (the `write_gap` metric);
- its *longest gap* is the largest write gap inside [since, now] (a gap that began
  before `since` counts from `since`; an open gap counts up to now);
- a probe *stalled* when any `state` sample since `since` was STALLED, and *never
  recovered* when its last report is still STALLED (silent or not).
"""
import statistics
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

STATE_NAMES = {0: "OK", 1: "STALLED", 2: "ERROR", 3: "RECONNECTING", 4: "CONNECTING", 5: "UNAVAILABLE",
               6: "STOPPED"}  # the `state` metric's values (fiswatch.aws.cloudwatch.STATE_CODES)
SILENT_AFTER = 30.0
ENDPOINT_ORDER = ("aurora", "rds")

Samples = Tuple[Tuple[float, float], ...]  # (unix ts, value), oldest first


@dataclass(frozen=True)
class ProbeSeries:
    """One probe's samples: the recent ones, plus what older samples (already folded away
    to keep memory flat over a long session) contributed to the statistics since `since`."""

    states: Samples = ()
    gaps: Samples = ()
    settled_gap: Optional[float] = None  # the longest gap among folded samples
    settled_stalled: bool = False  # a folded sample since `since` was STALLED


class SeriesKey(NamedTuple):
    """The dimensions of one probe's metrics in one run."""

    endpoint: str
    backend: str
    host: str
    run: str

    @property
    def probe(self) -> str:
        return "%s/%s" % (self.endpoint, self.backend)


@dataclass(frozen=True)
class ProbeCell:
    """One probe of one host's run, as of the newest sample."""

    probe: str
    endpoint: str
    backend: str
    state: str  # last reported: OK, STALLED, ERROR, RECONNECTING, CONNECTING, UNAVAILABLE, STOPPED
    silent: bool  # no sample for `silent_after` seconds
    last_seen: float  # ts of the newest sample
    last_write: Optional[float]  # when its last round completed (None: unknown / unavailable)
    longest_gap: Optional[float]  # largest write gap inside [since, now] (None: no gap data)
    stalled: bool  # STALLED at some point since `since`

    @property
    def never_recovered(self) -> bool:
        return self.stalled and self.state == "STALLED"

    @property
    def recovered(self) -> bool:
        return self.stalled and self.state != "STALLED"

    def age(self, now: float) -> float:
        """Seconds the condition shown has lasted: silent -> since the last sample; otherwise
        not writing -> since the last write (the open write gap); writing -> 0."""
        if self.silent:
            return max(0.0, now - self.last_seen)
        if self.state == "OK" or self.last_write is None:
            return 0.0
        return max(0.0, now - self.last_write)


@dataclass(frozen=True)
class HostRow:
    host: str
    run: str  # the run shown (the host's newest)
    runs: int  # runs of this host seen in the window (older ones are not shown)
    last_seen: float
    cells: Tuple[ProbeCell, ...]

    def cell(self, probe: str) -> Optional[ProbeCell]:
        for cell in self.cells:
            if cell.probe == probe:
                return cell
        return None


@dataclass(frozen=True)
class Totals:
    """The room's numbers for one probe column (`aurora/pymysql`) or one backend (`pymysql`)."""

    name: str
    probes: int
    writing: int
    stalled: int  # stalled at some point since `since`
    never_recovered: int  # ... and still STALLED at their last report
    erroring: int  # ERROR / RECONNECTING / CONNECTING now
    silent: int
    median_gap: Optional[float]  # median over probes of their longest gap
    worst_gap: Optional[float]
    worst_host: str = ""


@dataclass(frozen=True)
class Fleet:
    ts: float  # when the data was fetched
    window_start: float  # hosts with a sample since then are shown
    since: float  # start of the gap/stall statistics
    since_label: str
    columns: Tuple[str, ...]  # probe names, display order
    hosts: Tuple[HostRow, ...]
    totals: Tuple[Totals, ...]  # per column
    backends: Tuple[Totals, ...]  # per backend, all endpoints together
    notes: Tuple[str, ...] = ()  # problems of the last fetch (throttling, errors)
    api: Tuple[Tuple[str, int], ...] = ()  # API calls and metrics requested so far


def column_order(probes: Iterable[str]) -> Tuple[str, ...]:
    """aurora first, then rds, then other endpoints; backends alphabetically.

    >>> column_order(["rds/pymysql", "x/a", "aurora/pymysql", "aurora/mysql-connector"])
    ('aurora/mysql-connector', 'aurora/pymysql', 'rds/pymysql', 'x/a')
    """
    def key(probe: str) -> Tuple[int, str, str]:
        endpoint, _, backend = probe.partition("/")
        rank = ENDPOINT_ORDER.index(endpoint) if endpoint in ENDPOINT_ORDER else len(ENDPOINT_ORDER)
        return rank, endpoint, backend

    return tuple(sorted(set(probes), key=key))


def longest_gap(gaps: Samples, since: float, now: float, open_until_now: bool) -> Optional[float]:
    """The largest write gap inside [since, now] from per-second `write_gap` samples.

    >>> longest_gap(((10.0, 0.1), (11.0, 1.1), (12.0, 2.1), (13.0, 0.2)), 0.0, 14.0, False)
    2.1
    >>> longest_gap(((10.0, 5.0), (11.0, 6.0)), 8.0, 20.0, True)  # started before since, still open
    12.0
    """
    best: Optional[float] = None
    for ts, gap in gaps:
        if ts < since:
            continue
        value = min(gap, ts - since)
        best = value if best is None else max(best, value)
    if open_until_now and gaps:
        ts, gap = gaps[-1]
        value = min(gap + max(0.0, now - ts), now - since)
        best = value if best is None else max(best, value)
    return None if best is None else round(best, 3)


def probe_cell(key: SeriesKey, series: ProbeSeries, since: float, now: float,
               silent_after: float = SILENT_AFTER) -> Optional[ProbeCell]:
    """One probe's cell, or None when it has no sample at all."""
    states, gaps = series.states, series.gaps
    newest = [s[-1][0] for s in (states, gaps) if s]
    if not newest:
        return None
    last_seen = max(newest)
    state = STATE_NAMES.get(int(states[-1][1]), "ERROR") if states else "OK"
    silent = now - last_seen > silent_after
    last_write = round(gaps[-1][0] - gaps[-1][1], 3) if gaps else None
    open_gap = not silent and state != "OK"
    stalled = series.settled_stalled or any(value == 1 for ts, value in states if ts >= since)
    longest = longest_gap(gaps, since, now, open_gap)
    if series.settled_gap is not None:
        longest = series.settled_gap if longest is None else max(longest, series.settled_gap)
    return ProbeCell(probe=key.probe, endpoint=key.endpoint, backend=key.backend, state=state, silent=silent,
                     last_seen=last_seen, last_write=last_write, longest_gap=longest, stalled=stalled)


def _totals(name: str, cells: Sequence[Tuple[str, ProbeCell]]) -> Totals:
    gaps = [(cell.longest_gap, host) for host, cell in cells if cell.longest_gap is not None]
    worst = max(gaps) if gaps else None
    return Totals(
        name=name, probes=len(cells),
        writing=sum(1 for _, c in cells if not c.silent and c.state == "OK"),
        stalled=sum(1 for _, c in cells if c.stalled),
        never_recovered=sum(1 for _, c in cells if c.never_recovered),
        erroring=sum(1 for _, c in cells if not c.silent and c.state in ("ERROR", "RECONNECTING", "CONNECTING")),
        silent=sum(1 for _, c in cells if c.silent),
        median_gap=round(statistics.median(g for g, _ in gaps), 3) if gaps else None,
        worst_gap=worst[0] if worst else None, worst_host=worst[1] if worst else "")


def build_fleet(series: Mapping[SeriesKey, ProbeSeries], now: float, window_start: float,
                since: float, since_label: str = "", silent_after: float = SILENT_AFTER,
                notes: Sequence[str] = (), api: Sequence[Tuple[str, int]] = ()) -> Fleet:
    """The Fleet for `series`: hosts with a sample since `window_start`, statistics since `since`."""
    runs: Dict[str, Dict[str, List[SeriesKey]]] = {}
    newest: Dict[Tuple[str, str], float] = {}
    for key, probe in series.items():
        stamps = [s[-1][0] for s in (probe.states, probe.gaps) if s]
        if not stamps or max(stamps) < window_start:
            continue  # did not publish inside the window
        runs.setdefault(key.host, {}).setdefault(key.run, []).append(key)
        newest[(key.host, key.run)] = max(newest.get((key.host, key.run), 0.0), max(stamps))
    rows: List[HostRow] = []
    for host in sorted(runs):
        run = max(runs[host], key=lambda r: (newest[(host, r)], r))
        cells = []
        for key in runs[host][run]:
            cell = probe_cell(key, series[key], since, now, silent_after)
            if cell is not None:
                cells.append(cell)
        order = column_order(c.probe for c in cells)
        cells.sort(key=lambda c: order.index(c.probe))
        rows.append(HostRow(host=host, run=run, runs=len(runs[host]), last_seen=newest[(host, run)],
                            cells=tuple(cells)))
    columns = column_order(cell.probe for row in rows for cell in row.cells)
    per_column = [_totals(col, [(row.host, c) for row in rows for c in row.cells if c.probe == col])
                  for col in columns]
    backend_names = sorted({cell.backend for row in rows for cell in row.cells})
    per_backend = [_totals(b, [(row.host, c) for row in rows for c in row.cells if c.backend == b])
                   for b in backend_names]
    return Fleet(ts=now, window_start=window_start, since=since, since_label=since_label, columns=columns,
                 hosts=tuple(rows), totals=tuple(per_column), backends=tuple(per_backend), notes=tuple(notes),
                 api=tuple(api))

"""A band of probe columns under their endpoint headers: pure functions from ProbeViews to Lines.

Per column, top to bottom: backend and version, timeouts (or both on one line when the
screen is short: compact), state, address in use, detail, the newest rows, the sparkline.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from fiswatch.model import EndpointView, ProbeView, State
from fiswatch.ui import text as T
from fiswatch.ui.lines import BLANK, Line, UiState, greedy, text_line
from fiswatch.ui.sparkline import sparkline

PROBE_HEADER = 5  # backend, timeouts, state, address, detail
PROBE_HEADER_COMPACT = 4  # several bands and little height: backend and its key timeout share a line
SEPARATOR = "|"


def endpoint_header(name: str, ep: Optional[EndpointView], width: int) -> Line:
    parts: List[Tuple[str, str]] = [(name.upper(), "header")]
    if ep is not None:
        res = ep.resolution
        how = "dns" if res is None or res.source == "dns" else res.source  # literal | hosts
        if ep.down:  # the lab's daemon is gone: its DNS timeouts say nothing about a failover
            parts.append((" " + ep.down, "error"))
        elif res is not None and res.addresses:
            parts.append((" %s %s" % (how, ",".join(res.addresses)), "normal"))
        elif res is not None:
            parts.append((" %s %s" % (how, res.error or "empty"), "error"))
        if ep.previous_addresses and not ep.down:
            parts.append((" was %s" % ",".join(ep.previous_addresses), "warn"))
        if res is not None and res.ttl is not None and not ep.down:
            parts.append((" ttl %d" % res.ttl, "dim"))
        if ep.host and (res is None or ep.host not in res.addresses):
            parts.append((" " + ep.host, "dim"))
    return greedy(parts, width).pad(width)


def _stale(probe: ProbeView, ep: Optional[EndpointView]) -> bool:
    """Connected to an address DNS no longer gives: the old writer, read-only now."""
    addr = probe.snapshot.address
    res = ep.resolution if ep is not None else None
    if not addr or res is None or not res.addresses:
        return False
    return addr not in res.addresses


def probe_column(probe: ProbeView, ep: Optional[EndpointView], width: int, rows: int,
                 ui: UiState, now: float, compact: bool = False) -> List[Line]:
    """PROBE_HEADER (PROBE_HEADER_COMPACT) + rows + 1 lines, each exactly `width` wide."""
    snap, info = probe.snapshot, probe.info
    timeout_style = "warn" if T.read_timeout_unset(info) and info.available else "dim"
    if compact:
        lines: List[Line] = [backend_timeout_line(probe, width, timeout_style)]
    else:
        lines = [text_line(T.backend_candidates(probe), width, "header"),
                 text_line(T.timeouts_candidates(info), width, timeout_style)]
    if not info.available:
        lines.append(text_line(T.state_candidates(probe, now), width, "error").pad(width, "error"))
        reason = T.wrap(info.reason or "backend library not installed", width)
        body = (PROBE_HEADER_COMPACT if compact else PROBE_HEADER) - len(lines) + rows + 1
        lines += [Line.of(t, "error") for t in reason[:body]]
        lines += [BLANK] * (body - len(reason[:body]))
        return [line.pad(width) for line in lines]

    style = T.state_style(probe.state)
    state_line = text_line(T.state_candidates(probe, now), width, style)
    lines.append(state_line.pad(width, style) if probe.state == State.STALLED else state_line)

    stale = _stale(probe, ep)
    # a client that follows the cluster's topology is on the new writer before DNS says so
    mark = (" ahead" if info.follows_topology else " stale") if stale else ""
    candidates = T.address_candidates(snap.address, snap.previous_address)
    address = T.fit(candidates, width)
    if mark and len(T.fit(candidates, width - len(mark))) + len(mark) <= width:
        address = T.fit(candidates, width - len(mark)) + mark  # the mark outranks "was": detail shows that
    lines.append(Line.of(address, ("ok" if info.follows_topology else "warn") if stale
                         else ("normal" if snap.address else "dim")))
    if ep is not None and ep.down and probe.state is not State.OK:  # its errors are the lab's daemon gone
        lines.append(Line.of(T.truncate(ep.down + ": not a failover", width), "error"))
    else:
        lines.append(detail_line(probe, address, width))

    row_style = "normal" if probe.state == State.OK else "dim"
    shown = [Line.of(T.truncate(T.row_text(r), width), row_style) for r in snap.rows[:rows]]
    lines += shown + [BLANK] * (rows - len(shown))

    rate = "%.0f/s" % probe.ops_per_s
    spark_w = max(0, width - len(rate) - 1)
    spark = sparkline(probe.history, spark_w, ascii=not ui.unicode)
    lines.append(Line.of(spark, "ok" if probe.state == State.OK else "dim") + Line.of(" " + rate, "dim"))
    return [line.pad(width) for line in lines]


def backend_timeout_line(probe: ProbeView, width: int, timeout_style: str) -> Line:
    """The compact header: `aws-wrapper 3.1.0 socket 1s`, the library cut before the timeout."""
    key = T.key_timeout_text(probe.info)
    if not key or len(key) + 7 > width:
        return text_line(T.backend_candidates(probe), width, "header")
    room = width - len(key) - 1
    candidates = T.backend_candidates(probe)
    if len(probe.info.name) <= room:  # the whole name before a cut one with its version (80x24: 3 columns)
        candidates = [c for c in candidates if not isinstance(c, T.ShortLabel)]
    label = T.fit(candidates, room)
    return Line.of(label, "header") + Line.of(" " + key, timeout_style)


def detail_line(probe: ProbeView, address_shown: str, width: int) -> Line:
    snap = probe.snapshot
    if probe.state in (State.ERROR, State.RECONNECTING, State.CONNECTING) and snap.last_error is not None:
        return Line.of(T.truncate(snap.last_error.text(), width), "error")
    if snap.previous_address and snap.previous_address != snap.address and "was" not in address_shown:
        return Line.of(T.truncate("was " + snap.previous_address, width), "dim")
    counts = (snap.iterations, snap.errors, snap.reconnects)
    if snap.reads:  # who answered the reads and how far behind the writer it is (fiswatch.engine.readround)
        return text_line(read_candidates(probe), width, "dim")
    candidates = []
    if snap.failovers:  # a client that fails over by itself: its failovers, not reconnects
        fo = "%d failover%s" % (snap.failovers, "" if snap.failovers == 1 else "s")
        candidates += ["%d ok %d err %s" % (counts[0], counts[1], fo), "%d ok %s" % (counts[0], fo)]
    if probe.longest_stall > 0:
        candidates.append("%d ok %d err max %s" % (counts[0], counts[1], T.seconds(probe.longest_stall)))
    candidates += ["%d ok %d err %d reconn" % counts, "%d ok %d err" % counts[:2], "%d ok" % counts[0]]
    return text_line(candidates, width, "dim")


def read_candidates(probe: ProbeView) -> List[str]:
    """A read column's detail, longest first: `reads srv 5 lag 0 rows 120 ok` down to `srv 5`
    (`lag 3s`: seconds, from the reader's SHOW REPLICA STATUS; `lag 20ms`: Aurora's REPLICA_LAG_IN_MILLISECONDS;
    `lag 3`: rows behind the writer's probes)."""
    snap = probe.snapshot
    srv = "srv %s" % snap.server if snap.server else "srv ?"
    lag = "" if probe.behind is None else " lag %d" % probe.behind
    if isinstance(snap.lag_s, int):  # the reader's own lag in seconds (a Multi-AZ cluster reader's SHOW REPLICA STATUS)
        lag = " lag %ds" % snap.lag_s
    elif snap.lag_s:  # Aurora's topology lag (REPLICA_LAG_IN_MILLISECONDS); 0 there leaves the rows behind
        lag = " lag %dms" % round(snap.lag_s * 1000) if snap.lag_s < 10 else " lag %ds" % snap.lag_s
    return ["reads %s%s rows %d ok" % (srv, lag, snap.iterations), "reads %s%s %d ok" % (srv, lag, snap.iterations),
            "%s%s %d ok" % (srv, lag, snap.iterations), srv + lag, srv]


def band_lines(band: Sequence[ProbeView], endpoints: Dict[str, EndpointView], width: int,
               rows: int, topo: int, ui: UiState, now: float, compact: bool = False) -> List[Line]:
    if not band:
        return []
    n = len(band)
    colw = (width - (n - 1)) // n
    sep = Line.of(SEPARATOR, "dim")
    # endpoint groups: consecutive probes of the same endpoint share a header
    groups: List[Tuple[str, int]] = []
    for probe in band:
        name = probe.snapshot.endpoint
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1] + 1)
        else:
            groups.append((name, 1))
    header = BLANK
    topo_rows: List[Line] = [BLANK] * topo
    for i, (name, count) in enumerate(groups):
        gw = count * colw + (count - 1)
        ep = endpoints.get(name)
        if i:
            header = header + sep
            topo_rows = [row + sep for row in topo_rows]
        header = header + endpoint_header(name, ep, gw)
        lines_of = list(ep.topology) if ep is not None else []
        for j in range(topo):
            text = lines_of[j] if j < len(lines_of) else ""
            topo_rows[j] = topo_rows[j] + Line.of(T.truncate(text, gw), "dim").pad(gw)
    columns = [probe_column(p, endpoints.get(p.snapshot.endpoint), colw, rows, ui, now, compact) for p in band]
    out = [header] + topo_rows
    for r in range(len(columns[0])):
        line = BLANK
        for c, col in enumerate(columns):
            if c:
                line = line + sep
            line = line + col[r]
        out.append(line)
    return out

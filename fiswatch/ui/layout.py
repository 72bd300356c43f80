"""The dashboard as a pure function: View + terminal size + UI state -> styled lines.

Nothing here touches curses, a clock or a lock: `render()` gets everything it needs as
arguments, so a whole screen can be compared as text in a test.

Screen, top to bottom:
  title bar          fiswatch, clock, probe counts, PAUSED
  per band of columns (one column per probe, grouped by endpoint like the workshop's
  AURORA | RDS columns; more probes than fit side by side wrap into a second band):
    endpoint header  AURORA, the DNS answer now (and before the last change), TTL, host
    [topology]       writer/reader lines, when the height allows
    backend          library label and version (C extension / pure Python)
    timeouts         `read_timeout: none` = a silent failover blocks this probe forever
    state            OK 48 ops/s | STALLED 12.3s in INSERT | ERROR 2013 lost | ...
    address          the address the probe is connected to (was: the one before)
    detail           last error, previous address, or counters
    rows             the newest rows as (id, value), newest first
    sparkline        ops/s over the last seconds, a gap for each second without a round
  event log          the newest events (oldest on top), then status lines (lab, FIS)
  footer             keys, or the y/n question / message of the moment

Ages: a STALLED probe's age is `snapshot.in_flight_for(now)` with `now` =
time.monotonic() at render time (so it keeps counting between monitor ticks), never less
than the monitor's `probe.stalled_for`.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from fiswatch.model import EndpointView, ProbeView, State, View
from fiswatch.ui import text as T
from fiswatch.ui.sparkline import sparkline

MIN_WIDTH = 60
MIN_HEIGHT = 16
MIN_COLUMN = 18  # "read_timeout: none", "STALLED 12s INSERT", "(12345, 32767)"
MAX_ROWS = 10  # the workshop printed the 10 newest rows
MIN_ROWS = 5
MIN_ROWS_BANDED = 2  # when probes wrap into several bands, rows give way first
LOG_WANTED = 6  # event log lines (with its header) before rows grow past MIN_ROWS
LOG_MIN = 3  # event log lines (with its header) that topology lines never take
PROBE_HEADER = 5  # backend, timeouts, state, address, detail
SEPARATOR = "|"

STYLES = ("title", "header", "ok", "stalled", "error", "warn", "dim", "normal", "help")


@dataclass(frozen=True)
class UiState:
    """What the dashboard itself remembers between key presses."""

    paused: bool = False  # p pressed: the runner pauses the probes, or (without a 'pause'
    # action) the dashboard freezes its display on the last frame
    show_help: bool = False
    confirm: Optional[str] = None  # key of a binding awaiting y/n
    message: str = ""  # one line for the footer ("failover aurora? (y/n)", "cancelled")
    unicode: bool = True  # block characters for sparklines; False = ASCII only
    confirm_keys: Tuple[str, ...] = ()  # extra keys that ask y/n first (shown in the help)


@dataclass(frozen=True)
class Line:
    """One screen line as (text, style) segments."""

    segments: Tuple[Tuple[str, str], ...] = ()

    @classmethod
    def of(cls, text: str, style: str = "normal") -> "Line":
        return cls(((text, style),) if text else ())

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.segments)

    def __len__(self) -> int:
        return sum(len(t) for t, _ in self.segments)

    def clip(self, width: int) -> "Line":
        """At most `width` characters; segments past the edge are cut."""
        out: List[Tuple[str, str]] = []
        room = max(0, width)
        for text, style in self.segments:
            if room <= 0:
                break
            piece = text[:room]
            if piece:
                out.append((piece, style))
            room -= len(piece)
        return Line(tuple(out))

    def pad(self, width: int, style: Optional[str] = None) -> "Line":
        """Exactly `width` characters: clipped, then padded with spaces."""
        line = self.clip(width)
        missing = width - len(line)
        if missing <= 0:
            return line
        if style is None:
            style = "normal"
        return Line(line.segments + ((" " * missing, style),))

    def __add__(self, other: "Line") -> "Line":
        return Line(self.segments + other.segments)


BLANK = Line()


def render(view: View, width: int, height: int, ui: UiState, now: float) -> List[Line]:
    """The whole screen: never more than `height` lines, none wider than `width`."""
    if width <= 0 or height <= 0:
        return []
    need = size_problem(len(view.probes), width, height)
    if need is not None:
        return too_small(width, height, need[0], need[1])
    if ui.show_help:
        lines = [title_line(view, ui, width)] + help_lines(view, width, ui.confirm_keys)
        lines = lines[: height - 1]
        lines += [BLANK] * (height - 1 - len(lines))
        lines.append(footer_line(view, ui, width))
        return _finish(lines, width, height)
    lines = [title_line(view, ui, width)]
    body = height - 2
    bands = split_bands(view.probes, width)
    fixed = PROBE_HEADER + 2  # + endpoint header + sparkline
    spare = body - fixed * len(bands)
    nb = max(1, len(bands))
    # AWS topology (the writer moving between AZs) outranks rows beyond MIN_ROWS; the
    # event log keeps at least LOG_MIN lines, else the topology gives way
    topo = min(3, max([len(ep.topology) for ep in view.endpoints] or [0]))
    rows = max(min_rows(len(bands)), min(MAX_ROWS, (spare - topo * nb - LOG_WANTED) // nb))
    if topo and spare - (rows + topo) * nb < LOG_MIN:
        topo = 0
        rows = max(min_rows(len(bands)), min(MAX_ROWS, (spare - LOG_WANTED) // nb))
    log = spare - (rows + topo) * nb
    endpoints = {ep.name: ep for ep in view.endpoints}
    if not view.probes:
        lines.append(Line.of("no probes: give --endpoint and --backend", "warn"))
        log = body - 1
    for band in bands:
        lines += band_lines(band, endpoints, width, rows, topo, ui, now)
    lines += log_lines(view, width, log)
    lines.append(footer_line(view, ui, width))
    return _finish(lines, width, height)


def _finish(lines: List[Line], width: int, height: int) -> List[Line]:
    lines = [line.clip(width) for line in lines[:height]]
    return lines + [BLANK] * (height - len(lines))


def size_problem(probes: int, width: int, height: int) -> Optional[Tuple[int, int]]:
    """None if `probes` columns fit in width x height, else the size to ask for.

    Columns that do not fit side by side wrap into bands, each needing its own height;
    the size asked for is the one that fits every probe in one band.
    """
    one_band = probes * MIN_COLUMN + max(0, probes - 1)
    need = (max(MIN_WIDTH, one_band), MIN_HEIGHT)
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return need
    bands = len(split_bands([None] * probes, width))  # type: ignore[list-item]
    if height < 4 + bands * (PROBE_HEADER + 2 + min_rows(bands)):
        return need
    return None


def min_rows(bands: int) -> int:
    return MIN_ROWS if bands <= 1 else MIN_ROWS_BANDED


def split_bands(probes: Sequence[ProbeView], width: int) -> List[Tuple[ProbeView, ...]]:
    """Probes in display order, cut into bands of as many columns as the width holds."""
    per_band = max(1, (width + 1) // (MIN_COLUMN + 1))
    probes = tuple(probes)
    return [probes[i:i + per_band] for i in range(0, len(probes), per_band)] or [()]


def too_small(width: int, height: int, need_w: int, need_h: int) -> List[Line]:
    """One centred message instead of a broken screen."""
    message = "terminal too small (%dx%d): need at least %dx%d; enlarge it or run with --plain" % (
        width, height, need_w, need_h)
    parts = [message] if len(message) <= width else T.wrap(message, width)
    top = max(0, (height - len(parts)) // 2)
    lines = [BLANK] * top
    for part in parts:
        lines.append(Line.of(" " * max(0, (width - len(part)) // 2) + part, "warn"))
    return _finish(lines, width, height)


def _count_states(view: View) -> List[Tuple[str, str]]:
    counts: Dict[State, int] = {}
    for probe in view.probes:
        counts[probe.state] = counts.get(probe.state, 0) + 1
    out = []
    for state in State:
        if counts.get(state):
            out.append(("%d %s" % (counts[state], state.value), T.state_style(state)))
    return out


def title_line(view: View, ui: UiState, width: int) -> Line:
    segs: List[Tuple[str, str]] = [(" fiswatch %s " % T.clock(view.ts), "title")]
    for text, style in _count_states(view):
        segs.append((" ", "title"))
        segs.append((text, style if style in ("stalled", "error") else "title"))
    if ui.paused or view.paused:
        label = " PAUSED " if view.paused else " PAUSED (display frozen, probes running) "
        right = Line.of(T.truncate(label, max(0, width - 20)), "stalled")
        left = Line(tuple(segs)).clip(max(0, width - len(right)))
        return left.pad(width - len(right), "title") + right
    return Line(tuple(segs)).pad(width, "title")


def footer_line(view: View, ui: UiState, width: int) -> Line:
    keys = [("q", "quit"), ("p", "resume" if ui.paused or view.paused else "pause"), ("?", "help")] + list(view.keys)
    key_text = "  ".join("%s %s" % (k, label) for k, label in keys)
    if ui.message:
        style = "warn" if ui.confirm else "normal"
        msg = T.truncate(ui.message, width)
        rest = width - len(msg) - 3
        line = Line.of(msg, style)
        if rest > 10:
            line = line + Line.of("   " + T.truncate(key_text, rest), "help")
        return line
    return Line.of(T.truncate(key_text, width), "help")


def _text_line(candidates: Sequence[str], width: int, style: str) -> Line:
    return Line.of(T.fit(candidates, width), style)


def _greedy(parts: Sequence[Tuple[str, str]], width: int) -> Line:
    """Add (text, style) parts in order while they fit whole; the first one is cut if needed."""
    out: List[Tuple[str, str]] = []
    used = 0
    for i, (text, style) in enumerate(parts):
        text = T.clean(text)
        if i == 0:
            text = T.truncate(text, width)
        elif used + len(text) > width:
            continue
        out.append((text, style))
        used += len(text)
    return Line(tuple(out))


def endpoint_header(name: str, ep: Optional[EndpointView], width: int) -> Line:
    parts: List[Tuple[str, str]] = [(name.upper(), "header")]
    if ep is not None:
        res = ep.resolution
        how = "dns" if res is None or res.source == "dns" else res.source  # literal | hosts
        if res is not None and res.addresses:
            parts.append((" %s %s" % (how, ",".join(res.addresses)), "normal"))
        elif res is not None:
            parts.append((" %s %s" % (how, res.error or "empty"), "error"))
        if ep.previous_addresses:
            parts.append((" was %s" % ",".join(ep.previous_addresses), "warn"))
        if res is not None and res.ttl is not None:
            parts.append((" ttl %d" % res.ttl, "dim"))
        if ep.host and (res is None or ep.host not in res.addresses):
            parts.append((" " + ep.host, "dim"))
    return _greedy(parts, width).pad(width)


def _stale(probe: ProbeView, ep: Optional[EndpointView]) -> bool:
    """Connected to an address DNS no longer gives: the old writer, read-only now."""
    addr = probe.snapshot.address
    res = ep.resolution if ep is not None else None
    if not addr or res is None or not res.addresses:
        return False
    return addr not in res.addresses


def probe_column(probe: ProbeView, ep: Optional[EndpointView], width: int, rows: int,
                 ui: UiState, now: float) -> List[Line]:
    """PROBE_HEADER + rows + 1 lines, each exactly `width` wide."""
    snap, info = probe.snapshot, probe.info
    lines: List[Line] = [_text_line(T.backend_candidates(probe), width, "header")]
    if not info.available:
        lines.append(_text_line(T.timeouts_candidates(info), width, "dim"))
        lines.append(_text_line(T.state_candidates(probe, now), width, "error").pad(width, "error"))
        reason = T.wrap(info.reason or "backend library not installed", width)
        body = PROBE_HEADER - 3 + rows + 1
        lines += [Line.of(t, "error") for t in reason[:body]]
        lines += [BLANK] * (body - len(reason[:body]))
        return [line.pad(width) for line in lines]

    lines.append(_text_line(T.timeouts_candidates(info), width,
                            "warn" if T.read_timeout_unset(info) else "dim"))
    style = T.state_style(probe.state)
    state_line = _text_line(T.state_candidates(probe, now), width, style)
    lines.append(state_line.pad(width, style) if probe.state == State.STALLED else state_line)

    address = T.fit(T.address_candidates(snap.address, snap.previous_address), width)
    stale = _stale(probe, ep)
    if stale and len(address) + 6 <= width:
        address += " stale"
    lines.append(Line.of(address, "warn" if stale else ("normal" if snap.address else "dim")))
    lines.append(detail_line(probe, address, width))

    row_style = "normal" if probe.state == State.OK else "dim"
    shown = [Line.of(T.truncate(T.row_text(r), width), row_style) for r in snap.rows[:rows]]
    lines += shown + [BLANK] * (rows - len(shown))

    rate = "%.0f/s" % probe.ops_per_s
    spark_w = max(0, width - len(rate) - 1)
    spark = sparkline(probe.history, spark_w, ascii=not ui.unicode)
    lines.append(Line.of(spark, "ok" if probe.state == State.OK else "dim") + Line.of(" " + rate, "dim"))
    return [line.pad(width) for line in lines]


def detail_line(probe: ProbeView, address_shown: str, width: int) -> Line:
    snap = probe.snapshot
    if probe.state in (State.ERROR, State.RECONNECTING, State.CONNECTING) and snap.last_error is not None:
        return Line.of(T.truncate(snap.last_error.text(), width), "error")
    if snap.previous_address and snap.previous_address != snap.address and "was" not in address_shown:
        return Line.of(T.truncate("was " + snap.previous_address, width), "dim")
    counts = (snap.iterations, snap.errors, snap.reconnects)
    candidates = []
    if probe.longest_stall > 0:
        candidates.append("%d ok %d err max %s" % (counts[0], counts[1], T.seconds(probe.longest_stall)))
    candidates += ["%d ok %d err %d reconn" % counts, "%d ok %d err" % counts[:2], "%d ok" % counts[0]]
    return _text_line(candidates, width, "dim")


def band_lines(band: Sequence[ProbeView], endpoints: Dict[str, EndpointView], width: int,
               rows: int, topo: int, ui: UiState, now: float) -> List[Line]:
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
    columns = [probe_column(p, endpoints.get(p.snapshot.endpoint), colw, rows, ui, now) for p in band]
    out = [header] + topo_rows
    for r in range(len(columns[0])):
        line = BLANK
        for c, col in enumerate(columns):
            if c:
                line = line + sep
            line = line + col[r]
        out.append(line)
    return out


def log_lines(view: View, width: int, count: int) -> List[Line]:
    """The event log pane: a rule, the newest events (oldest on top), then the status lines."""
    if count <= 0:
        return []
    head = "-- events "
    out = [Line.of(head + "-" * max(0, width - len(head)), "dim")]
    room = count - 1
    status = [Line.of(T.truncate(s, width), "warn") for s in view.status]
    if room >= 2:
        status = status[: room - 1]
    else:
        status = status[:room]
    room -= len(status)
    events = T.loggable(view.events)[-room:] if room > 0 else []
    for ev in events:
        stamp = T.clock(ev.ts) + " "
        out.append(Line.of(stamp, "dim") + Line.of(T.truncate(T.event_text(ev), width - len(stamp)),
                                                   T.event_style(ev)))
    out += status
    out += [BLANK] * (count - len(out))
    return out


def help_lines(view: View, width: int, confirm_keys: Sequence[str] = ()) -> List[Line]:
    keys = [("q, Ctrl-C", "quit; the terminal is restored and a summary printed"),
            ("p", "pause/resume the probes (or freeze the display only)"),
            ("?, Esc", "show/hide this help")]
    keys += [(k, label + (" (asks y/n)" if k in confirm_keys else "")) for k, label in view.keys]
    out = [Line.of("Keys", "header")]
    out += [Line.of("  %-10s " % k, "help") + Line.of(label) for k, label in keys]
    out.append(BLANK)
    out.append(Line.of("States", "header"))
    legend = [
        (State.OK, "rounds of INSERT, COMMIT, SELECT complete"),
        (State.STALLED, "a driver call has run too long: its age and the call"),
        (State.ERROR, "the last call failed: MySQL error code and kind"),
        (State.RECONNECTING, "opening a new connection after an error"),
        (State.CONNECTING, "resolving the name, opening the first connection"),
        (State.UNAVAILABLE, "the backend's library is not installed"),
    ]
    for state, label in legend:
        out.append(Line.of("  ") + Line.of("%-12s" % state.value, T.state_style(state)) + Line.of(" " + label))
    out.append(BLANK)
    out.append(Line.of("Each column", "header"))
    for text in ("header: endpoint, its DNS answer now (was = before the change), TTL, host",
                 "backend + version; timeouts (read none: a silent server hangs it forever)",
                 "state; address in use (was = the one before; stale = DNS points elsewhere now)",
                 "newest rows (id, value); ops/s sparkline, a gap = a second without a round"):
        out.append(Line.of("  " + text, "dim"))
    return [line.clip(width) for line in out]

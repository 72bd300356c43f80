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
  program            --exec: the user's program measured from the wire, a line per endpoint
                     (fiswatch.ui.program), taken from the event log's lines
  event log          the newest events (oldest on top), then status lines (lab, FIS)
  footer             keys, or the y/n question / message of the moment

Ages: a STALLED probe's age is `snapshot.in_flight_for(now)` with `now` =
time.monotonic() at render time (so it keeps counting between monitor ticks), never less
than the monitor's `probe.stalled_for`.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from fiswatch.model import ProbeView, State, View
from fiswatch.ui import event_text as ET, text as T
from fiswatch.ui.columns import (PROBE_HEADER, PROBE_HEADER_COMPACT, SEPARATOR, band_lines,  # noqa: F401
                                 detail_line, endpoint_header, probe_column)
from fiswatch.ui.lines import BLANK, STYLES, Line, UiState  # noqa: F401
from fiswatch.ui.program import program_lines

MIN_WIDTH = 60
MIN_HEIGHT = 16
MIN_COLUMN = 18  # "read_timeout: none", "STALLED 12s INSERT", "(12345, 32767)"
MAX_ROWS = 10  # the workshop printed the 10 newest rows
MIN_ROWS = 5
MIN_ROWS_BANDED = 3  # when probes wrap into several bands, rows give way first
LOG_WANTED = 6  # event log lines (with its header) before rows grow past MIN_ROWS
LOG_MIN = 3  # event log lines (with its header) that topology lines never take


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
    topo = min(3, max([len(ep.topology) for ep in view.endpoints] or [0]))
    header, rows, topo, log = heights(body, len(bands), topo)
    endpoints = {ep.name: ep for ep in view.endpoints}
    if not view.probes:
        lines.append(Line.of("no probes: give --endpoint and --backend", "warn"))
        log = body - 1
    for band in bands:
        lines += band_lines(band, endpoints, width, rows, topo, ui, now, compact=header == PROBE_HEADER_COMPACT)
    if view.programs:  # the program measured from the wire (--exec): lines taken from the event log
        programs = program_lines(view.programs, width, max(1, min(len(view.programs), log - LOG_MIN)))
        lines += programs
        log -= len(programs)
    lines += log_lines(view, width, log)
    lines.append(footer_line(view, ui, width))
    return _finish(lines, width, height)


def heights(body: int, bands: int, topo: int) -> Tuple[int, int, int, int]:
    """(probe header lines, rows, topology lines, event log lines) for `bands` bands in `body` lines.

    AWS topology (the writer moving between AZs) outranks rows beyond MIN_ROWS; the event
    log keeps at least LOG_MIN lines, else the topology gives way. With several bands and
    too little height for MIN_ROWS rows, each column's backend and key timeout share a line.

    >>> heights(22, 1, 0)  # 80x24, one band
    (5, 9, 0, 6)
    >>> heights(22, 2, 0)  # 80x24, the demo's Aurora band over its RDS band
    (4, 3, 0, 4)
    >>> heights(28, 1, 0)  # 120x30
    (5, 10, 0, 11)
    """
    nb = max(1, bands)
    plan = (PROBE_HEADER, 0, 0, 0)
    for header in (PROBE_HEADER, PROBE_HEADER_COMPACT):
        spare = body - (header + 2) * nb  # + endpoint header + sparkline
        t = topo
        rows = max(min_rows(nb), min(MAX_ROWS, (spare - t * nb - LOG_WANTED) // nb))
        if t and spare - (rows + t) * nb < LOG_MIN:
            t = 0
            rows = max(min_rows(nb), min(MAX_ROWS, (spare - LOG_WANTED) // nb))
        plan = (header, rows, t, spare - (rows + t) * nb)
        if nb == 1 or rows >= MIN_ROWS:
            break
    return plan


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
    header = PROBE_HEADER if bands <= 1 else PROBE_HEADER_COMPACT
    if height < 4 + bands * (header + 2 + min_rows(bands)):
        return need
    return None


def min_rows(bands: int) -> int:
    return MIN_ROWS if bands <= 1 else MIN_ROWS_BANDED


def split_bands(probes: Sequence[ProbeView], width: int) -> List[Tuple[ProbeView, ...]]:
    """Probes in display order, cut into bands of as many columns as the width holds.

    An endpoint's columns stay together in one band (the demo's three Aurora columns over
    its two RDS ones) when that takes no more bands than cutting wherever a band is full.
    """
    per_band = max(1, (width + 1) // (MIN_COLUMN + 1))
    probes = tuple(probes)
    greedy = [probes[i:i + per_band] for i in range(0, len(probes), per_band)] or [()]
    grouped: List[Tuple[ProbeView, ...]] = []
    for group in _endpoint_groups(probes):
        if grouped and len(grouped[-1]) + len(group) <= per_band:
            grouped[-1] = grouped[-1] + group
        else:
            for i in range(0, len(group), per_band):
                grouped.append(group[i:i + per_band])
    return grouped if grouped and len(grouped) <= len(greedy) else greedy


def _endpoint_groups(probes: Tuple[ProbeView, ...]) -> List[Tuple[ProbeView, ...]]:
    """Runs of consecutive probes of the same endpoint (placeholders: one run each)."""
    groups: List[Tuple[ProbeView, ...]] = []
    last = object()
    for probe in probes:
        name = probe.snapshot.endpoint if probe is not None else object()
        if groups and name == last:
            groups[-1] = groups[-1] + (probe,)
        else:
            groups.append((probe,))
        last = name
    return groups


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
    events = ET.loggable(view.events)[-room:] if room > 0 else []
    for ev in events:
        stamp = T.clock(ev.ts) + " "
        out.append(Line.of(stamp, "dim") + Line.of(T.truncate(ET.event_text(ev), width - len(stamp)),
                                                   ET.event_style(ev)))
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
                 "state; address in use (was = the one before; stale = DNS points elsewhere now;",
                 "  ahead = a topology-aware client is on the new writer before DNS points there)",
                 "newest rows (id, value); ops/s sparkline, a gap = a second without a round"):
        out.append(Line.of("  " + text, "dim"))
    return [line.clip(width) for line in out]

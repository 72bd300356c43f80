"""The room on screen, as pure functions: Fleet + size + UI state + now -> lines.

    fiswatch fleet 03:51:12  30 hosts  since 03:40:00 (window start)    1-16/30
    HOST                AURORA              RDS
                        mysql-con pymysql   mysql-con pymysql
    alice               STALL 4m03 writing  writing   writing
    ...
    ROOM since 03:40:00  probes ok stall still err silent  med gap max gap
    aurora/mysql-connector   30  2    28    28   0      0    4m03    4m10 bob
    ...
     q quit  space/b page  up/down scroll  ? help              API 24 calls 8640 metrics

`render()` feeds the curses painter (fiswatch.ui.shell.paint), `plain_lines()` the
--plain output (every host, no paging), `fleet_event()` the --json `fleet` event.
Nothing here touches curses, a clock or AWS.
"""
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.aws.fleet_model import Fleet, ProbeCell, Totals
from fiswatch.ui import text as T
from fiswatch.ui.layout import BLANK, Line, UiState

MIN_WIDTH, MIN_HEIGHT = 60, 12
HOST_MAX = 20
CELL_MIN, CELL_MAX = 8, 16
STATUS = {"OK": "writing", "STALLED": "stalled", "ERROR": "erroring", "RECONNECTING": "erroring",
          "CONNECTING": "connecting", "UNAVAILABLE": "unavailable", "STOPPED": "stopped"}
STYLE = {"writing": "ok", "stalled": "stalled", "erroring": "error", "connecting": "warn", "silent": "dim",
         "unavailable": "dim", "stopped": "dim"}
SHORT_BACKEND = {"mysql-connector": "connector", "aws-wrapper": "wrapper"}
HELP = (
    "Each row is a host (its newest fiswatch run), each column a probe (endpoint/backend).",
    "writing       the probe completed a round in its last reported second",
    "STALL 4m03    a driver call has hung that long (no write since)",
    "ERROR 12s     errors/reconnects, no write for that long",
    "silent 45s    no metric from that probe for that long (fiswatch stopped?)",
    "-             this host has no such probe",
    "host*         this host ran fiswatch more than once: the row is its newest run",
    "ROOM: probes, ok = writing now, stall = stalled since the start, still = stalled",
    "and never recovered, err = erroring now, med/max gap = median and worst of each",
    "probe's longest write gap since the start (`--since`).",
    "Keys: q quit, space/PgDn next page, b/PgUp back, up/down/j/k scroll, ? or Esc",
)


@dataclass(frozen=True)
class FleetUi:
    """The fleet screen's own state: the shared UiState (help, pause, message) plus scrolling."""

    base: UiState = UiState()
    top: int = 0  # first host row shown


def status_of(cell: ProbeCell) -> str:
    """writing | stalled | erroring | connecting | unavailable | stopped | silent."""
    return "silent" if cell.silent else STATUS.get(cell.state, "erroring")


def duration(seconds: Optional[float]) -> str:
    """
    >>> duration(3.4), duration(63), duration(243), duration(4000), duration(None)
    ('3.4s', '63s', '4m03', '1h06', '-')
    """
    if seconds is None:
        return "-"
    if seconds < 10:
        return "%.1fs" % seconds
    if seconds < 100:
        return "%ds" % int(seconds)
    if seconds < 3600:
        return "%dm%02d" % (int(seconds) // 60, int(seconds) % 60)
    return "%dh%02d" % (int(seconds) // 3600, int(seconds) % 3600 // 60)


def cell_text(cell: Optional[ProbeCell], now: float, width: int) -> Tuple[str, str]:
    """(text, style) of one cell, no wider than `width`."""
    if cell is None:
        return "-", "dim"
    status = status_of(cell)
    age = duration(cell.age(now))
    if status == "writing":
        candidates = ["writing", "ok"]
    elif status == "stalled":
        candidates = ["STALLED %s" % age, "STALL %s" % age, "ST %s" % age, "STALL"]
    elif status == "erroring":
        word = "RECONN" if cell.state == "RECONNECTING" else "ERROR"
        candidates = ["%s %s" % (word, age), "ERR %s" % age, "ERR"]
    elif status == "silent":
        was = {"STALLED": " STALL", "OK": "", "ERROR": " ERR"}.get(cell.state, "")
        candidates = ["silent %s%s" % (age, was), "silent %s" % age, "sil %s" % age, "silent"]
    else:
        candidates = [status, status[:4]]
    return T.fit(candidates, width), STYLE.get(status, "normal")


def _widths(fleet: Fleet, width: int) -> Tuple[int, int, int]:
    """(host width, cell width, columns shown)."""
    hostw = max([4] + [len(row.host) for row in fleet.hosts])
    hostw = min(HOST_MAX, hostw) + 1
    columns = max(1, len(fleet.columns))
    cellw = max(CELL_MIN, min(CELL_MAX, (width - hostw) // columns))
    shown = max(1, min(len(fleet.columns), (width - hostw) // cellw))
    return hostw, cellw, shown


def header_lines(fleet: Fleet, width: int) -> List[Line]:
    hostw, cellw, shown = _widths(fleet, width)
    top: List[Tuple[str, str]] = [("HOST".ljust(hostw), "header")]
    bottom: List[Tuple[str, str]] = [(" " * hostw, "header")]
    last_endpoint = None
    for probe in fleet.columns[:shown]:
        endpoint, _, backend = probe.partition("/")
        head = endpoint.upper() if endpoint != last_endpoint else ""
        last_endpoint = endpoint
        top.append((T.truncate(head, cellw - 1).ljust(cellw), "header"))
        short = [backend] + ([SHORT_BACKEND[backend]] if backend in SHORT_BACKEND else [])
        bottom.append((T.fit(short, cellw - 1).ljust(cellw), "header"))
    return [Line(tuple(top)).clip(width), Line(tuple(bottom)).clip(width)]


def host_line(fleet: Fleet, index: int, width: int, now: float) -> Line:
    hostw, cellw, shown = _widths(fleet, width)
    row = fleet.hosts[index]
    name = row.host + ("*" if row.runs > 1 else "")
    segs: List[Tuple[str, str]] = [(T.truncate(name, hostw - 1).ljust(hostw), "normal")]
    for probe in fleet.columns[:shown]:
        text, style = cell_text(row.cell(probe), now, cellw - 1)
        segs.append((text, style))
        segs.append((" " * (cellw - len(text)), "normal"))
    return Line(tuple(segs)).clip(width)


def totals_lines(fleet: Fleet, width: int, rows: Sequence[Totals]) -> List[Line]:
    namew = min(22, max([4] + [len(t.name) for t in rows]))
    head = "%-*s %6s %3s %5s %5s %3s %6s %7s %7s" % (namew, "ROOM", "probes", "ok", "stall", "still", "err",
                                                     "silent", "med gap", "max gap")
    lines = [Line.of(head, "header").clip(width)]
    for t in rows:
        text = "%-*s %6d %3d %5d %5d %3d %6d %7s %7s" % (
            namew, T.truncate(t.name, namew), t.probes, t.writing, t.stalled, t.never_recovered, t.erroring,
            t.silent, duration(t.median_gap), duration(t.worst_gap))
        if t.worst_host and len(text) + 1 + len(t.worst_host) <= width:
            text += " " + T.clean(t.worst_host)  # whole or not at all: a cut instance id names nobody
        style = "stalled" if t.never_recovered else ("error" if t.erroring else "normal")
        lines.append(Line.of(text, style).clip(width))
    return lines


def title_line(fleet: Fleet, width: int, first: int, last: int, ui: FleetUi) -> Line:
    since = "since %s" % T.clock(fleet.since)
    if fleet.since_label and fleet.since_label not in since:
        since += " (%s)" % T.clean(fleet.since_label)
    rows = " %d-%d/%d " % (first + 1, last, len(fleet.hosts)) if fleet.hosts else " "
    left = " fiswatch fleet %s  %d hosts  %s%s" % (T.clock(fleet.ts), len(fleet.hosts), since,
                                                   "  PAUSED" if ui.base.paused else "")
    hidden = len(fleet.columns) - _widths(fleet, width)[2]
    if hidden > 0:
        left += "  +%d columns: widen or --plain" % hidden
    room = max(0, width - len(rows))
    return Line((((T.truncate(left, room)).ljust(room), "title"), (rows[: width - room], "title")))


def footer_line(fleet: Fleet, ui: FleetUi, width: int) -> Line:
    if ui.base.message:
        return Line.of(T.truncate(ui.base.message, width), "warn")
    if fleet.notes:
        return Line.of(T.truncate(fleet.notes[-1], width), "warn")
    keys = " q quit  space/b page  up/down scroll  ? help"
    api = dict(fleet.api)
    cost = "API %d calls %d metrics " % (api.get("GetMetricData", 0) + api.get("ListMetrics", 0),
                                         api.get("metrics_requested", 0))
    if len(keys) + len(cost) + 1 <= width:
        return Line((((keys.ljust(width - len(cost))), "help"), (cost, "dim")))
    return Line.of(T.truncate(keys, width), "help")


def page_rows(fleet: Fleet, height: int) -> int:
    """How many host rows fit: height minus title, 2 headers, totals, footer."""
    return max(1, height - 4 - (1 + len(fleet.totals)))


def clamp(ui: FleetUi, fleet: Fleet, height: int) -> FleetUi:
    rows = page_rows(fleet, height)
    top = max(0, min(ui.top, max(0, len(fleet.hosts) - rows)))
    return ui if top == ui.top else replace(ui, top=top)


def render(fleet: Fleet, width: int, height: int, ui: FleetUi, now: float) -> List[Line]:
    """The whole screen: exactly `height` lines, none wider than `width`."""
    if width <= 0 or height <= 0:
        return []
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        message = "terminal too small (%dx%d): need %dx%d, or use --plain" % (width, height, MIN_WIDTH, MIN_HEIGHT)
        lines = [BLANK] * (height // 2) + [Line.of(T.truncate(message, width), "warn")]
        return _finish(lines, width, height)
    ui = clamp(ui, fleet, height)
    rows = page_rows(fleet, height)
    first, last = ui.top, min(len(fleet.hosts), ui.top + rows)
    lines = [title_line(fleet, width, first, last, ui)]
    if ui.base.show_help:
        lines += [Line.of(T.truncate(text, width), "help") for text in HELP]
    else:
        lines += header_lines(fleet, width)
        if not fleet.hosts:
            lines.append(Line.of(T.truncate("no fiswatch host published in the window: is `fiswatch watch "
                                            "--cloudwatch` running (same region)?", width), "warn"))
        lines += [host_line(fleet, i, width, now) for i in range(first, last)]
    lines = lines[: height - 2 - len(fleet.totals)]
    lines += [BLANK] * (height - 2 - len(fleet.totals) - len(lines))
    lines += totals_lines(fleet, width, fleet.totals)
    lines.append(footer_line(fleet, ui, width))
    return _finish(lines, width, height)


def _finish(lines: List[Line], width: int, height: int) -> List[Line]:
    lines = [line.clip(width) for line in lines[:height]]
    return lines + [BLANK] * (height - len(lines))


def plain_lines(fleet: Fleet, width: int, now: float) -> List[str]:
    """Every host and the totals as text, no line wider than `width` (for --plain)."""
    ui = FleetUi()
    lines = [title_line(fleet, width, 0, len(fleet.hosts), ui).text.rstrip()]
    lines += [line.text.rstrip() for line in header_lines(fleet, width)]
    if not fleet.hosts:
        lines.append(T.truncate("no fiswatch host published in the window", width))
    lines += [host_line(fleet, i, width, now).text.rstrip() for i in range(len(fleet.hosts))]
    lines += [line.text.rstrip() for line in totals_lines(fleet, width, fleet.totals)]
    lines += [T.truncate("note: " + note, width) for note in fleet.notes]
    return lines


def _cell_dict(cell: ProbeCell, now: float) -> Dict[str, Any]:
    return {"endpoint": cell.endpoint, "backend": cell.backend, "status": status_of(cell), "state": cell.state,
            "for_s": round(cell.age(now), 1), "last_seen": round(cell.last_seen, 3),
            "last_write": None if cell.last_write is None else round(cell.last_write, 3),
            "longest_gap_s": cell.longest_gap, "stalled": cell.stalled, "never_recovered": cell.never_recovered}


def _totals_dict(t: Totals) -> Dict[str, Any]:
    return {"probes": t.probes, "writing": t.writing, "stalled": t.stalled, "never_recovered": t.never_recovered,
            "erroring": t.erroring, "silent": t.silent, "median_gap_s": t.median_gap, "worst_gap_s": t.worst_gap,
            "worst_host": t.worst_host or None}


def fleet_event(fleet: Fleet, now: float) -> Dict[str, Any]:
    """The `fleet` event of --json (docs/events.md)."""
    return {
        "ts": round(now, 3), "event": E.FLEET, "window_start": round(fleet.window_start, 3),
        "since": round(fleet.since, 3), "since_label": fleet.since_label, "columns": list(fleet.columns),
        "hosts": [{"host": row.host, "run": row.run, "runs": row.runs, "last_seen": round(row.last_seen, 3),
                   "probes": {cell.probe: _cell_dict(cell, now) for cell in row.cells}} for row in fleet.hosts],
        "totals": {t.name: _totals_dict(t) for t in fleet.totals},
        "backends": {t.name: _totals_dict(t) for t in fleet.backends},
        "api": dict(fleet.api),
    }


def fleet_changes(old: Optional[Fleet], new: Fleet, now: float) -> List[Dict[str, Any]]:
    """`fleet_state` events: every probe whose status differs from the previous read
    (a host new to the room has `previous` null). Nothing for the first read."""
    if old is None:
        return []
    before = {(row.host, cell.probe): status_of(cell) for row in old.hosts for cell in row.cells}
    out = []
    for row in new.hosts:
        for cell in row.cells:
            status = status_of(cell)
            previous = before.get((row.host, cell.probe))
            if status != previous:
                out.append({"ts": round(now, 3), "event": E.FLEET_STATE, "host": row.host, "run": row.run,
                            "probe": cell.probe, "endpoint": cell.endpoint, "backend": cell.backend,
                            "status": status, "previous": previous, "for_s": round(cell.age(now), 1)})
    return out


PAGE_KEYS = {" ": "page_down", "KEY_NPAGE": "page_down", "b": "page_up", "KEY_PPAGE": "page_up",
             "j": "down", "KEY_DOWN": "down", "k": "up", "KEY_UP": "up", "g": "home", "KEY_HOME": "home",
             "G": "end", "KEY_END": "end"}


def handle_key(key: str, ui: FleetUi, fleet: Fleet, height: int) -> Tuple[FleetUi, Optional[str]]:
    """Scrolling keys move `top`; everything else goes to the shared key handler (q, p, ?, Esc).

    >>> from fiswatch.aws.fleet_model import build_fleet
    >>> empty = build_fleet({}, 0.0, 0.0, 0.0)
    >>> handle_key("q", FleetUi(), empty, 24)[1]
    'quit'
    >>> handle_key(" ", FleetUi(), empty, 24)[0].top  # nothing to scroll
    0
    """
    from fiswatch.ui.keys import handle_key as shared_key

    move = PAGE_KEYS.get(key)
    if move is None:
        base, action = shared_key(key, ui.base)
        return replace(ui, base=base), action
    rows = page_rows(fleet, height)
    step = {"page_down": rows, "page_up": -rows, "down": 1, "up": -1, "home": -len(fleet.hosts),
            "end": len(fleet.hosts)}[move]
    return clamp(replace(ui, top=ui.top + step), fleet, height), None

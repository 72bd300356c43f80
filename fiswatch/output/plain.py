"""Plain text output: the workshop's two-column screen, rebuilt from a View.

    AURORA                         RDS
    10.0.89.224                    10.0.95.247
    (7711, 2282)                   (5419, 15189)
    ...

One 30-character column per endpoint when each endpoint has one probe (exactly the
workshop's layout); one column per probe, headed `AURORA pymysql`, when several backends
run (narrower than 30 when the width asks for it). After the rows, one state line per probe:
`aurora/mysql-connector  STALLED 12.3s in INSERT  read_timeout: none`.
The runner prints these lines every second; `plain_wanted()` says when to choose it.
"""
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from fiswatch import events as E
from fiswatch.model import Event, ProbeView, State, View
from fiswatch.ui import event_text as ET, text as T
from fiswatch.ui.program import program_text

COLUMN = 30  # the workshop printed "%-30s"
MAX_ROWS = 10


def plain_wanted(stream: Any = None, env: Optional[Mapping[str, str]] = None) -> bool:
    """True when the dashboard cannot or should not run: stdout not a TTY, or TERM dumb/unset.

    >>> import io
    >>> plain_wanted(io.StringIO(), {"TERM": "xterm"})
    True
    """
    stream = sys.stdout if stream is None else stream
    env = os.environ if env is None else env
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    term = env.get("TERM", "")
    return not tty or term in ("", "dumb")


def _per_endpoint(view: View) -> bool:
    seen: Dict[str, int] = {}
    for probe in view.probes:
        seen[probe.snapshot.endpoint] = seen.get(probe.snapshot.endpoint, 0) + 1
    return all(count == 1 for count in seen.values())


def _row(cells: Sequence[str], colw: int, width: int) -> str:
    """Cells padded to `colw` (each cut to leave one space), the line cut to `width`."""
    out = "".join(T.truncate(cell, colw - 1).ljust(colw) for cell in cells)
    return out[:width].rstrip()


def _address(probe: ProbeView, view: View, colw: int) -> str:
    snap = probe.snapshot
    address = snap.address
    if not address:
        for ep in view.endpoints:
            if ep.name == snap.endpoint and ep.resolution is not None and ep.resolution.address:
                address = ep.resolution.address
    if not probe.info.available:
        return "UNAVAILABLE"
    return T.fit(T.address_candidates(address, snap.previous_address), colw - 1)


def plain_lines(view: View, width: int = 80) -> List[str]:
    """The workshop's text for one frame, no line wider than `width`."""
    probes = list(view.probes)
    if not probes:
        return ["no probes"]
    n = len(probes)
    colw = max(8, min(COLUMN, width // n))
    lines: List[str] = []
    if _per_endpoint(view):
        lines.append(_row([p.snapshot.endpoint.upper() for p in probes], colw, width))
    else:
        heads = ["%s %s" % (p.snapshot.endpoint.upper(), p.snapshot.backend) for p in probes]
        if all(len(h) <= colw - 1 for h in heads):
            lines.append(_row(heads, colw, width))
        else:  # too narrow for both words: endpoint over backend
            lines.append(_row([p.snapshot.endpoint.upper() for p in probes], colw, width))
            lines.append(_row([p.snapshot.backend for p in probes], colw, width))
    lines.append(_row([_address(p, view, colw) for p in probes], colw, width))
    depth = max(min(MAX_ROWS, len(p.snapshot.rows)) for p in probes)
    for i in range(depth):
        cells = [T.row_text(p.snapshot.rows[i]) if i < len(p.snapshot.rows) else "" for p in probes]
        lines.append(_row(cells, colw, width))
    name_w = max(len(p.probe) for p in probes)
    for p in probes:
        lines.append(T.truncate(state_line(p, name_w, max(10, width - name_w - 2)), width).rstrip())
    for program in view.programs:  # --exec: the program measured from the wire
        lines.append(T.truncate(program_text(program), width).rstrip())
    lines += [T.truncate(line, width).rstrip() for line in view.status]  # e.g. the lab's daemon gone
    return lines


def state_line(probe: ProbeView, name_width: int = 0, state_width: int = 60) -> str:
    """`aurora/mysql-connector  STALLED 12.3s in INSERT  read_timeout: none`."""
    name = probe.probe.ljust(name_width)
    if not probe.info.available:
        return "%s  UNAVAILABLE: %s" % (name, probe.info.reason or "backend library not installed")
    state = T.state_text(probe, state_width)
    extra = []
    if probe.state == State.STALLED or T.read_timeout_unset(probe.info):
        extra.append(T.read_timeout_text(probe.info))
    err = probe.snapshot.last_error
    if probe.state in (State.ERROR, State.RECONNECTING) and err is not None and err.message:
        extra.append(err.message)
    elif probe.state == State.CONNECTING and err is not None and err.message:
        # retrying after a failed attempt (a wrong password, a refused port): say what failed, as the
        # dashboard does, not a bare CONNECTING that reads as "nearly there" for a whole run
        extra.append("retrying after: %s" % err.message)
    return "  ".join([name, state] + [e for e in extra if e])


def warning_sink(write_line: Callable[[str], None],
                 muted: Callable[[str], bool] = lambda message: False) -> Callable[[View, List[Event]], None]:
    """A runner sink that hands every `warning` event's message to `write_line` (stderr with --plain).

    With --plain the screen is the workshop's columns; warnings raised during the run (a
    CloudWatch publish failure, a topology error, an --exec failure, writes not verified)
    would otherwise reach only the record. `muted(message)` skips one already said (or a
    stderr nobody reads any more).
    """
    def sink(view: View, events: List[Event]) -> None:
        for ev in events:
            if ev.event == E.WARNING or (ev.event == E.LAB_DAEMON and ev.get("state") == "gone"):
                message = ev.get("message")
                if message and not muted(str(message)):
                    write_line("warning: %s" % message)
    return sink


def plain_event_line(ev: Event) -> str:
    """One event for a log: `16:02:11 aurora/mysql-connector OK -> STALLED (INSERT)`."""
    return "%s %s" % (T.clock(ev.ts), ET.event_text(ev))

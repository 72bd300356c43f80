"""Events as short screen lines: a table from kind to formatter, one small pure function each.

The dashboard's event pane and the plain output's log lines both come from `event_text` and
`event_style`; a kind without a formatter shows as `kind field=value ...`. The kinds are
fiswatch.events' constants.
"""
from typing import Callable, Iterable, List, Mapping, Union

from fiswatch import events as E
from fiswatch.model import Event, State
from fiswatch.ui.text import state_style


def _addresses(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "(empty)"
    return str(value) or "(empty)"


def _state_text(ev: Event) -> str:
    g = ev.get
    text = "%s %s -> %s" % (g("probe", "?"), g("previous") or "-", g("state", "?"))
    if g("op"):
        text += " (%s)" % g("op")
    if g("error"):
        text += " %s" % g("error")
    return text


def _dns_text(ev: Event) -> str:
    g = ev.get
    addresses = g("addresses")
    now = g("error") if g("error") and not addresses else _addresses(addresses)
    text = "dns %s %s -> %s" % (g("endpoint", "?"), _addresses(g("previous")), now)
    if g("cname"):
        text += " cname %s" % g("cname")
    return text


def _error_text(ev: Event) -> str:
    g = ev.get
    code = g("code")
    head = "%s %s" % (code, g("kind", "")) if code is not None else str(g("kind", "error"))
    text = "%s error %s" % (g("probe", "?"), head.strip())
    if g("op"):
        text += " in %s" % g("op")
    if g("message"):
        text += ": %s" % g("message")
    return text


def _connect_text(ev: Event) -> str:
    return "%s connected to %s:%s" % (ev.get("probe", "?"), ev.get("address", "?"), ev.get("port", "?"))


def _write_text(ev: Event) -> str:
    return "%s wrote (%s, %s)" % (ev.get("probe", "?"), ev.get("id", "?"), ev.get("value", "?"))


def _write_in_doubt_text(ev: Event) -> str:
    g = ev.get
    text = "%s write IN DOUBT (%s, %s)" % (g("probe", "?"), g("id", "?"), g("value", "?"))
    if g("error"):
        text += " %s" % g("error")
    return text


def _failover_text(ev: Event) -> str:
    """A client that fails over by itself (aws-wrapper) did."""
    g = ev.get
    text = "%s failed over %s -> %s" % (g("probe", "?"), g("from") or "?", g("to") or "?")
    if g("seconds") is not None:
        text += " in %.1fs" % g("seconds")
    if g("op"):
        text += " (in %s)" % g("op")
    if g("write_in_doubt"):
        text += ", its COMMIT in doubt"
    elif g("in_transaction"):
        text += ", uncommitted write dropped"
    return text


def _lab_text(ev: Event) -> str:
    text = "lab %s: %s" % (ev.get("target", "?"), ev.get("step", "?"))
    if ev.get("detail"):
        text += " %s" % ev.get("detail")
    return text


def _topology_text(ev: Event) -> str:
    lines = ev.get("lines") or ()
    return "topology %s: %s" % (ev.get("endpoint", "?"), "; ".join(str(x) for x in lines) or "(none)")


def _experiment_text(ev: Event) -> str:
    g = ev.get
    text = "FIS %s %s: %s" % (g("experiment_id", "?"), g("target", ""), g("state", "?"))
    if g("reason"):
        text += " (%s)" % g("reason")
    return " ".join(text.split())


def _info_text(ev: Event) -> str:
    return str(ev.get("message", ""))


def _warning_text(ev: Event) -> str:
    return "warning: " + str(ev.get("message", ""))


def _verify_text(ev: Event) -> str:
    g = ev.get
    if g("error"):
        return "verify %s: not verified (%s)" % (g("endpoint", "?"), g("error"))
    if g("ok"):
        return "verify %s: OK, %s acknowledged writes all there" % (g("endpoint", "?"), g("acknowledged", "?"))
    ids = ", ".join(str(i) for i in (g("lost_ids") or ())[:5])
    return "verify %s: %s LOST, %s changed of %s acknowledged%s" % (
        g("endpoint", "?"), g("lost", "?"), g("changed", "?"), g("acknowledged", "?"),
        " (ids %s...)" % ids if ids else "")


def _run_start_text(ev: Event) -> str:
    probes = ev.get("probes") or ()
    return "run started: %d probe%s" % (len(probes), "" if len(probes) == 1 else "s")


def _summary_text(ev: Event) -> str:
    return "run ended"


def _fields_text(ev: Event) -> str:
    """A kind without a formatter (tick, run_stop, an unknown one): `kind field=value ...`."""
    rest = " ".join("%s=%s" % (k, v) for k, v in ev.fields)
    return ("%s %s" % (ev.event, rest)).strip()


EVENT_TEXT: Mapping[str, Callable[[Event], str]] = {
    E.STATE: _state_text, E.DNS: _dns_text, E.ERROR: _error_text, E.CONNECT: _connect_text,
    E.WRITE: _write_text, E.WRITE_IN_DOUBT: _write_in_doubt_text, E.FAILOVER: _failover_text, E.LAB: _lab_text,
    E.TOPOLOGY: _topology_text, E.EXPERIMENT: _experiment_text, E.INFO: _info_text, E.WARNING: _warning_text,
    E.VERIFY: _verify_text, E.RUN_START: _run_start_text, E.SUMMARY: _summary_text,
    E.LAB_DAEMON: lambda ev: str(ev.get("message", "")),
}


def event_text(ev: Event) -> str:
    """One event as a short human line, without the timestamp."""
    return EVENT_TEXT.get(ev.event, _fields_text)(ev)


def _state_event_style(ev: Event) -> str:
    try:
        return state_style(State(ev.get("state")))
    except ValueError:
        return "normal"


def _verify_style(ev: Event) -> str:
    return "ok" if ev.get("ok") else "error"


# a style name, or a function of the event when its fields decide
EVENT_STYLE: Mapping[str, Union[str, Callable[[Event], str]]] = {
    E.STATE: _state_event_style, E.VERIFY: _verify_style,
    E.ERROR: "error", E.WRITE_IN_DOUBT: "error",
    E.DNS: "warn", E.LAB: "warn", E.TOPOLOGY: "warn", E.EXPERIMENT: "warn", E.WARNING: "warn", E.LAB_DAEMON: "error",
    E.CONNECT: "ok", E.FAILOVER: "ok",
}


def event_style(ev: Event) -> str:
    style = EVENT_STYLE.get(ev.event, "normal")
    return style if isinstance(style, str) else style(ev)


def loggable(events: Iterable[Event]) -> List[Event]:
    """The events worth a line in the event pane (fiswatch.events.QUIET are not)."""
    return [ev for ev in events if ev.event not in E.QUIET]

"""Short texts shared by the dashboard and the plain output: pure functions, no curses.

Every function that takes a `width` returns text no wider than it. Texts that come from
outside (error messages, host names) are cleaned of control characters first.
"""
import time
from typing import Iterable, List, Optional, Sequence

from fiswatch.model import DEMOTED_WRITER, BackendInfo, ProbeView, State

ELLIPSIS = "~"


def clean(text: object) -> str:
    """`text` as one printable line: control characters become spaces.

    >>> clean("lost\\nconnection\\t1")
    'lost connection 1'
    """
    out = []
    for ch in str(text):
        if ch == "\t" or ch == "\n" or ch == "\r":
            out.append(" ")
        elif ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0:
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def truncate(text: str, width: int) -> str:
    """`text` cut to `width`, the cut marked with a trailing '~'.

    >>> truncate("read_timeout: none", 10)
    'read_time~'
    >>> truncate("ok", 10)
    'ok'
    """
    text = clean(text)
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return text[:1]
    return text[: width - 1] + ELLIPSIS


def fit(candidates: Iterable[str], width: int) -> str:
    """The first candidate that fits in `width`, else the last one truncated.

    >>> fit(["STALLED 12.3s in INSERT", "STALLED 12s INSERT"], 19)
    'STALLED 12s INSERT'
    """
    last = ""
    for text in candidates:
        if isinstance(text, ShortLabel):
            short = text.within(width)
            if short:
                return clean(short)
            continue
        last = clean(text)
        if len(last) <= width:
            return last
    return truncate(last, width)


def wrap(text: str, width: int) -> List[str]:
    """Greedy word wrap into lines of at most `width` (long words are cut).

    >>> wrap("pymysql not installed: pip install PyMySQL", 20)
    ['pymysql not', 'installed: pip', 'install PyMySQL']
    """
    if width <= 0:
        return []
    lines: List[str] = []
    current = ""
    for word in clean(text).split():
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not word:
            continue
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def seconds(value: float) -> str:
    """A duration the way the state line shows it.

    >>> seconds(3.04), seconds(12.34), seconds(123.4), seconds(4000)
    ('3.0s', '12.3s', '123s', '66m')
    """
    if value < 100:
        return "%.1fs" % value
    if value < 1000:
        return "%.0fs" % value
    return "%dm" % int(value // 60)


def short_seconds(value: float) -> str:
    """
    >>> short_seconds(12.34), short_seconds(123.4)
    ('12s', '123s')
    """
    if value < 1000:
        return "%ds" % int(value)
    return "%dm" % int(value // 60)


def stall_age(probe: ProbeView, now: Optional[float] = None) -> float:
    """How long the call in flight has run.

    With `now` (time.monotonic()) and a snapshot that knows when its call began, the age is
    exact at render time; otherwise the monitor's `stalled_for` is used.
    """
    snap = probe.snapshot
    if now is not None and snap.op is not None and snap.op_started is not None:
        return max(probe.stalled_for, snap.in_flight_for(now))
    return probe.stalled_for


def state_candidates(probe: ProbeView, now: Optional[float] = None) -> List[str]:
    """The state line, longest first: `STALLED 12.3s in INSERT` ... `STALLED`."""
    state = probe.state
    snap = probe.snapshot
    op = str(snap.op) if snap.op is not None else ""
    if state == State.STALLED:
        age = stall_age(probe, now)
        out = []
        if op:
            out += ["STALLED %s in %s" % (seconds(age), op), "STALLED %s %s" % (seconds(age), op),
                    "STALLED %s %s" % (short_seconds(age), op)]
        out += ["STALLED %s" % seconds(age), "STALLED %s" % short_seconds(age), "STALLED"]
        return out
    if state == State.OK:
        rate = "%.0f ops/s" % probe.ops_per_s
        # one round: INSERT + COMMIT + SELECT (the connect time is not part of it)
        lat = [v for k, v in snap.latency if k in ("INSERT", "COMMIT", "SELECT")]
        total = sum(lat) if lat else None
        out = []
        if total is not None:
            out.append("OK %s %.0fms" % (rate, total * 1000))
        out += ["OK %s" % rate, "OK %.0f/s" % probe.ops_per_s, "OK"]
        return out
    if state in (State.ERROR, State.RECONNECTING):
        name = "ERROR" if state == State.ERROR else "RECONNECTING"
        if snap.last_error is not None and snap.last_error.kind == DEMOTED_WRITER:
            return demoted_candidates(snap.last_error.code)
        out = []
        if snap.last_error is not None:
            out.append("%s %s" % (name, snap.last_error.short()))
        out.append(name)
        if state == State.RECONNECTING:
            out.append("RECONNECT")
        return out
    if state == State.CONNECTING:
        age = snap.in_flight_for(now) if now is not None else probe.stalled_for
        if op and age >= 0.5:
            return ["CONNECTING %s %s" % (seconds(age), op), "CONNECTING %s" % seconds(age), "CONNECTING"]
        return ["CONNECTING", "CONNECT"]
    if state == State.UNAVAILABLE:
        return ["UNAVAILABLE", "N/A"]
    return [str(state.value)]


def demoted_candidates(code: Optional[int]) -> List[str]:
    """A probe whose writes a former writer refuses as read-only (1290/1836), longest first.

    Shown while it errs and reconnects: the same line on every retry, since every retry
    lands there again as long as the name leads there.

    >>> demoted_candidates(1290)[0]
    'writes refused 1290: on a demoted writer'
    >>> min(len(text) for text in demoted_candidates(1290))
    12
    """
    return ["writes refused %s: on a demoted writer" % code, "writes refused %s: demoted writer" % code,
            "refused %s: demoted writer" % code, "%s on a demoted writer" % code, "%s demoted writer" % code,
            "%s demoted" % code]


def state_text(probe: ProbeView, width: int = 80, now: Optional[float] = None) -> str:
    return fit(state_candidates(probe, now), width)


def state_style(state: State) -> str:
    """The style name a state is painted with (see screen.py for what each looks like)."""
    return {
        State.OK: "ok",
        State.STALLED: "stalled",
        State.ERROR: "error",
        State.RECONNECTING: "warn",
        State.CONNECTING: "warn",
        State.UNAVAILABLE: "error",
        State.STOPPED: "dim",
    }.get(state, "normal")


SHORT_KEYS = {"connect": "conn"}


def timeouts_candidates(info: BackendInfo) -> List[str]:
    """`connect 1s read none write none` ... `read_timeout: none`: the read timeout matters most."""
    if not info.timeouts:
        return ["timeouts: unknown", "timeouts ?"]
    full = info.timeouts_text()
    short = " ".join("%s %s" % (SHORT_KEYS.get(key, key), "none" if val is None else "%gs" % val)
                     for key, val in info.timeouts)
    out = [full, short]
    key = _read_key(info)
    if key:
        val = info.timeout(key)
        val_text = "none" if val is None else "%gs" % val
        out += ["%s_timeout: %s" % (key, val_text), "%s_timeout %s" % (key, val_text), "%s %s" % (key, val_text)]
    return out


READ_KEYS = ("read", "socket")  # the timeout that bounds a wait for the server's answer (aws-wrapper: socket)


def _read_key(info: BackendInfo) -> str:
    keys = [key for key, _ in info.timeouts]
    return next((key for key in READ_KEYS if key in keys), "")


def key_timeout_text(info: BackendInfo) -> str:
    """`read none` / `socket 1s`: the one timeout that decides whether a silent failover hangs."""
    key = _read_key(info)
    if not key:
        return ""
    val = info.timeout(key)
    return "%s %s" % (key, "none" if val is None else "%gs" % val)


def read_timeout_text(info: BackendInfo) -> str:
    """`read_timeout: none` / `read_timeout: 1s`, or '' when the backend does not say."""
    if "read" not in [key for key, _ in info.timeouts]:
        return ""
    val = info.timeout("read")
    return "read_timeout: %s" % ("none" if val is None else "%gs" % val)


def read_timeout_unset(info: BackendInfo) -> bool:
    """True when the backend reads without a timeout: a silent failover hangs it forever."""
    key = _read_key(info)
    return bool(key) and info.timeout(key) is None


class ShortLabel(str):
    """`mysql-connec~ 26.10`: a label cut so that the version still fits (decided in fit())."""

    label: str
    version: str

    def __new__(cls, label: str, version: str) -> "ShortLabel":
        obj = str.__new__(cls, "%s %s" % (label, version))
        obj.label, obj.version = label, version
        return obj

    def within(self, width: int) -> str:
        room = width - len(self.version) - 1
        if room < 6:
            return ""
        return "%s %s" % (truncate(self.label, room), self.version)


def backend_candidates(probe: ProbeView) -> List[str]:
    """`mysql-connector 9.4.0 C extension` ... `mysql-connector`."""
    info = probe.info
    label = probe.snapshot.backend or info.name
    out = []
    if info.available and info.version and info.version != "-":
        if info.notes:
            out.append("%s %s %s" % (label, info.version, info.notes))
        out.append("%s %s" % (label, info.version))
        major_minor = ".".join(info.version.split(".")[:2])
        if major_minor != info.version:
            out.append("%s %s" % (label, major_minor))
        if label != info.name:  # options are shown by the timeouts line anyway, but for extra plugins
            plugins = plugins_word(label)
            if plugins:  # `aws-wrapper bg 3.1`: the plugin decides what a switchover does to it
                out += ["%s %s %s" % (info.name, plugins, major_minor), "%s %s" % (info.name, plugins)]
            out += ["%s %s" % (info.name, info.version), "%s %s" % (info.name, major_minor)]
        # a cut name still leaves room for the version, which says what the library can do
        out.append(ShortLabel(info.name, major_minor))
    out.append(label)
    if label != info.name:
        if plugins_word(label):  # also when the library is missing: the column says what was asked
            out.append("%s %s" % (info.name, plugins_word(label)))
        out.append(info.name)
    tls = tls_word(probe.snapshot.tls)
    if tls:  # the TLS in use outranks the notes, not the version
        out = [c + " " + tls for c in out if isinstance(c, str)][:3] + out
    return out


def plugins_word(label: str) -> str:
    """The plugins a backend label adds to the wrapper's default failover plugin, '' for none.

    >>> plugins_word("aws-wrapper:plugins=bg+failover_v2"), plugins_word("aws-wrapper"), plugins_word("x:a=1")
    ('bg', '', '')
    """
    _, _, options = label.partition(":")
    plugins = dict(o.partition("=")[::2] for o in options.split(",") if o).get("plugins", "")
    return "+".join(p for p in plugins.replace(",", "+").split("+") if p and p != "failover_v2")


def tls_word(tls: Optional[str]) -> str:
    """What the header says about the connection's TLS: `TLSv1.3`, `plain`; '' before a connect.

    >>> tls_word('TLSv1.3'), tls_word('plain'), tls_word('?'), tls_word(None)
    ('TLSv1.3', 'plain', 'TLS?', '')
    """
    if not tls:
        return ""
    return "TLS?" if tls == "?" else tls


def address_candidates(address: Optional[str], previous: Optional[str]) -> List[str]:
    """
    >>> address_candidates("10.0.1.2", "10.0.1.1")
    ['10.0.1.2 (was 10.0.1.1)', '10.0.1.2 was 10.0.1.1', '10.0.1.2']
    """
    if not address:
        return ["(no address)", "-"]
    if previous and previous != address:
        return ["%s (was %s)" % (address, previous), "%s was %s" % (address, previous), address]
    return [address]


def row_text(row: Sequence[int]) -> str:
    """A row the way the workshop printed it.

    >>> row_text((7711, 2282))
    '(7711, 2282)'
    """
    return "(%s)" % ", ".join(str(v) for v in row)


def clock(ts: float) -> str:
    """Local wall-clock time of a unix timestamp, HH:MM:SS."""
    return time.strftime("%H:%M:%S", time.localtime(ts))

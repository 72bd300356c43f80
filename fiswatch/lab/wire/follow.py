"""Follow a program's writes on the wire while it runs beside the demo (`fiswatch demo --exec`).

Once a second the lab's ledger is read (the daemon's `wire` control command); the processes of
the program (the `lab exec` process and its descendants) are merged per endpoint, and a change
of state goes to the event log as one line:

  writing             acknowledged writes in the last second (with ops/s and the instance)
  no acknowledged write for N s   (with what the wire saw: dropped connections, the last error code)
  writes refused 1290 on a demoted writer   (ERR 1290/1836 since the last acknowledged write)

When the demo stops, `wire_client` events carry the program's writes into the record, so the
end summary and `fiswatch report` give it a row beside the probes (report/build.py).
"""
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.model import Event, ProgramView

POLL = 1.0


def state_of(track: Dict[str, Any], now: float, previous_acked: int, interval: float) -> Tuple[str, str]:
    """(class, text) of one endpoint of the program. Pure.

    >>> state_of({"acked": 30, "segments": [[0.0, 9.9]], "last_refused": None}, 10.0, 20, 1.0)
    ('writing', 'writing, 10 ops/s')
    >>> state_of({"acked": 30, "segments": [[0.0, 5.0]], "last_refused": 9.0}, 10.0, 30, 1.0)[0]
    'refused'
    >>> state_of({"acked": 30, "segments": [[0.0, 5.0]], "last_error": [2013, 6.0], "dropped": 2}, 10.0, 30, 1.0)
    ('erroring', 'erroring 2013, no acknowledged write for 5 s (2 dropped connections)')
    >>> state_of({"acked": 30, "segments": [[0.0, 5.0]], "last_dropped": 6.0, "dropped": 1}, 10.0, 30, 1.0)[1]
    'erroring (connection dropped), no acknowledged write for 5 s (1 dropped connections)'
    >>> state_of({"acked": 30, "segments": [[0.0, 5.0]]}, 10.0, 30, 1.0)
    ('silent', 'no acknowledged write for 5 s')
    """
    segments = track.get("segments") or []
    last_ack = segments[-1][1] if segments else None
    refused = track.get("last_refused")
    if refused is not None and (last_ack is None or refused > last_ack):
        return "refused", "writes refused 1290 on a demoted writer (%d refused)" % track.get("refused", 0)
    if last_ack is not None and now - last_ack <= max(1.0, interval):
        return "writing", "writing, %d ops/s" % round((track.get("acked", 0) - previous_acked) / max(interval, 1e-3))
    since = "no acknowledged write for %d s" % (now - last_ack) if last_ack is not None else "no acknowledged write yet"
    why = []
    if track.get("dropped"):
        why.append("%d dropped connections" % track["dropped"])
    error = track.get("last_error")
    dropped = track.get("last_dropped")
    after = -1.0 if last_ack is None else last_ack
    if error and error[1] > after:
        return "erroring", "erroring %s, %s" % (error[0], since) + (" (%s)" % ", ".join(why) if why else "")
    if dropped is not None and dropped > after:
        return "erroring", "erroring (connection dropped), %s" % since + (" (%s)" % ", ".join(why) if why else "")
    if error:
        why.append("last error %s" % error[0])
    return "silent", since + (" (%s)" % ", ".join(why) if why else "")


def program_view(name: str, endpoint: str, track: Dict[str, Any], now: float, previous_acked: int,
                 interval: float, instance: str = "") -> ProgramView:
    """The program's column on one endpoint, from its merged track. Pure.

    >>> v = program_view("mysql", "aurora", {"acked": 30, "segments": [[0.0, 9.9]]}, 10.0, 20, 1.0, "aurora-1")
    >>> v.kind, v.ops_per_s, v.acked, v.instance
    ('writing', 10.0, 30, 'aurora-1')
    >>> program_view("mysql", "aurora", {"acked": 3, "segments": [[0.0, 4.0]]}, 10.0, 3, 1.0).silent_for
    6.0
    """
    kind, text = state_of(track, now, previous_acked, interval)
    segments = track.get("segments") or []
    last_ack = segments[-1][1] if segments else None
    error = track.get("last_error")
    ops = (track.get("acked", 0) - previous_acked) / max(interval, 1e-3) if kind == "writing" else 0.0
    return ProgramView(name=name, endpoint=endpoint, kind=kind, text=text, ops_per_s=round(max(0.0, ops), 1),
                       acked=int(track.get("acked", 0)), refused=int(track.get("refused", 0)),
                       silent_for=round(now - last_ack, 1) if last_ack is not None and kind != "writing" else 0.0,
                       error=int(error[0]) if error else None, instance=instance)


def latest_instances(clients: Sequence[Dict[str, Any]]) -> Dict[str, str]:
    """endpoint -> the instance reached by the program's process that wrote there last. Pure.

    >>> latest_instances([{"last_instance": "aurora-1", "endpoints": {"aurora": {"segments": [[1, 2]]}}},
    ...                   {"last_instance": "aurora-2", "endpoints": {"aurora": {"segments": [[3, 4]]}}}])
    {'aurora': 'aurora-2'}
    """
    best: Dict[str, Tuple[float, str]] = {}
    for c in clients:
        for endpoint, track in (c.get("endpoints") or {}).items():
            segments = track.get("segments") or []
            when = max([segments[-1][1] if segments else -1.0, track.get("last_refused") or -1.0,
                        (track.get("last_error") or [0, -1.0])[1]])
            if c.get("last_instance") and (endpoint not in best or when >= best[endpoint][0]):
                best[endpoint] = (when, c["last_instance"])
    return {e: v[1] for e, v in best.items()}


def cut_after(track: Dict[str, Any], stopped_at: float) -> None:
    """Forget the faults at or after `stopped_at` (the program stopped by fiswatch) in a merged track.

    >>> t = {"faults": [1.0, 5.0], "last_error": [2013, 5.0], "last_dropped": 5.0, "dropped": 2}
    >>> cut_after(t, 4.0); t["faults"], t["last_error"], t["last_dropped"]
    ([1.0], None, None)
    """
    track["faults"] = [f for f in track.get("faults") or () if f < stopped_at]
    if track.get("last_error") and track["last_error"][1] >= stopped_at:
        track["last_error"] = None
    if track.get("last_dropped") is not None and track["last_dropped"] >= stopped_at:
        track["last_dropped"] = None


class ProgramBoard:
    """What the monitor reads, like a probe's snapshot: the program's columns, one frozen tuple swapped whole."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.snapshot: Tuple[ProgramView, ...] = (ProgramView(name=name, endpoint=""),)


class WireFollower:
    """A thread reading the ledger for the processes under `root_pid`; emits events through `emit`."""

    def __init__(self, lab_dir: str, root_pid: int, name: str, emit: Callable[[Event], None],
                 board: Optional[ProgramBoard] = None) -> None:
        self.lab_dir, self.root_pid, self.name, self.emit = lab_dir, root_pid, name, emit
        self.board = board  # where the program's columns are published for the dashboard and --plain
        self.instances: Dict[str, str] = {}
        self.stop_event = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.merged: Dict[str, Dict[str, Any]] = {}
        self.unmeasured: Dict[str, int] = {}

    def start(self) -> "WireFollower":
        self.thread = threading.Thread(target=self._run, name="wire follower", daemon=True)
        self.thread.start()
        return self

    def stop(self, stopped_at: Optional[float] = None) -> None:
        """Stop following; the program's `wire_client` events (one per endpoint) go to the record.

        `stopped_at`: when fiswatch itself stopped the program (the run ended): the connections its
        end dropped are not an outage of the program's (else every run would end "never recovered").
        """
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(10)
        self._poll()
        from fiswatch.lab.wire.accounting import GAP_MIN
        from fiswatch.lab.wire.verdict import PROGRAM

        for m in self.merged.values():
            if stopped_at is not None:
                cut_after(m, stopped_at)
        for endpoint, m in sorted(self.merged.items()):
            self.emit(E.wire_client("%s/%s" % (endpoint, PROGRAM), endpoint, backend=self.name, acked=m["acked"],
                                    segments=m["segments"], gap_min=GAP_MIN, errors=m["errors"],
                                    last_error=m["last_error"], refused=m["refused"], last_refused=m["last_refused"],
                                    dropped=m["dropped"], last_dropped=m["last_dropped"], faults=m["faults"],
                                    unmeasured=dict(self.unmeasured), rolled_back=m.get("rolled_back", 0),
                                    rolled_back_writes=m.get("rolled_back_writes", 0)))

    def _poll(self) -> bool:
        from fiswatch.lab.control import ControlError, request
        from fiswatch.lab.layout import CONTROL_SOCKET
        from fiswatch.lab.wire.verdict import merge, program_clients

        try:
            snapshot = request(os.path.join(self.lab_dir, CONTROL_SOCKET), "wire", timeout=10)
        except (ControlError, OSError, ValueError):
            return False
        clients = program_clients(snapshot, self.root_pid)
        self.merged = merge(clients)
        self.instances = latest_instances(clients)
        unmeasured: Dict[str, int] = {}
        for c in clients:
            for why, n in (c.get("unmeasured") or {}).items():
                unmeasured[why] = unmeasured.get(why, 0) + n
        self.unmeasured = unmeasured
        return True

    def _run(self) -> None:
        shown: Dict[str, str] = {}
        acked: Dict[str, int] = {}
        said_unmeasured: Dict[str, int] = {}
        while not self.stop_event.wait(POLL):
            if not self._poll():
                continue
            now = time.time()
            views = []
            for endpoint, track in sorted(self.merged.items()):
                view = program_view(self.name, endpoint, track, now, acked.get(endpoint, track.get("acked", 0)), POLL,
                                    self.instances.get(endpoint, ""))
                views.append(view)
                cls, text = view.kind, view.text
                acked[endpoint] = track.get("acked", 0)
                if shown.get(endpoint) != cls:
                    shown[endpoint] = cls
                    make = E.info if cls == "writing" else E.warning
                    self.emit(make("exec %s on %s: %s" % (self.name, endpoint, text)))
            if self.board is not None and views:
                self.board.snapshot = tuple(views)
            for why, n in self.unmeasured.items():
                if said_unmeasured.get(why) != n and not said_unmeasured.get(why):
                    self.emit(E.warning("exec %s: a connection not measured: %s" % (self.name, why)))
                said_unmeasured[why] = n
